"""
History shared with Synapse, the reference homeserver, on loopback: our
user joins a Synapse room with 30 earlier messages and reads them through
/messages (we backfill from Synapse), and a Synapse user joins our room
with 30 earlier messages and reads them (Synapse backfills from us).
Skipped only when ../shared is absent.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest_twisted

from federation_helpers import SyncWatcher, bodies_of, membership_of, page_back, room_with_messages
from room_helpers import ok
from synapse_peer import needs_peer, peer_clients, ruma, synapse, synapse_environment  # noqa: F401 (fixtures)

pytestmark = needs_peer


@pytest_twisted.ensureDeferred
async def test_our_user_reads_the_history_of_a_synapse_room(peer_clients):
    """Our user joins a Synapse room after 30 messages: /messages shows all 30, in order, down to its creation."""
    ours, theirs = peer_clients
    alice, sam = await ours.register(), await theirs.register()
    room_id = await room_with_messages(theirs, sam, "from synapse")
    await ok(ours, "POST", f"join/{quote(room_id)}", {}, user=alice, query={"via": theirs.server_name})

    events = await page_back(ours, alice, room_id)
    assert bodies_of(events) == [f"from synapse {i}" for i in range(30, 0, -1)]
    assert events[-1]["type"] == "m.room.create"
    assert len({e["event_id"] for e in events}) == len(events)


@pytest_twisted.ensureDeferred
async def test_a_synapse_user_reads_the_history_of_our_room(peer_clients):
    """A Synapse user joins our room after 30 messages: Synapse backfills them from us for its /messages."""
    ours, theirs = peer_clients
    alice, sam = await ours.register(), await theirs.register()
    room_id = await room_with_messages(ours, alice, "from ruma")
    await ok(theirs, "POST", f"join/{quote(room_id)}", {}, user=sam, query={"server_name": ours.server.server_name})
    await SyncWatcher(ours, alice).wait_for(membership_of(sam["user_id"], "join", room_id), "Sam's join")

    events = await page_back(theirs, sam, room_id)
    assert bodies_of(events) == [f"from ruma {i}" for i in range(30, 0, -1)]
    assert events[-1]["type"] == "m.room.create"
