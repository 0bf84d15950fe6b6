"""
Reading room history through the real daemon: /messages pagination and
filters, /context, /event, /members, /joined_members, /timestamp_to_event,
with history visibility applied.
"""
from __future__ import annotations

import itertools
import json

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

_txns = itertools.count(1)


# -- helpers ---------------------------------------------------------------

async def create_room(client, user: dict, **body) -> str:
    response = await client.request("POST", "createRoom", body, token=user["access_token"])
    assert response.code == 200, response
    return response.json["room_id"]


async def create_room_with_visibility(client, user: dict, visibility: str) -> str:
    """A public room whose history_visibility is C{visibility}."""
    return await create_room(client, user, preset="public_chat", initial_state=[
        {"type": "m.room.history_visibility", "content": {"history_visibility": visibility}},
    ])


async def send(client, user: dict, room_id: str, body: str, event_type: str = "m.room.message") -> str:
    content = {"msgtype": "m.text", "body": body} if event_type == "m.room.message" else {"body": body}
    response = await client.request(
        "PUT", f"rooms/{room_id}/send/{event_type}/t{next(_txns)}", content, token=user["access_token"]
    )
    assert response.code == 200, response
    return response.json["event_id"]


async def join(client, user: dict, room_id: str) -> None:
    response = await client.request("POST", f"rooms/{room_id}/join", {}, token=user["access_token"])
    assert response.code == 200, response


async def leave(client, user: dict, room_id: str) -> None:
    response = await client.request("POST", f"rooms/{room_id}/leave", {}, token=user["access_token"])
    assert response.code == 200, response


async def messages(client, user: dict, room_id: str, **query):
    return await client.request("GET", f"rooms/{room_id}/messages", token=user["access_token"],
                                query=query)


async def page_ok(client, user: dict, room_id: str, **query) -> dict:
    response = await messages(client, user, room_id, **query)
    assert response.code == 200, response
    return response.json


def bodies(events: list[dict]) -> list[str]:
    return [e["content"]["body"] for e in events if e["type"] == "m.room.message"]


async def visible_bodies(client, user: dict, room_id: str) -> list[str]:
    """Every message body the user can page back to, oldest first."""
    body = await page_ok(client, user, room_id, dir="b", limit="1000")
    assert "end" not in body
    return list(reversed(bodies(body["chunk"])))


async def current_token(client, user: dict) -> str:
    response = await client.request("GET", "sync", token=user["access_token"],
                                    query={"filter": json.dumps({"room": {"timeline": {"limit": 1}}})})
    assert response.code == 200, response
    return response.json["next_batch"]


def assert_error(response, code: int, errcode: str) -> None:
    assert response.code == code, response
    assert response.json["errcode"] == errcode, response


# -- /messages -------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_paginate_back_and_forward(client):
    """30 messages page back 10 at a time, newest first, and forward again in the same order."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    sent = [await send(client, alice, room_id, f"m{i}") for i in range(30)]

    backwards, token, pages = [], None, 0
    while True:
        query = {"dir": "b", "limit": "10"}
        if token is not None:
            query["from"] = token
        body = await page_ok(client, alice, room_id, **query)
        if token is not None:
            assert body["start"] == token
        assert len(body["chunk"]) <= 10
        backwards += body["chunk"]
        pages += 1
        if "end" not in body:
            break
        token = body["end"]
    ids = [e["event_id"] for e in backwards]
    assert ids[:30] == list(reversed(sent))
    assert backwards[-1]["type"] == "m.room.create"
    assert len(ids) == len(set(ids)) and pages == (len(ids) + 9) // 10

    forwards, token = [], None
    while True:
        query = {"dir": "f", "limit": "10"}
        if token is not None:
            query["from"] = token
        body = await page_ok(client, alice, room_id, **query)
        forwards += body["chunk"]
        if "end" not in body:
            assert body["chunk"] == []
            break
        token = body["end"]
    assert [e["event_id"] for e in forwards] == list(reversed(ids))


@pytest_twisted.ensureDeferred
async def test_end_absent_at_the_start_of_the_room(client):
    """Paging back past the room's first event leaves `end` out; the last page ends at m.room.create."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    await send(client, alice, room_id, "hello")
    body = await page_ok(client, alice, room_id, dir="b", limit="100")
    assert "end" not in body
    assert body["chunk"][0]["content"]["body"] == "hello"
    assert body["chunk"][-1]["type"] == "m.room.create"
    first = await page_ok(client, alice, room_id, dir="b", limit="2")
    assert "end" in first and len(first["chunk"]) == 2


@pytest_twisted.ensureDeferred
async def test_sync_tokens_start_pagination(client):
    """A /sync prev_batch pages back into the events before the timeline; next_batch covers it all."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    for i in range(6):
        await send(client, alice, room_id, f"m{i}")
    response = await client.request(
        "GET", "sync", token=alice["access_token"],
        query={"filter": json.dumps({"room": {"timeline": {"limit": 2}}})},
    )
    assert response.code == 200, response
    timeline = response.json["rooms"]["join"][room_id]["timeline"]
    assert bodies(timeline["events"]) == ["m4", "m5"]
    before = await page_ok(client, alice, room_id, dir="b", limit="3", **{"from": timeline["prev_batch"]})
    assert bodies(before["chunk"]) == ["m3", "m2", "m1"]
    latest = await page_ok(client, alice, room_id, dir="b", limit="1",
                           **{"from": response.json["next_batch"]})
    assert bodies(latest["chunk"]) == ["m5"]
    after = await page_ok(client, alice, room_id, dir="f", **{"from": response.json["next_batch"]})
    assert after["chunk"] == [] and "end" not in after


@pytest_twisted.ensureDeferred
async def test_to_token_bounds_a_page(client):
    """`to` stops a backwards page at that token."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    await send(client, alice, room_id, "a")
    middle = await current_token(client, alice)
    await send(client, alice, room_id, "b")
    await send(client, alice, room_id, "c")
    body = await page_ok(client, alice, room_id, dir="b", to=middle)
    assert bodies(body["chunk"]) == ["c", "b"] and len(body["chunk"]) == 2
    forward = await page_ok(client, alice, room_id, dir="f", to=middle, **{"from": "s0_0"})
    assert bodies(forward["chunk"]) == ["a"] and forward["chunk"][0]["type"] == "m.room.create"


@pytest_twisted.ensureDeferred
async def test_filter_by_types(client):
    """A RoomEventFilter keeps only the types asked for, with wildcards and exclusions."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    for i in range(3):
        await send(client, alice, room_id, f"m{i}")
        await send(client, alice, room_id, f"p{i}", event_type="org.example.ping")
    only = await page_ok(client, alice, room_id, dir="b", limit="4",
                         filter=json.dumps({"types": ["m.room.message"]}))
    assert [e["type"] for e in only["chunk"]] == ["m.room.message"] * 3
    assert "end" not in only
    pings = await page_ok(client, alice, room_id, dir="b", filter=json.dumps({"not_types": ["m.*"]}))
    assert [e["content"]["body"] for e in pings["chunk"]] == ["p2", "p1", "p0"]
    limited = await page_ok(client, alice, room_id, dir="b", limit="2",
                            filter=json.dumps({"types": ["org.example.*"]}))
    assert [e["content"]["body"] for e in limited["chunk"]] == ["p2", "p1"]
    rest = await page_ok(client, alice, room_id, dir="b", limit="2", **{"from": limited["end"]},
                         filter=json.dumps({"types": ["org.example.*"]}))
    assert [e["content"]["body"] for e in rest["chunk"]] == ["p0"] and "end" not in rest
    other_room = await page_ok(client, alice, room_id, dir="b",
                               filter=json.dumps({"not_rooms": [room_id]}))
    assert other_room["chunk"] == []
    image = {"msgtype": "m.image", "body": "cat.png", "url": "mxc://test.local/cat"}
    response = await client.request("PUT", f"rooms/{room_id}/send/m.room.message/t{next(_txns)}",
                                    image, token=alice["access_token"])
    assert response.code == 200, response
    with_url = await page_ok(client, alice, room_id, dir="b", filter=json.dumps({"contains_url": True}))
    assert bodies(with_url["chunk"]) == ["cat.png"] and len(with_url["chunk"]) == 1
    without_url = await page_ok(client, alice, room_id, dir="b", limit="1",
                                filter=json.dumps({"contains_url": False, "senders": [alice["user_id"]]}))
    assert [e["content"]["body"] for e in without_url["chunk"]] == ["p2"]


@pytest_twisted.ensureDeferred
async def test_lazy_loaded_members_in_state(client):
    """With lazy_load_members, `state` holds exactly the member events of the chunk's senders."""
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    await join(client, carol, room_id)
    await send(client, carol, room_id, "from carol")
    await send(client, alice, room_id, "from alice")
    await send(client, bob, room_id, "from bob")
    lazy = json.dumps({"lazy_load_members": True, "types": ["m.room.message"]})
    body = await page_ok(client, alice, room_id, dir="b", limit="2", filter=lazy)
    assert bodies(body["chunk"]) == ["from bob", "from alice"]
    state = body["state"]
    assert all(e["type"] == "m.room.member" for e in state)
    assert sorted(e["state_key"] for e in state) == sorted([alice["user_id"], bob["user_id"]])
    assert all(e["content"]["membership"] == "join" for e in state)
    plain = await page_ok(client, alice, room_id, dir="b", limit="2")
    assert "state" not in plain


@pytest_twisted.ensureDeferred
async def test_bad_parameters(client):
    """A missing dir is M_MISSING_PARAM; a bad dir, token, limit or filter is M_INVALID_PARAM."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    assert_error(await messages(client, alice, room_id), 400, "M_MISSING_PARAM")
    assert_error(await messages(client, alice, room_id, dir="x"), 400, "M_INVALID_PARAM")
    assert_error(await messages(client, alice, room_id, dir="b", **{"from": "nonsense"}),
                 400, "M_INVALID_PARAM")
    assert_error(await messages(client, alice, room_id, dir="b", limit="ten"), 400, "M_INVALID_PARAM")
    assert_error(await messages(client, alice, room_id, dir="b", filter="{not json"),
                 400, "M_INVALID_PARAM")


@pytest_twisted.ensureDeferred
async def test_redacted_events_are_served_redacted(client):
    """A redacted message comes back with its content stripped and the redaction in unsigned."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    event_id = await send(client, alice, room_id, "secret")
    response = await client.request("PUT", f"rooms/{room_id}/redact/{event_id}/r{next(_txns)}",
                                    {"reason": "oops"}, token=alice["access_token"])
    assert response.code == 200, response
    redaction_id = response.json["event_id"]
    body = await page_ok(client, alice, room_id, dir="b", limit="2")
    redacted = next(e for e in body["chunk"] if e["event_id"] == event_id)
    assert redacted["content"] == {}
    assert redacted["unsigned"]["redacted_because"]["event_id"] == redaction_id
    single = await client.request("GET", f"rooms/{room_id}/event/{event_id}", token=alice["access_token"])
    assert single.code == 200 and single.json["content"] == {}


# -- /context and /event ---------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_context_around_an_event(client):
    """/context returns the event, the limit split before and after it, usable tokens and the state."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    sent = [await send(client, alice, room_id, f"m{i}") for i in range(10)]
    response = await client.request("GET", f"rooms/{room_id}/context/{sent[5]}",
                                    token=alice["access_token"], query={"limit": "4"})
    assert response.code == 200, response
    body = response.json
    assert body["event"]["event_id"] == sent[5]
    assert [e["event_id"] for e in body["events_before"]] == [sent[4], sent[3]]
    assert [e["event_id"] for e in body["events_after"]] == [sent[6], sent[7]]
    state_types = {e["type"] for e in body["state"]}
    assert {"m.room.create", "m.room.member", "m.room.power_levels"} <= state_types
    older = await page_ok(client, alice, room_id, dir="b", limit="1", **{"from": body["start"]})
    assert [e["event_id"] for e in older["chunk"]] == [sent[2]]
    newer = await page_ok(client, alice, room_id, dir="f", limit="1", **{"from": body["end"]})
    assert [e["event_id"] for e in newer["chunk"]] == [sent[8]]
    lazy = await client.request(
        "GET", f"rooms/{room_id}/context/{sent[5]}", token=alice["access_token"],
        query={"limit": "2", "filter": json.dumps({"lazy_load_members": True})},
    )
    assert lazy.code == 200, lazy
    assert [(e["type"], e["state_key"]) for e in lazy.json["state"]] == [("m.room.member", alice["user_id"])]
    missing = await client.request("GET", f"rooms/{room_id}/context/$nope", token=alice["access_token"])
    assert_error(missing, 404, "M_NOT_FOUND")


@pytest_twisted.ensureDeferred
async def test_event_by_id(client):
    """/event returns a visible event; unknown or invisible ones are 404 M_NOT_FOUND."""
    alice, stranger = await client.register(), await client.register()
    room_id = await create_room(client, alice)
    event_id = await send(client, alice, room_id, "hi")
    found = await client.request("GET", f"rooms/{room_id}/event/{event_id}", token=alice["access_token"])
    assert found.code == 200, found
    assert found.json["content"]["body"] == "hi" and found.json["room_id"] == room_id
    unknown = await client.request("GET", f"rooms/{room_id}/event/$unknown", token=alice["access_token"])
    assert_error(unknown, 404, "M_NOT_FOUND")
    hidden = await client.request("GET", f"rooms/{room_id}/event/{event_id}", token=stranger["access_token"])
    assert_error(hidden, 404, "M_NOT_FOUND")
    other_room = await create_room(client, alice)
    wrong_room = await client.request("GET", f"rooms/{other_room}/event/{event_id}",
                                      token=alice["access_token"])
    assert_error(wrong_room, 404, "M_NOT_FOUND")


# -- members ---------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_members_with_at_membership_and_not_membership(client):
    """/members filters by membership (an 'or' of membership and not_membership) and reads the past with `at`."""
    alice, bob, carol, dave = [await client.register() for _ in range(4)]
    room_id = await create_room(client, alice, preset="public_chat")
    before_bob = await current_token(client, alice)
    await join(client, bob, room_id)
    response = await client.request("POST", f"rooms/{room_id}/invite", {"user_id": carol["user_id"]},
                                    token=alice["access_token"])
    assert response.code == 200, response
    await join(client, dave, room_id)
    await leave(client, dave, room_id)

    async def members(**query) -> dict:
        response = await client.request("GET", f"rooms/{room_id}/members", token=alice["access_token"],
                                        query=query)
        assert response.code == 200, response
        return {e["state_key"]: e["content"]["membership"] for e in response.json["chunk"]}

    everyone = {alice["user_id"]: "join", bob["user_id"]: "join", carol["user_id"]: "invite",
                dave["user_id"]: "leave"}
    assert await members() == everyone
    assert await members(membership="join") == {alice["user_id"]: "join", bob["user_id"]: "join"}
    assert await members(not_membership="leave") == {
        k: v for k, v in everyone.items() if v != "leave"}
    assert await members(membership="leave", not_membership="join") == {
        carol["user_id"]: "invite", dave["user_id"]: "leave"}
    assert await members(at=before_bob) == {alice["user_id"]: "join"}
    bad = await client.request("GET", f"rooms/{room_id}/members", token=alice["access_token"],
                               query={"membership": "joined"})
    assert_error(bad, 400, "M_INVALID_PARAM")


@pytest_twisted.ensureDeferred
async def test_members_of_a_departed_user_are_those_when_they_left(client):
    """After leaving, /members shows the room as it was when the user left."""
    alice, bob, carol = [await client.register() for _ in range(3)]
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    await leave(client, bob, room_id)
    await join(client, carol, room_id)
    response = await client.request("GET", f"rooms/{room_id}/members", token=bob["access_token"])
    assert response.code == 200, response
    seen = {e["state_key"]: e["content"]["membership"] for e in response.json["chunk"]}
    assert seen == {alice["user_id"]: "join", bob["user_id"]: "leave"}


@pytest_twisted.ensureDeferred
async def test_joined_members(client):
    """/joined_members maps each joined user to the display name and avatar of their member event."""
    alice, bob, carol = [await client.register() for _ in range(3)]
    avatar = "mxc://test.local/bobface"
    for field, value in (("displayname", "Bob"), ("avatar_url", avatar)):
        response = await client.request("PUT", f"profile/{bob['user_id']}/{field}", {field: value},
                                        token=bob["access_token"])
        assert response.code == 200, response
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    response = await client.request("GET", f"rooms/{room_id}/joined_members", token=alice["access_token"])
    assert response.code == 200, response
    joined = response.json["joined"]
    assert set(joined) == {alice["user_id"], bob["user_id"]}
    assert joined[bob["user_id"]] == {"display_name": "Bob", "avatar_url": avatar}
    outsider = await client.request("GET", f"rooms/{room_id}/joined_members", token=carol["access_token"])
    assert_error(outsider, 403, "M_FORBIDDEN")


# -- timestamp_to_event ----------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_timestamp_to_event_both_directions(client):
    """The closest event at or after (f) or at or before (b) a timestamp; 404 when there is none."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    ids, stamps = [], []
    for i in range(3):
        await deferLater(reactor, 0.02, lambda: None)
        event_id = await send(client, alice, room_id, f"m{i}")
        event = await client.request("GET", f"rooms/{room_id}/event/{event_id}", token=alice["access_token"])
        ids.append(event_id)
        stamps.append(event.json["origin_server_ts"])
    assert stamps[0] < stamps[1] < stamps[2]
    path = f"/_matrix/client/v1/rooms/{room_id}/timestamp_to_event"

    async def find(ts: int, direction: str):
        return await client.request("GET", path, token=alice["access_token"],
                                    query={"ts": str(ts), "dir": direction})

    forward = await find(stamps[1] - 1, "f")
    assert forward.code == 200, forward
    assert forward.json == {"event_id": ids[1], "origin_server_ts": stamps[1]}
    backward = await find(stamps[2] - 1, "b")
    assert backward.json == {"event_id": ids[1], "origin_server_ts": stamps[1]}
    assert (await find(stamps[1], "b")).json["event_id"] == ids[1]
    assert_error(await find(stamps[2] + 60_000, "f"), 404, "M_NOT_FOUND")
    assert_error(await find(1, "b"), 404, "M_NOT_FOUND")
    stranger = await client.register()
    denied = await client.request("GET", path, token=stranger["access_token"],
                                  query={"ts": str(stamps[1]), "dir": "f"})
    assert_error(denied, 403, "M_FORBIDDEN")


# -- history visibility ----------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_joined_visibility_hides_earlier_messages_shared_shows_them(client):
    """A later joiner cannot see earlier messages under `joined` visibility, but can under `shared`."""
    alice, bob = await client.register(), await client.register()
    joined_room = await create_room_with_visibility(client, alice, "joined")
    shared_room = await create_room_with_visibility(client, alice, "shared")
    early = {}
    for room_id in (joined_room, shared_room):
        early[room_id] = await send(client, alice, room_id, "before bob")
        await join(client, bob, room_id)
        await send(client, alice, room_id, "after bob")

    assert await visible_bodies(client, bob, joined_room) == ["after bob"]
    assert await visible_bodies(client, bob, shared_room) == ["before bob", "after bob"]
    assert await visible_bodies(client, alice, joined_room) == ["before bob", "after bob"]

    hidden = await client.request("GET", f"rooms/{joined_room}/event/{early[joined_room]}",
                                   token=bob["access_token"])
    assert_error(hidden, 404, "M_NOT_FOUND")
    shown = await client.request("GET", f"rooms/{shared_room}/event/{early[shared_room]}",
                                 token=bob["access_token"])
    assert shown.code == 200, shown
    context = await client.request("GET", f"rooms/{joined_room}/context/{early[joined_room]}",
                                   token=bob["access_token"])
    assert_error(context, 403, "M_FORBIDDEN")
    ts = (await client.request("GET", f"rooms/{joined_room}/event/{early[joined_room]}",
                               token=alice["access_token"])).json["origin_server_ts"]
    found = await client.request("GET", f"/_matrix/client/v1/rooms/{joined_room}/timestamp_to_event",
                                 token=bob["access_token"], query={"ts": str(ts - 1), "dir": "f"})
    assert found.code == 200, found
    assert found.json["event_id"] != early[joined_room]  # skipped: bob may not see it


@pytest_twisted.ensureDeferred
async def test_a_user_who_left_sees_history_up_to_their_leave(client):
    """After leaving, a user still sees what they could before, and nothing sent after."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room_with_visibility(client, alice, "joined")
    await join(client, bob, room_id)
    await send(client, alice, room_id, "while bob was here")
    await leave(client, bob, room_id)
    late = await send(client, alice, room_id, "after bob left")
    assert await visible_bodies(client, bob, room_id) == ["while bob was here"]
    hidden = await client.request("GET", f"rooms/{room_id}/event/{late}", token=bob["access_token"])
    assert_error(hidden, 404, "M_NOT_FOUND")


@pytest_twisted.ensureDeferred
async def test_non_member_is_forbidden(client):
    """A user who never joined a shared room gets 403 M_FORBIDDEN from messages, context and members."""
    alice, stranger = await client.register(), await client.register()
    room_id = await create_room_with_visibility(client, alice, "shared")
    event_id = await send(client, alice, room_id, "private")
    token = stranger["access_token"]
    assert_error(await messages(client, stranger, room_id, dir="b"), 403, "M_FORBIDDEN")
    assert_error(await client.request("GET", f"rooms/{room_id}/context/{event_id}", token=token),
                 403, "M_FORBIDDEN")
    assert_error(await client.request("GET", f"rooms/{room_id}/members", token=token),
                 403, "M_FORBIDDEN")
    assert_error(await messages(client, stranger, "!nosuchroom:test.local", dir="b"), 403, "M_FORBIDDEN")


@pytest_twisted.ensureDeferred
async def test_world_readable_lets_non_members_read(client):
    """In a world_readable room a non-member, even a guest, reads messages, events and members."""
    alice, stranger = await client.register(), await client.register()
    guest = await client.register_guest()
    room_id = await create_room_with_visibility(client, alice, "world_readable")
    event_id = await send(client, alice, room_id, "for everyone")
    for reader in (stranger, guest):
        body = await page_ok(client, reader, room_id, dir="b")
        assert "for everyone" in bodies(body["chunk"])
        event = await client.request("GET", f"rooms/{room_id}/event/{event_id}",
                                     token=reader["access_token"])
        assert event.code == 200, event
        members = await client.request("GET", f"rooms/{room_id}/members", token=reader["access_token"])
        assert members.code == 200, members
        assert [e["state_key"] for e in members.json["chunk"]] == [alice["user_id"]]
    # Changing to joined hides what follows from non-members, not what came before.
    response = await client.request(
        "PUT", f"rooms/{room_id}/state/m.room.history_visibility/",
        {"history_visibility": "joined"}, token=alice["access_token"],
    )
    assert response.code == 200, response
    await send(client, alice, room_id, "members only")
    assert_error(await messages(client, stranger, room_id, dir="b"), 403, "M_FORBIDDEN")
