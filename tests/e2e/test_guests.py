"""Guest registration and the upgrade of a guest to a full account, through the real daemon."""
import pytest_twisted
from conftest import PASSWORD, unique_localpart


def localpart_of(user_id: str) -> str:
    return user_id[1:].split(":")[0]


async def upgrade(client, guest, username, **extra):
    """Upgrade through the UIA dummy flow; return the final response."""
    body = {
        "username": username, "password": PASSWORD,
        "guest_access_token": guest["access_token"], **extra,
    }
    first = await client.request("POST", "register", body)
    if first.code != 401:
        return first
    body["auth"] = {"type": "m.login.dummy", "session": first.json["session"]}
    return await client.request("POST", "register", body)


@pytest_twisted.ensureDeferred
async def test_guest_registration_needs_no_uia(client):
    """kind=guest answers at once with a numeric guest id, a device and a token."""
    guest = await client.register_guest()
    assert guest["user_id"].endswith(":test.local")
    assert localpart_of(guest["user_id"]).isdigit()
    assert guest["device_id"] and guest["access_token"]
    other = await client.register_guest()
    assert other["user_id"] != guest["user_id"]


@pytest_twisted.ensureDeferred
async def test_guest_token_is_limited_to_the_allow_list(client):
    """A guest's token is refused with 403 M_GUEST_ACCESS_FORBIDDEN off the guest allow-list."""
    guest = await client.register_guest()
    response = await client.request("GET", "capabilities", token=guest["access_token"])
    assert (response.code, response.json["errcode"]) == (403, "M_GUEST_ACCESS_FORBIDDEN")


@pytest_twisted.ensureDeferred
async def test_guest_registration_ignores_other_parameters(client):
    """A guest registration ignores username, device_id and refresh_token, as the spec requires."""
    guest = await client.register_guest({
        "username": unique_localpart(), "device_id": "GUESTDEV", "refresh_token": True,
        "initial_device_display_name": "Guest phone",
    })
    assert localpart_of(guest["user_id"]).isdigit()
    assert guest["device_id"] != "GUESTDEV"
    assert "refresh_token" not in guest


@pytest_twisted.ensureDeferred
async def test_guests_disabled(start_homeserver, make_client):
    """With guests disabled (the default), kind=guest answers 403 M_GUEST_ACCESS_FORBIDDEN."""
    client = make_client(start_homeserver(""))
    response = await client.request("POST", "register", {}, query={"kind": "guest"})
    assert (response.code, response.json["errcode"]) == (403, "M_GUEST_ACCESS_FORBIDDEN")


@pytest_twisted.ensureDeferred
async def test_guest_upgrade_keeps_the_user_id(client):
    """A guest registering its own localpart with its token becomes a full account with the same id."""
    guest = await client.register_guest()
    response = await upgrade(client, guest, localpart_of(guest["user_id"]))
    assert response.code == 200, response
    assert response.json["user_id"] == guest["user_id"]
    assert response.json["access_token"] != guest["access_token"]
    capabilities = await client.request("GET", "capabilities", token=response.json["access_token"])
    assert capabilities.code == 200
    login = await client.login(guest["user_id"])
    assert login.code == 200, login
    assert login.json["user_id"] == guest["user_id"]


@pytest_twisted.ensureDeferred
async def test_guest_upgrade_goes_through_uia(client):
    """A guest upgrade, like any registration, first answers the UIA 401."""
    guest = await client.register_guest()
    response = await client.request("POST", "register", {
        "username": localpart_of(guest["user_id"]), "password": PASSWORD,
        "guest_access_token": guest["access_token"],
    })
    assert response.code == 401
    assert {"stages": ["m.login.dummy"]} in response.json["flows"]


@pytest_twisted.ensureDeferred
async def test_guest_upgrade_revokes_the_guest_token(client):
    """After an upgrade the old guest token is dead, so it can neither act nor upgrade again."""
    guest = await client.register_guest()
    assert (await upgrade(client, guest, localpart_of(guest["user_id"]))).code == 200
    whoami = await client.request("GET", "account/whoami", token=guest["access_token"])
    assert (whoami.code, whoami.json["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    response = await upgrade(client, guest, localpart_of(guest["user_id"]))
    assert (response.code, response.json["errcode"]) == (403, "M_FORBIDDEN")


@pytest_twisted.ensureDeferred
async def test_guest_upgrade_to_another_username_is_forbidden(client):
    """A guest token with a username other than the guest's own answers 403 M_FORBIDDEN."""
    guest = await client.register_guest()
    other = await client.register_guest()
    for username in [localpart_of(other["user_id"]), unique_localpart()]:
        response = await upgrade(client, guest, username)
        assert (response.code, response.json["errcode"]) == (403, "M_FORBIDDEN"), username


@pytest_twisted.ensureDeferred
async def test_guest_upgrade_needs_a_guest_token(client):
    """A full account's token, or an invalid one, cannot upgrade anything: 403 M_FORBIDDEN."""
    localpart = unique_localpart()
    user = await client.register(localpart)
    for token in [user["access_token"], "not-a-token"]:
        response = await upgrade(client, {"access_token": token}, localpart)
        assert (response.code, response.json["errcode"]) == (403, "M_FORBIDDEN"), token


@pytest_twisted.ensureDeferred
async def test_guest_upgrade_needs_the_username(client):
    """An upgrade without the guest's username answers 400 M_MISSING_PARAM."""
    guest = await client.register_guest()
    response = await client.request("POST", "register", {
        "password": PASSWORD, "guest_access_token": guest["access_token"],
    })
    assert (response.code, response.json["errcode"]) == (400, "M_MISSING_PARAM")
