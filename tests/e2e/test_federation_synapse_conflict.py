"""
A power-level conflict between ruma_tx and Synapse, resolved the same way
on both servers: while the servers cannot reach each other, our moderator
bans a Synapse user and Synapse's room creator demotes our moderator; once
they reconnect, state resolution (v2, as room version 12 has it) drops the
ban on both sides, and both servers show the same current state, in
/state and in our /sync. Skipped only when ../shared is absent.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from federation_helpers import SyncWatcher, membership_of
from polling import DEADLINE_S
from room_helpers import create_room, ok
from synapse_peer import SynapseClient, needs_peer, peer_script, ruma, synapse  # noqa: F401 (fixtures)

pytestmark = needs_peer


async def current_state(client, user: dict, room_id: str) -> dict[tuple[str, str], dict]:
    """The room's current state as C{GET /rooms/{roomId}/state} shows it to C{user}, by key."""
    answer = await client.request("GET", f"rooms/{quote(room_id)}/state", token=user["access_token"])
    assert answer.code == 200, answer
    return {(event["type"], event["state_key"]): event for event in answer.json}


def event_ids(state: dict[tuple[str, str], dict]) -> dict[tuple[str, str], str]:
    return {key: event["event_id"] for key, event in state.items()}


async def converged(ours, alice: dict, theirs, sam: dict, room_id: str, done) -> tuple[dict, dict]:
    """Both servers' current states, once they are the same and C{done(state)} holds."""
    deadline = reactor.seconds() + DEADLINE_S
    while True:
        our_state = await current_state(ours, alice, room_id)
        their_state = await current_state(theirs, sam, room_id)
        if event_ids(our_state) == event_ids(their_state) and done(our_state):
            return our_state, their_state
        assert reactor.seconds() < deadline, (
            f"the servers never agreed: ours {event_ids(our_state)}, Synapse's {event_ids(their_state)}")
        await deferLater(reactor, 0.5, lambda: None)


@pytest_twisted.ensureDeferred
async def test_concurrent_demotion_and_ban_resolve_the_same_on_both_servers(synapse, ruma, make_client):
    """
    alice (ours, moderator) bans dan while Sam (Synapse, the room's
    creator) demotes her, each unseen by the other server: after they
    reconnect, both servers agree that alice is demoted and dan is still
    in the room (her ban, authorised only by the power she lost, loses).
    """
    peer, ca = synapse
    ours, theirs = make_client(ruma), SynapseClient(peer)
    alice, sam, dan = await ours.register(), await theirs.register(), await theirs.register()
    room_id = await create_room(theirs, sam, preset="public_chat", room_version="12",
                                power_level_content_override={"users": {alice["user_id"]: 50}})
    await ok(ours, "POST", f"join/{quote(room_id)}", {}, user=alice, query={"via": theirs.server_name})
    await ok(theirs, "POST", f"rooms/{quote(room_id)}/join", {}, user=dan)
    await SyncWatcher(ours, alice).wait_for(membership_of(dan["user_id"], "join", room_id), "dan's join")
    before, _ = await converged(ours, alice, theirs, sam, room_id,
                                lambda state: ("m.room.member", dan["user_id"]) in state)
    levels = before[("m.room.power_levels", "")]["content"]
    assert levels["users"][alice["user_id"]] == 50

    alice_sync = SyncWatcher(ours, alice)
    before_ban = (await alice_sync.sync_once())["next_batch"]

    # The link is cut: each side acts without seeing the other's change.
    peer_script(ca.environment, "stop")
    await ok(ours, "POST", f"rooms/{quote(room_id)}/ban", {"user_id": dan["user_id"], "reason": "spam"},
             user=alice)
    await alice_sync.wait_for(membership_of(dan["user_id"], "ban", room_id), "her ban")
    ruma.stop()
    peer_script(ca.environment, "start")
    demoted = {**levels, "users": {**levels["users"], alice["user_id"]: 0}}
    await ok(theirs, "PUT", f"rooms/{quote(room_id)}/state/m.room.power_levels/", demoted, user=sam)
    ruma.start()

    our_state, their_state = await converged(
        ours, alice, theirs, sam, room_id,
        lambda state: state[("m.room.power_levels", "")]["content"]["users"].get(alice["user_id"]) == 0)
    assert our_state[("m.room.member", dan["user_id"])]["content"]["membership"] == "join"
    assert their_state[("m.room.member", dan["user_id"])]["content"]["membership"] == "join"
    members = await ok(ours, "GET", f"rooms/{quote(room_id)}/joined_members", user=alice)
    assert dan["user_id"] in members["joined"]
    members = await ok(ours, "GET", f"rooms/{quote(room_id)}/members", user=alice)
    assert [e["content"]["membership"] for e in members["chunk"] if e["state_key"] == dan["user_id"]] == ["join"]
    dan_key = ("m.room.member", dan["user_id"])

    # alice's client saw her ban; its next sync brings dan back, in `state`.
    synced = await alice_sync.sync_once()
    room = synced["rooms"]["join"][room_id]
    assert dan_key not in {(e["type"], e.get("state_key")) for e in room["timeline"]["events"]}
    assert [e["content"]["membership"] for e in room["state"]["events"]
            if (e["type"], e["state_key"]) == dan_key] == ["join"]
    # With use_state_after, even a sync whose timeline shows the ban ends with dan in the room.
    after = await ours.request("GET", "sync", token=alice["access_token"],
                               query={"since": before_ban, "use_state_after": "true", "timeout": "0"})
    assert after.code == 200, after
    room = after.json["rooms"]["join"][room_id]
    assert [e["content"]["membership"] for e in room["timeline"]["events"]
            if (e["type"], e.get("state_key")) == dan_key] == ["ban"]
    assert [e["content"]["membership"] for e in room["state_after"]["events"]
            if (e["type"], e["state_key"]) == dan_key] == ["join"]
