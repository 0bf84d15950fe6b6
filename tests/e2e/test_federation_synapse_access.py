"""
Knocks and restricted joins between ruma_tx and Synapse, both ways: a
knock through the other server, seen by the room's members and let in
with an invite; our user's knock rescinded with a leave; a join of a room
restricted to a space's members, vouched for by the resident. Skipped
only when ../shared is absent.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest
import pytest_twisted

from federation_helpers import SyncWatcher, invite_to, knock_on, membership_of, message_with_body
from room_helpers import create_room, ok, send_text
from synapse_peer import SynapseClient, needs_peer, ruma, synapse, synapse_environment  # noqa: F401 (fixtures)

pytestmark = needs_peer

KNOCK_RULES = [{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]


@pytest.fixture
def clients(synapse, ruma, make_client):
    peer, _ = synapse
    return make_client(ruma), SynapseClient(peer)


@pytest_twisted.ensureDeferred
async def test_our_user_knocks_on_a_synapse_room(clients):
    """alice knocks on Sam's room through Synapse: her /sync shows the knock with the room's name, Sam
    sees it and invites her, she joins and her message reaches him."""
    ours, theirs = clients
    alice, sam = await ours.register(), await theirs.register()
    room_id = await create_room(theirs, sam, preset="private_chat", name="Synapse knock room",
                                initial_state=KNOCK_RULES)
    await ok(ours, "POST", f"knock/{quote(room_id)}", {"reason": "hello"}, user=alice,
             query={"via": theirs.server_name})
    alice_sync, sam_sync = SyncWatcher(ours, alice), SyncWatcher(theirs, sam)
    knock = await alice_sync.wait_for(knock_on(room_id), "her knock")
    assert any(e["type"] == "m.room.name" and e["content"]["name"] == "Synapse knock room"
               for e in knock["knock_state"]["events"])
    seen = await sam_sync.wait_for(membership_of(alice["user_id"], "knock", room_id), "alice's knock")
    assert seen["content"].get("reason") == "hello"

    await ok(theirs, "POST", f"rooms/{quote(room_id)}/invite", {"user_id": alice["user_id"]}, user=sam)
    await alice_sync.wait_for(invite_to(room_id), "Sam's invite")
    await ok(ours, "POST", f"rooms/{quote(room_id)}/join", {}, user=alice)
    await send_text(ours, alice, room_id, "knocked and in", "r1")
    await sam_sync.wait_for(message_with_body("knocked and in", room_id), "alice's message")


@pytest_twisted.ensureDeferred
async def test_a_synapse_user_knocks_on_our_room(clients):
    """Sam knocks on alice's room through us (make_knock/send_knock): alice sees it, invites him, he joins."""
    ours, theirs = clients
    alice, sam = await ours.register(), await theirs.register()
    room_id = await create_room(ours, alice, preset="private_chat", name="ruma knock room",
                                initial_state=KNOCK_RULES)
    knocked = await theirs.request("POST", f"knock/{quote(room_id)}", {"reason": "may I"},
                                   token=sam["access_token"], query={"via": ours.server.server_name})
    assert knocked.code == 200, knocked
    alice_sync, sam_sync = SyncWatcher(ours, alice), SyncWatcher(theirs, sam)
    seen = await alice_sync.wait_for(membership_of(sam["user_id"], "knock", room_id), "Sam's knock")
    assert seen["content"].get("reason") == "may I"
    knock = await sam_sync.wait_for(knock_on(room_id), "his knock")
    assert any(e["type"] == "m.room.name" and e["content"]["name"] == "ruma knock room"
               for e in knock["knock_state"]["events"])

    await ok(ours, "POST", f"rooms/{quote(room_id)}/invite", {"user_id": sam["user_id"]}, user=alice)
    await sam_sync.wait_for(invite_to(room_id), "alice's invite")
    await ok(theirs, "POST", f"rooms/{quote(room_id)}/join", {}, user=sam)
    await alice_sync.wait_for(membership_of(sam["user_id"], "join", room_id), "Sam's join")


@pytest_twisted.ensureDeferred
async def test_our_user_rescinds_a_knock_on_a_synapse_room(clients):
    """alice knocks on Sam's room, then leaves: the leave goes through Synapse (make_leave/send_leave) and
    Sam sees it. (Synapse does not rescind its own users' knocks over federation: it only marks them left
    locally, so the other way has nothing to test.)"""
    ours, theirs = clients
    alice, sam = await ours.register(), await theirs.register()
    room_id = await create_room(theirs, sam, preset="private_chat", initial_state=KNOCK_RULES)
    await ok(ours, "POST", f"knock/{quote(room_id)}", {}, user=alice, query={"via": theirs.server_name})
    sam_sync = SyncWatcher(theirs, sam)
    await sam_sync.wait_for(membership_of(alice["user_id"], "knock", room_id), "alice's knock")
    await ok(ours, "POST", f"rooms/{quote(room_id)}/leave", {}, user=alice)
    await sam_sync.wait_for(membership_of(alice["user_id"], "leave", room_id), "alice's leave")


def restricted_to(space_id):
    return [{"type": "m.room.join_rules", "state_key": "",
             "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space_id}]}}]


@pytest_twisted.ensureDeferred
async def test_restricted_joins_both_ways(clients):
    """alice, a member of Sam's space, joins his restricted room through Synapse (which vouches); Sam,
    a member of alice's space, joins her restricted room through us (we vouch and countersign)."""
    ours, theirs = clients
    alice, sam = await ours.register(), await theirs.register()

    their_space = await create_room(theirs, sam, preset="public_chat")
    their_room = await create_room(theirs, sam, preset="private_chat", initial_state=restricted_to(their_space))
    await ok(ours, "POST", f"join/{quote(their_space)}", {}, user=alice, query={"via": theirs.server_name})
    await ok(ours, "POST", f"join/{quote(their_room)}", {}, user=alice, query={"via": theirs.server_name})
    sam_sync = SyncWatcher(theirs, sam)
    join = await sam_sync.wait_for(membership_of(alice["user_id"], "join", their_room), "alice's join")
    assert join["content"]["join_authorised_via_users_server"] == sam["user_id"]

    ours_space = await create_room(ours, alice, preset="public_chat")
    ours_room = await create_room(ours, alice, preset="private_chat", initial_state=restricted_to(ours_space))
    for room_id in (ours_space, ours_room):
        joined = await theirs.request("POST", f"join/{quote(room_id)}", {}, token=sam["access_token"],
                                      query={"via": ours.server.server_name})
        assert joined.code == 200, joined
    join = await SyncWatcher(ours, alice).wait_for(membership_of(sam["user_id"], "join", ours_room), "Sam's join")
    assert join["content"]["join_authorised_via_users_server"] == alice["user_id"]
    await send_text(theirs, sam, ours_room, "vouched for", "s1")
    await SyncWatcher(ours, alice).wait_for(message_with_body("vouched for", ours_room), "Sam's message")
