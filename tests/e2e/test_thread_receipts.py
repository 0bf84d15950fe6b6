"""
Threaded read receipts and per-thread notification counts through the real
daemon (spec: "Threaded read receipts", "Receiving notifications",
C{unread_thread_notifications} in /sync).
"""
from __future__ import annotations

from urllib.parse import quote

import pytest_twisted
from relations_helpers import in_thread, react, room_of, send_ok, sync, text

#: A /sync room filter asking for per-thread counts.
THREADED = {"timeline": {"unread_thread_notifications": True}}


async def receipt(client, user: dict, room_id: str, event_id: str, thread_id: str | None = None,
                  receipt_type: str = "m.read"):
    body = {} if thread_id is None else {"thread_id": thread_id}
    return await client.request("POST", f"rooms/{quote(room_id)}/receipt/{receipt_type}/{quote(event_id)}",
                                body, token=user["access_token"])


async def counts(client, user: dict, room_id: str, *, threaded: bool) -> tuple[dict, dict]:
    """The room's C{unread_notifications} and C{unread_thread_notifications} ({} when absent)."""
    room = (await sync(client, user, room_filter=THREADED if threaded else None))["rooms"]["join"][room_id]
    return room["unread_notifications"], room.get("unread_thread_notifications", {})


def of(notifications: int, highlights: int = 0) -> dict:
    return {"notification_count": notifications, "highlight_count": highlights}


async def busy_room(client) -> tuple[dict, dict, str, str, list[str], str]:
    """
    Alice and Bob (a room of two: every message notifies the other): Alice
    posts a root, two replies in its thread and one more main message.
    """
    alice, bob = await client.register(), await client.register()
    room_id = await room_of(client, alice, bob)
    root = await send_ok(client, alice, room_id, text("root"))
    replies = [await send_ok(client, alice, room_id, in_thread(root, f"reply {n}")) for n in range(2)]
    main = await send_ok(client, alice, room_id, text("main again"))
    return alice, bob, room_id, root, replies, main


@pytest_twisted.ensureDeferred
async def test_counts_are_split_per_thread_only_when_asked(client):
    """With unread_thread_notifications the main count leaves out thread replies, counted per root instead."""
    alice, bob, room_id, root, replies, main = await busy_room(client)
    assert await counts(client, bob, room_id, threaded=False) == (of(4), {})
    assert await counts(client, bob, room_id, threaded=True) == (of(2), {root: of(2)})
    mention = in_thread(root, "bob?", **{"m.mentions": {"user_ids": [bob["user_id"]]}})
    await send_ok(client, alice, room_id, mention)
    assert await counts(client, bob, room_id, threaded=True) == (of(2), {root: of(3, 1)})
    # Alice's own events notify nobody for her.
    assert await counts(client, alice, room_id, threaded=True) == (of(0), {})


@pytest_twisted.ensureDeferred
async def test_a_threaded_receipt_clears_only_its_thread(client):
    """A receipt in the thread clears that thread; one for "main" clears the main timeline; unthreaded clears all."""
    alice, bob, room_id, root, replies, main = await busy_room(client)
    assert (await receipt(client, bob, room_id, replies[-1], root)).code == 200
    assert await counts(client, bob, room_id, threaded=True) == (of(2), {})
    assert await counts(client, bob, room_id, threaded=False) == (of(2), {})

    newer = await send_ok(client, alice, room_id, in_thread(root, "reply 3"))
    assert (await receipt(client, bob, room_id, main, "main", "m.read.private")).code == 200
    assert await counts(client, bob, room_id, threaded=True) == (of(0), {root: of(1)})

    await send_ok(client, alice, room_id, text("main 3"))
    assert await counts(client, bob, room_id, threaded=False) == (of(2), {})
    assert (await receipt(client, bob, room_id, newer)).code == 200  # unthreaded: everything up to it
    assert await counts(client, bob, room_id, threaded=True) == (of(1), {})


@pytest_twisted.ensureDeferred
async def test_own_reply_marks_only_its_thread_read(client):
    """Bob replying in the thread reads that thread; the main timeline stays unread."""
    alice, bob, room_id, root, replies, main = await busy_room(client)
    await send_ok(client, bob, room_id, in_thread(root, "bob chimes in"))
    assert await counts(client, bob, room_id, threaded=True) == (of(2), {})
    await send_ok(client, bob, room_id, text("bob in main"))
    assert await counts(client, bob, room_id, threaded=False) == (of(0), {})


@pytest_twisted.ensureDeferred
async def test_events_related_to_a_thread_count_in_it(client):
    """A reaction to a threaded reply is in that thread: a receipt in the thread may point at it."""
    alice, bob, room_id, root, replies, main = await busy_room(client)
    liked = await react(client, alice, room_id, replies[0], "👍")
    assert (await receipt(client, bob, room_id, liked, root)).code == 200
    assert (await receipt(client, bob, room_id, root, root)).code == 200  # the root itself, as Synapse allows


@pytest_twisted.ensureDeferred
async def test_receipts_must_fit_their_thread(client):
    """A receipt for a thread on an event outside it, or for "main" on a threaded reply, is 400 M_INVALID_PARAM."""
    alice, bob, room_id, root, replies, main = await busy_room(client)
    outside = await receipt(client, bob, room_id, main, root)
    assert outside.code == 400 and outside.json["errcode"] == "M_INVALID_PARAM"
    threaded_main = await receipt(client, bob, room_id, replies[0], "main")
    assert threaded_main.code == 400 and threaded_main.json["errcode"] == "M_INVALID_PARAM"
    assert await counts(client, bob, room_id, threaded=False) == (of(4), {})
