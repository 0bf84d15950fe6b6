"""
The calls the web admin UI synapse-admin makes when an admin logs in and
opens its pages, replayed in order through the real daemon: every answer
must be 200 in the shape the UI's data provider reads (Synapse's
documented shapes).

The call list was read from github.com/Awesome-Technologies/synapse-admin
at commit 9129f3f3b8baba53797c68e0bff6c420e08cd22a: src/synapse/synapse.ts
and src/pages/LoginPage.tsx (login checks), src/synapse/authProvider.ts
(login), src/synapse/dataProvider.ts (paths, and the query its getList,
getOne and getManyReference build) and src/resources/*.tsx (each page's
sort, page size and filter defaults; react-admin 5's defaults otherwise:
lists 10 per page sorted by id ascending, reference lists 25 per page
sorted by id descending). The v3 users list and the room media tab are
Ketesa's (github.com/etkecc/ketesa at
85da7bfaccd474a9236f4568158f66b1c19ebf66: src/providers/data/synapse.ts,
index.ts and src/resources/users/List.tsx), which synapse-admin lacks.
"""
from urllib.parse import quote

import pytest_twisted
from admin_helpers import ADMIN, assert_shape, register_admin
from conftest import PASSWORD, unique_localpart
from media_helpers import media_path, upload
from room_helpers import create_room, join, ok, send_text

OPTIONAL_STR = (str, type(None))
USER = {"name": str, "displayname": OPTIONAL_STR, "avatar_url": OPTIONAL_STR, "is_guest": bool, "admin": bool,
        "deactivated": bool, "erased": bool, "locked": bool, "creation_ts": int, "user_type": OPTIONAL_STR}
USER_DETAILS = {**USER, "threepids": [{"medium": str, "address": str}],
                "external_ids": [{"auth_provider": str, "external_id": str}], "shadow_banned": bool,
                "consent_version": OPTIONAL_STR}
ROOM = {"room_id": str, "name": OPTIONAL_STR, "canonical_alias": OPTIONAL_STR, "joined_members": int,
        "joined_local_members": int, "version": str, "creator": str, "encryption": OPTIONAL_STR,
        "federatable": bool, "public": bool, "join_rules": OPTIONAL_STR, "guest_access": OPTIONAL_STR,
        "history_visibility": OPTIONAL_STR, "state_events": int, "room_type": OPTIONAL_STR}
ROOM_DETAILS = {**ROOM, "topic": OPTIONAL_STR, "joined_local_devices": int}
REPORT = {"id": int, "received_ts": int, "room_id": str, "name": OPTIONAL_STR, "event_id": str, "user_id": str,
          "reason": OPTIONAL_STR, "score": (int, type(None)), "sender": str, "canonical_alias": OPTIONAL_STR}
MEDIA = {"media_id": str, "created_ts": int, "last_access_ts": (int, type(None)), "media_length": int,
         "media_type": str, "quarantined_by": OPTIONAL_STR, "safe_from_quarantine": bool,
         "upload_name": OPTIONAL_STR}
STATE_EVENT = {"type": str, "event_id": str, "origin_server_ts": int, "sender": str, "state_key": str,
               "content": dict}

#: Nothing listens there: the seeded pusher's deliveries just fail.
PUSH_GATEWAY = "http://127.0.0.1:9/_matrix/push/v1/notify"

#: What the login page and login read: versions, server_version, flows.
LOGIN_CHECKS = [
    ("GET", "/.well-known/matrix/client", {}, {"m.homeserver": {"base_url": str}}),
    ("GET", "/_synapse/admin/v1/server_version", {}, {"server_version": str}),
    ("GET", "/_matrix/client/versions", {}, {"versions": [str], "unstable_features?": dict}),
    ("GET", "/_matrix/client/r0/login", {}, {"flows": [{"type": str}]}),
]


def _list(order_by: str, direction: str, limit: int = 10, **filters: str) -> dict:
    """The query of the data provider's getList (page 1)."""
    return {"from": "0", "limit": str(limit), **filters, "order_by": order_by, "dir": direction}


#: The reference lists' query (getManyReference, page 1, react-admin's default sort).
REFERENCE = _list("id", "b", 25)

#: The admin's calls in the order the pages make them: (page, method, path template, query, shape).
#: Paths are under /_synapse/admin unless they start with /_matrix/. In the templates {user},
#: {member} and {room_q} are URI-encoded (encodeURIComponent), {room} is raw as the UI puts it.
PAGES = [
    ("users list", "GET", "/v2/users", _list("name", "f", guests="true", deactivated="false", locked="false"),
     {"users": [USER], "total": int, "next_token?": str}),
    ("users list (Ketesa)", "GET", "/v3/users", _list("name", "f", 50),
     {"users": [USER], "total": int, "next_token?": str}),
    ("user details", "GET", "/v2/users/{user}", {}, USER_DETAILS),
    ("user devices", "GET", "/v2/users/{user}/devices", REFERENCE,
     {"devices": [{"device_id": str, "display_name?": OPTIONAL_STR, "last_seen_ip": OPTIONAL_STR,
                   "last_seen_ts": (int, type(None)), "user_id": str}], "total": int}),
    ("user connections", "GET", "/v1/whois/{user}", {},
     {"user_id": str, "devices": {"{device}": {"sessions": [{"connections": [
         # ruma_tx keeps no user agents: null (the UI shows an empty cell).
         {"ip": str, "last_seen": int, "user_agent": OPTIONAL_STR}]}]}}}),
    ("user media", "GET", "/v1/users/{user}/media", _list("created_ts", "b", 50),
     {"media": [MEDIA], "total": int, "next_token?": int}),
    ("user rooms", "GET", "/v1/users/{user}/joined_rooms", REFERENCE, {"joined_rooms": [str], "total": int}),
    ("user rooms' names", "GET", "/v1/rooms/{room_q}", {}, ROOM_DETAILS),
    ("user pushers", "GET", "/v1/users/{user}/pushers", REFERENCE,
     {"pushers": [{"app_display_name": str, "app_id": str, "data": {"url": str}, "device_display_name": str,
                   "kind": str, "lang": str, "profile_tag?": str, "pushkey": str}], "total": int}),
    ("rooms list", "GET", "/v1/rooms", _list("name", "f"),
     {"rooms": [ROOM], "offset": int, "total_rooms": int, "next_batch?": int, "prev_batch?": int}),
    ("room details", "GET", "/v1/rooms/{room_q}", {}, ROOM_DETAILS),
    ("room creator", "GET", "/v2/users/{user}", {}, USER_DETAILS),
    ("room members", "GET", "/v1/rooms/{room}/members", REFERENCE, {"members": [str], "total": int}),
    ("room members' names", "GET", "/v2/users/{member}", {}, USER_DETAILS),
    ("room state", "GET", "/v1/rooms/{room}/state", REFERENCE, {"state": [STATE_EVENT]}),
    ("room forward extremities", "GET", "/v1/rooms/{room}/forward_extremities", REFERENCE,
     {"count": int, "results": [{"event_id": str, "state_group": (int, type(None)), "depth": int,
                                 "received_ts": int}]}),
    ("room media (Ketesa)", "GET", "/v1/room/{room_q}/media", {}, {"local": [str], "remote": [str]}),
    ("user media statistics", "GET", "/v1/statistics/users/media", _list("media_length", "b"),
     {"users": [{"user_id": str, "displayname": OPTIONAL_STR, "media_count": int, "media_length": int}],
      "total": int, "next_token?": int}),
    ("event reports", "GET", "/v1/event_reports", _list("received_ts", "b"),
     {"event_reports": [REPORT], "total": int, "next_token?": int}),
    ("event report", "GET", "/v1/event_reports/{report_id}", {},
     {**REPORT, "event_json": {"type": str, "sender": str, "origin_server_ts": int,
                               "content": {"msgtype": str, "body": str}}}),
    ("report's reporter", "GET", "/v2/users/{member}", {}, USER_DETAILS),
    ("report's room", "GET", "/v1/rooms/{room_q}", {}, ROOM_DETAILS),
    ("registration tokens", "GET", "/v1/registration_tokens", _list("id", "f", 500, valid="true"),
     {"registration_tokens": [{"token": str, "uses_allowed": (int, type(None)), "pending": int,
                               "completed": int, "expiry_time": (int, type(None))}]}),
    ("room directory", "GET", "/_matrix/client/r0/publicRooms", _list("name", "f"),
     {"chunk": [{"room_id": str, "name?": str, "num_joined_members": int, "guest_can_join": bool}],
      "total_room_count_estimate?": int}),
    ("federation destinations", "GET", "/v1/federation/destinations", _list("destination", "f"),
     {"destinations": [{"destination": str, "retry_last_ts": int, "retry_interval": int, "failure_ts": (
         int, type(None)), "last_successful_stream_ordering": (int, type(None))}], "total": int}),
]


async def _seed(client, admin: dict) -> dict:
    """
    alice's room with bob and messages, her upload and pusher, bob's report
    of her message, a registration token.
    """
    alice = await client.register(unique_localpart("alice"))
    bob = await client.register(unique_localpart("bob"))
    room_id = await create_room(client, alice, name="Replay room", topic="What admins look at",
                                room_alias_name=unique_localpart("replay"), preset="public_chat", visibility="public")
    await join(client, bob, room_id)
    event_ids = [await send_text(client, user, room_id, f"message {n}", f"replay{n}")
                 for n, user in enumerate([alice, bob, alice])]
    content_uri = await upload(client, alice["access_token"], b"holiday photo", "image/png", filename="beach.png")
    await ok(client, "PUT", f"rooms/{quote(room_id)}/send/m.room.message/replay-image",
             {"msgtype": "m.image", "body": "beach.png", "url": content_uri}, user=alice)
    await ok(client, "POST", f"rooms/{quote(room_id)}/report/{quote(event_ids[2])}",
             {"reason": "spam", "score": -100}, user=bob)
    await ok(client, "POST", "pushers/set", {
        "kind": "http", "app_id": "org.example.phone", "app_display_name": "Phone", "pushkey": "alice-phone",
        "device_display_name": "Alice's phone", "lang": "en", "data": {"url": PUSH_GATEWAY}}, user=alice)
    token = await client.request("POST", f"{ADMIN}/v1/registration_tokens/new", {"uses_allowed": 5},
                                 token=admin["access_token"])
    assert token.code == 200, token
    return {"alice": alice, "bob": bob, "room_id": room_id, "media_id": media_path(content_uri)[1],
            "token": token.json["token"]}


@pytest_twisted.ensureDeferred
async def test_login_page_checks_and_login(client):
    """The login page's discovery and version checks need no token; the UI's r0 login answers a session."""
    admin_localpart = unique_localpart("uiadmin")
    await register_admin(client, admin_localpart)
    for method, path, query, shape in LOGIN_CHECKS:
        response = await client.request(method, path, query=query)
        assert response.code == 200, (path, response)
        assert_shape(response.json, shape, path)
    login = await client.request("POST", "/_matrix/client/r0/login", {
        "device_id": None, "initial_device_display_name": "Synapse Admin", "type": "m.login.password",
        "user": admin_localpart, "password": PASSWORD,
        "identifier": {"type": "m.id.user", "user": admin_localpart}})
    assert login.code == 200, login
    assert_shape(login.json, {"home_server": str, "user_id": str, "access_token": str, "device_id": str})
    assert login.json["home_server"] == client.server.server_name


@pytest_twisted.ensureDeferred
async def test_admin_ui_pages_replayed(start_homeserver, make_client):
    """
    Every call of the users, rooms, media, reports, tokens and federation pages answers what the UI reads.
    On a daemon of its own: its pages show only the seeded data (other tests' bigger uploads would fill
    the media statistics' first page).
    """
    client = make_client(start_homeserver("[guests]\nenabled = true\n[rate_limits]\nenabled = false\n"))
    admin = await register_admin(client)
    seed = await _seed(client, admin)
    alice, bob, room_id = seed["alice"], seed["bob"], seed["room_id"]
    reports = await client.request("GET", f"{ADMIN}/v1/event_reports", token=admin["access_token"],
                                   query={"room_id": room_id})
    assert reports.code == 200, reports
    names = {"user": quote(alice["user_id"], safe=""), "member": quote(bob["user_id"], safe=""),
             "room": room_id, "room_q": quote(room_id, safe=""), "report_id": reports.json["event_reports"][0]["id"]}

    answers = {}
    for page, method, template, query, shape in PAGES:
        path = (template if template.startswith("/_matrix/") else ADMIN + template).format(**names)
        response = await client.request(method, path, token=admin["access_token"], query=query)
        assert response.code == 200, (page, path, response)
        whois_device = next(iter(response.json.get("devices", {"-": 0}))) if page == "user connections" else ""
        assert_shape(response.json, _with_device(shape, whois_device), page)
        answers[page] = response.json

    # What an admin sees on each page: the seeded data, not just well-formed empties.
    listed = [user["name"] for user in answers["users list"]["users"]]
    assert listed == sorted(listed) and answers["users list"]["total"] >= 3
    assert answers["rooms list"]["offset"] == 0 and answers["rooms list"]["total_rooms"] >= 1
    assert room_id in [room["room_id"] for room in answers["room directory"]["chunk"]] or \
        answers["room directory"]["total_room_count_estimate"] > 10
    assert answers["user details"]["name"] == alice["user_id"]
    assert [device["device_id"] for device in answers["user devices"]["devices"]] == [alice["device_id"]]
    assert [media["media_id"] for media in answers["user media"]["media"]] == [seed["media_id"]]
    assert answers["user media"]["media"][0]["upload_name"] == "beach.png"
    assert answers["user rooms"]["joined_rooms"] == [room_id]
    assert [(p["pushkey"], p["data"]["url"]) for p in answers["user pushers"]["pushers"]] == \
        [("alice-phone", PUSH_GATEWAY)]
    details = answers["room details"]
    assert (details["name"], details["topic"], details["creator"], details["joined_members"]) == \
        ("Replay room", "What admins look at", alice["user_id"], 2)
    assert sorted(answers["room members"]["members"]) == sorted([alice["user_id"], bob["user_id"]])
    assert answers["room members"]["total"] == 2
    assert {"m.room.create", "m.room.name", "m.room.topic"} <= \
        {event["type"] for event in answers["room state"]["state"]}
    assert answers["room forward extremities"]["count"] == len(answers["room forward extremities"]["results"]) >= 1
    assert answers["room media (Ketesa)"]["local"] == [f"mxc://{client.server.server_name}/{seed['media_id']}"]
    stats = {row["user_id"]: row for row in answers["user media statistics"]["users"]}
    assert (stats[alice["user_id"]]["media_count"], stats[alice["user_id"]]["media_length"]) == (1, 13)
    report = answers["event report"]
    assert (report["user_id"], report["sender"], report["reason"], report["score"]) == \
        (bob["user_id"], alice["user_id"], "spam", -100)
    assert report["event_json"]["content"]["body"] == "message 2"
    assert seed["token"] in [token["token"] for token in answers["registration tokens"]["registration_tokens"]]
    assert answers["federation destinations"]["total"] == len(answers["federation destinations"]["destinations"])


def _with_device(shape, device_id: str):
    """The whois shape with its per-device key named (whois keys devices by id)."""
    if not isinstance(shape, dict) or "devices" not in shape or "user_id" not in shape:
        return shape
    if "{device}" not in shape["devices"]:
        return shape
    return {**shape, "devices": {device_id: shape["devices"]["{device}"]}}


@pytest_twisted.ensureDeferred
async def test_ketesa_user_list_filters_deactivated_as_v3(client):
    """
    Ketesa lists users with v3: deactivated accounts show unless filtered,
    C{deactivated=true} shows only them; v2 still hides them by default.
    """
    admin = await register_admin(client)
    prefix = unique_localpart("v3")
    active = await client.register(f"{prefix}a")
    gone = await client.register(f"{prefix}b")
    deactivated = await client.request("POST", f"{ADMIN}/v1/deactivate/{quote(gone['user_id'], safe='')}",
                                       {"erase": True}, token=admin["access_token"])
    assert deactivated.code == 200, deactivated

    async def names(version: str, **filters: str) -> list[str]:
        response = await client.request("GET", f"{ADMIN}/{version}/users", token=admin["access_token"],
                                        query={"name": prefix, **filters})
        assert response.code == 200, response
        return [user["name"] for user in response.json["users"]]

    both = [active["user_id"], gone["user_id"]]
    assert await names("v3") == both
    assert await names("v3", deactivated="true") == [gone["user_id"]]
    assert await names("v3", deactivated="false") == [active["user_id"]]
    assert await names("v2") == [active["user_id"]]
    assert await names("v2", deactivated="true") == both
    bad = await client.request("GET", f"{ADMIN}/v3/users", token=admin["access_token"],
                               query={"deactivated": "maybe"})
    assert bad.code == 400 and bad.json["errcode"] == "M_INVALID_PARAM", bad


@pytest_twisted.ensureDeferred
async def test_pushers_tab_of_unknown_or_remote_user(client):
    """The pushers tab of a user this server does not have is 404; another server's user is 400."""
    admin = await register_admin(client)
    for user_id, code in [(f"@{unique_localpart('nobody')}:{client.server.server_name}", 404),
                          ("@someone:elsewhere.example", 400)]:
        response = await client.request("GET", f"{ADMIN}/v1/users/{quote(user_id, safe='')}/pushers",
                                        token=admin["access_token"], query=REFERENCE)
        assert response.code == code, response
