"""
Threads through the real daemon (spec: "Threading"): the m.thread summary
bundled with a thread root in /sync, /messages, /context and /event, and
GET /threads.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest_twisted
from relations_helpers import (
    bundled,
    by_id,
    edit,
    get_event,
    ids,
    in_thread,
    messages,
    redact,
    room_of,
    send_ok,
    sync,
    text,
    threads,
)


def summary(event: dict) -> dict:
    return bundled(event)["m.thread"]


@pytest_twisted.ensureDeferred
async def test_thread_summary_everywhere_a_root_is_served(client):
    """The root carries count, latest_event and current_user_participated in /sync, /messages, /context and /event."""
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await room_of(client, alice, bob, carol)
    root = await send_ok(client, alice, room_id, text("thread about lunch"))
    await send_ok(client, bob, room_id, in_thread(root, "pizza"))
    latest = await send_ok(client, bob, room_id, in_thread(root, "or sushi"))

    for user, participated in ((alice, True), (bob, True), (carol, False)):
        shown = await get_event(client, user, room_id, root)
        assert shown["content"] == text("thread about lunch")
        thread = summary(shown)
        assert thread["count"] == 2
        assert thread["current_user_participated"] is participated
        assert thread["latest_event"]["event_id"] == latest
        assert thread["latest_event"]["content"]["body"] == "or sushi"
        assert thread["latest_event"]["room_id"] == room_id

    in_messages = by_id(await messages(client, carol, room_id), root)
    assert summary(in_messages)["count"] == 2
    context = await client.request("GET", f"rooms/{quote(room_id)}/context/{quote(root)}",
                                   token=carol["access_token"], query={"limit": "4"})
    assert context.code == 200, context
    assert summary(context.json["event"])["latest_event"]["event_id"] == latest

    # An initial sync (every room synced in full) bundles too, in /sync's format.
    body = await sync(client, carol, room_filter={"timeline": {"limit": 50}})
    timeline = body["rooms"]["join"][room_id]["timeline"]["events"]
    synced = summary(by_id(timeline, root))
    assert synced["count"] == 2 and synced["latest_event"]["event_id"] == latest
    assert "room_id" not in synced["latest_event"]


@pytest_twisted.ensureDeferred
async def test_latest_event_has_its_own_aggregations(client):
    """The latest reply is served with its own bundled edit, which is not counted as a reply."""
    alice = await client.register()
    room_id = await room_of(client, alice)
    root = await send_ok(client, alice, room_id, text("root"))
    reply = await send_ok(client, alice, room_id, in_thread(root, "typo"))
    fixed = await send_ok(client, alice, room_id, edit(reply, "fixed"))
    thread = summary(await get_event(client, alice, room_id, root))
    assert thread["count"] == 1  # the edit relates to the reply, not to the root
    assert thread["latest_event"]["event_id"] == reply
    assert bundled(thread["latest_event"])["m.replace"]["event_id"] == fixed


@pytest_twisted.ensureDeferred
async def test_redacting_a_reply_updates_the_summary(client):
    """Redacting the latest reply makes the one before it latest; redacting every reply removes the summary."""
    alice, bob = await client.register(), await client.register()
    room_id = await room_of(client, alice, bob)
    root = await send_ok(client, alice, room_id, text("root"))
    first = await send_ok(client, bob, room_id, in_thread(root, "one"))
    second = await send_ok(client, bob, room_id, in_thread(root, "two"))
    await redact(client, bob, room_id, second)
    thread = summary(await get_event(client, alice, room_id, root))
    assert thread["count"] == 1 and thread["latest_event"]["event_id"] == first
    await redact(client, bob, room_id, first)
    assert "m.thread" not in bundled(await get_event(client, alice, room_id, root))
    listed = await threads(client, alice, room_id)
    assert listed.code == 200 and listed.json["chunk"] == []


@pytest_twisted.ensureDeferred
async def test_threads_are_listed_by_latest_activity(client):
    """GET /threads lists roots most recently active first, pages with next_batch, and filters participated ones."""
    alice, bob = await client.register(), await client.register()
    room_id = await room_of(client, alice, bob)
    roots = [await send_ok(client, alice, room_id, text(f"topic {n}")) for n in range(3)]
    await send_ok(client, bob, room_id, in_thread(roots[0], "bob was first"))
    await send_ok(client, alice, room_id, in_thread(roots[1], "alice replies"))
    await send_ok(client, alice, room_id, in_thread(roots[2], "alice again"))
    await send_ok(client, alice, room_id, in_thread(roots[0], "and revives the first"))
    await send_ok(client, alice, room_id, text("not a thread"))

    everything = await threads(client, bob, room_id)
    assert everything.code == 200, everything
    assert ids(everything.json["chunk"]) == [roots[0], roots[2], roots[1]]
    assert "next_batch" not in everything.json
    assert summary(everything.json["chunk"][0])["count"] == 2
    assert summary(everything.json["chunk"][0])["current_user_participated"] is True

    first = await threads(client, bob, room_id, limit=2)
    assert ids(first.json["chunk"]) == [roots[0], roots[2]]
    rest = await threads(client, bob, room_id, limit=2, **{"from": first.json["next_batch"]})
    assert ids(rest.json["chunk"]) == [roots[1]] and "next_batch" not in rest.json

    participated = await threads(client, bob, room_id, include="participated")
    assert ids(participated.json["chunk"]) == [roots[0]]
    # Alice started every thread: she took part in all of them.
    assert ids((await threads(client, alice, room_id, include="participated")).json["chunk"]) == \
        [roots[0], roots[2], roots[1]]
    bad = await threads(client, bob, room_id, include="mine")
    assert bad.code == 400 and bad.json["errcode"] == "M_INVALID_PARAM"


@pytest_twisted.ensureDeferred
async def test_threads_of_a_room_one_cannot_read_are_forbidden(client):
    """A user outside a private room gets 403 from GET /threads."""
    alice, mallory = await client.register(), await client.register()
    room_id = await room_of(client, alice, preset="private_chat")
    root = await send_ok(client, alice, room_id, text("secret"))
    await send_ok(client, alice, room_id, in_thread(root, "more secret"))
    refused = await threads(client, mallory, room_id)
    assert refused.code == 403 and refused.json["errcode"] == "M_FORBIDDEN"


@pytest_twisted.ensureDeferred
async def test_ignored_users_do_not_count(client):
    """Replies of an ignored user are left out of the summary; their thread root is served redacted."""
    alice, bob = await client.register(), await client.register()
    room_id = await room_of(client, alice, bob)
    root = await send_ok(client, bob, room_id, text("bob's root"))
    mine = await send_ok(client, alice, room_id, in_thread(root, "alice"))
    await send_ok(client, bob, room_id, in_thread(root, "bob"))
    ignore = await client.request("PUT", f"user/{quote(alice['user_id'])}/account_data/m.ignored_user_list",
                                  {"ignored_users": {bob["user_id"]: {}}}, token=alice["access_token"])
    assert ignore.code == 200, ignore
    listed = await threads(client, alice, room_id)
    assert ids(listed.json["chunk"]) == [root]
    assert listed.json["chunk"][0]["content"] == {}
    thread = summary(listed.json["chunk"][0])
    assert thread["count"] == 1 and thread["latest_event"]["event_id"] == mine


@pytest_twisted.ensureDeferred
async def test_an_incremental_sync_bundles_only_a_limited_timeline(client):
    """A limited incremental timeline carries the root's summary; an unlimited one leaves it to the client (as Synapse)."""
    alice, bob = await client.register(), await client.register()
    room_id = await room_of(client, alice, bob)
    since = (await sync(client, bob))["next_batch"]
    await send_ok(client, alice, room_id, text("before"))
    root = await send_ok(client, alice, room_id, text("root"))
    await send_ok(client, alice, room_id, in_thread(root, "one"))
    await send_ok(client, alice, room_id, in_thread(root, "two"))

    limited = await sync(client, bob, since=since, room_filter={"timeline": {"limit": 3}})
    timeline = limited["rooms"]["join"][room_id]["timeline"]
    assert timeline["limited"] is True
    assert summary(by_id(timeline["events"], root))["count"] == 2
    complete = await sync(client, bob, since=since, room_filter={"timeline": {"limit": 10}})
    timeline = complete["rooms"]["join"][room_id]["timeline"]
    assert timeline["limited"] is False
    assert bundled(by_id(timeline["events"], root)) == {}
