"""
The user admin API through the real daemon, as an admin UI's user pages
use it (synapse-admin, Ketesa), in the shapes Synapse documents.
"""
import json
from urllib.parse import quote

import pytest
import pytest_twisted
from admin_helpers import ADMIN, assert_shape, register_admin
from conftest import PASSWORD, unique_localpart
from room_helpers import create_room, join, ok, send_text

SERVER = "test.local"

#: A user of C{GET /v2/users} (Synapse's "List Accounts").
LISTED_USER = {"name": str, "is_guest": bool, "admin": bool, "user_type": (str, type(None)),
               "deactivated": bool, "erased": bool, "shadow_banned": bool, "displayname": (str, type(None)),
               "avatar_url": (str, type(None)), "creation_ts": int, "last_seen_ts": (int, type(None)),
               "locked": bool, "approved": bool}
#: C{GET /v2/users/<user_id>} (Synapse's "Query User Account").
USER_DETAILS = {**LISTED_USER, "suspended": bool, "threepids": [dict], "external_ids": [dict],
                "appservice_id": type(None), "consent_version": type(None)}
#: A sync filter whose timelines hold every event of these short tests' rooms.
WHOLE_TIMELINE = json.dumps({"room": {"timeline": {"limit": 100}}})
DEVICE = {"device_id": str, "display_name?": str, "last_seen_ip?": str, "last_seen_ts?": int,
          "last_seen_user_agent": (str, type(None)), "user_id": str, "dehydrated": bool}


def user_path(user_id: str, version: str = "v2", suffix: str = "") -> str:
    return f"{ADMIN}/{version}/users/{quote(user_id)}{suffix}"


async def admin_ok(client, admin: dict, method: str, path: str, body=None, *, code: int = 200, **kwargs):
    """An admin request that must answer C{code}; its JSON body."""
    response = await client.request(method, path, body, token=admin["access_token"], **kwargs)
    assert response.code == code, response
    return response.json


async def put_user(client, by: dict, localpart: str, **body) -> dict:
    """A new account made by the admin C{by} with C{PUT /v2/users} (201); its record."""
    return await admin_ok(client, by, "PUT", user_path(f"@{localpart}:{SERVER}"),
                          {"password": PASSWORD, **body}, code=201)


async def login_response(client, localpart: str, password: str = PASSWORD) -> dict:
    response = await client.login(localpart, password)
    assert response.code == 200, response
    return response.json


@pytest_twisted.ensureDeferred
async def test_create_with_put_then_log_in_and_modify(client):
    """An admin creates an account (201), the user logs in with its password, the admin renames them (200)."""
    admin = await register_admin(client)
    localpart = unique_localpart("made")
    created = await put_user(client, admin, localpart, displayname="Made By Admin", user_type="bot")
    assert_shape(created, USER_DETAILS)
    assert (created["name"], created["displayname"], created["user_type"], created["admin"]) == \
        (f"@{localpart}:{SERVER}", "Made By Admin", "bot", False)
    # Synapse's record gives creation_ts in seconds (its list, in milliseconds).
    listed = await admin_ok(client, admin, "GET", f"{ADMIN}/v2/users", query={"name": localpart})
    assert listed["users"][0]["creation_ts"] // 1000 == created["creation_ts"]

    user = await login_response(client, localpart)
    modified = await admin_ok(client, admin, "PUT", user_path(user["user_id"]),
                              {"displayname": "Renamed", "user_type": None, "threepids": [], "id": "ignored"})
    assert (modified["displayname"], modified["user_type"]) == ("Renamed", None)
    profile = await ok(client, "GET", f"profile/{quote(user['user_id'])}", user=user)
    assert profile["displayname"] == "Renamed"


@pytest_twisted.ensureDeferred
async def test_put_refuses_bad_input(client):
    """Bad bodies and ids get 4xx Matrix errors, and nothing is created."""
    admin = await register_admin(client)
    localpart = unique_localpart("bad")
    path = user_path(f"@{localpart}:{SERVER}")
    for body, errcode in [({"admin": "yes"}, "M_BAD_JSON"), ({"user_type": "robot"}, "M_INVALID_PARAM"),
                          ({"threepids": [{"medium": "email", "address": "a@b.c"}]}, "M_INVALID_PARAM"),
                          ({"avatar_url": "https://example.org/a.png"}, "M_INVALID_PARAM"),
                          ({"deactivated": True, "locked": True}, "M_INVALID_PARAM")]:
        refused = await client.request("PUT", path, body, token=admin["access_token"])
        assert (refused.code, refused.json["errcode"]) == (400, errcode), (body, refused)
    missing = await client.request("GET", path, token=admin["access_token"])
    assert (missing.code, missing.json["errcode"], missing.json["error"]) == (404, "M_NOT_FOUND", "User not found")
    remote = await client.request("PUT", user_path("@someone:elsewhere.example"), {},
                                  token=admin["access_token"])
    assert remote.code == 400, remote
    invalid = await client.request("PUT", user_path(f"@Upper{localpart}:{SERVER}"), {},
                                   token=admin["access_token"])
    assert (invalid.code, invalid.json["errcode"]) == (400, "M_INVALID_USERNAME")


@pytest_twisted.ensureDeferred
async def test_list_pages_searches_orders_and_filters(client):
    """The list page: paging with next_token, search by name and display name, ordering, filters."""
    admin = await register_admin(client)
    prefix = unique_localpart("page")
    names = [f"@{prefix}n{index}:{SERVER}" for index in range(5)]
    for index, name in enumerate(names):
        await put_user(client, admin, name[1:].split(":")[0], displayname=f"Member {index}",
                       admin=index == 4)

    seen, start, pages = [], "0", 0
    while start is not None:
        page = await admin_ok(client, admin, "GET", f"{ADMIN}/v2/users",
                              query={"name": prefix, "limit": "2", "from": start})
        assert_shape(page, {"users": [LISTED_USER], "total": int, "next_token?": str})
        assert page["total"] == 5
        seen += [user["name"] for user in page["users"]]
        start, pages = page.get("next_token"), pages + 1
    assert (seen, pages) == (names, 3)

    backwards = await admin_ok(client, admin, "GET", f"{ADMIN}/v2/users",
                               query={"name": prefix, "order_by": "displayname", "dir": "b"})
    assert [user["name"] for user in backwards["users"]] == names[::-1]
    admins = await admin_ok(client, admin, "GET", f"{ADMIN}/v2/users", query={"name": prefix, "admins": "true"})
    assert [user["name"] for user in admins["users"]] == [names[4]]
    by_display = await admin_ok(client, admin, "GET", f"{ADMIN}/v2/users", query={"name": "MEMBER 3"})
    assert names[3] in [user["name"] for user in by_display["users"]]

    await admin_ok(client, admin, "PUT", user_path(names[0]), {"deactivated": True})
    active = await admin_ok(client, admin, "GET", f"{ADMIN}/v2/users", query={"name": prefix})
    assert names[0] not in [user["name"] for user in active["users"]] and active["total"] == 4
    everyone = await admin_ok(client, admin, "GET", f"{ADMIN}/v2/users",
                              query={"name": prefix, "deactivated": "true"})
    assert everyone["total"] == 5 and everyone["users"][0]["deactivated"] is True

    guest = await client.register_guest()
    query = {"user_id": guest["user_id"]}
    assert (await admin_ok(client, admin, "GET", f"{ADMIN}/v2/users", query=query))["users"][0]["is_guest"]
    no_guests = await admin_ok(client, admin, "GET", f"{ADMIN}/v2/users", query={**query, "guests": "false"})
    assert no_guests["total"] == 0

    for query in [{"order_by": "password"}, {"dir": "sideways"}, {"from": "-1"}, {"admins": "maybe"}]:
        refused = await client.request("GET", f"{ADMIN}/v2/users", query=query, token=admin["access_token"])
        assert (refused.code, refused.json["errcode"]) == (400, "M_INVALID_PARAM"), query


@pytest_twisted.ensureDeferred
async def test_admin_flag_and_no_self_demotion(client):
    """Making a user admin lets them use the admin API; an admin cannot remove their own flag."""
    admin = await register_admin(client)
    user = await client.register()
    flag_path = user_path(user["user_id"], "v1", "/admin")
    assert await admin_ok(client, admin, "GET", flag_path) == {"admin": False}
    assert await admin_ok(client, admin, "PUT", flag_path, {"admin": True}) == {}
    assert await admin_ok(client, admin, "GET", flag_path) == {"admin": True}
    assert (await admin_ok(client, user, "GET", user_path(admin["user_id"])))["admin"] is True

    own = await client.request("PUT", user_path(user["user_id"], "v1", "/admin"), {"admin": False},
                               token=user["access_token"])
    assert own.code == 400, own
    own_put = await client.request("PUT", user_path(user["user_id"]), {"admin": False},
                                   token=user["access_token"])
    assert own_put.code == 400, own_put
    await admin_ok(client, admin, "PUT", flag_path, {"admin": False})
    refused = await client.request("GET", user_path(admin["user_id"]), token=user["access_token"])
    assert refused.code == 403, refused


@pytest_twisted.ensureDeferred
async def test_deactivate_with_erase_leaves_rooms_and_stops_logins(client):
    """Deactivation (as the UI's delete does it, with erase): no more login, rooms left, marked erased."""
    admin = await register_admin(client)
    owner = await client.register()
    user = await client.register()
    room_id = await create_room(client, owner, preset="public_chat")
    await join(client, user, room_id)

    done = await admin_ok(client, admin, "POST", f"{ADMIN}/v1/deactivate/{quote(user['user_id'])}",
                          {"erase": True})
    assert done == {"id_server_unbind_result": "success"}
    login = await client.login(user["user_id"])
    assert (login.code, login.json["errcode"]) == (403, "M_USER_DEACTIVATED")
    whoami = await client.request("GET", "account/whoami", token=user["access_token"])
    assert whoami.code == 401, whoami
    member = await ok(client, "GET", f"rooms/{quote(room_id)}/state/m.room.member/{quote(user['user_id'])}",
                      user=owner)
    assert member["membership"] == "leave"
    record = await admin_ok(client, admin, "GET", user_path(user["user_id"]))
    assert (record["deactivated"], record["erased"]) == (True, True)
    assert (await admin_ok(client, admin, "GET", user_path(user["user_id"], "v1", "/joined_rooms"))) == \
        {"joined_rooms": [], "total": 0}


@pytest_twisted.ensureDeferred
async def test_reactivate_with_a_new_password(client):
    """A deactivated account comes back with PUT deactivated=false and a password."""
    admin = await register_admin(client)
    user = await client.register()
    await admin_ok(client, admin, "POST", f"{ADMIN}/v1/deactivate/{quote(user['user_id'])}", {})
    back = await admin_ok(client, admin, "PUT", user_path(user["user_id"]),
                          {"deactivated": False, "password": "a new one"})
    assert back["deactivated"] is False and back["erased"] is False
    assert (await client.login(user["user_id"], "a new one")).code == 200


@pytest_twisted.ensureDeferred
async def test_reset_password_logs_out_and_new_password_works(client):
    admin = await register_admin(client)
    user = await client.register()
    path = f"{ADMIN}/v1/reset_password/{quote(user['user_id'])}"
    assert await admin_ok(client, admin, "POST", path, {"new_password": "reset by admin"}) == {}
    whoami = await client.request("GET", "account/whoami", token=user["access_token"])
    assert (whoami.code, whoami.json["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    assert (await client.login(user["user_id"])).code == 403
    again = await login_response(client, user["user_id"], "reset by admin")

    kept = await admin_ok(client, admin, "POST", path, {"new_password": "third", "logout_devices": False})
    assert kept == {}
    assert (await client.request("GET", "account/whoami", token=again["access_token"])).code == 200
    empty = await client.request("POST", path, {"new_password": ""}, token=admin["access_token"])
    assert (empty.code, empty.json["errcode"]) == (400, "M_MISSING_PARAM")


@pytest_twisted.ensureDeferred
async def test_devices_list_rename_and_delete_revoke_tokens(client):
    """The devices tab: list, show, rename, delete one and several; a deleted device's token gets 401."""
    admin = await register_admin(client)
    user = await client.register()
    second = await login_response(client, user["user_id"])
    third = await login_response(client, user["user_id"])
    devices_path = user_path(user["user_id"], suffix="/devices")

    listed = await admin_ok(client, admin, "GET", devices_path)
    assert_shape(listed, {"devices": [DEVICE], "total": int})
    assert listed["total"] == 3
    assert {device["device_id"] for device in listed["devices"]} == \
        {user["device_id"], second["device_id"], third["device_id"]}

    one_path = f"{devices_path}/{quote(second['device_id'])}"
    assert await admin_ok(client, admin, "PUT", one_path, {"display_name": "Named by admin"}) == {}
    shown = await admin_ok(client, admin, "GET", one_path)
    assert_shape(shown, DEVICE)
    assert shown["display_name"] == "Named by admin"
    own_view = await ok(client, "GET", f"devices/{quote(second['device_id'])}", user=user)
    assert own_view["display_name"] == "Named by admin"

    assert await admin_ok(client, admin, "DELETE", one_path) == {}
    assert (await client.request("GET", "account/whoami", token=second["access_token"])).code == 401
    assert (await client.request("GET", one_path, token=admin["access_token"])).code == 404
    await admin_ok(client, admin, "POST", user_path(user["user_id"], suffix="/delete_devices"),
                   {"devices": [third["device_id"], "NO_SUCH_DEVICE"]})
    assert (await client.request("GET", "account/whoami", token=third["access_token"])).code == 401
    assert (await client.request("GET", "account/whoami", token=user["access_token"])).code == 200
    assert (await admin_ok(client, admin, "GET", devices_path))["total"] == 1


@pytest_twisted.ensureDeferred
async def test_whois_and_joined_rooms(client):
    admin = await register_admin(client)
    user = await client.register()
    rooms = sorted([await create_room(client, user), await create_room(client, user)])
    joined = await admin_ok(client, admin, "GET", user_path(user["user_id"], "v1", "/joined_rooms"))
    assert joined == {"joined_rooms": rooms, "total": 2}

    whois = await admin_ok(client, admin, "GET", f"{ADMIN}/v1/whois/{quote(user['user_id'])}")
    assert_shape(whois, {"user_id": str, "devices": {"": {"sessions": [{"connections": [
        {"ip": str, "last_seen": int, "user_agent": (str, type(None))}]}]}}})
    assert whois["user_id"] == user["user_id"]
    assert whois["devices"][""]["sessions"][0]["connections"][0]["ip"] == "127.0.0.1"


@pytest_twisted.ensureDeferred
async def test_shadow_banned_sends_seem_to_succeed_but_reach_nobody(client):
    """A shadow-banned member's message, state and invite answer 200 but no other member ever sees them."""
    admin = await register_admin(client)
    owner = await client.register()
    banned = await client.register()
    invitee = await client.register()
    room_id = await create_room(client, owner, preset="public_chat")
    await join(client, banned, room_id)
    ban_path = user_path(banned["user_id"], "v1", "/shadow_ban")
    assert await admin_ok(client, admin, "POST", ban_path) == {}
    assert (await admin_ok(client, admin, "GET", user_path(banned["user_id"])))["shadow_banned"] is True

    hidden = await send_text(client, banned, room_id, "nobody reads this", "shadow1")
    assert hidden.startswith("$") and len(hidden) == 44
    state = await ok(client, "PUT", f"rooms/{quote(room_id)}/state/m.room.topic", {"topic": "hijacked"},
                     user=banned)
    assert state["event_id"].startswith("$")
    await ok(client, "POST", f"rooms/{quote(room_id)}/invite", {"user_id": invitee["user_id"]}, user=banned)
    own_room = await create_room(client, banned, invite=[invitee["user_id"]])
    typing_path = f"rooms/{quote(room_id)}/typing/{quote(banned['user_id'])}"
    await ok(client, "PUT", typing_path, {"typing": True, "timeout": 60000}, user=banned)

    # Sent after them: once the owner sees this, anything sent before would have come too.
    marker = await send_text(client, owner, room_id, "after the banned sends", "marker")
    synced = await ok(client, "GET", "sync", user=owner, query={"filter": WHOLE_TIMELINE})
    timeline = [event["event_id"] for event in synced["rooms"]["join"][room_id]["timeline"]["events"]]
    assert marker in timeline and hidden not in timeline and state["event_id"] not in timeline
    assert banned["user_id"] not in typers(synced, room_id)
    fetched = await client.request("GET", f"rooms/{quote(room_id)}/event/{quote(hidden)}",
                                   token=owner["access_token"])
    assert fetched.code == 404, fetched
    topic = await client.request("GET", f"rooms/{quote(room_id)}/state/m.room.topic", token=owner["access_token"])
    assert topic.code == 404 or topic.json.get("topic") != "hijacked"
    invites = (await ok(client, "GET", "sync", user=invitee)).get("rooms", {}).get("invite", {})
    assert room_id not in invites and own_room not in invites

    assert await admin_ok(client, admin, "DELETE", ban_path) == {}
    seen = await send_text(client, banned, room_id, "heard again", "shadow2")
    assert (await client.request("GET", f"rooms/{quote(room_id)}/event/{quote(seen)}",
                                 token=owner["access_token"])).code == 200
    await ok(client, "PUT", typing_path, {"typing": True, "timeout": 60000}, user=banned)
    assert banned["user_id"] in typers(await ok(client, "GET", "sync", user=owner), room_id)


def typers(synced: dict, room_id: str) -> list[str]:
    """Who types in the room, as a sync shows it."""
    ephemeral = synced["rooms"]["join"][room_id].get("ephemeral", {}).get("events", [])
    return [user for event in ephemeral if event["type"] == "m.typing" for user in event["content"]["user_ids"]]


@pytest.fixture(scope="module")
def tight_homeserver(start_homeserver):
    """A daemon allowing 3 messages in a burst, then one per 100 seconds."""
    return start_homeserver("[rate_limits]\nmessage = { per_second = 0.01, burst_count = 3 }\n")


async def send_burst(client, user: dict, room_id: str, count: int, tag: str) -> list[int]:
    codes = []
    for index in range(count):
        response = await client.request("PUT", f"rooms/{quote(room_id)}/send/m.room.message/{tag}{index}",
                                        {"msgtype": "m.text", "body": str(index)}, token=user["access_token"])
        codes.append(response.code)
    return codes


@pytest_twisted.ensureDeferred
async def test_ratelimit_override_lifts_the_message_limit(tight_homeserver, make_client):
    """A user with an override of 0/0 sends past the limit; another user gets 429; deleting it restores the limit."""
    client = make_client(tight_homeserver)
    admin = await register_admin(client)
    fast = await client.register()
    slow = await client.register()
    room_id = await create_room(client, fast, preset="public_chat")
    await join(client, slow, room_id)
    override_path = user_path(fast["user_id"], "v1", "/override_ratelimit")
    assert await admin_ok(client, admin, "GET", override_path) == {}
    set_to = await admin_ok(client, admin, "POST", override_path, {"messages_per_second": 0, "burst_count": 0})
    assert set_to == {"messages_per_second": 0, "burst_count": 0}
    assert await admin_ok(client, admin, "GET", override_path) == set_to

    assert await send_burst(client, fast, room_id, 8, "fast") == [200] * 8
    assert await send_burst(client, slow, room_id, 4, "slow") == [200, 200, 200, 429]

    assert await admin_ok(client, admin, "DELETE", override_path) == {}
    assert await admin_ok(client, admin, "GET", override_path) == {}
    assert (await send_burst(client, fast, room_id, 4, "limited"))[-1] == 429
    bad = await client.request("POST", override_path, {"messages_per_second": -1}, token=admin["access_token"])
    assert (bad.code, bad.json["errcode"]) == (400, "M_INVALID_PARAM")


@pytest_twisted.ensureDeferred
async def test_non_admin_gets_403_on_every_family(client):
    user = await client.register()
    other = f"@{unique_localpart('target')}:{SERVER}"
    requests = [
        ("GET", f"{ADMIN}/v2/users", None), ("GET", user_path(other), None), ("PUT", user_path(other), {}),
        ("POST", f"{ADMIN}/v1/deactivate/{quote(other)}", {}),
        ("POST", f"{ADMIN}/v1/reset_password/{quote(other)}", {"new_password": "x"}),
        ("GET", user_path(other, "v1", "/admin"), None), ("PUT", user_path(other, "v1", "/admin"), {"admin": True}),
        ("GET", f"{ADMIN}/v1/whois/{quote(other)}", None),
        ("GET", user_path(other, "v1", "/joined_rooms"), None),
        ("GET", user_path(other, suffix="/devices"), None),
        ("DELETE", user_path(other, suffix="/devices/DEV"), None),
        ("POST", user_path(other, suffix="/delete_devices"), {"devices": []}),
        ("POST", user_path(other, "v1", "/shadow_ban"), None),
        ("POST", user_path(other, "v1", "/override_ratelimit"), {}),
    ]
    for method, path, body in requests:
        response = await client.request(method, path, body, token=user["access_token"])
        assert (response.code, response.json["errcode"]) == (403, "M_FORBIDDEN"), (method, path)


@pytest_twisted.ensureDeferred
async def test_lock_through_put_and_list_filter(client):
    """Locking with PUT stops the user's requests (401 M_USER_LOCKED); the list hides locked users unless asked."""
    admin = await register_admin(client)
    user = await client.register()
    locked = await admin_ok(client, admin, "PUT", user_path(user["user_id"]), {"locked": True})
    assert locked["locked"] is True
    refused = await client.request("GET", "account/whoami", token=user["access_token"])
    assert (refused.code, refused.json["errcode"]) == (401, "M_USER_LOCKED")
    query = {"user_id": user["user_id"]}
    assert (await admin_ok(client, admin, "GET", f"{ADMIN}/v2/users", query=query))["total"] == 0
    assert (await admin_ok(client, admin, "GET", f"{ADMIN}/v2/users", query={**query, "locked": "true"}))["total"] == 1
    await admin_ok(client, admin, "PUT", user_path(user["user_id"]), {"locked": False})
    assert (await client.request("GET", "account/whoami", token=user["access_token"])).code == 200
