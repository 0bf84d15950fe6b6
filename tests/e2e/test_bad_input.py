"""Malformed requests get a 4xx Matrix error, never a 500, and break nothing."""
import pytest
import pytest_twisted
from conftest import unique_localpart

LOGIN = "/_matrix/client/v3/login"


@pytest.mark.parametrize("raw", [
    b"not json",
    b'{"type": "m.login.password", "password": NaN}',
    b"\xff\xfe{}",
    b"{" * 100_000,
    b"",
])
@pytest_twisted.ensureDeferred
async def test_body_that_is_not_json_is_m_not_json(client, raw):
    """Bytes that are not JSON answer 400 M_NOT_JSON."""
    response = await client.request("POST", LOGIN, raw, validate=False)
    assert response.code == 400, response
    assert response.json["errcode"] == "M_NOT_JSON"


@pytest.mark.parametrize("raw", [b"[1, 2, 3]", b'"a string"', b"42", b"null", b"true"])
@pytest_twisted.ensureDeferred
async def test_json_that_is_not_an_object_is_m_bad_json(client, raw):
    """Well-formed JSON that is not an object answers 400 M_BAD_JSON, naming the problem."""
    response = await client.request("POST", LOGIN, raw, validate=False)
    assert response.code == 400, response
    assert response.json["errcode"] == "M_BAD_JSON"
    assert "JSON object" in response.json["error"]


@pytest_twisted.ensureDeferred
async def test_deeply_nested_json_is_refused_cleanly(client):
    """Deeply nested but valid JSON is a 4xx, not a crash."""
    raw = b'{"type": "m.login.password", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    response = await client.request("POST", LOGIN, raw, validate=False)
    assert 400 <= response.code < 500, response
    assert response.json["errcode"].startswith("M_")


@pytest_twisted.ensureDeferred
async def test_oversized_body_is_m_too_large(client):
    """A body over the configured limit (1 MiB by default) answers 413 M_TOO_LARGE."""
    raw = b'{"pad": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    response = await client.request("POST", LOGIN, raw, validate=False)
    assert response.code == 413
    assert response.json["errcode"] == "M_TOO_LARGE"


@pytest.mark.parametrize("body, errcode", [
    ({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": 5}, "password": "x"},
     "M_BAD_JSON"),
    ({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "a"}, "password": ["x"]},
     "M_BAD_JSON"),
    ({"identifier": {"type": "m.id.user", "user": "a"}, "password": "x"}, "M_MISSING_PARAM"),
])
@pytest_twisted.ensureDeferred
async def test_wrong_field_types_are_400(client, body, errcode):
    """Wrong types or missing fields in a login body are 400 with the matching errcode."""
    response = await client.request("POST", LOGIN, body, validate=False)
    assert response.code == 400, response
    assert response.json["errcode"] == errcode


@pytest.mark.parametrize("token", ["é-not-ascii", "a" * 10_000, "AAAA", "!!!", " "])
@pytest_twisted.ensureDeferred
async def test_malformed_tokens_are_401(client, token):
    """Garbage access tokens, non-ASCII ones included, answer 401, never 500."""
    response = await client.request(
        "GET", "account/whoami", query={"access_token": token}, validate=False
    )
    assert response.code == 401, response
    assert response.json["errcode"] in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN")


@pytest.mark.parametrize("user_id", ["notanid", "@", "@:", "@a:b:c:d", "%00", "@a:" + "b" * 300])
@pytest_twisted.ensureDeferred
async def test_malformed_user_ids_in_paths_are_4xx(client, user_id):
    """Malformed user ids in a path answer a 4xx Matrix error."""
    response = await client.request("GET", f"profile/{user_id}", validate=False)
    assert 400 <= response.code < 500, response
    assert response.json["errcode"].startswith("M_")


@pytest_twisted.ensureDeferred
async def test_bad_requests_do_not_harm_the_account(client):
    """After a flood of bad requests the account still logs in with its password."""
    user = await client.register(unique_localpart("robust"))
    for raw in (b"{", b"[]", b'{"password": {}}'):
        await client.request("POST", LOGIN, raw, validate=False)
    response = await client.login(user["user_id"])
    assert response.code == 200
    assert response.json["user_id"] == user["user_id"]


@pytest_twisted.ensureDeferred
async def test_rate_limited_logins_answer_429(start_homeserver, make_client):
    """Logins over the configured rate answer 429 M_LIMIT_EXCEEDED with retry_after_ms and Retry-After."""
    server = start_homeserver("[rate_limits]\nlogin = { per_second = 0.05, burst_count = 2 }\n")
    client = make_client(server)
    codes = []
    for _ in range(3):
        response = await client.login("@nobody:test.local", "wrong")
        codes.append(response.code)
    assert codes[:2] == [403, 403]
    assert codes[2] == 429
    assert response.json["errcode"] == "M_LIMIT_EXCEEDED"
    assert response.json["retry_after_ms"] > 0
    assert int(response.headers["retry-after"]) >= 1
