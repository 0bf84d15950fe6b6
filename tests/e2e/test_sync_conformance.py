"""
/sync as the spec says, in the cases clients trip over: a room joined
since the last sync, filters with limits, lazy-loaded members, presence of
new room mates, ignored inviters, one's own device list, and the timelines
of rooms one left.
"""
from __future__ import annotations

import itertools
import json

import pytest_twisted
from events_schema import validate_sync_response

_txns = itertools.count(1)


async def create_room(client, user: dict, **body) -> str:
    response = await client.request("POST", "createRoom", body, token=user["access_token"])
    assert response.code == 200, response
    return response.json["room_id"]


async def join(client, user: dict, room_id: str) -> None:
    response = await client.request("POST", f"rooms/{room_id}/join", {}, token=user["access_token"])
    assert response.code == 200, response


async def send(client, user: dict, room_id: str, body: str, event_type: str = "m.room.message") -> str:
    response = await client.request("PUT", f"rooms/{room_id}/send/{event_type}/c{next(_txns)}",
                                    {"msgtype": "m.text", "body": body}, token=user["access_token"])
    assert response.code == 200, response
    return response.json["event_id"]


async def sync(client, user: dict, since: str | None = None, sync_filter: dict | None = None) -> dict:
    query = {"timeout": "0"}
    if since is not None:
        query["since"] = since
    if sync_filter is not None:
        query["filter"] = json.dumps(sync_filter)
    response = await client.request("GET", "sync", token=user["access_token"], query=query)
    assert response.code == 200, response
    return validate_sync_response(response.json)


def bodies(room: dict) -> list[str]:
    return [e["content"]["body"] for e in room["timeline"]["events"] if e["type"] == "m.room.message"]


@pytest_twisted.ensureDeferred
async def test_a_room_joined_since_the_last_sync_comes_whole(client):
    """
    A room joined after `since` arrives with its full state and its latest
    messages, including those sent before the join (a fresh timeline,
    limited when cut), as in an initial sync.
    """
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat", name="Whole")
    for i in range(5):
        await send(client, alice, room_id, f"before {i}")
    since = (await sync(client, bob))["next_batch"]
    await join(client, bob, room_id)
    body = await sync(client, bob, since, {"room": {"timeline": {"limit": 3}}})
    room = body["rooms"]["join"][room_id]
    state_types = {e["type"] for e in room["state"]["events"]} | {
        e["type"] for e in room["timeline"]["events"] if "state_key" in e}
    assert {"m.room.create", "m.room.power_levels", "m.room.join_rules", "m.room.name"} <= state_types
    assert len(room["timeline"]["events"]) == 3
    assert room["timeline"]["limited"] is True
    assert room["timeline"]["events"][-1]["type"] == "m.room.member"
    assert bodies(room) == ["before 3", "before 4"]


@pytest_twisted.ensureDeferred
async def test_types_filter_applies_before_the_limit(client):
    """A timeline filter for messages only, limit 3, gets the 3 latest messages even when other events are newer."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    for i in range(4):
        await send(client, alice, room_id, f"m{i}")
    for i in range(5):
        await send(client, alice, room_id, f"n{i}", event_type="org.example.noise")
    only_messages = {"room": {"timeline": {"limit": 3, "types": ["m.room.message"]}}}
    room = (await sync(client, alice, sync_filter=only_messages))["rooms"]["join"][room_id]
    assert bodies(room) == ["m1", "m2", "m3"]
    assert room["timeline"]["limited"] is True
    not_noise = {"room": {"timeline": {"limit": 2, "not_types": ["org.example.*"]}}}
    room = (await sync(client, alice, sync_filter=not_noise))["rooms"]["join"][room_id]
    assert bodies(room) == ["m2", "m3"]


@pytest_twisted.ensureDeferred
async def test_lazy_loading_adds_new_senders_in_incremental_syncs(client):
    """With lazy-loaded members, an incremental sync carries the member event of each sender in its timeline."""
    alice, bob, carol = [await client.register() for _ in range(3)]
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    await join(client, carol, room_id)
    lazy = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 10}}}
    since = (await sync(client, alice, sync_filter=lazy))["next_batch"]
    await send(client, carol, room_id, "hi from carol")
    room = (await sync(client, alice, since, lazy))["rooms"]["join"][room_id]
    members = {e["state_key"] for e in room["state"]["events"] if e["type"] == "m.room.member"} | {
        e["state_key"] for e in room["timeline"]["events"] if e["type"] == "m.room.member"}
    assert carol["user_id"] in members
    assert bob["user_id"] not in members


@pytest_twisted.ensureDeferred
async def test_presence_of_room_mates_arrives_on_first_sync_and_on_joining(client):
    """A user's presence reaches a room mate's initial sync, and a new room mate's next incremental sync."""
    alice, bob, carol = [await client.register() for _ in range(3)]
    put = await client.request("PUT", f"presence/{alice['user_id']}/status",
                               {"presence": "online", "status_msg": "here"}, token=alice["access_token"])
    assert put.code == 200
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    first = await sync(client, bob)
    assert any(e["sender"] == alice["user_id"] and e["content"].get("status_msg") == "here"
               for e in first.get("presence", {}).get("events", []))
    since = (await sync(client, carol))["next_batch"]
    await join(client, carol, room_id)
    later = await sync(client, carol, since)
    assert any(e["sender"] == alice["user_id"] for e in later.get("presence", {}).get("events", []))


@pytest_twisted.ensureDeferred
async def test_invites_from_ignored_users_are_not_delivered(client):
    """An invite from a user one ignores never appears in rooms.invite; one from anyone else does."""
    alice, bob, mallory = [await client.register() for _ in range(3)]
    ignore = await client.request(
        "PUT", f"user/{bob['user_id']}/account_data/m.ignored_user_list",
        {"ignored_users": {mallory["user_id"]: {}}}, token=bob["access_token"])
    assert ignore.code == 200
    since = (await sync(client, bob))["next_batch"]
    spam = await create_room(client, mallory, invite=[bob["user_id"]])
    wanted = await create_room(client, alice, invite=[bob["user_id"]])
    for body in (await sync(client, bob, since), await sync(client, bob)):
        invites = body.get("rooms", {}).get("invite", {})
        assert wanted in invites and spam not in invites


@pytest_twisted.ensureDeferred
async def test_own_device_changes_are_in_device_lists_changed(client):
    """A new device, a renamed one and a deleted one each put the user in their own device_lists.changed."""
    alice = await client.register()
    since = (await sync(client, alice))["next_batch"]
    second = await client.login(alice["user_id"])
    assert second.code == 200
    body = await sync(client, alice, since)
    assert alice["user_id"] in body.get("device_lists", {}).get("changed", [])
    since = body["next_batch"]
    renamed = await client.request("PUT", f"devices/{second.json['device_id']}", {"display_name": "phone"},
                                   token=alice["access_token"])
    assert renamed.code == 200
    body = await sync(client, alice, since)
    assert alice["user_id"] in body.get("device_lists", {}).get("changed", [])
    since = body["next_batch"]
    deleted = await client.with_password_uia("DELETE", f"devices/{second.json['device_id']}", {}, alice)
    assert deleted.code == 200
    body = await sync(client, alice, since)
    assert alice["user_id"] in body.get("device_lists", {}).get("changed", [])


@pytest_twisted.ensureDeferred
async def test_left_room_timeline_honours_the_filter(client):
    """The timeline of a room one left obeys the timeline filter's types and limit."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    since = (await sync(client, bob))["next_batch"]
    for i in range(4):
        await send(client, alice, room_id, f"m{i}")
        await send(client, alice, room_id, f"n{i}", event_type="org.example.noise")
    left = await client.request("POST", f"rooms/{room_id}/leave", {}, token=bob["access_token"])
    assert left.code == 200
    room_filter = {"room": {"timeline": {"limit": 2, "types": ["m.room.message"]}}}
    room = (await sync(client, bob, since, room_filter))["rooms"]["leave"][room_id]
    assert bodies(room) == ["m2", "m3"]
    assert all(e["type"] == "m.room.message" for e in room["timeline"]["events"])
