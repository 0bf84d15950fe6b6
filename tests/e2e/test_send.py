"""
Sending events through the real daemon: PUT /send with transaction ids
(retries, scopes, concurrency, restarts), size and JSON limits, and room
state (PUT/GET one key, GET the whole state).

Every event read back is checked against the spec's event schemas.
"""
from __future__ import annotations

import json

import pytest
import pytest_twisted
from events_schema import validate_event, validate_events, validate_sync_response
from twisted.internet import defer

LONG_TIMELINE = json.dumps({"room": {"timeline": {"limit": 100}}})


async def create_room(client, user: dict, **body) -> str:
    response = await client.request("POST", "createRoom", body, token=user["access_token"])
    assert response.code == 200, response
    return response.json["room_id"]


async def send(client, user: dict, room_id: str, txn_id: str, content=None,
               event_type: str = "m.room.message", **kwargs):
    if content is None:
        content = {"msgtype": "m.text", "body": f"message {txn_id}"}
    return await client.request("PUT", f"rooms/{room_id}/send/{event_type}/{txn_id}", content,
                                token=user["access_token"], **kwargs)


async def room_timeline(client, user: dict, room_id: str) -> list[dict]:
    """The room's whole timeline (up to 100 events) from an initial sync, schema-checked."""
    response = await client.request("GET", "sync", token=user["access_token"],
                                    query={"filter": LONG_TIMELINE})
    assert response.code == 200, response
    validate_sync_response(response.json)
    room = response.json["rooms"]["join"][room_id]
    assert room["timeline"]["limited"] is False
    return room["timeline"]["events"]


async def new_device(client, user: dict) -> dict:
    """The same user logged in on a second device; its login response."""
    login = await client.login(user["user_id"])
    assert login.code == 200, login
    assert login.json["device_id"] != user["device_id"]
    return login.json


# -- sending and transaction ids ------------------------------------------

@pytest_twisted.ensureDeferred
async def test_send_returns_an_event_id_and_the_event_is_in_the_room(client):
    """PUT /send answers an event id; the event is in the room's timeline with the content sent."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    content = {"msgtype": "m.text", "body": "hello", "format": "org.matrix.custom.html",
               "formatted_body": "<b>hello</b>"}
    sent = await send(client, alice, room_id, "t1", content)
    assert sent.code == 200, sent
    event_id = sent.json["event_id"]
    assert event_id.startswith("$")
    event = next(e for e in await room_timeline(client, alice, room_id) if e["event_id"] == event_id)
    assert event["type"] == "m.room.message" and event["content"] == content
    assert event["sender"] == alice["user_id"]
    assert "state_key" not in event


@pytest_twisted.ensureDeferred
async def test_custom_event_types_and_unicode_content_round_trip(client):
    """Any event type and non-ASCII content are sent and read back unchanged."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    content = {"nested": {"list": [1, "two", None, True], "emoji": "\U0001F600 \u00e9\u4e2d"}, "n": -(2**53 - 1)}
    sent = await send(client, alice, room_id, "c1", content, event_type="org.example.custom")
    assert sent.code == 200, sent
    event = next(e for e in await room_timeline(client, alice, room_id)
                 if e["event_id"] == sent.json["event_id"])
    assert event["type"] == "org.example.custom" and event["content"] == content


@pytest_twisted.ensureDeferred
async def test_retried_transaction_returns_the_same_event(client):
    """Retrying a PUT with the same transaction id answers the same event id and sends nothing new."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    first = await send(client, alice, room_id, "retry1")
    again = await send(client, alice, room_id, "retry1")
    # Even with different content: the transaction already happened.
    changed = await send(client, alice, room_id, "retry1", {"msgtype": "m.text", "body": "other"})
    assert first.code == again.code == changed.code == 200
    assert first.json["event_id"] == again.json["event_id"] == changed.json["event_id"]
    messages = [e for e in await room_timeline(client, alice, room_id) if e["type"] == "m.room.message"]
    assert [e["event_id"] for e in messages] == [first.json["event_id"]]


@pytest_twisted.ensureDeferred
async def test_same_transaction_id_for_another_event_type_is_another_event(client):
    """The transaction id is scoped to the endpoint: another event type makes another event."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    message = await send(client, alice, room_id, "shared")
    custom = await send(client, alice, room_id, "shared", {"a": 1}, event_type="org.example.other")
    assert message.code == custom.code == 200
    assert message.json["event_id"] != custom.json["event_id"]


@pytest_twisted.ensureDeferred
async def test_same_transaction_id_in_another_room_is_another_event(client):
    """The transaction scope is the HTTP path: the same id sent to a second room makes an event there."""
    alice = await client.register()
    first_room = await create_room(client, alice)
    second_room = await create_room(client, alice)
    first = await send(client, alice, first_room, "per-room")
    second = await send(client, alice, second_room, "per-room")
    assert first.code == second.code == 200
    assert first.json["event_id"] != second.json["event_id"]
    messages = [e for e in await room_timeline(client, alice, second_room) if e["type"] == "m.room.message"]
    assert [e["event_id"] for e in messages] == [second.json["event_id"]]


@pytest_twisted.ensureDeferred
async def test_same_device_logged_in_again_keeps_its_transactions(client):
    """Logging in again with the same device_id keeps the device's transactions: a retry is a duplicate."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    first = await send(client, alice, room_id, "relogin")
    again = await client.login(alice["user_id"], device_id=alice["device_id"])
    assert again.code == 200 and again.json["device_id"] == alice["device_id"], again
    retry = await send(client, again.json, room_id, "relogin")
    assert retry.code == 200 and retry.json["event_id"] == first.json["event_id"]


@pytest_twisted.ensureDeferred
async def test_same_transaction_id_on_another_device_is_another_event(client):
    """Transaction ids are per device: the same id from a second device sends a second event."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    phone = await new_device(client, alice)
    first = await send(client, alice, room_id, "dev-txn")
    second = await send(client, phone, room_id, "dev-txn")
    assert first.code == second.code == 200
    assert first.json["event_id"] != second.json["event_id"]
    # Each device's retry still finds its own event.
    assert (await send(client, phone, room_id, "dev-txn")).json["event_id"] == second.json["event_id"]
    assert (await send(client, alice, room_id, "dev-txn")).json["event_id"] == first.json["event_id"]


@pytest_twisted.ensureDeferred
async def test_same_transaction_id_by_another_user_is_another_event(client):
    """Two users using the same transaction id send two events."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    assert (await client.request("POST", f"rooms/{room_id}/join", {}, token=bob["access_token"])).code == 200
    first = await send(client, alice, room_id, "same")
    second = await send(client, bob, room_id, "same")
    assert first.json["event_id"] != second.json["event_id"]


@pytest_twisted.ensureDeferred
async def test_concurrent_retries_make_one_event(client):
    """20 concurrent PUTs with one transaction id all answer the same event id, and the room gets one event."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    responses = await defer.gatherResults([
        defer.ensureDeferred(send(client, alice, room_id, "burst")) for _ in range(20)
    ], consumeErrors=True)
    assert all(r.code == 200 for r in responses), responses
    assert len({r.json["event_id"] for r in responses}) == 1
    messages = [e for e in await room_timeline(client, alice, room_id) if e["type"] == "m.room.message"]
    assert [e["event_id"] for e in messages] == [responses[0].json["event_id"]]


@pytest_twisted.ensureDeferred
async def test_concurrent_distinct_transactions_make_distinct_events(client):
    """20 concurrent PUTs with distinct transaction ids make 20 events, each answered with its own id."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    responses = await defer.gatherResults([
        defer.ensureDeferred(send(client, alice, room_id, f"many{i}")) for i in range(20)
    ], consumeErrors=True)
    assert all(r.code == 200 for r in responses), responses
    ids = [r.json["event_id"] for r in responses]
    assert len(set(ids)) == 20
    messages = [e for e in await room_timeline(client, alice, room_id) if e["type"] == "m.room.message"]
    assert sorted(e["event_id"] for e in messages) == sorted(ids)
    # Each id names the event with its own content.
    by_id = {e["event_id"]: e["content"]["body"] for e in messages}
    assert all(by_id[ids[i]] == f"message many{i}" for i in range(20))


@pytest_twisted.ensureDeferred
async def test_transaction_survives_a_restart(start_homeserver, make_client):
    """A transaction id retried after the daemon restarts still answers the first event id."""
    server = start_homeserver("")
    client = make_client(server)
    alice = await client.register()
    room_id = await create_room(client, alice)
    first = await send(client, alice, room_id, "durable")
    assert first.code == 200, first
    server.stop()
    server.start()
    again = await send(client, alice, room_id, "durable")
    assert again.code == 200, again
    assert again.json["event_id"] == first.json["event_id"]
    messages = [e for e in await room_timeline(client, alice, room_id) if e["type"] == "m.room.message"]
    assert [e["event_id"] for e in messages] == [first.json["event_id"]]
    # And new transactions after the restart are new events, later in the room.
    later = await send(client, alice, room_id, "after-restart")
    events = await room_timeline(client, alice, room_id)
    assert events[-1]["event_id"] == later.json["event_id"]
    server.stop()


@pytest_twisted.ensureDeferred
async def test_sender_sees_its_transaction_id_in_sync(client):
    """The sending device sees unsigned.transaction_id on its own event in /sync; other devices do not."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    phone = await new_device(client, alice)
    sent = await send(client, alice, room_id, "echo-me")
    mine = next(e for e in await room_timeline(client, alice, room_id) if e["event_id"] == sent.json["event_id"])
    theirs = next(e for e in await room_timeline(client, phone, room_id)
                  if e["event_id"] == sent.json["event_id"])
    assert mine.get("unsigned", {}).get("transaction_id") == "echo-me"
    assert "transaction_id" not in theirs.get("unsigned", {})


# -- limits -----------------------------------------------------------------

@pytest.mark.parametrize("size", [65_000, 70_000])
@pytest_twisted.ensureDeferred
async def test_oversized_events_are_refused(client, size):
    """An event whose PDU would exceed 65536 bytes answers 413 M_TOO_LARGE and is not sent."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    content = {"msgtype": "m.text", "body": "x" * size}
    response = await send(client, alice, room_id, f"big{size}", content)
    assert response.code == 413, response
    assert response.json["errcode"] == "M_TOO_LARGE"
    state = await client.request("PUT", f"rooms/{room_id}/state/org.example.big/",
                                 {"blob": "y" * size}, token=alice["access_token"])
    assert state.code == 413 and state.json["errcode"] == "M_TOO_LARGE", state
    events = await room_timeline(client, alice, room_id)
    assert not any(e["type"] in ("m.room.message", "org.example.big") for e in events)


@pytest_twisted.ensureDeferred
async def test_large_but_allowed_event_is_sent(client):
    """An event comfortably under the limit (60000 bytes of body) is accepted."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    response = await send(client, alice, room_id, "big-ok", {"msgtype": "m.text", "body": "x" * 60_000})
    assert response.code == 200, response


@pytest.mark.parametrize("raw", [
    b'{"msgtype": "m.text", "body": "pi", "value": 3.14}',
    b'{"msgtype": "m.text", "body": "nested", "a": {"b": [1, 2.5]}}',
    b'{"msgtype": "m.text", "body": "exp", "value": 1e3}',
    b'{"msgtype": "m.text", "body": "big", "value": 9007199254740992}',
    b'{"msgtype": "m.text", "body": "small", "value": -9007199254740992}',
])
@pytest_twisted.ensureDeferred
async def test_non_canonical_numbers_are_refused(client, raw):
    """Floats and integers beyond +-(2**53-1) in content answer 400 M_BAD_JSON, for messages and state."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    response = await send(client, alice, room_id, "float", raw, validate=False)
    assert response.code == 400, response
    assert response.json["errcode"] == "M_BAD_JSON"
    state = await client.request("PUT", f"rooms/{room_id}/state/org.example.float/", raw,
                                 token=alice["access_token"], validate=False)
    assert state.code == 400 and state.json["errcode"] == "M_BAD_JSON", state


@pytest.mark.parametrize("raw, errcode", [(b"not json", "M_NOT_JSON"), (b"[1, 2]", "M_BAD_JSON"),
                                          (b'"text"', "M_BAD_JSON")])
@pytest_twisted.ensureDeferred
async def test_content_must_be_a_json_object(client, raw, errcode):
    """Bytes that are not JSON are M_NOT_JSON; JSON that is not an object is M_BAD_JSON."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    response = await send(client, alice, room_id, "notjson", raw, validate=False)
    assert response.code == 400, response
    assert response.json["errcode"] == errcode


@pytest_twisted.ensureDeferred
async def test_send_to_unknown_room(client):
    """Sending into a room that does not exist is refused with 404 M_NOT_FOUND (Synapse says 403)."""
    alice = await client.register()
    response = await send(client, alice, "!nosuchroom:test.local", "t")
    assert response.code == 404 and response.json["errcode"] == "M_NOT_FOUND", response


# -- state ------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_put_and_get_state(client):
    """PUT state answers an event id; GET answers its content, and ?format=event the whole event."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    put = await client.request("PUT", f"rooms/{room_id}/state/m.room.topic/", {"topic": "Weather"},
                               token=alice["access_token"])
    assert put.code == 200 and put.json["event_id"].startswith("$"), put
    got = await client.request("GET", f"rooms/{room_id}/state/m.room.topic/", token=alice["access_token"])
    assert got.code == 200 and got.json == {"topic": "Weather"}
    # No trailing slash works too for the empty state key.
    bare = await client.request("GET", f"rooms/{room_id}/state/m.room.topic", token=alice["access_token"])
    assert bare.code == 200 and bare.json == {"topic": "Weather"}
    # The spec's 200 schema is oneOf [any object, StateEvent]: a whole event
    # matches both branches, so no answer to format=event can pass oneOf.
    # The event is checked against the event schemas instead.
    event = await client.request("GET", f"rooms/{room_id}/state/m.room.topic/",
                                 token=alice["access_token"], query={"format": "event"}, validate=False)
    assert event.code == 200
    validate_event(event.json)
    assert event.json["event_id"] == put.json["event_id"]
    assert event.json["room_id"] == room_id and event.json["sender"] == alice["user_id"]
    assert event.json["state_key"] == "" and event.json["content"] == {"topic": "Weather"}
    as_content = await client.request("GET", f"rooms/{room_id}/state/m.room.topic/",
                                      token=alice["access_token"], query={"format": "content"})
    assert as_content.json == {"topic": "Weather"}


@pytest_twisted.ensureDeferred
async def test_state_keys(client):
    """State with a non-empty key is its own entry; one's own user id is an allowed key, another's is not."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice)
    token = alice["access_token"]
    for key, value in (("a", 1), ("b", 2), (alice["user_id"], 3)):
        put = await client.request("PUT", f"rooms/{room_id}/state/org.example.keyed/{key}", {"v": value},
                                   token=token)
        assert put.code == 200, put
    for key, value in (("a", 1), ("b", 2), (alice["user_id"], 3)):
        got = await client.request("GET", f"rooms/{room_id}/state/org.example.keyed/{key}", token=token)
        assert got.json == {"v": value}
    other = await client.request("PUT", f"rooms/{room_id}/state/org.example.keyed/{bob['user_id']}",
                                 {"v": 4}, token=token)
    assert other.code == 403 and other.json["errcode"] == "M_FORBIDDEN", other
    missing = await client.request("GET", f"rooms/{room_id}/state/org.example.keyed/c", token=token)
    assert missing.code == 404 and missing.json["errcode"] == "M_NOT_FOUND"


@pytest_twisted.ensureDeferred
async def test_get_state_lists_current_state(client):
    """GET /state lists exactly the current state: one event per key, the latest, with room ids."""
    alice = await client.register()
    room_id = await create_room(client, alice, name="First")
    token = alice["access_token"]
    renamed = await client.request("PUT", f"rooms/{room_id}/state/m.room.name/", {"name": "Second"},
                                   token=token)
    await client.request("PUT", f"rooms/{room_id}/state/org.example.x/k", {"k": True}, token=token)
    await send(client, alice, room_id, "not-state")
    response = await client.request("GET", f"rooms/{room_id}/state", token=token)
    assert response.code == 200
    events = validate_events(response.json)
    keys = [(e["type"], e["state_key"]) for e in events]
    assert len(keys) == len(set(keys))
    assert set(keys) == {
        ("m.room.create", ""), ("m.room.member", alice["user_id"]), ("m.room.power_levels", ""),
        ("m.room.join_rules", ""), ("m.room.history_visibility", ""), ("m.room.guest_access", ""),
        ("m.room.name", ""), ("org.example.x", "k"),
    }
    name = next(e for e in events if e["type"] == "m.room.name")
    assert name["content"] == {"name": "Second"} and name["event_id"] == renamed.json["event_id"]
    assert all(e["room_id"] == room_id for e in events)


@pytest_twisted.ensureDeferred
async def test_state_needs_power(client):
    """A member below state_default (or the event's level) gets 403 M_FORBIDDEN setting state."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    assert (await client.request("POST", f"rooms/{room_id}/join", {}, token=bob["access_token"])).code == 200
    for event_type, content in (("m.room.name", {"name": "Bob's"}), ("org.example.s", {"x": 1}),
                                ("m.room.power_levels", {"users": {bob["user_id"]: 100}})):
        response = await client.request("PUT", f"rooms/{room_id}/state/{event_type}/", content,
                                        token=bob["access_token"])
        assert response.code == 403 and response.json["errcode"] == "M_FORBIDDEN", (event_type, response)
    # A plain message is fine (events_default 0).
    assert (await send(client, bob, room_id, "ok")).code == 200


@pytest_twisted.ensureDeferred
async def test_state_put_replaces_the_previous_value(client):
    """A second PUT of the same state key is a new event, and GET answers its content."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    first = await client.request("PUT", f"rooms/{room_id}/state/org.example.v/", {"n": 1},
                                 token=alice["access_token"])
    second = await client.request("PUT", f"rooms/{room_id}/state/org.example.v/", {"n": 2},
                                  token=alice["access_token"])
    assert first.json["event_id"] != second.json["event_id"]
    got = await client.request("GET", f"rooms/{room_id}/state/org.example.v/", token=alice["access_token"])
    assert got.json == {"n": 2}
