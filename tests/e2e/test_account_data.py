"""
Account data (global and per room), room tags and the ignored-user list
through the real daemon: round trips, refusals, and what /sync shows.
"""
from __future__ import annotations


import pytest
import pytest_twisted
from events_schema import validate_sync_response
from polling import LONG_POLL_MS, within_deadline
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

# -- helpers ---------------------------------------------------------------

async def sync(client, user: dict, **query) -> dict:
    response = await client.request("GET", "sync", token=user["access_token"],
                                    query={k: str(v) for k, v in query.items()} or None)
    assert response.code == 200, response
    return validate_sync_response(response.json)


async def create_room(client, user: dict) -> str:
    created = await client.request("POST", "createRoom", {}, token=user["access_token"])
    assert created.code == 200, created
    return created.json["room_id"]


def global_data(body: dict) -> dict:
    return {e["type"]: e["content"] for e in body.get("account_data", {}).get("events", [])}


def room_data(body: dict, room_id: str) -> dict:
    room = body.get("rooms", {}).get("join", {}).get(room_id, {})
    return {e["type"]: e["content"] for e in room.get("account_data", {}).get("events", [])}


def global_path(user: dict, data_type: str) -> str:
    return f"user/{user['user_id']}/account_data/{data_type}"


def room_path(user: dict, room_id: str, data_type: str) -> str:
    return f"user/{user['user_id']}/rooms/{room_id}/account_data/{data_type}"


def tags_path(user: dict, room_id: str, tag: str | None = None) -> str:
    path = f"user/{user['user_id']}/rooms/{room_id}/tags"
    return path if tag is None else f"{path}/{tag}"


# -- global account data ---------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_global_account_data_round_trip_and_sync(client):
    """Global account data reads back as set and shows in initial and incremental syncs."""
    user = await client.register()
    token = user["access_token"]
    since = (await sync(client, user))["next_batch"]
    content = {"theme": "dark", "nested": {"list": [1, 2.5, "ü"]}}
    put = await client.request("PUT", global_path(user, "org.example.config"), content, token=token)
    assert put.code == 200 and put.json == {}
    got = await client.request("GET", global_path(user, "org.example.config"), token=token)
    assert got.code == 200 and got.json == content
    assert global_data(await sync(client, user, since=since))["org.example.config"] == content
    assert global_data(await sync(client, user))["org.example.config"] == content


@pytest_twisted.ensureDeferred
async def test_account_data_change_wakes_a_long_poll(client):
    """Setting account data from another device wakes the user's waiting sync at once."""
    user = await client.register()
    since = (await sync(client, user))["next_batch"]
    polling = within_deadline(defer.ensureDeferred(sync(client, user, since=since, timeout=LONG_POLL_MS)))
    await deferLater(reactor, 0.3, lambda: None)
    assert not polling.called, "the long poll answered before anything changed"
    await client.request("PUT", global_path(user, "org.example.wake"), {"n": 1},
                         token=user["access_token"])
    body = await polling
    assert global_data(body) == {"org.example.wake": {"n": 1}}


@pytest_twisted.ensureDeferred
async def test_incremental_sync_shows_only_changed_account_data(client):
    """An incremental sync carries the entries changed since its token, with their latest content."""
    user = await client.register()
    token = user["access_token"]
    await client.request("PUT", global_path(user, "org.example.old"), {"v": 1}, token=token)
    since = (await sync(client, user))["next_batch"]
    await client.request("PUT", global_path(user, "org.example.new"), {"v": 1}, token=token)
    await client.request("PUT", global_path(user, "org.example.new"), {"v": 2}, token=token)
    assert global_data(await sync(client, user, since=since)) == {"org.example.new": {"v": 2}}


@pytest_twisted.ensureDeferred
async def test_account_data_is_private(client):
    """Another user's account data can be neither read nor written (403), and never syncs to them."""
    alice, bob = await client.register(), await client.register()
    await client.request("PUT", global_path(alice, "org.example.secret"), {"s": 1},
                         token=alice["access_token"])
    read = await client.request("GET", global_path(alice, "org.example.secret"), token=bob["access_token"])
    assert read.code == 403 and read.json["errcode"] == "M_FORBIDDEN"
    write = await client.request("PUT", global_path(alice, "org.example.secret"), {"s": 2},
                                 token=bob["access_token"])
    assert write.code == 403 and write.json["errcode"] == "M_FORBIDDEN"
    assert "org.example.secret" not in global_data(await sync(client, bob))


@pytest_twisted.ensureDeferred
async def test_unknown_account_data_is_404(client):
    """Reading account data never set answers 404 M_NOT_FOUND, globally and per room."""
    user = await client.register()
    room_id = await create_room(client, user)
    for path in (global_path(user, "org.example.none"), room_path(user, room_id, "org.example.none")):
        missing = await client.request("GET", path, token=user["access_token"])
        assert missing.code == 404 and missing.json["errcode"] == "M_NOT_FOUND"


@pytest.mark.parametrize("data_type", ["m.fully_read", "m.push_rules"])
@pytest_twisted.ensureDeferred
async def test_server_managed_types_are_refused(client, data_type):
    """Clients may not set m.fully_read or m.push_rules as account data: 405 M_BAD_JSON."""
    user = await client.register()
    room_id = await create_room(client, user)
    for path in (global_path(user, data_type), room_path(user, room_id, data_type)):
        refused = await client.request("PUT", path, {"event_id": "$x"}, token=user["access_token"])
        assert refused.code == 405 and refused.json["errcode"] == "M_BAD_JSON"


@pytest_twisted.ensureDeferred
async def test_push_rules_can_be_read_as_account_data(client):
    """GET of the m.push_rules account data answers the user's push rules."""
    user = await client.register()
    got = await client.request("GET", global_path(user, "m.push_rules"), token=user["access_token"])
    assert got.code == 200 and "global" in got.json


@pytest_twisted.ensureDeferred
async def test_account_data_content_must_be_an_object(client):
    """A JSON body that is not an object is refused with 400 M_BAD_JSON."""
    user = await client.register()
    refused = await client.request("PUT", global_path(user, "org.example.x"), b"[1, 2]",
                                   token=user["access_token"])
    assert refused.code == 400 and refused.json["errcode"] == "M_BAD_JSON"


# -- room account data -----------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_room_account_data_round_trip_and_sync(client):
    """Room account data reads back, stays apart from global data, and shows in the room's sync section."""
    user = await client.register()
    token = user["access_token"]
    room_id = await create_room(client, user)
    since = (await sync(client, user))["next_batch"]
    put = await client.request("PUT", room_path(user, room_id, "org.example.room"), {"pinned": True},
                               token=token)
    assert put.code == 200 and put.json == {}
    got = await client.request("GET", room_path(user, room_id, "org.example.room"), token=token)
    assert got.code == 200 and got.json == {"pinned": True}
    no_global = await client.request("GET", global_path(user, "org.example.room"), token=token)
    assert no_global.code == 404
    body = await sync(client, user, since=since)
    assert room_data(body, room_id) == {"org.example.room": {"pinned": True}}
    assert "org.example.room" not in global_data(body)
    assert room_data(await sync(client, user), room_id)["org.example.room"] == {"pinned": True}


@pytest_twisted.ensureDeferred
async def test_room_account_data_needs_a_valid_room_id(client):
    """A malformed room id is refused with 400 M_INVALID_PARAM."""
    user = await client.register()
    bad = await client.request("PUT", room_path(user, "notaroom", "org.example.x"), {},
                               token=user["access_token"])
    assert bad.code == 400 and bad.json["errcode"] == "M_INVALID_PARAM"
    bad = await client.request("GET", room_path(user, "notaroom", "org.example.x"),
                               token=user["access_token"])
    assert bad.code == 400 and bad.json["errcode"] == "M_INVALID_PARAM"


# -- tags ------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_tags_crud_and_sync(client):
    """Tags are added, listed and removed, and each change shows as the room's m.tag in sync."""
    user = await client.register()
    token = user["access_token"]
    room_id = await create_room(client, user)
    empty = await client.request("GET", tags_path(user, room_id), token=token)
    assert empty.code == 200 and empty.json == {"tags": {}}
    since = (await sync(client, user))["next_batch"]
    added = await client.request("PUT", tags_path(user, room_id, "m.favourite"), {"order": 0.25}, token=token)
    assert added.code == 200 and added.json == {}
    await client.request("PUT", tags_path(user, room_id, "u.work"), {}, token=token)
    listed = await client.request("GET", tags_path(user, room_id), token=token)
    assert listed.json == {"tags": {"m.favourite": {"order": 0.25}, "u.work": {}}}
    body = await sync(client, user, since=since)
    assert room_data(body, room_id)["m.tag"] == {"tags": {"m.favourite": {"order": 0.25}, "u.work": {}}}

    since = body["next_batch"]
    removed = await client.request("DELETE", tags_path(user, room_id, "m.favourite"), token=token)
    assert removed.code == 200 and removed.json == {}
    listed = await client.request("GET", tags_path(user, room_id), token=token)
    assert listed.json == {"tags": {"u.work": {}}}
    body = await sync(client, user, since=since)
    assert room_data(body, room_id)["m.tag"] == {"tags": {"u.work": {}}}
    again = await client.request("DELETE", tags_path(user, room_id, "m.favourite"), token=token)
    assert again.code == 200


@pytest_twisted.ensureDeferred
async def test_concurrent_tag_changes_all_survive(client):
    """Tags added at the same time to one room are all kept."""
    user = await client.register()
    token = user["access_token"]
    room_id = await create_room(client, user)
    names = [f"u.tag{i}" for i in range(8)]
    await defer.gatherResults([
        defer.ensureDeferred(client.request("PUT", tags_path(user, room_id, name), {"order": 0.5}, token=token))
        for name in names])
    listed = await client.request("GET", tags_path(user, room_id), token=token)
    assert sorted(listed.json["tags"]) == names


@pytest_twisted.ensureDeferred
async def test_tag_refusals(client):
    """Tags of other users are 403; names over 255 bytes and non-numeric orders are 400."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice)
    other = await client.request("PUT", tags_path(alice, room_id, "u.x"), {}, token=bob["access_token"])
    assert other.code == 403
    listed = await client.request("GET", tags_path(alice, room_id), token=bob["access_token"])
    assert listed.code == 403
    long_name = await client.request("PUT", tags_path(alice, room_id, "u." + "x" * 300), {},
                                     token=alice["access_token"])
    assert long_name.code == 400
    bad_order = await client.request("PUT", tags_path(alice, room_id, "u.x"), {"order": "first"},
                                     token=alice["access_token"], validate=False)
    assert bad_order.code == 400 and bad_order.json["errcode"] == "M_BAD_JSON"


# -- ignored users ---------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_ignored_user_list_round_trip(client):
    """The m.ignored_user_list account data reads back and syncs like any other."""
    alice, bob = await client.register(), await client.register()
    content = {"ignored_users": {bob["user_id"]: {}}}
    put = await client.request("PUT", global_path(alice, "m.ignored_user_list"), content,
                               token=alice["access_token"])
    assert put.code == 200
    got = await client.request("GET", global_path(alice, "m.ignored_user_list"), token=alice["access_token"])
    assert got.json == content
    assert global_data(await sync(client, alice))["m.ignored_user_list"] == content


@pytest_twisted.ensureDeferred
async def test_ignored_users_messages_leave_the_sync_timeline(client):
    """Once Alice ignores Bob, his messages no longer reach her syncs; his state events still do."""
    alice, bob = await client.register(), await client.register()
    created = await client.request("POST", "createRoom", {"preset": "public_chat"}, token=alice["access_token"])
    room_id = created.json["room_id"]
    assert (await client.request("POST", f"rooms/{room_id}/join", {}, token=bob["access_token"])).code == 200
    await client.request("PUT", global_path(alice, "m.ignored_user_list"),
                         {"ignored_users": {bob["user_id"]: {}}}, token=alice["access_token"])
    since = (await sync(client, alice))["next_batch"]
    await client.request("PUT", f"rooms/{room_id}/send/m.room.message/ignored1",
                         {"msgtype": "m.text", "body": "you cannot see me"}, token=bob["access_token"])
    renamed = await client.request("PUT", f"rooms/{room_id}/state/m.room.member/{bob['user_id']}",
                                   {"membership": "join", "displayname": "Bob"}, token=bob["access_token"])
    assert renamed.code == 200, renamed
    body = await sync(client, alice, since=since)
    timeline = body["rooms"]["join"][room_id]["timeline"]["events"]
    assert [e["type"] for e in timeline if e["sender"] == bob["user_id"]] == ["m.room.member"]


@pytest_twisted.ensureDeferred
async def test_account_data_set_after_a_restart_reaches_an_old_token(start_homeserver, make_client):
    """Account data set after the daemon restarts shows in an incremental sync from a token of before."""
    server = start_homeserver("")
    client = make_client(server)
    user = await client.register()
    await create_room(client, user)
    await client.request("PUT", global_path(user, "org.example.before"), {"n": 1}, token=user["access_token"])
    since = (await sync(client, user, set_presence="offline"))["next_batch"]
    server.stop()
    server.start()
    await client.request("PUT", global_path(user, "org.example.after"), {"n": 2}, token=user["access_token"])
    body = await sync(client, user, since=since, set_presence="offline")
    assert global_data(body) == {"org.example.after": {"n": 2}}


@pytest_twisted.ensureDeferred
async def test_account_data_with_big_integers_reads_back(client):
    """Account data holding an integer past 64 bits (valid JSON) is stored and read back whole, never a 500."""
    user = await client.register()
    content = {"n": 2**70, "m": -(2**65)}
    put = await client.request("PUT", global_path(user, "org.example.big"), content, token=user["access_token"])
    assert put.code == 200, put
    got = await client.request("GET", global_path(user, "org.example.big"), token=user["access_token"])
    assert got.code == 200 and got.json == content
    room = await client.request("POST", "createRoom", {"name": "with events"}, token=user["access_token"])
    body = await sync(client, user)
    assert global_data(body)["org.example.big"] == content
    joined_room = body["rooms"]["join"][room.json["room_id"]]
    shown = joined_room["state"]["events"] + joined_room["timeline"]["events"]
    assert any(e["type"] == "m.room.name" and e["content"] == {"name": "with events"} for e in shown)
