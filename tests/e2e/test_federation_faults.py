"""
Faults between federating servers: the receiving server killed (SIGKILL)
or stopped while the other sends, then restarted on the same database; the
sending server killed mid-sending. Every message a client got an answer
for arrives on the other server, once, in the order it was sent. Two
ruma_tx daemons, then ruma_tx and Synapse both ways (skipped only when
../shared is absent).
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import pytest
import pytest_twisted
from twisted.internet import reactor

from federation_helpers import LONG_TIMELINE, SyncWatcher, link, membership_of, message_bodies
from room_helpers import create_room, ok, send_text
from synapse_peer import SynapseClient, needs_peer, peer_script, ruma, synapse  # noqa: F401 (fixtures)



async def messages_arrived(watcher: SyncWatcher, room_id: str, count: int) -> list[str]:
    """The message bodies of the room in everything C{watcher} synced, once there are C{count}."""
    return await watcher.wait_for(
        lambda _: (bodies := message_bodies(watcher.seen, room_id)) and len(bodies) >= count and bodies,
        f"{count} messages")


async def send_during_outage(down, up, client, user: dict, room_id: str, bodies: list[str]) -> None:
    """C{down()}, then C{user} sends the messages, then C{up()} (even if a send failed)."""
    down()
    try:
        for n, body in enumerate(bodies):
            await send_text(client, user, room_id, body, f"outage{n}")
    finally:
        up()


@pytest_twisted.ensureDeferred
async def test_messages_sent_while_the_receiver_is_down_arrive_in_order(start_federating, make_client):
    """B is killed while alice of A sends 20 messages; once B is back, bob's /sync shows all 20, in order."""
    linked = await link(start_federating, make_client)
    sent = [f"sent while B was down #{n}" for n in range(20)]
    await send_during_outage(linked.server_b.kill, linked.server_b.start, linked.a, linked.alice, linked.room_id,
                             sent)
    assert await messages_arrived(linked.bob_sync, linked.room_id, len(sent)) == sent
    assert await linked.messages(linked.b, linked.bob) == sent[::-1]


@pytest_twisted.ensureDeferred
async def test_a_long_outage_is_caught_up_through_get_missing_events(start_federating, make_client):
    """
    B is down while alice sends 60 messages, more than a transaction holds:
    A catches up with the latest only, B fetches the ones before it
    (get_missing_events), and bob's /sync shows all 60, in order.
    """
    linked = await link(start_federating, make_client)
    sent = [f"sent during a long outage #{n}" for n in range(60)]
    await send_during_outage(linked.server_b.kill, linked.server_b.start, linked.a, linked.alice, linked.room_id,
                             sent)
    assert await messages_arrived(linked.bob_sync, linked.room_id, len(sent)) == sent
    assert "get_missing_events" in linked.server_a.log(), "A sent every event itself: no catch-up happened"


@pytest_twisted.ensureDeferred
async def test_sender_killed_mid_sending_loses_and_duplicates_nothing(start_federating, make_client):
    """
    A is killed while alice sends; after its restart she retries what got
    no answer with the same transaction ids: every acknowledged message
    kept its event id, and B shows each of the 20 exactly once, in order.
    """
    linked = await link(start_federating, make_client)
    sent = [f"sent around a crash #{n}" for n in range(20)]
    acknowledged: dict[int, str] = {}
    for n, body in enumerate(sent):
        if n == 10:
            # Killed while the 11th request is on its way (or being stored, or sent on).
            reactor.callLater(0.01, linked.server_a.kill)
        try:
            acknowledged[n] = await send_text(linked.a, linked.alice, linked.room_id, body, f"crash{n}")
        except Exception:
            break
    assert 10 <= len(acknowledged) < 20
    linked.server_a.start()

    for n, body in enumerate(sent):
        event_id = await send_text(linked.a, linked.alice, linked.room_id, body, f"crash{n}")
        if n in acknowledged:
            assert event_id == acknowledged[n], f"message {n} was stored again"

    assert await messages_arrived(linked.bob_sync, linked.room_id, len(sent)) == sent
    assert await linked.messages(linked.a, linked.alice) == sent[::-1]


# -- with Synapse as the peer ---------------------------------------------------


@pytest.fixture
def with_synapse(synapse, ruma, make_client):
    peer, ca = synapse
    return make_client(ruma), SynapseClient(peer), ca.environment


@dataclass
class SharedWithSynapse:
    """A room of alice's (ours) that Sam of the Synapse peer has joined; both users' /sync, caught up."""

    alice: dict
    sam: dict
    room_id: str
    alice_sync: SyncWatcher
    sam_sync: SyncWatcher


async def share_with_synapse(ours, theirs) -> SharedWithSynapse:
    alice, sam = await ours.register(), await theirs.register()
    room_id = await create_room(ours, alice, preset="public_chat")
    await ok(theirs, "POST", f"join/{quote(room_id)}", {}, user=sam,
             query={"server_name": ours.server.server_name})
    alice_sync, sam_sync = SyncWatcher(ours, alice, LONG_TIMELINE), SyncWatcher(theirs, sam, LONG_TIMELINE)
    for watcher in (alice_sync, sam_sync):
        await watcher.wait_for(membership_of(sam["user_id"], "join", room_id), "Sam's join")
    return SharedWithSynapse(alice, sam, room_id, alice_sync, sam_sync)


@needs_peer
@pytest_twisted.ensureDeferred
async def test_messages_sent_while_synapse_is_down_arrive_after_it_returns(with_synapse):
    """The Synapse peer is stopped while alice sends 20 messages; once it is back, Sam's /sync shows them in order."""
    ours, theirs, environment = with_synapse
    shared = await share_with_synapse(ours, theirs)
    sent = [f"sent while Synapse was down #{n}" for n in range(20)]
    await send_during_outage(lambda: peer_script(environment, "stop"), lambda: peer_script(environment, "start"),
                             ours, shared.alice, shared.room_id, sent)
    assert await messages_arrived(shared.sam_sync, shared.room_id, len(sent)) == sent


@needs_peer
@pytest_twisted.ensureDeferred
async def test_messages_synapse_sent_while_we_were_down_arrive_after_we_return(with_synapse):
    """Our daemon is killed while Sam of Synapse sends 20 messages; once it is back, alice's /sync shows them."""
    ours, theirs, _ = with_synapse
    shared = await share_with_synapse(ours, theirs)
    sent = [f"sent while ruma was down #{n}" for n in range(20)]
    await send_during_outage(ours.server.kill, ours.server.start, theirs, shared.sam, shared.room_id, sent)
    assert await messages_arrived(shared.alice_sync, shared.room_id, len(sent)) == sent
