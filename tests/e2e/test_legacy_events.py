"""
The deprecated stream endpoints through the real daemon: GET /events
(long-polling, and peeking into a world-readable room with room_id), GET
/events/{eventId}, GET /initialSync and GET /rooms/{roomId}/initialSync.
Every response is validated against the spec's OpenAPI by the client.
"""
from __future__ import annotations

import itertools

import pytest_twisted
from polling import LONG_POLL_MS, within_deadline
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

_txns = itertools.count(1)


async def sleep(seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


async def create_room(client, user: dict, **body) -> str:
    response = await client.request("POST", "createRoom", body, token=user["access_token"])
    assert response.code == 200, response
    return response.json["room_id"]


async def world_readable_room(client, user: dict) -> str:
    return await create_room(client, user, preset="public_chat", initial_state=[
        {"type": "m.room.history_visibility", "content": {"history_visibility": "world_readable"}},
        {"type": "m.room.guest_access", "content": {"guest_access": "can_join"}},
    ])


async def send(client, user: dict, room_id: str, body: str) -> str:
    response = await client.request("PUT", f"rooms/{room_id}/send/m.room.message/t{next(_txns)}",
                                    {"msgtype": "m.text", "body": body}, token=user["access_token"])
    assert response.code == 200, response
    return response.json["event_id"]


async def join(client, user: dict, room_id: str) -> None:
    response = await client.request("POST", f"rooms/{room_id}/join", {}, token=user["access_token"])
    assert response.code == 200, response


async def events(client, user: dict, **query):
    return await client.request("GET", "events", token=user["access_token"],
                                query={k: str(v) for k, v in query.items()})


async def events_ok(client, user: dict, **query) -> dict:
    response = await events(client, user, **query)
    assert response.code == 200, response
    return response.json


async def now_token(client, user: dict, **query) -> str:
    """Where the user's stream is now: /events with no wait answers at once with it."""
    return (await events_ok(client, user, timeout=0, **query))["end"]


async def initial_sync(client, user: dict, **query) -> dict:
    response = await client.request("GET", "initialSync", token=user["access_token"],
                                    query={k: str(v) for k, v in query.items()})
    assert response.code == 200, response
    return response.json


async def room_initial_sync(client, user: dict, room_id: str, **query):
    return await client.request("GET", f"rooms/{room_id}/initialSync", token=user["access_token"],
                                query={k: str(v) for k, v in query.items()})


def bodies(chunk: list[dict]) -> list[str]:
    return [e["content"]["body"] for e in chunk if e["type"] == "m.room.message"]


# -- GET /events -------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_events_long_poll_wakes_on_a_new_message(client):
    """A waiting /events answers with a message sent in one of the user's rooms, room_id included."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    token = await now_token(client, alice)
    waiting = within_deadline(defer.ensureDeferred(events_ok(client, alice, **{"from": token},
                                                             timeout=LONG_POLL_MS)))
    await sleep(0.5)
    assert not waiting.called, "/events answered before anything happened"
    event_id = await send(client, bob, room_id, "wake up")
    body = await waiting
    assert body["start"] == token
    assert [(e["event_id"], e["room_id"]) for e in body["chunk"]] == [(event_id, room_id)]
    assert body["end"] != token
    after = await events_ok(client, alice, **{"from": body["end"]}, timeout=0)
    assert after["chunk"] == [], "the next call from end does not repeat the message"


@pytest_twisted.ensureDeferred
async def test_events_already_there_are_answered_at_once(client):
    """Events after `from` come back oldest first without waiting, with the sender's transaction id."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    token = await now_token(client, alice)
    sent = [await send(client, alice, room_id, f"m{i}") for i in range(3)]
    body = await within_deadline(defer.ensureDeferred(
        events_ok(client, alice, **{"from": token}, timeout=LONG_POLL_MS)))
    assert [e["event_id"] for e in body["chunk"]] == sent
    assert all("transaction_id" in e["unsigned"] for e in body["chunk"])


@pytest_twisted.ensureDeferred
async def test_events_times_out_with_nothing_new(client):
    """With nothing new, /events answers at its timeout with an empty chunk and end where it started."""
    alice = await client.register()
    await create_room(client, alice)
    token = await now_token(client, alice)
    body = await within_deadline(defer.ensureDeferred(events_ok(client, alice, **{"from": token}, timeout=300)))
    assert body["chunk"] == []
    assert body["end"] == token


@pytest_twisted.ensureDeferred
async def test_events_shows_an_invite(client):
    """An invite to a room the user is not in reaches their stream (their own member event)."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice)
    token = await now_token(client, bob)
    await send(client, alice, room_id, "before the invite: not bob's to see")
    invited = await client.request("POST", f"rooms/{room_id}/invite", {"user_id": bob["user_id"]},
                                   token=alice["access_token"])
    assert invited.code == 200, invited
    body = await events_ok(client, bob, **{"from": token}, timeout=0)
    assert [(e["type"], e["state_key"], e["content"]["membership"]) for e in body["chunk"]] == [
        ("m.room.member", bob["user_id"], "invite")]


@pytest_twisted.ensureDeferred
async def test_events_bad_from_token_is_400(client):
    """A `from` that is not a token of this server is 400 M_INVALID_PARAM."""
    alice = await client.register()
    response = await events(client, alice, **{"from": "garbage"}, timeout=0)
    assert response.code == 400, response
    assert response.json["errcode"] == "M_INVALID_PARAM"


# -- peeking ---------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_peeking_into_a_world_readable_room(client):
    """A non-member reads a world-readable room with room initialSync, then /events?room_id= wakes on its messages."""
    alice, bob = await client.register(), await client.register()
    room_id = await world_readable_room(client, alice)
    earlier = await send(client, alice, room_id, "history")
    response = await room_initial_sync(client, bob, room_id)
    assert response.code == 200, response
    snapshot = response.json
    assert snapshot["room_id"] == room_id
    assert "membership" not in snapshot, "a peeker has no membership"
    assert earlier in [e["event_id"] for e in snapshot["messages"]["chunk"]]
    assert ("m.room.create", "") in {(e["type"], e["state_key"]) for e in snapshot["state"]}
    waiting = within_deadline(defer.ensureDeferred(events_ok(
        client, bob, room_id=room_id, **{"from": snapshot["messages"]["end"]}, timeout=LONG_POLL_MS)))
    await sleep(0.5)
    assert not waiting.called, "the peek answered before anything happened"
    event_id = await send(client, alice, room_id, "live")
    body = await waiting
    assert [e["event_id"] for e in body["chunk"]] == [event_id]
    assert body["chunk"][0]["room_id"] == room_id


@pytest_twisted.ensureDeferred
async def test_peeking_into_a_private_room_is_403(client):
    """A non-member gets 403 from room initialSync and /events?room_id= for a room that is not world-readable."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await send(client, alice, room_id, "members only")
    refused = await room_initial_sync(client, bob, room_id)
    assert refused.code == 403, refused
    assert refused.json["errcode"] == "M_FORBIDDEN"
    peek = await events(client, bob, room_id=room_id, timeout=LONG_POLL_MS)
    assert peek.code == 403, peek
    assert peek.json["errcode"] == "M_FORBIDDEN"


@pytest_twisted.ensureDeferred
async def test_guests_may_peek_but_not_read_the_whole_stream(client):
    """A guest peeks into a world-readable room; /events without room_id is 400 M_MISSING_PARAM (as Synapse)."""
    alice = await client.register()
    guest = await client.register_guest()
    room_id = await world_readable_room(client, alice)
    event_id = await send(client, alice, room_id, "for everyone")
    response = await room_initial_sync(client, guest, room_id)
    assert response.code == 200, response
    assert event_id in [e["event_id"] for e in response.json["messages"]["chunk"]]
    token = await now_token(client, guest, room_id=room_id)
    later = await send(client, alice, room_id, "and this")
    peek = await events_ok(client, guest, room_id=room_id, **{"from": token}, timeout=0)
    assert [e["event_id"] for e in peek["chunk"]] == [later]
    stream = await events(client, guest, timeout=0)
    assert stream.code == 400, stream
    assert stream.json["errcode"] == "M_MISSING_PARAM"
    everything = await client.request("GET", "initialSync", token=guest["access_token"])
    assert everything.code == 403, everything


# -- GET /events/{eventId} -------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_one_event_by_id(client):
    """A member gets the event; a non-member of a private room and an unknown id get 404."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice)
    event_id = await send(client, alice, room_id, "just this")
    response = await client.request("GET", f"events/{event_id}", token=alice["access_token"])
    assert response.code == 200, response
    assert (response.json["event_id"], response.json["room_id"], response.json["content"]["body"]) == (
        event_id, room_id, "just this")
    hidden = await client.request("GET", f"events/{event_id}", token=bob["access_token"])
    assert hidden.code == 404, hidden
    unknown = await client.request("GET", "events/$nothere", token=alice["access_token"])
    assert unknown.code == 404, unknown


# -- GET /initialSync ------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_initial_sync_lists_rooms_with_messages_and_state(client):
    """Joined rooms come with their latest `limit` messages (oldest first) and current state, invites with the invite."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, name="Talk")
    for body in ("one", "two", "three"):
        await send(client, alice, room_id, body)
    other = await create_room(client, bob, preset="public_chat")
    assert (await client.request("PUT", "directory/list/room/" + other, {"visibility": "public"},
                                 token=bob["access_token"])).code == 200
    invited = await client.request("POST", f"rooms/{other}/invite", {"user_id": alice["user_id"]},
                                   token=bob["access_token"])
    assert invited.code == 200, invited
    tagged = await client.request("PUT", f"user/{alice['user_id']}/rooms/{room_id}/tags/u.work",
                                  {"order": 0.5}, token=alice["access_token"])
    assert tagged.code == 200, tagged
    snapshot = await initial_sync(client, alice, limit=2)
    rooms = {room["room_id"]: room for room in snapshot["rooms"]}
    joined = rooms[room_id]
    assert joined["membership"] == "join"
    assert bodies(joined["messages"]["chunk"]) == ["two", "three"]
    assert all(e["room_id"] == room_id for e in joined["messages"]["chunk"])
    state = {(e["type"], e["state_key"]): e for e in joined["state"]}
    assert state[("m.room.name", "")]["content"]["name"] == "Talk"
    assert state[("m.room.member", alice["user_id"])]["content"]["membership"] == "join"
    assert joined["visibility"] == "private"
    assert {"type": "m.tag", "content": {"tags": {"u.work": {"order": 0.5}}}} in joined["account_data"]
    invite = rooms[other]
    assert invite["membership"] == "invite"
    assert invite["invite"]["state_key"] == alice["user_id"]
    assert invite["visibility"] == "public"
    older = await client.request("GET", f"rooms/{room_id}/messages", token=alice["access_token"],
                                 query={"dir": "b", "from": joined["messages"]["start"], "limit": "1"})
    assert older.code == 200, older
    assert bodies(older.json["chunk"]) == ["one"], "messages.start pages back to the earlier message"


@pytest_twisted.ensureDeferred
async def test_initial_sync_end_continues_on_events(client):
    """The snapshot's end is a `from` for /events, which then wakes on the next message."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    snapshot = await initial_sync(client, alice)
    waiting = within_deadline(defer.ensureDeferred(events_ok(client, alice, **{"from": snapshot["end"]},
                                                             timeout=LONG_POLL_MS)))
    await sleep(0.3)
    assert not waiting.called, "/events answered before anything happened"
    event_id = await send(client, alice, room_id, "next")
    assert [e["event_id"] for e in (await waiting)["chunk"]] == [event_id]


@pytest_twisted.ensureDeferred
async def test_initial_sync_archived_rooms(client):
    """Left rooms appear only with archived=true, with the messages up to the leave and not after."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, bob, preset="public_chat")
    await join(client, alice, room_id)
    await send(client, bob, room_id, "while alice was there")
    assert (await client.request("POST", f"rooms/{room_id}/leave", {}, token=alice["access_token"])).code == 200
    await send(client, bob, room_id, "after alice left")
    assert room_id not in [room["room_id"] for room in (await initial_sync(client, alice))["rooms"]]
    archived = {room["room_id"]: room for room in (await initial_sync(client, alice, archived="true"))["rooms"]}
    left = archived[room_id]
    assert left["membership"] == "leave"
    assert bodies(left["messages"]["chunk"]) == ["while alice was there"]
    own = {(e["type"], e["state_key"]): e for e in left["state"]}[("m.room.member", alice["user_id"])]
    assert own["content"]["membership"] == "leave"


# -- GET /rooms/{roomId}/initialSync ------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_room_initial_sync_for_a_member(client):
    """A member gets membership join, the latest messages oldest first, the current state and the room's tags."""
    alice = await client.register()
    room_id = await create_room(client, alice, topic="About things")
    for body in ("a", "b", "c"):
        await send(client, alice, room_id, body)
    assert (await client.request("PUT", f"user/{alice['user_id']}/rooms/{room_id}/tags/m.favourite", {},
                                 token=alice["access_token"])).code == 200
    response = await room_initial_sync(client, alice, room_id, limit=2)
    assert response.code == 200, response
    room = response.json
    assert room["membership"] == "join"
    assert bodies(room["messages"]["chunk"]) == ["b", "c"]
    assert "start" in room["messages"]
    state = {(e["type"], e["state_key"]): e for e in room["state"]}
    assert state[("m.room.topic", "")]["content"]["topic"] == "About things"
    assert {"type": "m.tag", "content": {"tags": {"m.favourite": {}}}} in room["account_data"]
