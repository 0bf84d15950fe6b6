"""
Rooms shared by two ruma_tx daemons federating over TLS on loopback: a
user of one server joins a room of the other by alias, both sides talk,
invites cross servers (and are accepted or rejected), typing and receipts
follow, and a leave is seen on both sides.
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


@pytest.fixture(scope="module")
def pair(start_federating):
    return start_federating(), start_federating()


@pytest.fixture
def servers(pair, make_client):
    return make_client(pair[0]), make_client(pair[1])


@pytest_twisted.ensureDeferred
async def test_join_by_alias_and_talk_both_ways(servers):
    """bob of B joins alice's room of A by its alias; each then reads the other's messages."""
    a, b = servers
    alice, bob = await a.register(), await b.register()
    alias_name = "fed" + alice["user_id"][1:].split(":")[0]
    room_id = await create_room(a, alice, preset="public_chat", room_alias_name=alias_name, name="Over the wire")
    alias = f"#{alias_name}:{a.server.server_name}"

    joined = await ok(b, "POST", f"join/{quote(alias)}", {}, user=bob)
    assert joined["room_id"] == room_id

    alice_sync, bob_sync = SyncWatcher(a, alice), SyncWatcher(b, bob)
    # bob's server holds the room's state: its name, and alice as a member.
    state = await bob_sync.wait_for(lambda r: timeline_events(r, room_id), "the joined room")
    names = [e["content"].get("name") for e in state if e["type"] == "m.room.name"]
    assert names == ["Over the wire"]
    await alice_sync.wait_for(membership_of(bob["user_id"], "join", room_id), "bob's join")

    await send_text(a, alice, room_id, "hello from A", "t1")
    seen = await bob_sync.wait_for(message_with_body("hello from A", room_id), "alice's message")
    assert seen["sender"] == alice["user_id"]

    await send_text(b, bob, room_id, "hello from B", "t1")
    seen = await alice_sync.wait_for(message_with_body("hello from B", room_id), "bob's message")
    assert seen["sender"] == bob["user_id"]

    members = await ok(a, "GET", f"rooms/{quote(room_id)}/joined_members", user=alice)
    assert set(members["joined"]) == {alice["user_id"], bob["user_id"]}
    members = await ok(b, "GET", f"rooms/{quote(room_id)}/joined_members", user=bob)
    assert set(members["joined"]) == {alice["user_id"], bob["user_id"]}


@pytest_twisted.ensureDeferred
async def test_invite_across_servers_then_join(servers):
    """carol of B sees alice's invite with the room's name, joins, and her message reaches A."""
    a, b = servers
    alice, carol = await a.register(), await b.register()
    room_id = await create_room(a, alice, preset="private_chat", name="Private talk")
    await ok(a, "POST", f"rooms/{quote(room_id)}/invite", {"user_id": carol["user_id"]}, user=alice)

    carol_sync = SyncWatcher(b, carol)
    invite = await carol_sync.wait_for(invite_to(room_id), "the invite")
    stripped = invite["invite_state"]["events"]
    assert {"type": "m.room.name", "state_key": "", "sender": alice["user_id"],
            "content": {"name": "Private talk"}} in stripped
    assert any(e["type"] == "m.room.member" and e["state_key"] == carol["user_id"]
               and e["content"]["membership"] == "invite" for e in stripped)

    await ok(b, "POST", f"rooms/{quote(room_id)}/join", {}, user=carol)
    await send_text(b, carol, room_id, "thanks for the invite", "t1")
    alice_sync = SyncWatcher(a, alice)
    await alice_sync.wait_for(message_with_body("thanks for the invite", room_id), "carol's message")


@pytest_twisted.ensureDeferred
async def test_rejected_invite_is_seen_by_the_inviter(servers):
    """dave of B rejects alice's invite: his server asks A, and alice sees him leave."""
    a, b = servers
    alice, dave = await a.register(), await b.register()
    room_id = await create_room(a, alice, preset="private_chat")
    await ok(a, "POST", f"rooms/{quote(room_id)}/invite", {"user_id": dave["user_id"]}, user=alice)
    dave_sync = SyncWatcher(b, dave)
    await dave_sync.wait_for(invite_to(room_id), "the invite")
    await ok(b, "POST", f"rooms/{quote(room_id)}/leave", {}, user=dave)
    await dave_sync.wait_for(lambda r: room_id in r.get("rooms", {}).get("leave", {}), "the room left")
    alice_sync = SyncWatcher(a, alice)
    await alice_sync.wait_for(membership_of(dave["user_id"], "leave", room_id), "dave's rejection")


@pytest_twisted.ensureDeferred
async def test_typing_and_receipts_cross_servers(servers):
    """bob types and reads alice's message on B; alice sees both on A."""
    a, b = servers
    alice, bob = await a.register(), await b.register()
    room_id = await create_room(a, alice, preset="public_chat")
    await ok(b, "POST", f"join/{quote(room_id)}", {}, user=bob, query={"via": a.server.server_name})
    bob_sync = SyncWatcher(b, bob)
    event_id = await send_text(a, alice, room_id, "read me", "t1")
    await bob_sync.wait_for(message_with_body("read me", room_id), "alice's message")

    await ok(b, "PUT", f"rooms/{quote(room_id)}/typing/{quote(bob['user_id'])}",
             {"typing": True, "timeout": 30000}, user=bob)
    alice_sync = SyncWatcher(a, alice)

    await alice_sync.wait_for(typing_of(bob["user_id"], room_id), "bob typing")

    await ok(b, "POST", f"rooms/{quote(room_id)}/receipt/m.read/{quote(event_id)}", {}, user=bob)

    await alice_sync.wait_for(receipt_of(bob["user_id"], event_id, room_id), "bob's receipt")


@pytest_twisted.ensureDeferred
async def test_leave_and_kick_are_seen_on_both_servers(servers):
    """erin of B leaves; frank of B is kicked by alice: each server shows both."""
    a, b = servers
    alice, erin, frank = await a.register(), await b.register(), await b.register()
    room_id = await create_room(a, alice, preset="public_chat")
    for user in (erin, frank):
        await ok(b, "POST", f"join/{quote(room_id)}", {}, user=user, query={"via": a.server.server_name})
    alice_sync = SyncWatcher(a, alice)
    await alice_sync.wait_for(membership_of(frank["user_id"], "join", room_id), "frank's join")

    await ok(b, "POST", f"rooms/{quote(room_id)}/leave", {}, user=erin)
    await alice_sync.wait_for(membership_of(erin["user_id"], "leave", room_id), "erin's leave")

    frank_sync = SyncWatcher(b, frank)
    await frank_sync.sync_once()   # before the kick: an initial sync leaves out rooms already left
    await ok(a, "POST", f"rooms/{quote(room_id)}/kick", {"user_id": frank["user_id"], "reason": "bye"},
             user=alice)
    kicked = await frank_sync.wait_for(membership_of(frank["user_id"], "leave", room_id), "the kick")
    assert kicked["sender"] == alice["user_id"]


@pytest.mark.parametrize("room_version", [str(v) for v in range(1, 12)])
@pytest_twisted.ensureDeferred
async def test_older_room_versions_federate(servers, room_version):
    """Rooms of every older version are joined across servers, and messages flow both ways in them."""
    a, b = servers
    alice, bob = await a.register(), await b.register()
    room_id = await create_room(a, alice, preset="public_chat", room_version=room_version)
    await ok(b, "POST", f"join/{quote(room_id)}", {}, user=bob, query={"via": a.server.server_name})
    bob_sync, alice_sync = SyncWatcher(b, bob), SyncWatcher(a, alice)
    await send_text(a, alice, room_id, f"v{room_version} from A", "t1")
    await bob_sync.wait_for(message_with_body(f"v{room_version} from A", room_id), "alice's message")
    await send_text(b, bob, room_id, f"v{room_version} from B", "t1")
    await alice_sync.wait_for(message_with_body(f"v{room_version} from B", room_id), "bob's message")


@pytest.fixture(scope="module")
def third(start_federating):
    return start_federating()


@pytest_twisted.ensureDeferred
async def test_a_third_server_joins_and_talks(servers, third, make_client):
    """C's user joins A's room through A, where B's user is: B sees the join, and C's messages reach B."""
    a, b = servers
    c = make_client(third)
    alice, bob, carol = await a.register(), await b.register(), await c.register()
    room_id = await create_room(a, alice, preset="public_chat")
    await ok(b, "POST", f"join/{quote(room_id)}", {}, user=bob, query={"via": a.server.server_name})
    bob_sync = SyncWatcher(b, bob)
    await bob_sync.sync_once()
    await ok(c, "POST", f"join/{quote(room_id)}", {}, user=carol, query={"via": a.server.server_name})
    await bob_sync.wait_for(membership_of(carol["user_id"], "join", room_id), "carol's join")
    await send_text(c, carol, room_id, "hello from C", "t1")
    await bob_sync.wait_for(message_with_body("hello from C", room_id), "carol's message, sent by C to B")


@pytest_twisted.ensureDeferred
async def test_a_redaction_from_another_server_removes_the_content(servers):
    """bob of B redacts his message; on A the message's content is gone, and alice's redaction works the other way."""
    a, b = servers
    alice, bob = await a.register(), await b.register()
    room_id = await create_room(a, alice, preset="public_chat")
    await ok(b, "POST", f"join/{quote(room_id)}", {}, user=bob, query={"via": a.server.server_name})
    alice_sync, bob_sync = SyncWatcher(a, alice), SyncWatcher(b, bob)
    secret = await send_text(b, bob, room_id, "oops, a secret", "t1")
    await alice_sync.wait_for(message_with_body("oops, a secret", room_id), "bob's message")
    await ok(b, "PUT", f"rooms/{quote(room_id)}/redact/{quote(secret)}/r1", {"reason": "sorry"}, user=bob)

    await alice_sync.wait_for(redaction_of(secret, room_id), "bob's redaction")
    seen = await ok(a, "GET", f"rooms/{quote(room_id)}/event/{quote(secret)}", user=alice)
    assert seen["content"] == {}
    assert seen["unsigned"]["redacted_because"]["sender"] == bob["user_id"]

    mine = await send_text(a, alice, room_id, "alice's slip", "t2")
    await bob_sync.wait_for(message_with_body("alice's slip", room_id), "alice's message")
    await ok(a, "PUT", f"rooms/{quote(room_id)}/redact/{quote(mine)}/r2", {}, user=alice)
    await bob_sync.wait_for(redaction_of(mine, room_id), "alice's redaction")
    seen = await ok(b, "GET", f"rooms/{quote(room_id)}/event/{quote(mine)}", user=bob)
    assert seen["content"] == {}
