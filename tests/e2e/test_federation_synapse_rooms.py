"""
Rooms shared with Synapse, the reference homeserver, on loopback: joins by
alias both ways, messages both ways, invites both ways, typing, receipts,
leaves, kicks and bans. Skipped only when ../shared is absent.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest
import pytest_twisted

from federation_helpers import (
    SyncWatcher,
    invite_to,
    membership_of,
    message_with_body,
    receipt_of,
    redaction_of,
    timeline_events,
    typing_of,
)
from room_helpers import create_room, ok, send_text
from synapse_peer import SynapseClient, needs_peer, ruma, synapse  # noqa: F401 (fixtures)

pytestmark = needs_peer


@pytest.fixture
def clients(synapse, ruma, make_client):
    peer, _ = synapse
    return make_client(ruma), SynapseClient(peer)


@pytest_twisted.ensureDeferred
async def test_our_user_joins_a_synapse_room_by_alias(clients):
    """Our user joins a Synapse room by alias; messages flow both ways."""
    ours, theirs = clients
    alice, sam = await ours.register(), await theirs.register()
    alias_name = "syn" + sam["user_id"][1:].split(":")[0]
    room_id = await create_room(theirs, sam, preset="public_chat", room_alias_name=alias_name, name="Synapse room")
    joined = await ok(ours, "POST", f"join/{quote(f'#{alias_name}:{theirs.server_name}')}", {}, user=alice)
    assert joined["room_id"] == room_id

    alice_sync, sam_sync = SyncWatcher(ours, alice), SyncWatcher(theirs, sam)
    state = await alice_sync.wait_for(lambda r: timeline_events(r, room_id), "the joined room")
    assert [e["content"]["name"] for e in state if e["type"] == "m.room.name"] == ["Synapse room"]
    await sam_sync.wait_for(membership_of(alice["user_id"], "join", room_id), "alice's join")

    await send_text(theirs, sam, room_id, "hi from Synapse", "s1")
    await alice_sync.wait_for(message_with_body("hi from Synapse", room_id), "Sam's message")
    await send_text(ours, alice, room_id, "hi from ruma", "r1")
    await sam_sync.wait_for(message_with_body("hi from ruma", room_id), "alice's message")


@pytest_twisted.ensureDeferred
async def test_a_synapse_user_joins_our_room_by_alias(clients):
    """A Synapse user joins our room by alias (make_join/send_join to us); messages flow both ways."""
    ours, theirs = clients
    alice, sam = await ours.register(), await theirs.register()
    alias_name = "ours" + alice["user_id"][1:].split(":")[0]
    room_id = await create_room(ours, alice, preset="public_chat", room_alias_name=alias_name, name="ruma room")
    joined = await ok(theirs, "POST", f"join/{quote(f'#{alias_name}:{ours.server.server_name}')}", {}, user=sam)
    assert joined["room_id"] == room_id

    alice_sync, sam_sync = SyncWatcher(ours, alice), SyncWatcher(theirs, sam)
    await alice_sync.wait_for(membership_of(sam["user_id"], "join", room_id), "Sam's join")
    state = await sam_sync.wait_for(lambda r: timeline_events(r, room_id), "the joined room")
    assert [e["content"]["name"] for e in state if e["type"] == "m.room.name"] == ["ruma room"]

    await send_text(ours, alice, room_id, "welcome", "r1")
    await sam_sync.wait_for(message_with_body("welcome", room_id), "alice's message")
    await send_text(theirs, sam, room_id, "thanks", "s1")
    await alice_sync.wait_for(message_with_body("thanks", room_id), "Sam's message")


@pytest_twisted.ensureDeferred
async def test_invites_both_ways(clients):
    """We invite a Synapse user who joins; Synapse invites our user who joins."""
    ours, theirs = clients
    alice, sam = await ours.register(), await theirs.register()

    ours_room = await create_room(ours, alice, preset="private_chat", name="by invite")
    await ok(ours, "POST", f"rooms/{quote(ours_room)}/invite", {"user_id": sam["user_id"]}, user=alice)
    sam_sync = SyncWatcher(theirs, sam)
    invite = await sam_sync.wait_for(invite_to(ours_room), "our invite")
    assert any(e["type"] == "m.room.name" and e["content"]["name"] == "by invite"
               for e in invite["invite_state"]["events"])
    await ok(theirs, "POST", f"rooms/{quote(ours_room)}/join", {}, user=sam)
    alice_sync = SyncWatcher(ours, alice)
    await alice_sync.wait_for(membership_of(sam["user_id"], "join", ours_room), "Sam's join")

    their_room = await create_room(theirs, sam, preset="private_chat", name="their invite")
    await ok(theirs, "POST", f"rooms/{quote(their_room)}/invite", {"user_id": alice["user_id"]}, user=sam)
    invite = await alice_sync.wait_for(invite_to(their_room), "Synapse's invite")
    assert any(e["type"] == "m.room.name" and e["content"]["name"] == "their invite"
               for e in invite["invite_state"]["events"])
    await ok(ours, "POST", f"rooms/{quote(their_room)}/join", {}, user=alice)
    await sam_sync.wait_for(membership_of(alice["user_id"], "join", their_room), "alice's join")
    await send_text(ours, alice, their_room, "accepted", "r2")
    await sam_sync.wait_for(message_with_body("accepted", their_room), "alice's message")


@pytest_twisted.ensureDeferred
async def test_typing_and_receipts_both_ways(clients):
    """Typing and read receipts of each side reach the other."""
    ours, theirs = clients
    alice, sam = await ours.register(), await theirs.register()
    room_id = await create_room(ours, alice, preset="public_chat")
    await ok(theirs, "POST", f"join/{quote(room_id)}", {}, user=sam, query={"server_name": ours.server.server_name})
    alice_sync, sam_sync = SyncWatcher(ours, alice), SyncWatcher(theirs, sam)
    ours_event = await send_text(ours, alice, room_id, "from alice", "r1")
    await sam_sync.wait_for(message_with_body("from alice", room_id), "alice's message")
    theirs_event = await send_text(theirs, sam, room_id, "from sam", "s1")
    await alice_sync.wait_for(message_with_body("from sam", room_id), "Sam's message")

    await ok(theirs, "PUT", f"rooms/{quote(room_id)}/typing/{quote(sam['user_id'])}",
             {"typing": True, "timeout": 30000}, user=sam)
    await alice_sync.wait_for(typing_of(sam["user_id"], room_id), "Sam typing")
    await ok(ours, "PUT", f"rooms/{quote(room_id)}/typing/{quote(alice['user_id'])}",
             {"typing": True, "timeout": 30000}, user=alice)
    await sam_sync.wait_for(typing_of(alice["user_id"], room_id), "alice typing")

    await ok(theirs, "POST", f"rooms/{quote(room_id)}/receipt/m.read/{quote(ours_event)}", {}, user=sam)
    await alice_sync.wait_for(receipt_of(sam["user_id"], ours_event, room_id), "Sam's receipt")
    await ok(ours, "POST", f"rooms/{quote(room_id)}/receipt/m.read/{quote(theirs_event)}", {}, user=alice)
    await sam_sync.wait_for(receipt_of(alice["user_id"], theirs_event, room_id), "alice's receipt")


@pytest_twisted.ensureDeferred
async def test_leave_kick_and_ban_both_ways(clients):
    """A Synapse member leaves our room; we kick and ban Synapse users; Synapse kicks ours."""
    ours, theirs = clients
    alice, sam, sue, sid = await ours.register(), await theirs.register(), await theirs.register(), \
        await theirs.register()
    room_id = await create_room(ours, alice, preset="public_chat")
    for user in (sam, sue, sid):
        await ok(theirs, "POST", f"join/{quote(room_id)}", {}, user=user,
                 query={"server_name": ours.server.server_name})
    alice_sync = SyncWatcher(ours, alice)
    await alice_sync.wait_for(membership_of(sid["user_id"], "join", room_id), "the joins")

    await ok(theirs, "POST", f"rooms/{quote(room_id)}/leave", {}, user=sam)
    await alice_sync.wait_for(membership_of(sam["user_id"], "leave", room_id), "Sam's leave")
    # Their syncs start before the kick and the ban: an initial sync leaves out rooms already left.
    sue_sync, sid_sync = SyncWatcher(theirs, sue), SyncWatcher(theirs, sid)
    await sue_sync.sync_once()
    await sid_sync.sync_once()
    await ok(ours, "POST", f"rooms/{quote(room_id)}/kick", {"user_id": sue["user_id"]}, user=alice)
    await sue_sync.wait_for(membership_of(sue["user_id"], "leave", room_id), "Sue's kick")
    await ok(ours, "POST", f"rooms/{quote(room_id)}/ban", {"user_id": sid["user_id"]}, user=alice)
    await sid_sync.wait_for(membership_of(sid["user_id"], "ban", room_id), "Sid's ban")
    rejoin = await theirs.request("POST", f"join/{quote(room_id)}", {}, token=sid["access_token"],
                                  query={"server_name": ours.server.server_name})
    assert rejoin.code == 403, rejoin

    their_room = await create_room(theirs, sue, preset="public_chat")
    await ok(ours, "POST", f"join/{quote(their_room)}", {}, user=alice, query={"via": theirs.server_name})
    await ok(theirs, "POST", f"rooms/{quote(their_room)}/kick", {"user_id": alice["user_id"]}, user=sue)
    kicked = await alice_sync.wait_for(membership_of(alice["user_id"], "leave", their_room), "alice's kick")
    assert kicked["sender"] == sue["user_id"]


@pytest.fixture(scope="module")
def second_ruma(synapse, start_homeserver):
    """Another ruma_tx daemon in the same federation (the peer's CA)."""
    _, ca = synapse
    return start_homeserver(federation={}, ca=ca)


@pytest_twisted.ensureDeferred
async def test_we_pass_a_synapse_join_on_to_the_rooms_other_servers(clients, second_ruma, make_client):
    """
    A Synapse user joins our room, where a user of a second ruma_tx server
    already is: Synapse sends its join to us alone, and we pass it on.
    """
    ours, theirs = clients
    other = make_client(second_ruma)
    alice, olga, sam = await ours.register(), await other.register(), await theirs.register()
    room_id = await create_room(ours, alice, preset="public_chat")
    await ok(other, "POST", f"join/{quote(room_id)}", {}, user=olga, query={"via": ours.server.server_name})
    olga_sync = SyncWatcher(other, olga)
    await olga_sync.sync_once()
    await ok(theirs, "POST", f"join/{quote(room_id)}", {}, user=sam, query={"server_name": ours.server.server_name})
    await olga_sync.wait_for(membership_of(sam["user_id"], "join", room_id), "Sam's join, passed on by us")


@pytest.mark.parametrize("room_version", ["1", "3", "5", "7", "9", "10", "11"])
@pytest_twisted.ensureDeferred
async def test_older_room_versions_both_ways(clients, room_version):
    """In rooms of older versions, made on either side, the other side's user joins and messages flow."""
    ours, theirs = clients
    alice, sam = await ours.register(), await theirs.register()
    alice_sync, sam_sync = SyncWatcher(ours, alice), SyncWatcher(theirs, sam)

    ours_room = await create_room(ours, alice, preset="public_chat", room_version=room_version)
    await ok(theirs, "POST", f"join/{quote(ours_room)}", {}, user=sam,
             query={"server_name": ours.server.server_name})
    await send_text(theirs, sam, ours_room, f"v{room_version}: Sam in ours", "s1")
    await alice_sync.wait_for(message_with_body(f"v{room_version}: Sam in ours", ours_room), "Sam's message")

    their_room = await create_room(theirs, sam, preset="public_chat", room_version=room_version)
    await ok(ours, "POST", f"join/{quote(their_room)}", {}, user=alice, query={"via": theirs.server_name})
    await send_text(ours, alice, their_room, f"v{room_version}: alice in theirs", "r1")
    await sam_sync.wait_for(message_with_body(f"v{room_version}: alice in theirs", their_room),
                            "alice's message")


@pytest_twisted.ensureDeferred
async def test_redactions_both_ways(clients):
    """A Synapse user's redaction removes the content on our side, and ours on Synapse's."""
    ours, theirs = clients
    alice, sam = await ours.register(), await theirs.register()
    room_id = await create_room(ours, alice, preset="public_chat")
    await ok(theirs, "POST", f"join/{quote(room_id)}", {}, user=sam, query={"server_name": ours.server.server_name})
    alice_sync, sam_sync = SyncWatcher(ours, alice), SyncWatcher(theirs, sam)

    theirs_event = await send_text(theirs, sam, room_id, "Sam's slip", "s1")
    await alice_sync.wait_for(message_with_body("Sam's slip", room_id), "Sam's message")
    await ok(theirs, "PUT", f"rooms/{quote(room_id)}/redact/{quote(theirs_event)}/x1", {}, user=sam)
    await alice_sync.wait_for(redaction_of(theirs_event, room_id), "Sam's redaction")
    seen = await ok(ours, "GET", f"rooms/{quote(room_id)}/event/{quote(theirs_event)}", user=alice)
    assert seen["content"] == {}

    ours_event = await send_text(ours, alice, room_id, "alice's slip", "r1")
    await sam_sync.wait_for(message_with_body("alice's slip", room_id), "alice's message")
    await ok(ours, "PUT", f"rooms/{quote(room_id)}/redact/{quote(ours_event)}/x2", {}, user=alice)
    await sam_sync.wait_for(redaction_of(ours_event, room_id), "alice's redaction")
    seen = await ok(theirs, "GET", f"rooms/{quote(room_id)}/event/{quote(ours_event)}", user=sam)
    assert seen["content"] == {}
