"""
Sliding sync (MSC4186) through the real daemon, on both paths: a client's
first request and the incremental ones after it, required_state with its
wildcards and lazy members, long polls, room subscriptions, timeline
expansion, what a C{pos} may be, and a restart in the middle of a
connection. Filters and membership are in test_sliding_sync_rooms.py,
extensions in test_sliding_sync_extensions.py.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest_twisted
from polling import within_deadline
from sliding_helpers import (
    LAZY,
    UNSTABLE,
    V4,
    Connection,
    both_paths,
    bodies,
    call,
    count,
    create_room,
    event_ids,
    invite,
    join,
    keys,
    members,
    put_state,
    rooms,
    second_device,
    send,
)
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

ME = ("m.room.member", "$ME")
NAME = ("m.room.name", "")
CREATE = ("m.room.create", "")


def sleep(seconds: float) -> defer.Deferred:
    return deferLater(reactor, seconds, lambda: None)


async def eight_rooms(client, alice: dict) -> tuple[list[str], dict, dict]:
    """
    Eight rooms of Alice's, oldest first, each with a message of hers,
    "r<i>" (room 6 has five instead, "r6 m0".."r6 m4"). Rooms 0-6 are named
    "Room <i>"; room 7 has no name, Bob ("Bob Hero") joined and Carol
    invited. Returns the rooms, Bob and Carol.
    """
    created = []
    for i in range(7):
        room_id = await create_room(client, alice, name=f"Room {i}")
        for text in ([f"r6 m{n}" for n in range(5)] if i == 6 else [f"r{i}"]):
            await send(client, alice, room_id, text)
        created.append(room_id)
    bob, carol = await client.register(), await client.register()
    await call(client, "PUT", f"profile/{quote(bob['user_id'])}/displayname", {"displayname": "Bob Hero"},
               user=bob)
    unnamed = await create_room(client, alice, preset="public_chat")
    await join(client, bob, unnamed)
    await invite(client, alice, unnamed, carol)
    await send(client, alice, unnamed, "r7")
    return [*created, unnamed], bob, carol


@both_paths
@pytest_twisted.ensureDeferred
async def test_first_request_sends_the_top_of_the_list_in_full(client, path):
    """
    A first request for [0, 4] of eight rooms: the five most recent, each
    initial, with timeline_limit events, exactly the asked state, a name or
    heroes, member counts, bump stamps in activity order, and a prev_batch
    /messages continues from.
    """
    alice = await client.register()
    all_rooms, bob, carol = await eight_rooms(client, alice)
    conn = Connection(client, path, alice, lists={
        "all": path.list_config(0, 4, timeline_limit=3, required_state=[CREATE, NAME, ME])})
    body = await conn.sync()
    assert count(body, "all") == 8
    newest = list(reversed(all_rooms[3:]))
    assert set(rooms(body)) == set(newest)
    for room_id, room in rooms(body).items():
        assert room["initial"] is True
        assert len(room["timeline"]) == 3 and room["limited"] is True
        named = room_id != all_rooms[7]
        assert keys(room["required_state"]) == {CREATE, ("m.room.member", alice["user_id"])} | (
            {NAME} if named else set())
        assert isinstance(room["bump_stamp"], int)
        if path.stable:
            assert room["membership"] == "join" and room["lists"] == ["all"]
    assert sorted(rooms(body), key=lambda r: rooms(body)[r]["bump_stamp"], reverse=True) == newest
    for i in range(3, 7):
        room = rooms(body)[all_rooms[i]]
        assert room["name"] == f"Room {i}" and "heroes" not in room
        assert room["joined_count"] == 1 and room["invited_count"] == 0
    unnamed = rooms(body)[all_rooms[7]]
    assert "name" not in unnamed
    assert [h["user_id"] for h in unnamed["heroes"]] == [bob["user_id"], carol["user_id"]]
    assert unnamed["heroes"][0]["displayname"] == "Bob Hero"
    assert unnamed["joined_count"] == 2 and unnamed["invited_count"] == 1
    assert bodies(unnamed) == ["r7"]
    # prev_batch continues the timeline backwards through /messages.
    busy = rooms(body)[all_rooms[6]]
    assert bodies(busy) == ["r6 m2", "r6 m3", "r6 m4"]
    older = await call(client, "GET", f"rooms/{quote(all_rooms[6])}/messages", user=alice,
                       query={"from": busy["prev_batch"], "dir": "b", "limit": "2"})
    assert [e["content"]["body"] for e in older["chunk"]] == ["r6 m1", "r6 m0"]
    # So does the pos itself, as a sync token.
    latest = await call(client, "GET", f"rooms/{quote(all_rooms[7])}/messages", user=alice,
                        query={"from": body["pos"], "dir": "b", "limit": "1"})
    assert [e["event_id"] for e in latest["chunk"]] == event_ids(unnamed)[-1:]


@both_paths
@pytest_twisted.ensureDeferred
async def test_required_state_wildcards_and_lazy_members(client, path):
    """
    ["*", "*"] is the whole state, ["m.room.member", "*"] every member,
    $ME the user's own member event; $LAZY the members who sent the
    timeline's events and, later, only those not sent before.
    """
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat", name="Lazy")
    for user in (bob, carol):
        await join(client, user, room_id)
    await send(client, carol, room_id, "from carol")
    await send(client, bob, room_id, "from bob")

    async def state_for(required_state, timeline_limit=1) -> list[dict]:
        conn = Connection(client, path, alice, lists={"l": path.list_config(
            0, 0, timeline_limit=timeline_limit, required_state=required_state)})
        return rooms(await conn.sync())[room_id]["required_state"]

    whole = await call(client, "GET", f"rooms/{quote(room_id)}/state", user=alice)
    assert keys(await state_for([("*", "*")])) == keys(whole)
    everyone = {alice["user_id"], bob["user_id"], carol["user_id"]}
    every_member = await state_for([("m.room.member", "*")])
    assert members(every_member) == everyone and len(every_member) == 3
    assert keys(await state_for([ME])) == {("m.room.member", alice["user_id"])}
    assert keys(await state_for([LAZY])) == {("m.room.member", bob["user_id"])}
    assert keys(await state_for([CREATE, ME, LAZY], timeline_limit=2)) == {
        CREATE, ("m.room.member", alice["user_id"]), ("m.room.member", bob["user_id"]),
        ("m.room.member", carol["user_id"])}
    # On a connection, a sender's member event comes once.
    conn = Connection(client, path, alice, lists={"l": path.list_config(0, 0, required_state=[LAZY])})
    assert members(rooms(await conn.sync())[room_id]["required_state"]) == {bob["user_id"]}
    await send(client, carol, room_id, "carol again")
    assert members(rooms(await conn.sync())[room_id]["required_state"]) == {carol["user_id"]}
    await send(client, bob, room_id, "bob again")
    room = rooms(await conn.sync())[room_id]
    assert bodies(room) == ["bob again"]
    assert not members(room.get("required_state") or [])


@both_paths
@pytest_twisted.ensureDeferred
async def test_incremental_responses_carry_only_what_changed(client, path):
    """
    A message into a room outside the range brings it in whole (initial),
    the count unchanged; a message into a room already sent is the only
    new event (num_live 1, not initial); a rename sends the new name and
    the name event.
    """
    alice = await client.register()
    all_rooms, _, _ = await eight_rooms(client, alice)
    conn = Connection(client, path, alice, lists={
        "all": path.list_config(0, 4, timeline_limit=3, required_state=[NAME, ME])})
    await conn.sync()
    seventh = all_rooms[1]  # index 6 of the list: outside [0, 4]
    await send(client, alice, seventh, "r1 news")
    body = await conn.sync()
    assert count(body, "all") == 8
    assert set(rooms(body)) == {seventh}
    room = rooms(body)[seventh]
    assert room["initial"] is True and room["name"] == "Room 1"
    assert bodies(room)[-2:] == ["r1", "r1 news"] and len(room["timeline"]) == 3
    assert room["num_live"] == 1
    assert keys(room["required_state"]) == {NAME, ("m.room.member", alice["user_id"])}

    known = all_rooms[7]
    news = await send(client, alice, known, "r7 news")
    body = await conn.sync()
    assert set(rooms(body)) == {known}
    room = rooms(body)[known]
    assert event_ids(room) == [news]
    assert room["num_live"] == 1
    assert not room.get("initial")
    assert not room.get("required_state")

    renamed = await put_state(client, alice, all_rooms[6], "m.room.name", {"name": "Renamed"})
    body = await conn.sync()
    assert set(rooms(body)) == {all_rooms[6]}
    room = rooms(body)[all_rooms[6]]
    assert room["name"] == "Renamed" and not room.get("initial")
    assert event_ids(room) == [renamed]
    assert [(e["event_id"], e["content"]) for e in room["required_state"]] == [(renamed, {"name": "Renamed"})]
    # Nothing since: nothing to send.
    assert rooms(await conn.sync(timeout=0)) == {}


@both_paths
@pytest_twisted.ensureDeferred
async def test_long_poll_wakes_for_a_message_and_times_out_empty(client, path):
    """
    A request waiting 10 s answers when another member sends, with that
    message; one with nothing new answers at its 0.5 s timeout with no
    rooms, and its pos goes on working.
    """
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    conn = Connection(client, path, alice, lists={"all": path.list_config(0, 9)})
    await conn.sync()
    waiting = within_deadline(defer.ensureDeferred(conn.sync(timeout=10_000)))
    await sleep(0.5)
    assert not waiting.called, "the long poll answered before anything happened"
    event_id = await send(client, bob, room_id, "wake up")
    body = await waiting
    assert event_ids(rooms(body)[room_id]) == [event_id]
    # Unread counts: on the unstable path only (MSC4186 dropped them).
    if path.stable:
        assert "notification_count" not in rooms(body)[room_id]
    else:
        assert rooms(body)[room_id]["notification_count"] == 1

    body = await conn.sync(timeout=500)
    assert rooms(body) == {}
    later = await send(client, bob, room_id, "later")
    assert event_ids(rooms(await conn.sync(timeout=0))[room_id]) == [later]


@both_paths
@pytest_twisted.ensureDeferred
async def test_room_subscriptions(client, path):
    """
    A subscribed room outside every list's range comes with the
    subscription's timeline_limit and required_state; subscriptions to a
    room the user is not in, or to no room at all, send nothing.
    """
    alice, bob = await client.register(), await client.register()
    subscribed = await create_room(client, alice, topic="The topic")
    for n in range(4):
        await send(client, alice, subscribed, f"s{n}")
    top = await create_room(client, alice)
    await send(client, alice, top, "top")
    secret = await create_room(client, bob, name="Bob's secret")
    await send(client, bob, secret, "secret message")
    missing = "!nosuchroom:test.local"
    conn = Connection(client, path, alice, lists={"main": path.list_config(0, 0)}, room_subscriptions={
        subscribed: path.room_config(4, [("m.room.topic", "")]),
        secret: path.room_config(10, [("*", "*")]),
        missing: path.room_config(10, [("*", "*")]),
    })
    body = await conn.sync()
    assert set(rooms(body)) == {top, subscribed}
    assert count(body, "main") == 2
    room = rooms(body)[subscribed]
    assert room["initial"] is True
    assert bodies(room) == ["s0", "s1", "s2", "s3"]
    assert [(e["type"], e["content"]["topic"]) for e in room["required_state"]] == [("m.room.topic", "The topic")]
    assert len(rooms(body)[top]["timeline"]) == 1
    if path.stable:
        assert "lists" not in room and rooms(body)[top]["lists"] == ["main"]
    # Activity in Bob's room does not reach Alice either.
    await send(client, bob, secret, "another secret")
    news = await send(client, alice, subscribed, "s4")
    body = await conn.sync()
    assert set(rooms(body)) == {subscribed}
    assert event_ids(rooms(body)[subscribed]) == [news]


@both_paths
@pytest_twisted.ensureDeferred
async def test_a_grown_timeline_limit_sends_the_earlier_events_at_once(client, path):
    """Raising timeline_limit from 1 to 4 sends the room again at once with 4 events, flagged expanded."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    for n in range(5):
        await send(client, alice, room_id, f"m{n}")
    conn = Connection(client, path, alice, lists={"all": path.list_config(0, 0, timeline_limit=1)})
    room = rooms(await conn.sync())[room_id]
    assert bodies(room) == ["m4"] and not path.expanded(room)
    conn.lists = {"all": path.list_config(0, 0, timeline_limit=4)}
    # Not held back until something happens in the room: a 10 s wait that
    # answers empty fails the test.
    room = rooms(await conn.sync(timeout=10_000))[room_id]
    assert path.expanded(room) is True
    assert bodies(room) == ["m1", "m2", "m3", "m4"]
    assert room.get("num_live", 0) == 0
    assert rooms(await conn.sync(timeout=0)) == {}


@both_paths
@pytest_twisted.ensureDeferred
async def test_a_pos_must_be_one_issued_to_this_device_and_connection(client, path):
    """
    A garbage pos, one never issued, another connection's, another
    device's and another user's are all M_UNKNOWN_POS.
    """
    alice, bob = await client.register(), await client.register()
    await create_room(client, alice)
    conn = Connection(client, path, alice, lists={"all": path.list_config()})
    pos = (await conn.sync())["pos"]
    phone = await second_device(client, alice)
    head, generation = pos.rsplit("_", 1)
    attempts = [
        (alice, {}, "garbage"),
        (alice, {}, f"{head}_{int(generation) + 1000}"),  # well formed, never issued
        (alice, {"conn_id": "another"}, pos),
        (phone, {}, pos),
        (bob, {}, pos),
    ]
    for user, extra, bad_pos in attempts:
        response = await path.post(client, user, {**conn.body(), **extra}, pos=bad_pos)
        assert response.code == 400, (user["device_id"], extra, bad_pos, response)
        assert response.json["errcode"] == "M_UNKNOWN_POS", response
    # The rightful owner still can.
    assert (await path.post(client, alice, conn.body(), pos=pos)).code == 200


@both_paths
@pytest_twisted.ensureDeferred
async def test_a_retried_request_gets_the_same_data_again(client, path):
    """The same request twice from one pos (the first answer lost) gets the same events; the next pos goes on."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    conn = Connection(client, path, alice, lists={"all": path.list_config(0, 9, timeline_limit=5)})
    first_pos = (await conn.sync())["pos"]
    sent = [await send(client, alice, room_id, "one"), await send(client, alice, room_id, "two")]
    lost = await conn.sync(pos=first_pos)
    retried = await conn.sync(pos=first_pos)
    assert set(rooms(retried)) == set(rooms(lost)) == {room_id}
    assert event_ids(rooms(retried)[room_id]) == event_ids(rooms(lost)[room_id]) == sent
    assert rooms(await conn.sync(timeout=0)) == {}


@pytest_twisted.ensureDeferred
async def test_a_connection_survives_a_clean_restart(start_homeserver, make_client):
    """
    After SIGTERM and a start on the same database, the last pos of each
    path still works, and the answer is incremental: the new message only,
    no room sent in full again.
    """
    server = start_homeserver("[rate_limits]\nenabled = false\n")
    client = make_client(server)
    alice = await client.register()
    busy, quiet = await create_room(client, alice), await create_room(client, alice)
    conns = [Connection(client, path, alice, lists={"all": path.list_config(0, 9, timeline_limit=3)},
                        conn_id=path.name) for path in (UNSTABLE, V4)]
    for conn in conns:
        assert set(rooms(await conn.sync())) == {busy, quiet}
    await send(client, alice, busy, "before")
    for conn in conns:
        assert bodies(rooms(await conn.sync())[busy]) == ["before"]
    server.stop()
    server.start()
    after = await send(client, alice, busy, "after")
    for conn in conns:
        body = await conn.sync()
        assert set(rooms(body)) == {busy}, conn.path.name
        assert event_ids(rooms(body)[busy]) == [after]
        assert not rooms(body)[busy].get("initial")


@both_paths
@pytest_twisted.ensureDeferred
async def test_requests_out_of_bounds_are_refused(client, path):
    """More than 100 lists or room subscriptions, a list that is not an object and an unknown set_presence: 400."""
    alice = await client.register()
    too_many_lists = {"lists": {f"l{n}": path.list_config() for n in range(101)}}
    too_many_subs = {"room_subscriptions": {f"!r{n}:test.local": path.room_config() for n in range(101)}}
    for body in (too_many_lists, too_many_subs):
        response = await path.post(client, alice, body)
        assert response.code == 400, response
        assert response.json["errcode"] == "M_INVALID_PARAM", response
    for body in ({"lists": []}, {"lists": {"l": "not a list"}},
                 {"lists": {"l": {**path.list_config(), "timeline_limit": "ten"}}}):
        response = await path.post(client, alice, body)
        assert response.code == 400, (body, response)
        assert response.json["errcode"].startswith("M_"), response
    response = await path.post(client, alice, {}, set_presence="sleepy")
    assert response.code == 400, response
    assert response.json["errcode"] == "M_INVALID_PARAM", response


@pytest_twisted.ensureDeferred
async def test_versions_advertise_simplified_sliding_sync(client):
    """/versions lists org.matrix.simplified_msc3575 among the unstable features, switched on."""
    response = await client.request("GET", "/_matrix/client/versions")
    assert response.json["unstable_features"].get("org.matrix.simplified_msc3575") is True
