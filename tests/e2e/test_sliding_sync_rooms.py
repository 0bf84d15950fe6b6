"""
Sliding sync (MSC4186) through the real daemon, on both paths: which rooms
a list holds (its filters, invites, rooms left and rooms the user was
kicked from) and what of a room a user may see (ignored users, history
visibility, an invite's stripped state).
"""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest_twisted
from sliding_helpers import (
    V4,
    Connection,
    both_paths,
    bodies,
    call,
    count,
    create_room,
    invite,
    join,
    keys,
    put_state,
    rooms,
    second_device,
    send,
    set_account_data,
)


def membership_events(room: dict, user_id: str) -> list[dict]:
    """The timeline's member events about C{user_id}."""
    return [e for e in room.get("timeline") or ()
            if e["type"] == "m.room.member" and e["state_key"] == user_id]


def assert_removed(path, body: dict, room_id: str, user: dict, *, by: dict) -> None:
    """
    C{body} sends only C{room_id}, its timeline ending with C{user}'s leave
    sent C{by} someone (the user: left; another: kicked). The room may come
    whole again (C{initial}), the user's earlier join with it.
    """
    assert set(rooms(body)) == {room_id}
    room = rooms(body)[room_id]
    last = room["timeline"][-1]
    assert (last["type"], last["state_key"], last["sender"], last["content"]["membership"]) == (
        "m.room.member", user["user_id"], by["user_id"], "leave")
    if path.stable:
        assert room["membership"] == "leave"


@both_paths
@pytest_twisted.ensureDeferred
async def test_list_filters(client, path):
    """
    Each filter keeps exactly its rooms, and count counts them: is_dm (from
    m.direct), is_invite, is_encrypted, room_types and not_room_types,
    tags and not_tags (which wins), spaces (the space's children); several
    filters together must all hold.
    """
    alice, bob = await client.register(), await client.register()
    dm = await create_room(client, alice)
    await set_account_data(client, alice, "m.direct", {bob["user_id"]: [dm]})
    encrypted = await create_room(client, alice, initial_state=[{
        "type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
    space = await create_room(client, alice, creation_content={"type": "m.space"})
    child = await create_room(client, alice)
    await put_state(client, alice, space, "m.space.child", {"via": ["test.local"]}, child)
    favourite, work = await create_room(client, alice), await create_room(client, alice)
    for room_id, tag in ((favourite, "m.favourite"), (work, "u.work")):
        await call(client, "PUT", f"user/{quote(alice['user_id'])}/rooms/{quote(room_id)}/tags/{tag}",
                   {"order": 0.5}, user=alice)
    invited = await create_room(client, bob, name="Invitation")
    await invite(client, bob, invited, alice)
    everything = {dm, encrypted, space, child, favourite, work, invited}
    cases = [
        ({}, everything),
        ({"is_dm": True}, {dm}),
        ({"is_dm": False}, everything - {dm}),
        ({"is_invite": True}, {invited}),
        ({"is_invite": False}, everything - {invited}),
        ({"is_encrypted": True}, {encrypted}),
        ({"is_encrypted": False}, everything - {encrypted}),
        ({"room_types": ["m.space"]}, {space}),
        ({"room_types": [None]}, everything - {space}),
        ({"not_room_types": ["m.space"]}, everything - {space}),
        ({"tags": ["m.favourite", "u.work"]}, {favourite, work}),
        ({"tags": ["m.favourite", "u.work"], "not_tags": ["u.work"]}, {favourite}),
        ({"not_tags": ["m.favourite"]}, everything - {favourite}),
        ({"spaces": [space]}, {child}),
        ({"is_dm": False, "is_invite": False, "is_encrypted": False}, {space, child, favourite, work}),
    ]
    for filters, expected in cases:
        conn = Connection(client, path, alice, lists={"f": path.list_config(0, 19, filters=filters)})
        body = await conn.sync()
        assert (set(rooms(body)), count(body, "f")) == (expected, len(expected)), filters
        if dm in expected:
            assert rooms(body)[dm].get("is_dm") is True
        for room_id in expected - {dm}:
            assert not rooms(body)[room_id].get("is_dm"), (filters, room_id)


@both_paths
@pytest_twisted.ensureDeferred
async def test_marking_a_room_as_a_dm_sends_its_new_is_dm(client, path):
    """
    MSC4186: is_dm "must be included in an incremental sync if the DM
    state changes": an m.direct edit sends the room again with is_dm
    true, with no new event in it; unmarking sends it with is_dm false.
    """
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, name="soon a DM")
    conn = Connection(client, path, alice, lists={"all": path.list_config(0, 9)})
    first = await conn.sync()
    assert rooms(first)[room_id].get("is_dm") is not True
    await set_account_data(client, alice, "m.direct", {bob["user_id"]: [room_id]})
    marked = await conn.sync(timeout=5000)
    assert set(rooms(marked)) == {room_id}
    assert rooms(marked)[room_id]["is_dm"] is True and not rooms(marked)[room_id].get("timeline")
    await set_account_data(client, alice, "m.direct", {})
    unmarked = await conn.sync(timeout=5000)
    assert rooms(unmarked)[room_id]["is_dm"] is False


@both_paths
@pytest_twisted.ensureDeferred
async def test_an_invite_carries_stripped_state_and_nothing_else(client, path):
    """
    An invited room comes with stripped state (the invite, the inviter's
    member event, the room's create and name events) and none of the
    room's messages; once joined, it comes with its timeline.
    """
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, bob, name="Invitation")
    await send(client, bob, room_id, "said before the invite")
    await invite(client, bob, room_id, alice)
    conn = Connection(client, path, alice, lists={
        "all": path.list_config(0, 9, timeline_limit=5, required_state=[("*", "*")])})
    body = await conn.sync()
    room = rooms(body)[room_id]
    stripped = path.stripped_state(room)
    own = [e for e in stripped if e["type"] == "m.room.member" and e["state_key"] == alice["user_id"]]
    assert [(e["sender"], e["content"]["membership"]) for e in own] == [(bob["user_id"], "invite")]
    assert {("m.room.create", ""), ("m.room.name", "")} <= keys(stripped)
    assert [e["content"] for e in stripped if e["type"] == "m.room.name"] == [{"name": "Invitation"}]
    assert "said before the invite" not in json.dumps(room)
    if path.stable:
        assert room["membership"] == "invite"
    phone = await second_device(client, alice)
    await join(client, phone, room_id)
    room = rooms(await conn.sync())[room_id]
    assert [e["content"]["membership"] for e in membership_events(room, alice["user_id"])][-1:] == ["join"]
    assert not {"invite_state", "stripped_state"} & set(room)
    if path.stable:
        assert room["membership"] == "join"
    # As Synapse, the invite's stripped state had the inviter's own member
    # event too, whose name and avatar a client shows for "Bob invited you".
    inviter = [e for e in stripped if e["type"] == "m.room.member" and e["state_key"] == bob["user_id"]]
    assert [e["content"]["membership"] for e in inviter] == ["join"]


@both_paths
@pytest_twisted.ensureDeferred
async def test_leaving_and_being_kicked_are_reported_and_end_the_room(client, path):
    """
    A room the client knew is sent again with the user's leave (left on
    another device) or kick; nothing said afterwards reaches the user. A new
    connection lists the room the user was kicked from, not the one left.
    """
    alice, bob = await client.register(), await client.register()
    left, kicked = await create_room(client, bob, preset="public_chat"), await create_room(client, bob,
                                                                                         preset="public_chat")
    for room_id in (left, kicked):
        await join(client, alice, room_id)
    conn = Connection(client, path, alice, lists={"all": path.list_config(0, 9, timeline_limit=5)})
    assert set(rooms(await conn.sync())) == {left, kicked}

    phone = await second_device(client, alice)
    await call(client, "POST", f"rooms/{quote(left)}/leave", {}, user=phone)
    assert_removed(path, await conn.sync(), left, alice, by=alice)

    await call(client, "POST", f"rooms/{quote(kicked)}/kick", {"user_id": alice["user_id"], "reason": "bye"},
               user=bob)
    assert_removed(path, await conn.sync(), kicked, alice, by=bob)

    for room_id in (left, kicked):
        await send(client, bob, room_id, "after alice went")
    assert rooms(await conn.sync(timeout=0)) == {}
    fresh = Connection(client, path, alice, lists={"all": path.list_config(0, 9, timeline_limit=5)},
                       conn_id="fresh")
    body = await fresh.sync()
    assert (set(rooms(body)), count(body, "all")) == ({kicked}, 1)
    assert "after alice went" not in bodies(rooms(body)[kicked])


@both_paths
@pytest_twisted.ensureDeferred
async def test_ignored_users_messages_never_appear(client, path):
    """Messages of a user Alice ignores are in neither her first nor her later responses."""
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    for user in (bob, carol):
        await join(client, user, room_id)
    await set_account_data(client, alice, "m.ignored_user_list", {"ignored_users": {carol["user_id"]: {}}})
    await send(client, carol, room_id, "ignored 1")
    await send(client, bob, room_id, "seen 1")
    conn = Connection(client, path, alice, lists={"all": path.list_config(0, 9, timeline_limit=10)})
    assert bodies(rooms(await conn.sync())[room_id]) == ["seen 1"]
    await send(client, carol, room_id, "ignored 2")
    await send(client, bob, room_id, "seen 2")
    assert bodies(rooms(await conn.sync())[room_id]) == ["seen 2"]


@both_paths
@pytest_twisted.ensureDeferred
async def test_joined_history_visibility_hides_what_came_before_the_join(client, path):
    """In a room whose history is visible from joining on, neither the timeline nor prev_batch shows earlier messages."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, bob, preset="public_chat", initial_state=[{
        "type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "joined"}}])
    await send(client, bob, room_id, "before alice")
    await join(client, alice, room_id)
    await send(client, bob, room_id, "after alice")
    conn = Connection(client, path, alice, lists={"all": path.list_config(0, 9, timeline_limit=10)})
    room = rooms(await conn.sync())[room_id]
    assert bodies(room) == ["after alice"]
    assert [e["content"]["membership"] for e in membership_events(room, alice["user_id"])] == ["join"]
    older = await call(client, "GET", f"rooms/{quote(room_id)}/messages", user=alice,
                       query={"from": room["prev_batch"], "dir": "b", "limit": "20"})
    assert "before alice" not in json.dumps(older)


@pytest_twisted.ensureDeferred
async def test_v4_removed_name_is_null_and_exclude_filters_state(client):
    """On /v4/sync a name emptied out comes as null, and required_state's exclude leaves out what it names."""
    path = V4
    alice = await client.register()
    room_id = await create_room(client, alice, name="Named", topic="Topic")
    conn = Connection(client, path, alice, lists={"all": {
        "range": [0, 9], "timeline_limit": 1,
        "required_state": {"include": [{}], "exclude": [{"type": "m.room.create", "state_key": ""},
                                                       {"type": "m.room.member"}]}}})
    room = rooms(await conn.sync())[room_id]
    whole = await call(client, "GET", f"rooms/{quote(room_id)}/state", user=alice)
    assert keys(room["required_state"]) == {k for k in keys(whole)
                                            if k != ("m.room.create", "") and k[0] != "m.room.member"}
    assert room["name"] == "Named"
    await put_state(client, alice, room_id, "m.room.name", {"name": ""})
    room = rooms(await conn.sync())[room_id]
    assert "name" in room and room["name"] is None
