"""
Presence over federation (C{m.presence} EDUs): a user's presence and
status message reach the users of another server who share a room with
them, in their /sync C{presence} and in C{GET /presence/{userId}/status};
between two ruma_tx daemons, and with Synapse both ways (skipped only when
../shared is absent).
"""
from __future__ import annotations

from urllib.parse import quote

import pytest
import pytest_twisted

from federation_helpers import SyncWatcher, membership_of
from polling import DEADLINE_S
from room_helpers import create_room, ok
from synapse_peer import SynapseClient, needs_peer, ruma, synapse  # noqa: F401 (fixtures)
from twisted.internet import reactor
from twisted.internet.task import deferLater


def presence_of(user_id: str, presence: str, status_msg: str):
    """A /sync predicate: C{user_id}'s C{m.presence} event with that state and message."""
    def found(response: dict) -> dict | None:
        for event in response.get("presence", {}).get("events", []):
            content = event["content"]
            if event["sender"] == user_id and content["presence"] == presence \
                    and content.get("status_msg") == status_msg:
                return event
        return None
    return found


async def set_presence(client, user: dict, presence: str, status_msg: str) -> None:
    await ok(client, "PUT", f"presence/{quote(user['user_id'])}/status",
             {"presence": presence, "status_msg": status_msg}, user=user)


async def status_becomes(client, viewer: dict, user_id: str, presence: str, status_msg: str) -> dict:
    """C{GET /presence/{user_id}/status} as C{viewer}, until it shows that state and message."""
    deadline = reactor.seconds() + DEADLINE_S
    while True:
        answer = await client.request("GET", f"presence/{quote(user_id)}/status",
                                      token=viewer["access_token"])
        assert answer.code == 200, answer
        if (answer.json["presence"], answer.json.get("status_msg")) == (presence, status_msg):
            return answer.json
        assert reactor.seconds() < deadline, f"{user_id}'s status stayed {answer.json}"
        await deferLater(reactor, 0.2, lambda: None)


async def exchange_presence(ours, theirs, alice: dict, sam: dict) -> None:
    """
    Each sets a status; the other sees it in /sync and in GET status
    (C{ours} is a ruma_tx daemon; C{theirs} another one or Synapse).
    """
    alice_sync, sam_sync = SyncWatcher(ours, alice), SyncWatcher(theirs, sam)
    await alice_sync.sync_once()
    await sam_sync.sync_once()

    await set_presence(theirs, sam, "online", "on the other server")
    seen = await alice_sync.wait_for(presence_of(sam["user_id"], "online", "on the other server"),
                                     "the other server's presence")
    assert seen["content"]["currently_active"] is True
    await status_becomes(ours, alice, sam["user_id"], "online", "on the other server")

    await set_presence(ours, alice, "unavailable", "back soon")
    await sam_sync.wait_for(presence_of(alice["user_id"], "unavailable", "back soon"), "our presence")
    await status_becomes(theirs, sam, alice["user_id"], "unavailable", "back soon")


@pytest.fixture(scope="module")
def pair(start_federating):
    return start_federating(), start_federating()


@pytest_twisted.ensureDeferred
async def test_presence_between_two_ruma_servers(pair, make_client):
    """alice of A and bob of B share a room: each one's presence and status message reach the other."""
    a, b = make_client(pair[0]), make_client(pair[1])
    alice, bob = await a.register(), await b.register()
    room_id = await create_room(a, alice, preset="public_chat")
    await ok(b, "POST", f"join/{quote(room_id)}", {}, user=bob, query={"via": pair[0].server_name})
    await SyncWatcher(a, alice).wait_for(membership_of(bob["user_id"], "join", room_id), "bob's join")
    await exchange_presence(a, b, alice, bob)


@pytest_twisted.ensureDeferred
async def test_presence_set_before_a_join_is_seen_by_the_new_member(pair, make_client):
    """alice set her status before bob of B joined her room: once he has joined, he sees it."""
    a, b = make_client(pair[0]), make_client(pair[1])
    alice, bob = await a.register(), await b.register()
    await set_presence(a, alice, "online", "set before you came")
    room_id = await create_room(a, alice, preset="public_chat")
    await ok(b, "POST", f"join/{quote(room_id)}", {}, user=bob, query={"via": pair[0].server_name})
    await SyncWatcher(b, bob).wait_for(presence_of(alice["user_id"], "online", "set before you came"),
                                       "alice's presence")
    await status_becomes(b, bob, alice["user_id"], "online", "set before you came")


@needs_peer
@pytest_twisted.ensureDeferred
async def test_presence_with_synapse_both_ways(synapse, ruma, make_client):
    """Our user and a Synapse user share a room: each one's presence and status message reach the other."""
    peer, _ = synapse
    ours, theirs = make_client(ruma), SynapseClient(peer)
    alice, sam = await ours.register(), await theirs.register()
    room_id = await create_room(ours, alice, preset="public_chat")
    await ok(theirs, "POST", f"join/{quote(room_id)}", {}, user=sam, query={"server_name": ruma.server_name})
    await SyncWatcher(ours, alice).wait_for(membership_of(sam["user_id"], "join", room_id), "Sam's join")
    await exchange_presence(ours, theirs, alice, sam)
