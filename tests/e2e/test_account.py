"""whoami, password change and deactivation, and how tokens are presented, through the real daemon."""
import pytest_twisted
from conftest import password_auth

NEW_PASSWORD = "a new and much better passphrase"


async def _whoami(client, token, **kwargs):
    return await client.request("GET", "account/whoami", token=token, **kwargs)


@pytest_twisted.ensureDeferred
async def test_whoami_names_user_and_device(client):
    """GET /account/whoami answers the token's user id, device id and is_guest false."""
    user = await client.register()
    response = await _whoami(client, user["access_token"])
    assert response.code == 200
    assert response.json == {"user_id": user["user_id"], "device_id": user["device_id"], "is_guest": False}


@pytest_twisted.ensureDeferred
async def test_whoami_for_a_guest(client):
    """A guest may call whoami (it is on the guest allow-list) and is told is_guest true."""
    guest = await client.register_guest()
    response = await _whoami(client, guest["access_token"])
    assert response.code == 200
    assert response.json["user_id"] == guest["user_id"]
    assert response.json["is_guest"] is True


@pytest_twisted.ensureDeferred
async def test_token_in_query_string_works(client):
    """The deprecated ?access_token= query parameter still authenticates, as the spec requires."""
    user = await client.register()
    response = await _whoami(client, None, query={"access_token": user["access_token"]})
    assert response.code == 200
    assert response.json["user_id"] == user["user_id"]


@pytest_twisted.ensureDeferred
async def test_missing_and_bad_tokens_are_401(client):
    """No token is 401 M_MISSING_TOKEN; a garbage or non-ASCII token is 401 M_UNKNOWN_TOKEN, never a 500."""
    missing = await _whoami(client, None)
    assert (missing.code, missing.json["errcode"]) == (401, "M_MISSING_TOKEN")
    garbage = await _whoami(client, "syt_not_a_real_token")
    assert (garbage.code, garbage.json["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    assert not garbage.json.get("soft_logout")
    in_query = await _whoami(client, None, query={"access_token": "nonsense"})
    assert (in_query.code, in_query.json["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    non_ascii = await _whoami(client, None, headers={"Authorization": "Bearer t\u00f6k\u00e9n"})
    assert non_ascii.code == 401, non_ascii
    assert non_ascii.json["errcode"] == "M_UNKNOWN_TOKEN"
    non_ascii_query = await _whoami(client, None, query={"access_token": "t\u00f6k\u00e9n"})
    assert non_ascii_query.code == 401, non_ascii_query


@pytest_twisted.ensureDeferred
async def test_change_password(client):
    """After POST /account/password with the current password, the old password is refused at login and the new one works."""
    user = await client.register()
    response = await client.with_password_uia(
        "POST", "account/password", {"new_password": NEW_PASSWORD}, user
    )
    assert response.code == 200, response
    assert response.json == {}
    old = await client.login(user["user_id"])
    assert (old.code, old.json["errcode"]) == (403, "M_FORBIDDEN")
    new = await client.login(user["user_id"], password=NEW_PASSWORD)
    assert new.code == 200, new


@pytest_twisted.ensureDeferred
async def test_change_password_logs_out_other_devices(client):
    """By default a password change logs out every other device, and keeps the one that asked."""
    user = await client.register()
    other = (await client.login(user["user_id"])).json
    response = await client.with_password_uia(
        "POST", "account/password", {"new_password": NEW_PASSWORD}, user
    )
    assert response.code == 200, response
    assert (await _whoami(client, other["access_token"])).code == 401
    assert (await _whoami(client, user["access_token"])).code == 200
    devices = await client.request("GET", "devices", token=user["access_token"])
    assert [d["device_id"] for d in devices.json["devices"]] == [user["device_id"]]


@pytest_twisted.ensureDeferred
async def test_change_password_can_keep_other_devices(client):
    """With logout_devices: false, the user's other devices stay logged in."""
    user = await client.register()
    other = (await client.login(user["user_id"])).json
    body = {"new_password": NEW_PASSWORD, "logout_devices": False}
    response = await client.with_password_uia("POST", "account/password", body, user)
    assert response.code == 200, response
    assert (await _whoami(client, other["access_token"])).code == 200


@pytest_twisted.ensureDeferred
async def test_change_password_needs_the_current_password(client):
    """A wrong current password gets the UIA 401 with M_FORBIDDEN, and the password stays unchanged."""
    user = await client.register()
    response = await client.with_password_uia(
        "POST", "account/password", {"new_password": NEW_PASSWORD}, user, password="wrong"
    )
    assert response.code == 401
    assert response.json["errcode"] == "M_FORBIDDEN"
    assert (await client.login(user["user_id"])).code == 200
    assert (await client.login(user["user_id"], password=NEW_PASSWORD)).code == 403


@pytest_twisted.ensureDeferred
async def test_change_password_cannot_prove_another_user(client):
    """Answering the password stage with another account's (correct) credentials is 403 M_FORBIDDEN and changes nothing."""
    user = await client.register()
    other = await client.register()
    first = await client.request(
        "POST", "account/password", {"new_password": NEW_PASSWORD}, token=user["access_token"]
    )
    auth = password_auth(other["user_id"], first.json["session"])
    response = await client.request(
        "POST", "account/password", {"new_password": NEW_PASSWORD, "auth": auth},
        token=user["access_token"],
    )
    assert (response.code, response.json["errcode"]) == (403, "M_FORBIDDEN"), response
    assert (await client.login(user["user_id"])).code == 200
    assert (await client.login(other["user_id"])).code == 200


@pytest_twisted.ensureDeferred
async def test_change_password_refuses_bad_new_passwords(client):
    """A missing, empty, non-string or over-long new_password is a 400 before any UIA."""
    user = await client.register()
    for body, errcode in (
        ({}, "M_MISSING_PARAM"),
        ({"new_password": ""}, "M_MISSING_PARAM"),
        ({"new_password": 42}, "M_BAD_JSON"),
        ({"new_password": "x" * 513}, "M_INVALID_PARAM"),
        ({"new_password": NEW_PASSWORD, "logout_devices": "yes"}, "M_BAD_JSON"),
    ):
        response = await client.request(
            "POST", "account/password", body, token=user["access_token"], validate=False
        )
        assert response.code == 400, (body, response)
        assert response.json["errcode"] == errcode, (body, response)


@pytest_twisted.ensureDeferred
async def test_guests_cannot_change_password_or_deactivate(client):
    """A guest gets 403 M_GUEST_ACCESS_FORBIDDEN from /account/password and /account/deactivate."""
    guest = await client.register_guest()
    for path, body in (("account/password", {"new_password": NEW_PASSWORD}), ("account/deactivate", {})):
        response = await client.request("POST", path, body, token=guest["access_token"])
        assert response.code == 403, response
        assert response.json["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"


@pytest_twisted.ensureDeferred
async def test_deactivate(client):
    """After POST /account/deactivate every token of the account is 401 and login answers 403 M_USER_DEACTIVATED."""
    user = await client.register()
    other = (await client.login(user["user_id"], refresh_token=True)).json
    response = await client.with_password_uia("POST", "account/deactivate", {"erase": True}, user)
    assert response.code == 200, response
    assert response.json == {"id_server_unbind_result": "success"}
    for token in (user["access_token"], other["access_token"]):
        after = await _whoami(client, token)
        assert (after.code, after.json["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    refresh = await client.request("POST", "refresh", {"refresh_token": other["refresh_token"]})
    assert refresh.code == 401
    login = await client.login(user["user_id"])
    assert login.code == 403
    assert login.json["errcode"] == "M_USER_DEACTIVATED"


@pytest_twisted.ensureDeferred
async def test_deactivate_needs_the_password(client):
    """Deactivation with a wrong password gets the UIA 401 and leaves the account usable."""
    user = await client.register()
    response = await client.with_password_uia("POST", "account/deactivate", {}, user, password="wrong")
    assert response.code == 401
    assert response.json["errcode"] == "M_FORBIDDEN"
    assert (await _whoami(client, user["access_token"])).code == 200
    assert (await client.login(user["user_id"])).code == 200


@pytest_twisted.ensureDeferred
async def test_deactivate_refuses_a_non_boolean_erase(client):
    """'erase' must be a boolean: anything else is a 400 and the account stays."""
    user = await client.register()
    response = await client.request(
        "POST", "account/deactivate", {"erase": "please"}, token=user["access_token"], validate=False
    )
    assert response.code == 400
    assert response.json["errcode"] == "M_BAD_JSON"
    assert (await _whoami(client, user["access_token"])).code == 200


@pytest_twisted.ensureDeferred
async def test_third_party_ids_are_an_empty_list(client):
    """GET /account/3pid answers an empty list (no email or phone is ever bound), and needs a token."""
    user = await client.register()
    response = await client.request("GET", "account/3pid", token=user["access_token"])
    assert (response.code, response.json) == (200, {"threepids": []})
    assert (await client.request("GET", "account/3pid")).code == 401


@pytest_twisted.ensureDeferred
async def test_change_password_to_and_from_non_ascii(client):
    """A non-ASCII new password works at login, and proves the user in the next change's password stage."""
    user = await client.register()
    accented = "n\u00f6uv\u00eau mot de p\u00e4sse \u5bc6\u7801 \U0001f511"
    response = await client.with_password_uia("POST", "account/password", {"new_password": accented}, user)
    assert response.code == 200, response
    assert (await client.login(user["user_id"], password=accented)).code == 200
    assert (await client.login(user["user_id"])).code == 403
    again = await client.with_password_uia(
        "POST", "account/password", {"new_password": NEW_PASSWORD}, user, password=accented
    )
    assert again.code == 200, again
    assert (await client.login(user["user_id"], password=NEW_PASSWORD)).code == 200


@pytest_twisted.ensureDeferred
async def test_new_password_with_a_lone_surrogate_is_400(client):
    """A new password holding a lone surrogate is 400 M_BAD_JSON naming new_password; the old one still works."""
    user = await client.register()
    response = await client.request(
        "POST", "account/password", {"new_password": "bad\ud800pass"}, token=user["access_token"]
    )
    assert (response.code, response.json["errcode"]) == (400, "M_BAD_JSON"), response
    assert "new_password" in response.json["error"]
    assert (await client.login(user["user_id"])).code == 200


@pytest_twisted.ensureDeferred
async def test_deactivate_with_a_wrong_password_keeps_the_account(client):
    """A wrong password answers the UIA 401 with M_FORBIDDEN and the session; the account stays until the right password comes."""
    user = await client.register()
    token = user["access_token"]
    first = await client.request("POST", "account/deactivate", {}, token=token)
    assert first.code == 401, first
    session = first.json["session"]
    wrong = await client.request(
        "POST", "account/deactivate", {"auth": password_auth(user["user_id"], session, "wrong")},
        token=token,
    )
    assert (wrong.code, wrong.json["errcode"]) == (401, "M_FORBIDDEN"), wrong
    assert wrong.json["session"] == session
    assert wrong.json["flows"] == [{"stages": ["m.login.password"]}]
    assert wrong.json["completed"] == []
    assert (await _whoami(client, token)).code == 200
    assert (await client.login(user["user_id"])).code == 200
    right = await client.request(
        "POST", "account/deactivate", {"auth": password_auth(user["user_id"], session)}, token=token
    )
    assert right.code == 200, right
    assert (await client.login(user["user_id"])).json["errcode"] == "M_USER_DEACTIVATED"
