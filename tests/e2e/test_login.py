"""Login, logout and token refresh, through the real daemon."""
import pytest_twisted
from conftest import PASSWORD, unique_localpart
from twisted.internet import reactor
from twisted.internet.task import deferLater


def _password_login(identifier, password=PASSWORD, **extra) -> dict:
    return {"type": "m.login.password", "identifier": identifier, "password": password, **extra}


async def _whoami(client, token):
    return await client.request("GET", "account/whoami", token=token)


async def _device_ids(client, token) -> set:
    response = await client.request("GET", "devices", token=token)
    assert response.code == 200, response
    return {device["device_id"] for device in response.json["devices"]}


@pytest_twisted.ensureDeferred
async def test_login_flows_offer_only_password(client):
    """GET /login offers exactly m.login.password: we have no SSO or token login to list."""
    response = await client.request("GET", "login")
    assert response.code == 200
    assert response.json == {"flows": [{"type": "m.login.password"}]}


@pytest_twisted.ensureDeferred
async def test_login_with_localpart_gives_a_working_token(client):
    """Logging in with a localpart answers the user id, a new device, home_server and a token that works."""
    localpart = unique_localpart()
    registered = await client.register(localpart)
    response = await client.login(localpart)
    assert response.code == 200, response
    body = response.json
    assert body["user_id"] == registered["user_id"] == f"@{localpart}:test.local"
    assert body["home_server"] == "test.local"
    assert body["device_id"] != registered["device_id"]
    assert "refresh_token" not in body and "expires_in_ms" not in body
    whoami = await _whoami(client, body["access_token"])
    assert whoami.code == 200
    assert whoami.json["user_id"] == body["user_id"]
    assert whoami.json["device_id"] == body["device_id"]


@pytest_twisted.ensureDeferred
async def test_login_identifier_forms(client):
    """A full user id, the legacy top-level 'user' field and an upper-cased localpart all log in the same user."""
    localpart = unique_localpart()
    user_id = (await client.register(localpart))["user_id"]
    full = await client.login(user_id)
    legacy = await client.request(
        "POST", "login", {"type": "m.login.password", "user": localpart, "password": PASSWORD}
    )
    upper = await client.login(localpart.upper())
    for response in (full, legacy, upper):
        assert response.code == 200, response
        assert response.json["user_id"] == user_id


@pytest_twisted.ensureDeferred
async def test_failed_logins_all_look_the_same(client):
    """A wrong password, an unknown user and a user of another server all get the same 403 M_FORBIDDEN."""
    user_id = (await client.register())["user_id"]
    attempts = [
        await client.login(user_id, password="wrong password"),
        await client.login(unique_localpart("nobody")),
        await client.login(user_id.replace(":test.local", ":other.example")),
    ]
    for response in attempts:
        assert response.code == 403, response
        assert response.json["errcode"] == "M_FORBIDDEN"
    assert len({response.json["error"] for response in attempts}) == 1


@pytest_twisted.ensureDeferred
async def test_unknown_login_type_is_refused(client):
    """A login type we do not offer (m.login.token) gets 400 M_UNKNOWN, as Synapse answers, and no token."""
    response = await client.request("POST", "login", {"type": "m.login.token", "token": "abc"})
    assert response.code == 400
    assert response.json["errcode"] == "M_UNKNOWN"


@pytest_twisted.ensureDeferred
async def test_malformed_login_requests_are_400(client):
    """A login without type, without password or with an unknown identifier type is a 400, not a 403 or 500."""
    user_id = (await client.register())["user_id"]
    no_type = await client.request(
        "POST", "login", {"identifier": {"type": "m.id.user", "user": user_id}, "password": PASSWORD},
        validate=False,
    )
    assert (no_type.code, no_type.json["errcode"]) == (400, "M_MISSING_PARAM")
    no_password = await client.request(
        "POST", "login", {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id}}
    )
    assert (no_password.code, no_password.json["errcode"]) == (400, "M_MISSING_PARAM")
    odd_identifier = await client.request(
        "POST", "login", _password_login({"type": "org.example.id", "user": user_id}), validate=False
    )
    assert (odd_identifier.code, odd_identifier.json["errcode"]) == (400, "M_UNKNOWN")
    no_identifier = await client.request(
        "POST", "login", {"type": "m.login.password", "password": PASSWORD}
    )
    assert (no_identifier.code, no_identifier.json["errcode"]) == (400, "M_MISSING_PARAM")
    not_a_bool = await client.request(
        "POST", "login", _password_login({"type": "m.id.user", "user": user_id}, refresh_token="yes"),
        validate=False,
    )
    assert not_a_bool.code == 400


@pytest_twisted.ensureDeferred
async def test_third_party_identifiers_are_unknown(client):
    """An email or phone identifier gets 403 M_FORBIDDEN: the spec's answer for a 3PID the server does not know."""
    email = await client.request("POST", "login", _password_login(
        {"type": "m.id.thirdparty", "medium": "email", "address": "someone@example.org"}))
    phone = await client.request("POST", "login", _password_login(
        {"type": "m.id.phone", "country": "GB", "phone": "07700900001"}))
    for response in (email, phone):
        assert response.code == 403, response
        assert response.json["errcode"] == "M_FORBIDDEN"


@pytest_twisted.ensureDeferred
async def test_login_with_chosen_device_id_and_name(client):
    """A client-chosen device_id is used as given, with initial_device_display_name as its name."""
    user_id = (await client.register())["user_id"]
    response = await client.login(user_id, device_id="MYPHONE", initial_device_display_name="Jungle Phone")
    assert response.code == 200, response
    assert response.json["device_id"] == "MYPHONE"
    device = await client.request("GET", "devices/MYPHONE", token=response.json["access_token"])
    assert device.code == 200
    assert device.json["display_name"] == "Jungle Phone"


@pytest_twisted.ensureDeferred
async def test_login_reusing_device_id_replaces_its_token(client):
    """Logging in again with the same device_id revokes that device's old token but keeps the device and its name."""
    user_id = (await client.register())["user_id"]
    first = await client.login(user_id, device_id="LAPTOP", initial_device_display_name="laptop")
    second = await client.login(user_id, device_id="LAPTOP", initial_device_display_name="ignored")
    assert second.code == 200 and second.json["device_id"] == "LAPTOP"
    old = await _whoami(client, first.json["access_token"])
    assert old.code == 401 and old.json["errcode"] == "M_UNKNOWN_TOKEN"
    new = await _whoami(client, second.json["access_token"])
    assert new.code == 200 and new.json["device_id"] == "LAPTOP"
    device = await client.request("GET", "devices/LAPTOP", token=second.json["access_token"])
    assert device.json["display_name"] == "laptop"


@pytest_twisted.ensureDeferred
async def test_unusable_device_ids_are_refused(client):
    """A device_id that is empty, holds spaces or is over 512 characters gets 400 M_INVALID_PARAM, not a 500."""
    user_id = (await client.register())["user_id"]
    for device_id in ("", "MY PHONE", "X" * 513, "TAB\tBED"):
        response = await client.login(user_id, device_id=device_id)
        assert response.code == 400, (device_id, response)
        assert response.json["errcode"] == "M_INVALID_PARAM"


@pytest_twisted.ensureDeferred
async def test_login_is_rate_limited_per_address(start_homeserver, make_client):
    """Past the login burst, POST /login answers 429 M_LIMIT_EXCEEDED with retry_after_ms."""
    server = start_homeserver("[rate_limits.login]\nper_second = 0.01\nburst_count = 2\n")
    client = make_client(server)
    for _ in range(2):
        response = await client.login("nobody")
        assert response.code == 403, response
    limited = await client.login("nobody")
    assert limited.code == 429, limited
    assert limited.json["errcode"] == "M_LIMIT_EXCEEDED"
    assert limited.json["retry_after_ms"] > 0


@pytest_twisted.ensureDeferred
async def test_logout_revokes_the_token_and_deletes_the_device(client):
    """POST /logout makes the token answer 401 M_UNKNOWN_TOKEN (no soft logout) and removes its device."""
    first = await client.register()
    second = (await client.login(first["user_id"])).json
    response = await client.request("POST", "logout", {}, token=second["access_token"])
    assert response.code == 200 and response.json == {}
    after = await _whoami(client, second["access_token"])
    assert after.code == 401
    assert after.json["errcode"] == "M_UNKNOWN_TOKEN"
    assert not after.json.get("soft_logout")
    assert await _device_ids(client, first["access_token"]) == {first["device_id"]}


@pytest_twisted.ensureDeferred
async def test_logout_all_revokes_every_device(client):
    """POST /logout/all revokes every token of the user, the caller's included, and deletes their devices."""
    first = await client.register()
    second = (await client.login(first["user_id"])).json
    other_user = await client.register()
    response = await client.request("POST", "logout/all", {}, token=second["access_token"])
    assert response.code == 200 and response.json == {}
    for token in (first["access_token"], second["access_token"]):
        assert (await _whoami(client, token)).code == 401
    assert (await _whoami(client, other_user["access_token"])).code == 200
    third = (await client.login(first["user_id"])).json
    assert await _device_ids(client, third["access_token"]) == {third["device_id"]}


@pytest_twisted.ensureDeferred
async def test_logout_needs_a_token(client):
    """POST /logout without a token answers 401 M_MISSING_TOKEN."""
    response = await client.request("POST", "logout", {})
    assert response.code == 401
    assert response.json["errcode"] == "M_MISSING_TOKEN"


@pytest_twisted.ensureDeferred
async def test_guests_cannot_log_out(client):
    """A guest's POST /logout gets 403 M_GUEST_ACCESS_FORBIDDEN (not on the spec's guest allow-list) and the token stays."""
    token = (await client.register_guest())["access_token"]
    for path in ("logout", "logout/all"):
        response = await client.request("POST", path, {}, token=token)
        assert response.code == 403
        assert response.json["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"
    assert (await _whoami(client, token)).code == 200


@pytest_twisted.ensureDeferred
async def test_refresh_rotates_both_tokens(client):
    """With refresh_token: true, /refresh gives a new working pair; once the new one is used, the old pair is refused."""
    user_id = (await client.register())["user_id"]
    login = await client.login(user_id, refresh_token=True)
    assert login.code == 200, login
    old = login.json
    assert old["expires_in_ms"] > 0 and old["refresh_token"]
    response = await client.request("POST", "refresh", {"refresh_token": old["refresh_token"]})
    assert response.code == 200, response
    new = response.json
    assert set(new) == {"access_token", "refresh_token", "expires_in_ms"}
    whoami = await _whoami(client, new["access_token"])
    assert whoami.code == 200 and whoami.json["device_id"] == old["device_id"]
    again = await client.request("POST", "refresh", {"refresh_token": old["refresh_token"]})
    assert again.code == 401
    assert again.json["errcode"] == "M_UNKNOWN_TOKEN"
    stale = await _whoami(client, old["access_token"])
    assert stale.code == 401 and stale.json["errcode"] == "M_UNKNOWN_TOKEN"
    chained = await client.request("POST", "refresh", {"refresh_token": new["refresh_token"]})
    assert chained.code == 200, chained


@pytest_twisted.ensureDeferred
async def test_refresh_refuses_other_tokens(client):
    """/refresh refuses garbage, an access token and a missing field, and never with soft_logout."""
    user_id = (await client.register())["user_id"]
    login = (await client.login(user_id, refresh_token=True)).json
    for token in ("not-a-token", login["access_token"]):
        response = await client.request("POST", "refresh", {"refresh_token": token})
        assert response.code == 401, response
        assert response.json["errcode"] == "M_UNKNOWN_TOKEN"
        assert not response.json.get("soft_logout")
    missing = await client.request("POST", "refresh", {}, validate=False)
    assert (missing.code, missing.json["errcode"]) == (400, "M_MISSING_PARAM")
    # The refresh token is no access token either.
    assert (await _whoami(client, login["refresh_token"])).code == 401


@pytest_twisted.ensureDeferred
async def test_logout_also_kills_the_refresh_token(client):
    """After POST /logout, the device's refresh token is refused too."""
    user_id = (await client.register())["user_id"]
    login = (await client.login(user_id, refresh_token=True)).json
    assert (await client.request("POST", "logout", {}, token=login["access_token"])).code == 200
    response = await client.request("POST", "refresh", {"refresh_token": login["refresh_token"]})
    assert response.code == 401 and response.json["errcode"] == "M_UNKNOWN_TOKEN"


@pytest_twisted.ensureDeferred
async def test_expired_access_token_is_soft_logged_out_then_refreshed(start_homeserver, make_client):
    """An expired access token answers 401 M_UNKNOWN_TOKEN with soft_logout: true, and its refresh token still works."""
    server = start_homeserver("[tokens]\nrefreshable_access_token_lifetime_ms = 1500\n")
    client = make_client(server)
    user_id = (await client.register())["user_id"]
    login = (await client.login(user_id, refresh_token=True)).json
    assert login["expires_in_ms"] == 1500
    assert (await _whoami(client, login["access_token"])).code == 200  # now cached by the guard
    forever = (await client.login(user_id)).json
    await deferLater(reactor, 2.0, lambda: None)
    expired = await _whoami(client, login["access_token"])
    assert expired.code == 401
    assert expired.json["errcode"] == "M_UNKNOWN_TOKEN"
    assert expired.json["soft_logout"] is True
    refreshed = await client.request("POST", "refresh", {"refresh_token": login["refresh_token"]})
    assert refreshed.code == 200, refreshed
    whoami = await _whoami(client, refreshed.json["access_token"])
    assert whoami.code == 200 and whoami.json["device_id"] == login["device_id"]
    # A token issued without refresh_token: true does not expire.
    assert (await _whoami(client, forever["access_token"])).code == 200


@pytest_twisted.ensureDeferred
async def test_r0_prefix_serves_login(client):
    """The legacy /_matrix/client/r0 prefix serves login and whoami too."""
    user_id = (await client.register())["user_id"]
    response = await client.request("POST", "/_matrix/client/r0/login", _password_login(
        {"type": "m.id.user", "user": user_id}))
    assert response.code == 200, response
    whoami = await client.request("GET", "/_matrix/client/r0/account/whoami",
                                  token=response.json["access_token"])
    assert whoami.json["user_id"] == user_id


@pytest_twisted.ensureDeferred
async def test_malformed_identifiers_are_400(client):
    """An identifier that is not an object, has no type or a non-string one, or whose 'user' is missing or not a string is a 400."""
    for identifier, errcode in (
        ("alice", "M_BAD_JSON"),
        ({"user": "alice"}, "M_MISSING_PARAM"),
        ({"type": "m.id.user"}, "M_MISSING_PARAM"),
        ({"type": "m.id.user", "user": ["alice"]}, "M_BAD_JSON"),
        ({"type": ["m.id.user"], "user": "alice"}, "M_BAD_JSON"),
    ):
        response = await client.request("POST", "login", _password_login(identifier), validate=False)
        assert response.code == 400, (identifier, response)
        assert response.json["errcode"] == errcode, (identifier, response)
        assert "identifier" in response.json["error"], (identifier, response)


@pytest_twisted.ensureDeferred
async def test_unstorable_device_ids_and_names_are_400(client):
    """A device id with a lone surrogate, or a device name with NUL or a lone surrogate, is a 400 at login, not a 500."""
    user_id = (await client.register())["user_id"]
    for extra in ({"device_id": "PHONE\ud800"}, {"initial_device_display_name": "my\x00phone"},
                  {"initial_device_display_name": "my\udc00phone"}):
        response = await client.login(user_id, **extra)
        assert (response.code, response.json["errcode"]) == (400, "M_INVALID_PARAM"), (extra, response)
    assert (await client.login(user_id)).code == 200


@pytest_twisted.ensureDeferred
async def test_initial_device_display_name_must_be_a_short_string(client):
    """At login a device name that is not a string is 400 M_BAD_JSON; over 100 characters is 400 M_TOO_LARGE (as Synapse); 100 is kept."""
    user_id = (await client.register())["user_id"]
    wrong_type = await client.request("POST", "login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id},
        "password": PASSWORD, "initial_device_display_name": ["phone"]}, validate=False)
    assert (wrong_type.code, wrong_type.json["errcode"]) == (400, "M_BAD_JSON"), wrong_type
    too_long = await client.login(user_id, initial_device_display_name="x" * 101)
    assert (too_long.code, too_long.json["errcode"]) == (400, "M_TOO_LARGE"), too_long
    longest = await client.login(user_id, initial_device_display_name="y" * 100)
    assert longest.code == 200, longest
    device = await client.request("GET", f"devices/{longest.json['device_id']}",
                                  token=longest.json["access_token"])
    assert device.json["display_name"] == "y" * 100
