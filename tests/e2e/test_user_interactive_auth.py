"""
User-interactive auth across its endpoints, through the real daemon: a
session completes only the request that started it, the shape of every
401, who may answer the password stage, and malformed auth dicts.
"""
import pytest_twisted
from conftest import PASSWORD, password_auth, unique_localpart

#: The keys every UIA 401 body carries (spec: AuthenticationResponse).
UIA_KEYS = {"completed", "flows", "params", "session"}


async def _devices(client, user) -> set:
    response = await client.request("GET", "devices", token=user["access_token"])
    assert response.code == 200, response
    return {device["device_id"] for device in response.json["devices"]}


async def _user_with_devices(client, *names):
    """Register a user, then log in once per name (as that device id); return the logins."""
    user = await client.register()
    logins = []
    for name in names:
        login = await client.login(user["user_id"], device_id=name)
        assert login.code == 200, login
        logins.append(login.json)
    return user, logins


async def _challenge(client, method, path, body, token=None):
    """Send a request without auth; assert the UIA 401 and return its body."""
    response = await client.request(method, path, body, token=token)
    assert response.code == 401, response
    return response.json


@pytest_twisted.ensureDeferred
async def test_session_to_delete_one_device_cannot_delete_another(client):
    """A session started to delete device A refuses to delete device B (403 M_UNKNOWN), B stays, and A's deletion still completes."""
    user, (_, b) = await _user_with_devices(client, "DEVICEA", "DEVICEB")
    session = (await _challenge(client, "DELETE", "devices/DEVICEA", {}, user["access_token"]))["session"]
    other = await client.request(
        "DELETE", "devices/DEVICEB", {"auth": password_auth(user["user_id"], session)},
        token=user["access_token"],
    )
    assert (other.code, other.json["errcode"]) == (403, "M_UNKNOWN"), other
    assert "changed" in other.json["error"]
    assert {"DEVICEA", "DEVICEB"} <= await _devices(client, user)
    assert (await client.request("GET", "account/whoami", token=b["access_token"])).code == 200
    own = await client.request(
        "DELETE", "devices/DEVICEA", {"auth": password_auth(user["user_id"], session)},
        token=user["access_token"],
    )
    assert own.code == 200, own
    assert await _devices(client, user) == {user["device_id"], "DEVICEB"}


@pytest_twisted.ensureDeferred
async def test_bulk_delete_session_is_bound_to_its_device_list(client):
    """A /delete_devices session started for one list of devices refuses another list; those devices stay."""
    user, _ = await _user_with_devices(client, "KEEPME", "DROPME")
    session = (await _challenge(client, "POST", "delete_devices", {"devices": ["DROPME"]},
                                user["access_token"]))["session"]
    other = await client.request(
        "POST", "delete_devices",
        {"devices": ["KEEPME"], "auth": password_auth(user["user_id"], session)},
        token=user["access_token"],
    )
    assert (other.code, other.json["errcode"]) == (403, "M_UNKNOWN"), other
    assert {"KEEPME", "DROPME"} <= await _devices(client, user)


@pytest_twisted.ensureDeferred
async def test_session_of_another_endpoint_is_refused(client):
    """A session started to change the password cannot deactivate the account, which stays usable."""
    user = await client.register()
    session = (await _challenge(client, "POST", "account/password", {"new_password": "x" * 12},
                                user["access_token"]))["session"]
    response = await client.request(
        "POST", "account/deactivate", {"auth": password_auth(user["user_id"], session)},
        token=user["access_token"],
    )
    assert (response.code, response.json["errcode"]) == (403, "M_UNKNOWN"), response
    assert (await client.request("GET", "account/whoami", token=user["access_token"])).code == 200
    assert (await client.login(user["user_id"])).code == 200


@pytest_twisted.ensureDeferred
async def test_another_users_session_is_unknown(client):
    """A user cannot complete a UIA session another user started: 400 M_UNKNOWN, the device stays."""
    alice = await client.register()
    bob = await client.register()
    session = (await _challenge(client, "DELETE", f"devices/{alice['device_id']}", {},
                                alice["access_token"]))["session"]
    response = await client.request(
        "DELETE", f"devices/{alice['device_id']}", {"auth": password_auth(bob["user_id"], session)},
        token=bob["access_token"],
    )
    assert (response.code, response.json["errcode"]) == (400, "M_UNKNOWN"), response
    assert (await client.request("GET", "account/whoami", token=alice["access_token"])).code == 200


@pytest_twisted.ensureDeferred
async def test_every_challenge_lists_completed_flows_params_and_session(client):
    """Each UIA endpoint's 401 carries completed (empty at first), flows, params and session, also after a wrong password."""
    user = await client.register()
    token = user["access_token"]
    register = await client.request("POST", "register", {"username": unique_localpart(),
                                                         "password": PASSWORD})
    assert register.code == 401
    challenges = [register.json]
    for method, path, body in (("DELETE", f"devices/{user['device_id']}", {}),
                               ("POST", "delete_devices", {"devices": [user["device_id"]]}),
                               ("POST", "account/password", {"new_password": "y" * 12}),
                               ("POST", "account/deactivate", {})):
        first = await _challenge(client, method, path, body, token)
        wrong = await client.request(
            method, path, {**body, "auth": password_auth(user["user_id"], first["session"], "nope")},
            token=token,
        )
        assert (wrong.code, wrong.json["errcode"]) == (401, "M_FORBIDDEN"), (path, wrong)
        challenges += [first, wrong.json]
    for challenge in challenges:
        assert UIA_KEYS <= set(challenge), challenge
        assert challenge["completed"] == [], challenge
        assert isinstance(challenge["params"], dict) and challenge["flows"], challenge
        assert isinstance(challenge["session"], str) and challenge["session"], challenge
    assert (await client.request("GET", "account/whoami", token=token)).code == 200


@pytest_twisted.ensureDeferred
async def test_password_stage_as_another_user_is_403(client):
    """Answering the password stage with another account's correct credentials is 403 M_FORBIDDEN; nothing is deleted."""
    user = await client.register()
    other = await client.register()
    for method, path in (("DELETE", f"devices/{user['device_id']}"), ("POST", "account/deactivate")):
        session = (await _challenge(client, method, path, {}, user["access_token"]))["session"]
        response = await client.request(
            method, path, {"auth": password_auth(other["user_id"], session)},
            token=user["access_token"],
        )
        assert (response.code, response.json["errcode"]) == (403, "M_FORBIDDEN"), (path, response)
    assert (await client.request("GET", "account/whoami", token=user["access_token"])).code == 200
    assert user["device_id"] in await _devices(client, user)
    assert (await client.login(user["user_id"])).code == 200


@pytest_twisted.ensureDeferred
async def test_malformed_auth_is_400_naming_the_field(client):
    """An auth that is not an object, or members of the wrong type, are 400 naming the field; the device stays."""
    user = await client.register()
    path = f"devices/{user['device_id']}"
    session = (await _challenge(client, "DELETE", path, {}, user["access_token"]))["session"]
    good = password_auth(user["user_id"], session)
    cases = [
        ("password", "M_BAD_JSON", "'auth'"),
        (["m.login.password"], "M_BAD_JSON", "'auth'"),
        ({**good, "session": 42}, "M_BAD_JSON", "auth.session"),
        ({**good, "type": {"t": 1}}, "M_BAD_JSON", "auth.type"),
        ({**good, "password": 1234}, "M_BAD_JSON", "auth.password"),
        ({k: v for k, v in good.items() if k != "password"}, "M_MISSING_PARAM", "auth.password"),
        ({**good, "identifier": user["user_id"]}, "M_BAD_JSON", "auth.identifier"),
        ({**good, "identifier": {"type": ["m.id.user"], "user": user["user_id"]}}, "M_BAD_JSON",
         "auth.identifier.type"),
        ({**good, "identifier": {"type": "m.id.user", "user": 7}}, "M_BAD_JSON",
         "auth.identifier.user"),
        ({**{k: v for k, v in good.items() if k != "identifier"}, "user": True}, "M_BAD_JSON",
         "auth.user"),
    ]
    for auth, errcode, field in cases:
        response = await client.request("DELETE", path, {"auth": auth}, token=user["access_token"])
        assert (response.code, response.json["errcode"]) == (400, errcode), (auth, response)
        assert field in response.json["error"], (auth, response)
    assert (await client.request("GET", "account/whoami", token=user["access_token"])).code == 200
    done = await client.request("DELETE", path, {"auth": good}, token=user["access_token"])
    assert done.code == 200, done


@pytest_twisted.ensureDeferred
async def test_malformed_registration_bodies_are_400_naming_the_field(client):
    """Wrong JSON types in a registration body are 400 M_BAD_JSON naming the field, and register no one."""
    localpart = unique_localpart()
    for extra, field in (({"auth": "m.login.dummy"}, "'auth'"),
                         ({"auth": {"type": "m.login.dummy", "session": 1}}, "auth.session"),
                         ({"username": 5}, "username"), ({"password": ["x"]}, "password"),
                         ({"device_id": 5}, "device_id"), ({"inhibit_login": "yes"}, "inhibit_login"),
                         ({"refresh_token": 1}, "refresh_token"),
                         ({"initial_device_display_name": {}}, "initial_device_display_name"),
                         ({"guest_access_token": 5}, "guest_access_token")):
        body = {"username": localpart, "password": PASSWORD, **extra}
        response = await client.request("POST", "register", body)
        assert (response.code, response.json["errcode"]) == (400, "M_BAD_JSON"), (extra, response)
        assert field in response.json["error"], (extra, response)
    available = await client.request("GET", "register/available", query={"username": localpart})
    assert available.code == 200, available


@pytest_twisted.ensureDeferred
async def test_malformed_account_bodies_are_400(client):
    """Wrong JSON types in password change and deactivation bodies are 400 naming the field; the account stays."""
    user = await client.register()
    token = user["access_token"]
    for path, body, field in (
        ("account/password", {"new_password": "z" * 12, "auth": 5}, "'auth'"),
        ("account/password", {"new_password": "z" * 12, "logout_devices": "no"}, "logout_devices"),
        ("account/deactivate", {"auth": []}, "'auth'"),
        ("account/deactivate", {"id_server": 5}, "id_server"),
        ("account/deactivate", {"erase": "please"}, "erase"),
    ):
        response = await client.request("POST", path, body, token=token)
        assert (response.code, response.json["errcode"]) == (400, "M_BAD_JSON"), (body, response)
        assert field in response.json["error"], (body, response)
    assert (await client.request("GET", "account/whoami", token=token)).code == 200
    assert (await client.login(user["user_id"])).code == 200
