"""
Typing notifications, receipts and read markers through the real daemon:
what each member sees in /sync, and that a long-polling sync is woken by them.
"""
from __future__ import annotations


import pytest_twisted
from events_schema import validate_sync_response
from polling import LONG_POLL_MS, within_deadline
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

#: Long polls wait this long at most; a wake-up must come well before.


# -- helpers ---------------------------------------------------------------

async def room_with_two(client) -> tuple[dict, dict, str]:
    """Alice creates a public room and Bob joins it."""
    alice, bob = await client.register(), await client.register()
    created = await client.request("POST", "createRoom", {"preset": "public_chat"},
                                   token=alice["access_token"])
    assert created.code == 200, created
    room_id = created.json["room_id"]
    joined = await client.request("POST", f"rooms/{room_id}/join", {}, token=bob["access_token"])
    assert joined.code == 200, joined
    return alice, bob, room_id


async def sync(client, user: dict, **query) -> dict:
    response = await client.request("GET", "sync", token=user["access_token"],
                                    query={k: str(v) for k, v in query.items()} or None)
    assert response.code == 200, response
    return validate_sync_response(response.json)


def long_poll(client, user: dict, since: str) -> defer.Deferred:
    """Start a long-polling sync; it fires with the body, or fails at the deadline if never woken."""
    return within_deadline(defer.ensureDeferred(sync(client, user, since=since, timeout=LONG_POLL_MS)))


async def settle():
    """Give a long poll started just now time to reach the server and wait."""
    await deferLater(reactor, 0.3, lambda: None)


def ephemeral(body: dict, room_id: str, event_type: str) -> list[dict]:
    room = body.get("rooms", {}).get("join", {}).get(room_id, {})
    return [e for e in room.get("ephemeral", {}).get("events", []) if e["type"] == event_type]


async def send_text(client, user: dict, room_id: str, text: str) -> str:
    response = await client.request("PUT", f"rooms/{room_id}/send/m.room.message/{text}",
                                    {"msgtype": "m.text", "body": text}, token=user["access_token"])
    assert response.code == 200, response
    return response.json["event_id"]


async def set_typing(client, user: dict, room_id: str, body: dict, who: str | None = None):
    return await client.request("PUT", f"rooms/{room_id}/typing/{who or user['user_id']}", body,
                                token=user["access_token"])


async def receipt(client, user: dict, room_id: str, receipt_type: str, event_id: str, body=None):
    return await client.request("POST", f"rooms/{room_id}/receipt/{receipt_type}/{event_id}",
                                {} if body is None else body, token=user["access_token"])


# -- typing ----------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_typing_wakes_the_other_members_long_poll(client):
    """Alice starting to type wakes Bob's waiting sync with m.typing listing her; stopping shows an empty list."""
    alice, bob, room_id = await room_with_two(client)
    since = (await sync(client, bob))["next_batch"]
    polling = long_poll(client, bob, since)
    await settle()
    started = await set_typing(client, alice, room_id, {"typing": True, "timeout": 30000})
    assert started.code == 200 and started.json == {}
    body = await polling
    assert ephemeral(body, room_id, "m.typing") == [
        {"type": "m.typing", "content": {"user_ids": [alice["user_id"]]}}]

    polling = long_poll(client, bob, body["next_batch"])
    await settle()
    stopped = await set_typing(client, alice, room_id, {"typing": False})
    assert stopped.code == 200
    body = await polling
    assert ephemeral(body, room_id, "m.typing") == [{"type": "m.typing", "content": {"user_ids": []}}]


@pytest_twisted.ensureDeferred
async def test_initial_sync_lists_current_typers(client):
    """An initial sync shows who is typing now, the typer included."""
    alice, bob, room_id = await room_with_two(client)
    await set_typing(client, alice, room_id, {"typing": True, "timeout": 30000})
    await set_typing(client, bob, room_id, {"typing": True, "timeout": 30000})
    for user in (alice, bob):
        events = ephemeral(await sync(client, user), room_id, "m.typing")
        assert events == [{"type": "m.typing",
                           "content": {"user_ids": sorted([alice["user_id"], bob["user_id"]])}}]


@pytest_twisted.ensureDeferred
async def test_typing_expires_after_its_timeout(client):
    """Typing ends by itself after its timeout, and the expiry wakes the other member's sync."""
    alice, bob, room_id = await room_with_two(client)
    since = (await sync(client, bob))["next_batch"]
    await set_typing(client, alice, room_id, {"typing": True, "timeout": 1000})
    body = await sync(client, bob, since=since)
    assert ephemeral(body, room_id, "m.typing")[0]["content"]["user_ids"] == [alice["user_id"]]
    body = await long_poll(client, bob, body["next_batch"])
    assert ephemeral(body, room_id, "m.typing") == [{"type": "m.typing", "content": {"user_ids": []}}]


@pytest_twisted.ensureDeferred
async def test_renewing_typing_is_not_news(client):
    """Typing again while already typing changes nothing others see: a sync since then has no m.typing."""
    alice, bob, room_id = await room_with_two(client)
    await set_typing(client, alice, room_id, {"typing": True, "timeout": 30000})
    since = (await sync(client, bob))["next_batch"]
    await set_typing(client, alice, room_id, {"typing": True, "timeout": 30000})
    await send_text(client, alice, room_id, "marker")  # so the sync has something to answer
    body = await sync(client, bob, since=since)
    assert ephemeral(body, room_id, "m.typing") == []


@pytest_twisted.ensureDeferred
async def test_typing_refusals(client):
    """Nobody may set another user's typing (403), nor type in a room they are not in (403)."""
    alice, bob, room_id = await room_with_two(client)
    other = await set_typing(client, alice, room_id, {"typing": True}, who=bob["user_id"])
    assert other.code == 403 and other.json["errcode"] == "M_FORBIDDEN"
    stranger = await client.register()
    outside = await set_typing(client, stranger, room_id, {"typing": True, "timeout": 1000})
    assert outside.code == 403 and outside.json["errcode"] == "M_FORBIDDEN"
    missing = await set_typing(client, alice, room_id, {"timeout": 1000})
    assert missing.code == 400 and missing.json["errcode"] == "M_MISSING_PARAM"


# -- receipts --------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_read_receipt_reaches_the_other_member(client):
    """Bob's m.read receipt wakes Alice's waiting sync and shows in m.receipt with its ts."""
    alice, bob, room_id = await room_with_two(client)
    event_id = await send_text(client, alice, room_id, "hello")
    since = (await sync(client, alice))["next_batch"]
    polling = long_poll(client, alice, since)
    await settle()
    sent = await receipt(client, bob, room_id, "m.read", event_id)
    assert sent.code == 200 and sent.json == {}
    body = await polling
    [event] = ephemeral(body, room_id, "m.receipt")
    entry = event["content"][event_id]["m.read"][bob["user_id"]]
    assert isinstance(entry["ts"], int) and "thread_id" not in entry
    initial = ephemeral(await sync(client, alice), room_id, "m.receipt")
    assert bob["user_id"] in initial[0]["content"][event_id]["m.read"]


@pytest_twisted.ensureDeferred
async def test_private_receipt_is_only_seen_by_its_sender(client):
    """An m.read.private receipt shows in its sender's sync and never in the other member's."""
    alice, bob, room_id = await room_with_two(client)
    event_id = await send_text(client, alice, room_id, "secret")
    alice_since = (await sync(client, alice))["next_batch"]
    bob_since = (await sync(client, bob))["next_batch"]
    sent = await receipt(client, bob, room_id, "m.read.private", event_id)
    assert sent.code == 200
    own = ephemeral(await sync(client, bob, since=bob_since), room_id, "m.receipt")
    assert bob["user_id"] in own[0]["content"][event_id]["m.read.private"]
    await send_text(client, bob, room_id, "later")  # so Alice's sync has something to answer
    for body in (await sync(client, alice, since=alice_since), await sync(client, alice)):
        for event in ephemeral(body, room_id, "m.receipt"):
            for receipts in event["content"].values():
                assert "m.read.private" not in receipts


@pytest_twisted.ensureDeferred
async def test_threaded_receipt_carries_its_thread_id(client):
    """A receipt with thread_id "main" is kept apart from the unthreaded one and shows its thread_id."""
    alice, bob, room_id = await room_with_two(client)
    first = await send_text(client, alice, room_id, "one")
    second = await send_text(client, alice, room_id, "two")
    assert (await receipt(client, bob, room_id, "m.read", first)).code == 200
    assert (await receipt(client, bob, room_id, "m.read", second, {"thread_id": "main"})).code == 200
    [event] = ephemeral(await sync(client, alice), room_id, "m.receipt")
    assert event["content"][first]["m.read"][bob["user_id"]].get("thread_id") is None
    assert event["content"][second]["m.read"][bob["user_id"]]["thread_id"] == "main"


@pytest_twisted.ensureDeferred
async def test_receipt_without_a_body_is_accepted(client):
    """A receipt posted with no body at all is taken as unthreaded, as Synapse does for older clients."""
    alice, bob, room_id = await room_with_two(client)
    event_id = await send_text(client, alice, room_id, "hi")
    sent = await client.request("POST", f"rooms/{room_id}/receipt/m.read/{event_id}",
                                token=bob["access_token"])
    assert sent.code == 200, sent
    [event] = ephemeral(await sync(client, alice), room_id, "m.receipt")
    assert bob["user_id"] in event["content"][event_id]["m.read"]


@pytest_twisted.ensureDeferred
async def test_receipts_only_move_forward(client):
    """A receipt for an earlier event than the user's current one is ignored (as Synapse)."""
    alice, bob, room_id = await room_with_two(client)
    first = await send_text(client, alice, room_id, "one")
    second = await send_text(client, alice, room_id, "two")
    await receipt(client, bob, room_id, "m.read", second)
    assert (await receipt(client, bob, room_id, "m.read", first)).code == 200
    [event] = ephemeral(await sync(client, alice), room_id, "m.receipt")
    assert bob["user_id"] in event["content"][second]["m.read"]
    assert first not in event["content"]


@pytest_twisted.ensureDeferred
async def test_receipt_refusals(client):
    """Unknown receipt types and bad thread ids are 400, unknown events 404, outsiders 403."""
    alice, bob, room_id = await room_with_two(client)
    event_id = await send_text(client, alice, room_id, "hi")
    # The spec's enum of receipt types would refuse the request itself: not validated.
    bad_type = await client.request("POST", f"rooms/{room_id}/receipt/m.unknown/{event_id}", {},
                                    token=bob["access_token"], validate=False)
    assert bad_type.code == 400 and bad_type.json["errcode"] == "M_INVALID_PARAM"
    empty_thread = await receipt(client, bob, room_id, "m.read", event_id, {"thread_id": ""})
    assert empty_thread.code == 400 and empty_thread.json["errcode"] == "M_INVALID_PARAM"
    number_thread = await receipt(client, bob, room_id, "m.read", event_id, {"thread_id": 3})
    assert number_thread.code == 400 and number_thread.json["errcode"] == "M_INVALID_PARAM"
    unknown = await receipt(client, bob, room_id, "m.read", "$nosuchevent")
    assert unknown.code == 404 and unknown.json["errcode"] == "M_NOT_FOUND"
    stranger = await client.register()
    outside = await receipt(client, stranger, room_id, "m.read", event_id)
    assert outside.code == 403 and outside.json["errcode"] == "M_FORBIDDEN"


# -- read markers ----------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_read_markers_set_fully_read_and_receipts(client):
    """POST /read_markers moves m.fully_read (room account data, in sync) and the m.read receipt."""
    alice, bob, room_id = await room_with_two(client)
    event_id = await send_text(client, alice, room_id, "read me")
    bob_since = (await sync(client, bob))["next_batch"]
    marked = await client.request("POST", f"rooms/{room_id}/read_markers",
                                  {"m.fully_read": event_id, "m.read": event_id},
                                  token=bob["access_token"])
    assert marked.code == 200 and marked.json == {}
    marker = await client.request("GET", f"user/{bob['user_id']}/rooms/{room_id}/account_data/m.fully_read",
                                  token=bob["access_token"])
    assert marker.code == 200 and marker.json == {"event_id": event_id}
    body = await sync(client, bob, since=bob_since)
    room = body["rooms"]["join"][room_id]
    assert {"type": "m.fully_read", "content": {"event_id": event_id}} in room["account_data"]["events"]
    [event] = ephemeral(await sync(client, alice), room_id, "m.receipt")
    assert bob["user_id"] in event["content"][event_id]["m.read"]


@pytest_twisted.ensureDeferred
async def test_fully_read_receipt_type_moves_the_marker_forward_only(client):
    """/receipt/m.fully_read sets the read marker, which never moves back to an earlier event."""
    alice, bob, room_id = await room_with_two(client)
    first = await send_text(client, alice, room_id, "one")
    second = await send_text(client, alice, room_id, "two")
    path = f"user/{bob['user_id']}/rooms/{room_id}/account_data/m.fully_read"
    assert (await receipt(client, bob, room_id, "m.fully_read", second)).code == 200
    assert (await client.request("GET", path, token=bob["access_token"])).json == {"event_id": second}
    assert (await receipt(client, bob, room_id, "m.fully_read", first)).code == 200
    assert (await client.request("GET", path, token=bob["access_token"])).json == {"event_id": second}
    with_thread = await receipt(client, bob, room_id, "m.fully_read", second, {"thread_id": "main"})
    assert with_thread.code == 400


@pytest_twisted.ensureDeferred
async def test_read_markers_refusals(client):
    """/read_markers refuses events of other rooms (404) and non-members (403), changing nothing."""
    alice, bob, room_id = await room_with_two(client)
    event_id = await send_text(client, alice, room_id, "here")
    other = await client.request("POST", "createRoom", {}, token=alice["access_token"])
    elsewhere = await send_text(client, alice, other.json["room_id"], "there")
    wrong = await client.request("POST", f"rooms/{room_id}/read_markers",
                                 {"m.read": event_id, "m.fully_read": elsewhere},
                                 token=bob["access_token"])
    assert wrong.code == 404 and wrong.json["errcode"] == "M_NOT_FOUND"
    assert ephemeral(await sync(client, alice), room_id, "m.receipt") == []
    stranger = await client.register()
    outside = await client.request("POST", f"rooms/{room_id}/read_markers", {"m.fully_read": event_id},
                                   token=stranger["access_token"])
    assert outside.code == 403
