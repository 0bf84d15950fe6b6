"""Account registration (POST /register, GET /register/available) through the real daemon."""
import json

import pytest_twisted
from conftest import PASSWORD, unique_localpart
from twisted.internet.defer import ensureDeferred, gatherResults

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


@pytest_twisted.ensureDeferred
async def test_repeat_in_a_completed_session_returns_the_same_user(client):
    """Repeating a completed registration in its session answers the same user, logged in again, and creates no other account."""
    localpart = unique_localpart()
    body = {"username": localpart, "password": PASSWORD, "device_id": "REPEATED"}
    session = await start_uia(client, body)
    first = await finish_uia(client, body, session)
    assert first.code == 200, first
    again = await finish_uia(client, body, session)
    assert again.code == 200, again
    assert again.json["user_id"] == first.json["user_id"] == f"@{localpart}:test.local"
    assert again.json["device_id"] == "REPEATED"
    whoami = await client.request("GET", "account/whoami", token=again.json["access_token"])
    assert (whoami.code, whoami.json["user_id"]) == (200, first.json["user_id"])
    only_auth = await client.request(
        "POST", "register", {"auth": {"type": "m.login.dummy", "session": session}}
    )
    assert only_auth.code == 200, only_auth
    assert only_auth.json["user_id"] == first.json["user_id"]


@pytest_twisted.ensureDeferred
async def test_repeat_without_username_returns_the_same_generated_user(client):
    """A server-picked user id is registered once per session: a repeat answers that user, not a new one."""
    body = {"password": PASSWORD}
    session = await start_uia(client, body)
    first = await finish_uia(client, body, session)
    again = await finish_uia(client, body, session)
    assert (first.code, again.code) == (200, 200), (first, again)
    assert again.json["user_id"] == first.json["user_id"]


@pytest_twisted.ensureDeferred
async def test_session_remembers_the_first_requests_parameters(client):
    """Completing the session with only auth registers the username, password and device of the request that started it."""
    localpart = unique_localpart()
    body = {"username": localpart, "password": "first p\u00e4ssword", "device_id": "FIRSTDEV",
            "initial_device_display_name": "First phone"}
    session = await start_uia(client, body)
    done = await client.request(
        "POST", "register", {"auth": {"type": "m.login.dummy", "session": session}}
    )
    assert done.code == 200, done
    assert done.json["user_id"] == f"@{localpart}:test.local"
    assert done.json["device_id"] == "FIRSTDEV"
    device = await client.request("GET", "devices/FIRSTDEV", token=done.json["access_token"])
    assert device.json["display_name"] == "First phone"
    assert (await client.login(done.json["user_id"], password="first p\u00e4ssword")).code == 200


@pytest_twisted.ensureDeferred
async def test_changed_parameters_in_a_session_are_refused(client):
    """Another username or password in the session is another request: 403 M_UNKNOWN and nobody registered; the first one still completes."""
    localpart, other = unique_localpart(), unique_localpart()
    body = {"username": localpart, "password": PASSWORD}
    session = await start_uia(client, body)
    for changed in ({"username": other, "password": PASSWORD},
                    {"username": localpart, "password": "another password"}):
        response = await finish_uia(client, changed, session)
        assert (response.code, response.json["errcode"]) == (403, "M_UNKNOWN"), (changed, response)
    for name in (localpart, other):
        available = await client.request("GET", "register/available", query={"username": name})
        assert available.code == 200, (name, available)
    done = await finish_uia(client, body, session)
    assert done.code == 200, done
    assert (await client.login(done.json["user_id"])).code == 200
    assert (await client.login(done.json["user_id"], password="another password")).code == 403
    repeat = await finish_uia(client, {"username": localpart, "password": "another password"}, session)
    assert (repeat.code, repeat.json["errcode"]) == (403, "M_UNKNOWN"), repeat


@pytest_twisted.ensureDeferred
async def test_inhibit_login_gives_no_token_device_or_refresh_token(client):
    """With inhibit_login (even asking for a device and a refresh token) the answer holds only user_id, and no device is made."""
    localpart = unique_localpart()
    body = {"username": localpart, "password": PASSWORD, "inhibit_login": True,
            "device_id": "INHIBITED", "refresh_token": True}
    session = await start_uia(client, body)
    response = await finish_uia(client, body, session)
    assert response.code == 200, response
    assert response.json == {"user_id": f"@{localpart}:test.local"}
    repeat = await finish_uia(client, body, session)
    assert (repeat.code, repeat.json) == (200, response.json)
    login = await client.login(response.json["user_id"])
    assert login.code == 200, login
    devices = await client.request("GET", "devices", token=login.json["access_token"])
    assert [d["device_id"] for d in devices.json["devices"]] == [login.json["device_id"]]


@pytest_twisted.ensureDeferred
async def test_non_ascii_passwords_register_and_log_in(client):
    """Passwords in any script, emoji or past bcrypt's 72 bytes register and log in; a near miss is refused."""
    long_a = "\u00fc" * 40 + "a"   # 81 UTF-8 bytes
    long_b = "\u00fc" * 40 + "b"   # the same first 72 bytes
    for password, near_miss in (("p\u00e4ssw\u00f6rd", "passwort"), ("\u5bc6\u7801\u5bc6\u7801", "\u5bc6\u7801"),
                                ("\U0001f511\U0001f512 key", "\U0001f511 key"), (long_a, long_b)):
        user = await client.register(password=password)
        login = await client.login(user["user_id"], password=password)
        assert login.code == 200, (password, login)
        raw = json.dumps({"type": "m.login.password", "password": password,
                          "identifier": {"type": "m.id.user", "user": user["user_id"]}},
                         ensure_ascii=False).encode("utf-8")
        assert (await client.request("POST", "login", raw)).code == 200, password
        refused = await client.login(user["user_id"], password=near_miss)
        assert (refused.code, refused.json["errcode"]) == (403, "M_FORBIDDEN"), (password, refused)


@pytest_twisted.ensureDeferred
async def test_password_is_the_same_however_its_accents_are_typed(client):
    """A password registered with composed accents logs in when typed decomposed, as Synapse normalises (NFKC)."""
    user = await client.register(password="caf\u00e9 cr\u00e8me")
    login = await client.login(user["user_id"], password="cafe\u0301 cre\u0300me")
    assert login.code == 200, login


@pytest_twisted.ensureDeferred
async def test_password_with_a_lone_surrogate_is_400(client):
    """A password holding a lone surrogate (valid JSON, not Unicode) is 400 M_BAD_JSON at register and login, not a 500."""
    body = {"username": unique_localpart(), "password": "bad\ud800pass"}
    response = await client.request("POST", "register", body)
    assert (response.code, response.json["errcode"]) == (400, "M_BAD_JSON"), response
    assert "password" in response.json["error"]
    user = await client.register()
    login = await client.login(user["user_id"], password="bad\ud800pass")
    assert (login.code, login.json["errcode"]) == (400, "M_BAD_JSON"), login


@pytest_twisted.ensureDeferred
async def test_unstorable_device_name_is_refused_before_registering(client):
    """A device id or name that cannot be stored is a 400 before any account is created."""
    localpart = unique_localpart()
    for extra in ({"device_id": "DEV\ud800"}, {"initial_device_display_name": "a\x00b"},
                  {"initial_device_display_name": "x" * 101}):
        body = {"username": localpart, "password": PASSWORD, **extra}
        response = await client.request("POST", "register", body)
        assert response.code == 400, (extra, response)
        assert response.json["errcode"] in ("M_INVALID_PARAM", "M_TOO_LARGE"), (extra, response)
    available = await client.request("GET", "register/available", query={"username": localpart})
    assert available.code == 200, available


@pytest_twisted.ensureDeferred
async def test_concurrent_completions_register_one_account(client):
    """Two requests completing one session at once never make two accounts: each answers that one user or asks to retry."""
    body = {"password": PASSWORD}
    session = await start_uia(client, body)
    responses = await gatherResults([ensureDeferred(finish_uia(client, body, session)) for _ in range(3)])
    users = {r.json["user_id"] for r in responses if r.code == 200}
    assert len(users) == 1, responses
    for response in responses:
        assert response.code == 200 or (response.code, response.json["errcode"]) == (400, "M_UNKNOWN"), response
    again = await finish_uia(client, body, session)
    assert (again.code, again.json["user_id"]) == (200, users.pop()), again


@pytest_twisted.ensureDeferred
async def test_guest_with_an_unstorable_device_name_is_400(client):
    """A guest registration whose device name holds NUL is a 400 M_INVALID_PARAM, not a 500."""
    response = await client.request("POST", "register", {"initial_device_display_name": "a\x00b"},
                                    query={"kind": "guest"})
    assert (response.code, response.json["errcode"]) == (400, "M_INVALID_PARAM"), response


@pytest_twisted.ensureDeferred
async def test_initial_device_display_name_must_be_a_short_string(client):
    """Registering (as a user or a guest) with a non-string device name is 400 M_BAD_JSON, with one over 100 characters 400 M_TOO_LARGE."""
    for query in ({}, {"kind": "guest"}):
        wrong_type = await client.request("POST", "register", {
            "username": unique_localpart(), "password": PASSWORD, "initial_device_display_name": 7},
            query=query, validate=False)
        assert (wrong_type.code, wrong_type.json["errcode"]) == (400, "M_BAD_JSON"), (query, wrong_type)
        too_long = await client.request("POST", "register", {
            "username": unique_localpart(), "password": PASSWORD, "initial_device_display_name": "x" * 101},
            query=query)
        assert (too_long.code, too_long.json["errcode"]) == (400, "M_TOO_LARGE"), (query, too_long)
