"""Account registration (POST /register, GET /register/available) through the real daemon."""
import pytest_twisted
from conftest import PASSWORD, unique_localpart

from ruma_tx.matrix.identifiers import validate_localpart


async def start_uia(client, body):
    """Make the first /register call; return its session id."""
    first = await client.request("POST", "register", body)
    assert first.code == 401, first
    return first.json["session"]


async def finish_uia(client, body, session):
    return await client.request(
        "POST", "register", {**body, "auth": {"type": "m.login.dummy", "session": session}}
    )


@pytest_twisted.ensureDeferred
async def test_first_call_answers_uia_flows(client):
    """A registration without auth answers 401 with the dummy flow and a session id."""
    response = await client.request(
        "POST", "register", {"username": unique_localpart(), "password": PASSWORD}
    )
    assert response.code == 401
    assert {"stages": ["m.login.dummy"]} in response.json["flows"]
    assert isinstance(response.json["session"], str) and response.json["session"]
    assert "errcode" not in response.json


@pytest_twisted.ensureDeferred
async def test_empty_body_answers_uia_flows(client):
    """A client may discover the flows with an empty body, before the user typed anything."""
    response = await client.request("POST", "register", {})
    assert response.code == 401
    assert {"stages": ["m.login.dummy"]} in response.json["flows"]


@pytest_twisted.ensureDeferred
async def test_dummy_stage_registers_and_logs_in(client):
    """Completing the dummy stage creates the account and returns a working access token."""
    localpart = unique_localpart()
    user = await client.register(localpart)
    assert user["user_id"] == f"@{localpart}:test.local"
    assert user["device_id"]
    assert "refresh_token" not in user and "expires_in_ms" not in user
    response = await client.request("GET", "capabilities", token=user["access_token"])
    assert response.code == 200


@pytest_twisted.ensureDeferred
async def test_initial_displayname_is_the_localpart(client):
    """A new account's display name is its localpart, as Synapse does."""
    localpart = unique_localpart()
    user = await client.register(localpart)
    response = await client.request("GET", f"profile/{user['user_id']}/displayname")
    assert response.code == 200
    assert response.json["displayname"] == localpart


@pytest_twisted.ensureDeferred
async def test_username_is_lower_cased(client):
    """An upper-case username registers its lower-case localpart, as Synapse does."""
    localpart = unique_localpart("Mixed")
    user = await client.register(localpart)
    assert user["user_id"] == f"@{localpart.lower()}:test.local"


@pytest_twisted.ensureDeferred
async def test_no_username_gets_a_generated_localpart(client):
    """Without a username the server picks a valid localpart."""
    body = {"password": PASSWORD}
    session = await start_uia(client, body)
    response = await finish_uia(client, body, session)
    assert response.code == 200, response
    localpart = response.json["user_id"][1:].split(":")[0]
    validate_localpart(localpart)
    other = await finish_uia(client, body, await start_uia(client, body))
    assert other.json["user_id"] != response.json["user_id"]


@pytest_twisted.ensureDeferred
async def test_invalid_usernames_are_refused_before_uia(client):
    """Usernames off-grammar, reserved (leading _, all digits) or too long: 400 M_INVALID_USERNAME."""
    for username in ["has space", "", "émile", "a:b", "_bridge", "12345", "x" * 300]:
        response = await client.request(
            "POST", "register", {"username": username, "password": PASSWORD}
        )
        assert response.code == 400, (username, response)
        assert response.json["errcode"] == "M_INVALID_USERNAME", username


@pytest_twisted.ensureDeferred
async def test_taken_username_is_refused_before_uia(client):
    """Asking for a taken username answers 400 M_USER_IN_USE at once, not the UIA 401."""
    localpart = unique_localpart()
    await client.register(localpart)
    response = await client.request(
        "POST", "register", {"username": localpart, "password": PASSWORD}
    )
    assert response.code == 400
    assert response.json["errcode"] == "M_USER_IN_USE"


@pytest_twisted.ensureDeferred
async def test_username_taken_during_uia(client):
    """A username registered by someone else while the UIA was under way answers M_USER_IN_USE."""
    localpart = unique_localpart()
    body = {"username": localpart, "password": PASSWORD}
    session = await start_uia(client, body)
    await client.register(localpart)
    response = await finish_uia(client, body, session)
    assert response.code == 400
    assert response.json["errcode"] == "M_USER_IN_USE"


@pytest_twisted.ensureDeferred
async def test_unknown_uia_session_is_refused(client):
    """Completing a stage with a session id the server never gave answers 400."""
    body = {"username": unique_localpart(), "password": PASSWORD}
    response = await finish_uia(client, body, "no-such-session")
    assert response.code == 400
    available = await client.request(
        "GET", "register/available", query={"username": body["username"]}
    )
    assert available.code == 200


@pytest_twisted.ensureDeferred
async def test_unsupported_auth_type_answers_401(client):
    """An auth type the flows do not offer answers 401 M_UNRECOGNIZED with the flows again."""
    body = {"username": unique_localpart(), "password": PASSWORD}
    session = await start_uia(client, body)
    response = await client.request(
        "POST", "register", {**body, "auth": {"type": "m.login.recaptcha", "session": session}}
    )
    assert response.code == 401
    assert response.json["errcode"] == "M_UNRECOGNIZED"
    assert response.json["session"] == session
    assert (await finish_uia(client, body, session)).code == 200


@pytest_twisted.ensureDeferred
async def test_password_is_required(client):
    """Completing the UIA without a password answers 400 M_MISSING_PARAM and keeps the session."""
    localpart = unique_localpart()
    session = await start_uia(client, {"username": localpart})
    response = await finish_uia(client, {"username": localpart}, session)
    assert response.code == 400
    assert response.json["errcode"] == "M_MISSING_PARAM"
    response = await finish_uia(client, {"username": localpart, "password": PASSWORD}, session)
    assert response.code == 200, response


@pytest_twisted.ensureDeferred
async def test_bad_passwords_are_refused(client):
    """A password that is not a string answers M_BAD_JSON; one over 512 characters M_INVALID_PARAM."""
    response = await client.request(
        "POST", "register", {"username": unique_localpart(), "password": 1234}
    )
    assert (response.code, response.json["errcode"]) == (400, "M_BAD_JSON")
    response = await client.request(
        "POST", "register", {"username": unique_localpart(), "password": "p" * 513}
    )
    assert (response.code, response.json["errcode"]) == (400, "M_INVALID_PARAM")


@pytest_twisted.ensureDeferred
async def test_unknown_kind_is_refused(client):
    """A kind other than user or guest answers 400 M_INVALID_PARAM."""
    response = await client.request(
        "POST", "register", {"username": unique_localpart()}, query={"kind": "robot"}
    )
    assert response.code == 400
    assert response.json["errcode"] == "M_INVALID_PARAM"


@pytest_twisted.ensureDeferred
async def test_inhibit_login_returns_only_the_user_id(client):
    """With inhibit_login the account is created but no token or device is returned."""
    localpart = unique_localpart()
    user = await client.register(localpart, inhibit_login=True)
    assert user == {"user_id": f"@{localpart}:test.local"}
    response = await client.request("GET", "register/available", query={"username": localpart})
    assert response.json["errcode"] == "M_USER_IN_USE"


@pytest_twisted.ensureDeferred
async def test_device_id_and_display_name_are_honoured(client):
    """A device_id the client picks is the one the new login uses."""
    user = await client.register(device_id="MYPHONE", initial_device_display_name="Jungle Phone")
    assert user["device_id"] == "MYPHONE"
    response = await client.request("GET", "capabilities", token=user["access_token"])
    assert response.code == 200


@pytest_twisted.ensureDeferred
async def test_refresh_token_requested(client):
    """With refresh_token: true the response carries a refresh token and the token's lifetime."""
    user = await client.register(refresh_token=True)
    assert isinstance(user["refresh_token"], str) and user["refresh_token"]
    assert user["expires_in_ms"] > 0
    response = await client.request("GET", "capabilities", token=user["access_token"])
    assert response.code == 200


@pytest_twisted.ensureDeferred
async def test_username_availability(client):
    """/register/available says available, in use, invalid, or asks for the username."""
    localpart = unique_localpart()
    response = await client.request("GET", "register/available", query={"username": localpart})
    assert (response.code, response.json) == (200, {"available": True})
    await client.register(localpart)
    response = await client.request("GET", "register/available", query={"username": localpart})
    assert (response.code, response.json["errcode"]) == (400, "M_USER_IN_USE")
    response = await client.request("GET", "register/available", query={"username": "not valid"})
    assert (response.code, response.json["errcode"]) == (400, "M_INVALID_USERNAME")
    response = await client.request("GET", "register/available")
    assert (response.code, response.json["errcode"]) == (400, "M_MISSING_PARAM")


@pytest_twisted.ensureDeferred
async def test_registration_disabled(start_homeserver, make_client):
    """With registration disabled, /register and /register/available answer 403 M_FORBIDDEN."""
    client = make_client(start_homeserver("[registration]\nenabled = false\n"))
    response = await client.request(
        "POST", "register", {"username": unique_localpart(), "password": PASSWORD}
    )
    assert (response.code, response.json["errcode"]) == (403, "M_FORBIDDEN")
    response = await client.request(
        "GET", "register/available", query={"username": unique_localpart()}
    )
    assert (response.code, response.json["errcode"]) == (403, "M_FORBIDDEN")
