"""Device management (list, read, rename, delete with UIA), through the real daemon."""
import time

import pytest_twisted
from conftest import password_auth


async def _user_with_two_devices(client):
    """Register (device "first") and log in again (device "second"); return both login bodies."""
    first = await client.register(initial_device_display_name="first")
    second = await client.login(first["user_id"], initial_device_display_name="second")
    assert second.code == 200, second
    return first, second.json


@pytest_twisted.ensureDeferred
async def test_list_devices_shows_every_login_with_its_name(client):
    """GET /devices lists each device the user logged in with, with its display name."""
    first, second = await _user_with_two_devices(client)
    response = await client.request("GET", "devices", token=second["access_token"])
    assert response.code == 200
    names = {d["device_id"]: d.get("display_name") for d in response.json["devices"]}
    assert names == {first["device_id"]: "first", second["device_id"]: "second"}


@pytest_twisted.ensureDeferred
async def test_devices_of_other_users_are_not_listed_or_readable(client):
    """A user sees neither another user's devices in the list nor by id (404 M_NOT_FOUND)."""
    alice = await client.register()
    bob = await client.register()
    listed = await client.request("GET", "devices", token=alice["access_token"])
    assert [d["device_id"] for d in listed.json["devices"]] == [alice["device_id"]]
    response = await client.request("GET", f"devices/{bob['device_id']}", token=alice["access_token"])
    assert response.code == 404
    assert response.json["errcode"] == "M_NOT_FOUND"


@pytest_twisted.ensureDeferred
async def test_get_unknown_device_is_404(client):
    """GET /devices/{deviceId} for a device the user does not have answers 404 M_NOT_FOUND."""
    user = await client.register()
    response = await client.request("GET", "devices/NOSUCHDEVICE", token=user["access_token"])
    assert response.code == 404
    assert response.json["errcode"] == "M_NOT_FOUND"


@pytest_twisted.ensureDeferred
async def test_rename_device(client):
    """PUT /devices/{deviceId} renames the device; a body without display_name leaves it."""
    first, second = await _user_with_two_devices(client)
    path = f"devices/{first['device_id']}"
    response = await client.request("PUT", path, {"display_name": "my laptop"}, token=second["access_token"])
    assert response.code == 200 and response.json == {}
    assert (await client.request("PUT", path, {}, token=second["access_token"])).code == 200
    device = await client.request("GET", path, token=second["access_token"])
    assert device.code == 200
    assert device.json["device_id"] == first["device_id"]
    assert device.json["display_name"] == "my laptop"


@pytest_twisted.ensureDeferred
async def test_rename_unknown_device_is_404(client):
    """PUT /devices/{deviceId} on a device the user does not have answers 404 and creates none."""
    user = await client.register()
    response = await client.request(
        "PUT", "devices/NOSUCHDEVICE", {"display_name": "x"}, token=user["access_token"]
    )
    assert response.code == 404
    assert response.json["errcode"] == "M_NOT_FOUND"
    listed = await client.request("GET", "devices", token=user["access_token"])
    assert [d["device_id"] for d in listed.json["devices"]] == [user["device_id"]]


@pytest_twisted.ensureDeferred
async def test_rename_with_a_bad_display_name_is_400(client):
    """A non-string or over-long display name is refused with 400."""
    user = await client.register()
    path = f"devices/{user['device_id']}"
    wrong_type = await client.request(
        "PUT", path, {"display_name": 5}, token=user["access_token"], validate=False
    )
    assert wrong_type.code == 400 and wrong_type.json["errcode"] == "M_BAD_JSON"
    too_long = await client.request("PUT", path, {"display_name": "x" * 101}, token=user["access_token"])
    assert too_long.code == 400 and too_long.json["errcode"] == "M_TOO_LARGE"


@pytest_twisted.ensureDeferred
async def test_delete_device_requires_password_then_revokes_its_token(client):
    """DELETE /devices/{deviceId} first answers 401 with the password flow, then deletes the device and its token stops working."""
    first, second = await _user_with_two_devices(client)
    path = f"devices/{second['device_id']}"
    challenge = await client.request("DELETE", path, {}, token=first["access_token"])
    assert challenge.code == 401
    assert challenge.json["flows"] == [{"stages": ["m.login.password"]}]
    session = challenge.json["session"]
    wrong = await client.request(
        "DELETE", path, {"auth": password_auth(first["user_id"], session, "wrong password")},
        token=first["access_token"],
    )
    assert wrong.code == 401 and wrong.json["errcode"] == "M_FORBIDDEN"
    assert (await client.request("GET", "devices", token=second["access_token"])).code == 200
    done = await client.request(
        "DELETE", path, {"auth": password_auth(first["user_id"], session)}, token=first["access_token"]
    )
    assert done.code == 200 and done.json == {}
    revoked = await client.request("GET", "devices", token=second["access_token"])
    assert revoked.code == 401
    assert revoked.json["errcode"] == "M_UNKNOWN_TOKEN"
    listed = await client.request("GET", "devices", token=first["access_token"])
    assert [d["device_id"] for d in listed.json["devices"]] == [first["device_id"]]


@pytest_twisted.ensureDeferred
async def test_delete_device_without_a_body_starts_uia(client):
    """DELETE /devices/{deviceId} with no body at all (older clients) answers the 401 UIA challenge."""
    user = await client.register()
    response = await client.request("DELETE", f"devices/{user['device_id']}", token=user["access_token"])
    assert response.code == 401
    assert response.json["flows"] == [{"stages": ["m.login.password"]}]
    assert (await client.request("GET", "devices", token=user["access_token"])).code == 200


@pytest_twisted.ensureDeferred
async def test_delete_unknown_device_succeeds_after_auth(client):
    """Deleting a device the user does not have answers 200 once authenticated ("had been removed previously")."""
    user = await client.register()
    other = await client.register()
    path = f"devices/{other['device_id']}"
    challenge = await client.request("DELETE", path, {}, token=user["access_token"])
    assert challenge.code == 401
    done = await client.request(
        "DELETE", path, {"auth": password_auth(user["user_id"], challenge.json["session"])},
        token=user["access_token"],
    )
    assert done.code == 200
    # The other user's device is untouched.
    assert (await client.request("GET", "devices", token=other["access_token"])).code == 200


@pytest_twisted.ensureDeferred
async def test_bulk_delete_devices(client):
    """POST /delete_devices deletes the listed devices after password UIA and revokes their tokens."""
    keep = await client.register()
    doomed = [await client.login(keep["user_id"]) for _ in range(2)]
    assert all(r.code == 200 for r in doomed)
    ids = [r.json["device_id"] for r in doomed]
    done = await client.with_password_uia("POST", "delete_devices", {"devices": ids}, keep)
    assert done.code == 200 and done.json == {}
    for login in doomed:
        revoked = await client.request("GET", "devices", token=login.json["access_token"])
        assert revoked.code == 401 and revoked.json["errcode"] == "M_UNKNOWN_TOKEN"
    listed = await client.request("GET", "devices", token=keep["access_token"])
    assert [d["device_id"] for d in listed.json["devices"]] == [keep["device_id"]]


@pytest_twisted.ensureDeferred
async def test_bulk_delete_needs_a_list_of_device_ids(client):
    """POST /delete_devices without a "devices" list of strings answers 400."""
    user = await client.register()
    missing = await client.request("POST", "delete_devices", {}, token=user["access_token"], validate=False)
    assert missing.code == 400 and missing.json["errcode"] == "M_MISSING_PARAM"
    bad = await client.request("POST", "delete_devices", {"devices": [1]}, token=user["access_token"],
                               validate=False)
    assert bad.code == 400 and bad.json["errcode"] == "M_BAD_JSON"


@pytest_twisted.ensureDeferred
async def test_last_seen_reflects_the_latest_request(client):
    """A device's last_seen_ts is the time of its latest request and last_seen_ip the client's address, at once."""
    user = await client.register()
    started_ms = int(time.time() * 1000)
    response = await client.request("GET", f"devices/{user['device_id']}", token=user["access_token"])
    finished_ms = int(time.time() * 1000)
    assert response.code == 200
    assert started_ms <= response.json["last_seen_ts"] <= finished_ms
    assert response.json["last_seen_ip"] == "127.0.0.1"
    listed = await client.request("GET", "devices", token=user["access_token"])
    (device,) = listed.json["devices"]
    assert device["last_seen_ts"] >= started_ms
    assert device["last_seen_ip"] == "127.0.0.1"


@pytest_twisted.ensureDeferred
async def test_device_endpoints_need_a_token(client):
    """The device endpoints answer 401 M_MISSING_TOKEN without an access token."""
    for method, path, body in [("GET", "devices", None), ("GET", "devices/X", None),
                               ("PUT", "devices/X", {}), ("DELETE", "devices/X", {}),
                               ("POST", "delete_devices", {"devices": []})]:
        # The spec documents only the UIA 401 for the deletions, not this one.
        response = await client.request(method, path, body, validate=method == "GET" or method == "PUT")
        assert response.code == 401, (method, path, response)
        assert response.json["errcode"] == "M_MISSING_TOKEN"


@pytest_twisted.ensureDeferred
async def test_guest_may_list_and_rename_but_not_delete_devices(client):
    """A guest may list, read and rename its devices but not delete them (403 M_GUEST_ACCESS_FORBIDDEN)."""
    guest = await client.register_guest()
    token = guest["access_token"]
    path = f"devices/{guest['device_id']}"
    assert (await client.request("GET", "devices", token=token)).code == 200
    assert (await client.request("PUT", path, {"display_name": "guest phone"}, token=token)).code == 200
    device = await client.request("GET", path, token=token)
    assert device.code == 200 and device.json["display_name"] == "guest phone"
    for method, target, body in [("DELETE", path, {}), ("POST", "delete_devices", {"devices": []})]:
        refused = await client.request(method, target, body, token=token)
        assert refused.code == 403, refused
        assert refused.json["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"


@pytest_twisted.ensureDeferred
async def test_rename_to_an_unstorable_name_is_400(client):
    """A display name holding NUL or a lone surrogate is refused with 400 M_INVALID_PARAM, not a 500, and the name stays."""
    user = await client.register(initial_device_display_name="phone")
    path = f"devices/{user['device_id']}"
    for name in ("ph\x00one", "ph\ud800one"):
        response = await client.request("PUT", path, {"display_name": name}, token=user["access_token"])
        assert (response.code, response.json["errcode"]) == (400, "M_INVALID_PARAM"), (name, response)
    device = await client.request("GET", path, token=user["access_token"])
    assert device.json["display_name"] == "phone"
