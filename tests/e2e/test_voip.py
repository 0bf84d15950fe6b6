"""
GET /voip/turnServer through the real daemon: time-limited credentials a
TURN server with the shared secret accepts (coturn's use-auth-secret),
static credentials, guests, and a server with no TURN server.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
import pytest_twisted

SECRET = "turn-secret-shared-with-coturn"
URIS = ["turn:turn.test.local:3478?transport=udp", "turns:turn.test.local:5349?transport=tcp"]


@pytest.fixture(scope="module")
def secret_server(start_homeserver, tmp_path_factory):
    """A daemon whose TURN secret is in a file, 10-minute credentials, guests refused."""
    secret_file = tmp_path_factory.mktemp("turn") / "turn.secret"
    secret_file.write_text(SECRET + "\n")
    return start_homeserver(
        "[guests]\nenabled = true\n"
        f'[voip]\nturn_uris = {json.dumps(URIS)}\nturn_shared_secret_path = "{secret_file}"\n'
        "turn_user_lifetime_s = 600\nturn_allow_guests = false\n")


@pytest.fixture(scope="module")
def static_server(start_homeserver):
    """A daemon handing out static TURN credentials, to guests too (the default)."""
    return start_homeserver(
        '[guests]\nenabled = true\n[voip]\nturn_uris = ["turn:turn.test.local"]\n'
        'turn_username = "calls"\nturn_password = "static-pass"\n')


def coturn_accepts(username: str, password: str, secret: str = SECRET) -> bool:
    """What coturn checks in use-auth-secret mode: base64(HMAC-SHA1(secret, username))."""
    expected = base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()
    return hmac.compare_digest(expected, password)


async def turn_server(client, user: dict):
    return await client.request("GET", "voip/turnServer", token=user["access_token"])


@pytest_twisted.ensureDeferred
async def test_credentials_verify_with_the_shared_secret(secret_server, make_client):
    """The password is the HMAC of the username under the secret read from the file; ttl and URIs as configured."""
    client = make_client(secret_server)
    alice = await client.register()
    before = int(time.time())
    response = await turn_server(client, alice)
    after = int(time.time())
    assert response.code == 200, response
    body = response.json
    assert coturn_accepts(body["username"], body["password"])
    assert not coturn_accepts(body["username"], body["password"], secret=SECRET + "x")
    assert body["uris"] == URIS
    assert body["ttl"] == 600
    expiry, user_id = body["username"].split(":", 1)
    assert user_id == alice["user_id"]
    assert before + 600 <= int(expiry) <= after + 600


@pytest_twisted.ensureDeferred
async def test_guests_are_refused_when_not_allowed(secret_server, make_client):
    """With turn_allow_guests = false a guest gets 403 M_FORBIDDEN."""
    client = make_client(secret_server)
    guest = await client.register_guest()
    response = await turn_server(client, guest)
    assert response.code == 403, response
    assert response.json["errcode"] == "M_FORBIDDEN"


@pytest_twisted.ensureDeferred
async def test_static_credentials_reach_guests_by_default(static_server, make_client):
    """Static credentials come back as configured, to users and (turn_allow_guests defaults to true) guests."""
    client = make_client(static_server)
    for user in (await client.register(), await client.register_guest()):
        response = await turn_server(client, user)
        assert response.code == 200, response
        assert response.json == {"username": "calls", "password": "static-pass",
                                 "uris": ["turn:turn.test.local"], "ttl": 3600}


@pytest_twisted.ensureDeferred
async def test_without_a_turn_server_the_answer_is_404(client):
    """No [voip] configured: 404 M_NOT_FOUND (MSC4166), not a 200 lacking the spec's required fields."""
    alice = await client.register()
    response = await turn_server(client, alice)
    assert response.code == 404, response
    assert response.json["errcode"] == "M_NOT_FOUND"


@pytest_twisted.ensureDeferred
async def test_credentials_need_an_access_token(secret_server, make_client):
    """Without a token: 401 M_MISSING_TOKEN."""
    response = await make_client(secret_server).request("GET", "voip/turnServer")
    assert response.code == 401, response
    assert response.json["errcode"] == "M_MISSING_TOKEN"


@pytest_twisted.ensureDeferred
async def test_the_secret_is_never_logged(secret_server, make_client):
    """Neither the shared secret nor a password handed out appears in the daemon's log."""
    client = make_client(secret_server)
    response = await turn_server(client, await client.register())
    assert response.code == 200, response
    log = secret_server.log()
    assert SECRET not in log
    assert response.json["password"] not in log
