"""
Knocks and restricted joins between ruma_tx daemons: a user of B knocks
on a room of A through A (make_knock/send_knock), sees the knock with the
room's state, is let in by an invite or rescinds; a user of B joins a
restricted room of A through membership of an allowed room, vouched for
by A (which countersigns), and a resident that cannot vouch answers
M_UNABLE_TO_GRANT_JOIN or M_UNABLE_TO_AUTHORISE_JOIN so that B asks
another.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest
import pytest_twisted

from federation_forging import Forger, path_of
from federation_helpers import SyncWatcher, invite_to, knock_on, membership_of, message_with_body
from room_helpers import create_room, ok, send_text
from test_federation_transport import federation_http  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def trio(start_federating):
    return tuple(start_federating() for _ in range(3))


@pytest.fixture
def clients(trio, make_client):
    return tuple(make_client(server) for server in trio)


def left(room_id):
    def found(response):
        return room_id in response.get("rooms", {}).get("leave", {})
    return found


async def knock_room(a, alice, name):
    return await create_room(a, alice, preset="private_chat", name=name,
                             initial_state=[{"type": "m.room.join_rules", "state_key": "",
                                             "content": {"join_rule": "knock"}}])


@pytest_twisted.ensureDeferred
async def test_knock_through_the_resident_then_invited_in(clients):
    """bob of B knocks on alice's room of A: his /sync shows the knock with the room's name, alice sees
    it; her invite reaches him; he joins and talks."""
    a, b, _ = clients
    alice, bob = await a.register(), await b.register()
    room_id = await knock_room(a, alice, "Knock first")
    knocked = await ok(b, "POST", f"knock/{quote(room_id)}", {"reason": "let me in"}, user=bob,
                       query={"via": a.server.server_name})
    assert knocked == {"room_id": room_id}

    bob_sync = SyncWatcher(b, bob)
    knock = await bob_sync.wait_for(knock_on(room_id), "his knock")
    stripped = knock["knock_state"]["events"]
    assert {"type": "m.room.name", "state_key": "", "sender": alice["user_id"],
            "content": {"name": "Knock first"}} in stripped
    assert any(e["type"] == "m.room.member" and e["state_key"] == bob["user_id"]
               and e["content"]["membership"] == "knock" for e in stripped)
    alice_sync = SyncWatcher(a, alice)
    seen = await alice_sync.wait_for(membership_of(bob["user_id"], "knock", room_id), "bob's knock")
    assert seen["content"].get("reason") == "let me in"

    await ok(a, "POST", f"rooms/{quote(room_id)}/invite", {"user_id": bob["user_id"]}, user=alice)
    await bob_sync.wait_for(invite_to(room_id), "the invite")
    await ok(b, "POST", f"rooms/{quote(room_id)}/join", {}, user=bob)
    await send_text(b, bob, room_id, "thanks for letting me in", "t1")
    await alice_sync.wait_for(message_with_body("thanks for letting me in", room_id), "bob's message")


@pytest_twisted.ensureDeferred
async def test_knock_rescinded_with_leave(clients):
    """carol of B knocks on alice's room, then leaves: the leave goes through A and alice sees it."""
    a, b, _ = clients
    alice, carol = await a.register(), await b.register()
    room_id = await knock_room(a, alice, "Changed my mind")
    await ok(b, "POST", f"knock/{quote(room_id)}", {}, user=carol, query={"via": a.server.server_name})
    alice_sync = SyncWatcher(a, alice)
    await alice_sync.wait_for(membership_of(carol["user_id"], "knock", room_id), "carol's knock")

    carol_sync = SyncWatcher(b, carol)
    await carol_sync.wait_for(knock_on(room_id), "her knock")
    await ok(b, "POST", f"rooms/{quote(room_id)}/leave", {}, user=carol)
    await carol_sync.wait_for(left(room_id), "the rescinded knock")
    await alice_sync.wait_for(membership_of(carol["user_id"], "leave", room_id), "carol's leave")


@pytest_twisted.ensureDeferred
async def test_knock_on_a_room_that_refuses_knocks(clients):
    """A knock on A's invite-only room is refused with 403 and leaves no knock on either side."""
    a, b, _ = clients
    alice, dave = await a.register(), await b.register()
    room_id = await create_room(a, alice, preset="private_chat")
    refused = await b.request("POST", f"knock/{quote(room_id)}", {}, token=dave["access_token"],
                              query={"via": a.server.server_name})
    assert refused.code == 403 and refused.json["errcode"] == "M_FORBIDDEN", refused
    dave_sync = SyncWatcher(b, dave)
    response = await dave_sync.sync_once()
    assert room_id not in response.get("rooms", {}).get("knock", {})
    state = await ok(a, "GET", f"rooms/{quote(room_id)}/state", user=alice)
    assert not any(e["type"] == "m.room.member" and e["state_key"] == dave["user_id"] for e in state)


async def restricted_pair(a, alice, *, invite_level=0):
    """A space-like room S (public) and a room R restricted to S's members: C{(space_id, room_id)}."""
    space_id = await create_room(a, alice, preset="public_chat", name="The space")
    room_id = await create_room(
        a, alice, preset="private_chat", name="Members only",
        power_level_content_override={"invite": invite_level},
        initial_state=[{"type": "m.room.join_rules", "state_key": "",
                        "content": {"join_rule": "restricted",
                                    "allow": [{"type": "m.room_membership", "room_id": space_id}]}}])
    return space_id, room_id


@pytest_twisted.ensureDeferred
async def test_restricted_join_vouched_for_by_the_resident(clients):
    """erin of B, a member of S, joins R (restricted to S) through A: A names alice as authoriser and
    countersigns; B shows the room; fred, in no allowed room, gets 403."""
    a, b, _ = clients
    alice, erin, fred = await a.register(), await b.register(), await b.register()
    space_id, room_id = await restricted_pair(a, alice)
    await ok(b, "POST", f"join/{quote(space_id)}", {}, user=erin, query={"via": a.server.server_name})
    await SyncWatcher(a, alice).wait_for(membership_of(erin["user_id"], "join", space_id), "erin in S")

    await ok(b, "POST", f"join/{quote(room_id)}", {}, user=erin, query={"via": a.server.server_name})
    join = await SyncWatcher(a, alice).wait_for(membership_of(erin["user_id"], "join", room_id), "erin in R")
    assert join["content"]["join_authorised_via_users_server"] == alice["user_id"]
    members = await ok(b, "GET", f"rooms/{quote(room_id)}/joined_members", user=erin)
    assert set(members["joined"]) == {alice["user_id"], erin["user_id"]}

    refused = await b.request("POST", f"join/{quote(room_id)}", {}, token=fred["access_token"],
                              query={"via": a.server.server_name})
    assert refused.code == 403 and refused.json["errcode"] == "M_FORBIDDEN", refused


@pytest_twisted.ensureDeferred
async def test_a_resident_that_cannot_vouch_sends_the_joiner_elsewhere(clients, trio, federation_http):  # noqa: F811
    """C is in R (invite needs power 50; carl has 0) and in S: it answers make_join for a member of S
    with 400 M_UNABLE_TO_GRANT_JOIN; for R2, restricted to S2 which C left, 400
    M_UNABLE_TO_AUTHORISE_JOIN. gwen of B asking C first still gets in, through A."""
    a, b, c = clients
    alice, carl, gwen = await a.register(), await c.register(), await b.register()
    space_id, room_id = await restricted_pair(a, alice, invite_level=50)
    elsewhere_space, elsewhere_room = await restricted_pair(a, alice, invite_level=50)
    for joined in (space_id, room_id, elsewhere_space, elsewhere_room):
        await ok(c, "POST", f"join/{quote(joined)}", {}, user=carl, query={"via": a.server.server_name})
    await ok(c, "POST", f"rooms/{quote(elsewhere_space)}/leave", {}, user=carl)  # C is in R2, not S2
    await ok(b, "POST", f"join/{quote(space_id)}", {}, user=gwen, query={"via": a.server.server_name})
    await SyncWatcher(c, carl).wait_for(membership_of(gwen["user_id"], "join", space_id), "gwen in S, seen by C")

    as_b_to_c = Forger(federation_http, trio[1], trio[2])
    code, answer = await as_b_to_c.make_join(room_id, gwen["user_id"])
    assert (code, answer["errcode"]) == (400, "M_UNABLE_TO_GRANT_JOIN"), answer
    code, answer = await as_b_to_c.make_join(elsewhere_room, gwen["user_id"])
    assert (code, answer["errcode"]) == (400, "M_UNABLE_TO_AUTHORISE_JOIN"), answer

    await ok(b, "POST", f"join/{quote(room_id)}", {}, user=gwen,
             query={"via": [c.server.server_name, a.server.server_name]})
    join = await SyncWatcher(c, carl).wait_for(membership_of(gwen["user_id"], "join", room_id), "gwen in R")
    assert join["content"]["join_authorised_via_users_server"] == alice["user_id"]


@pytest_twisted.ensureDeferred
async def test_a_join_naming_our_user_as_voucher_is_not_taken_on_trust(clients, trio, federation_http):  # noqa: F811
    """B forges hank's join of R naming alice as authoriser though hank is in no allowed room: send_join
    answers 403, and the same event in a transaction lacks A's signature and is refused; hank never joins."""
    a, b, _ = clients
    alice, erin, hank = await a.register(), await b.register(), await b.register()
    space_id, room_id = await restricted_pair(a, alice)
    await ok(b, "POST", f"join/{quote(space_id)}", {}, user=erin, query={"via": a.server.server_name})
    await SyncWatcher(a, alice).wait_for(membership_of(erin["user_id"], "join", space_id), "erin in S")
    as_b = Forger(federation_http, trio[1], trio[0])
    code, answer = await as_b.make_join(room_id, erin["user_id"])  # a template hank's join can copy
    assert code == 200 and answer["event"]["content"]["join_authorised_via_users_server"] == alice["user_id"]
    template = answer["event"]
    join_id, join = as_b.pdu(answer["room_version"], room_id=room_id, sender=hank["user_id"],
                             state_key=hank["user_id"], event_type="m.room.member",
                             content={"membership": "join", "join_authorised_via_users_server": alice["user_id"]},
                             auth_events=template["auth_events"], prev_events=template["prev_events"],
                             depth=template["depth"])
    code, answer = await as_b.request("PUT", "/_matrix/federation/v2/send_join/" + path_of(room_id, join_id), join)
    assert (code, answer["errcode"]) == (403, "M_FORBIDDEN"), answer
    code, answer = await as_b.send([join])
    assert code == 200 and "signature" in answer["pdus"][join_id]["error"], answer
    members = await ok(a, "GET", f"rooms/{quote(room_id)}/joined_members", user=alice)
    assert set(members["joined"]) == {alice["user_id"]}
