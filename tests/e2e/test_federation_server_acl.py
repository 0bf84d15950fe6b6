"""
m.room.server_acl over federation: A's room denies B (named by the IP
literal 127.0.0.1, so that an ACL can tell it from A and C, both named
localhost): B's PDUs, typing, joins and invites are refused for that
room, and the events of B's users relayed by C too, while C and other
rooms go on as before. (Receipts follow typing's path: see the unit
tests of EduServices.)
"""
from __future__ import annotations

from urllib.parse import quote

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from federation_forging import NO_LIMITS, Forger, path_of, recent_events, room_state
from federation_helpers import SyncWatcher, bodies_of, membership_of, message_with_body, typing_of
from polling import DEADLINE_S
from room_helpers import create_room, ok
from test_federation_transport import federation_http  # noqa: F401 (a fixture)

ACL = {"allow": ["*"], "deny": ["127.0.0.1"], "allow_ip_literals": True}


@pytest.fixture(scope="module")
def trio(start_homeserver, start_federating, federation_ca):
    """A and C named localhost:<port>; B named 127.0.0.1:<port>."""
    a = start_federating()
    b = start_homeserver(NO_LIMITS, federation={}, ca=federation_ca, federation_host="127.0.0.1")
    return a, b, start_federating()


@pytest.fixture
def clients(trio, make_client):
    return tuple(make_client(server) for server in trio)


async def joined_room(a, b, c):
    """alice's public room on A with bob (B) and carl (C) joined: C{(alice, bob, carl, room_id)}."""
    alice, bob, carl = await a.register(), await b.register(), await c.register()
    room_id = await create_room(a, alice, preset="public_chat")
    for client, user in ((b, bob), (c, carl)):
        await ok(client, "POST", f"join/{quote(room_id)}", {}, user=user, query={"via": a.server.server_name})
    for user in (bob, carl):
        await SyncWatcher(a, alice).wait_for(membership_of(user["user_id"], "join", room_id), "the joins")
    return alice, bob, carl, room_id


@pytest_twisted.ensureDeferred
async def test_a_denied_server_is_refused_everything_in_the_room(clients, trio, federation_http):  # noqa: F811
    """After alice's ACL denies 127.0.0.1: B's message PDU is answered with an ACL error and never shows,
    its typing in that room is dropped (typing in a room without ACL, same transaction, shows), a new B
    user cannot join (make_join is 403; the join B makes itself is refused), and B's invite into the room
    is 403. carl of C, not denied, still talks."""
    a, b, c = clients
    alice, bob, carl, room_id = await joined_room(a, b, c)
    open_room = await create_room(a, alice, preset="public_chat")
    await ok(b, "POST", f"join/{quote(open_room)}", {}, user=bob, query={"via": a.server.server_name})
    await SyncWatcher(a, alice).wait_for(membership_of(bob["user_id"], "join", open_room), "bob's join")
    as_b = Forger(federation_http, trio[1], trio[0])
    state = await room_state(a, alice, room_id)
    event_id, pdu = await as_b.event(room_id, state, sender=bob["user_id"],
                                     content={"msgtype": "m.text", "body": "from a denied server"})
    await ok(a, "PUT", f"rooms/{quote(room_id)}/state/m.room.server_acl/", ACL, user=alice)

    code, answer = await as_b.send([pdu])
    assert code == 200 and "server ACL" in answer["pdus"][event_id]["error"], answer

    typing = [{"edu_type": "m.typing", "content": {"room_id": r, "user_id": bob["user_id"], "typing": True}}
              for r in (room_id, open_room)]
    code, _ = await as_b.send([], typing)
    assert code == 200

    code, answer = await as_b.make_join(room_id, f"@newcomer:{as_b.name}")
    assert (code, answer["errcode"]) == (403, "M_FORBIDDEN"), answer
    # B is in the room already: it makes newcomer's join itself, and A refuses the PDU.
    newcomer = await b.register()
    refusals = trio[0].log().count("denied by the room's server ACL")
    await ok(b, "POST", f"join/{quote(room_id)}", {}, user=newcomer)
    deadline = reactor.seconds() + DEADLINE_S
    while trio[0].log().count("denied by the room's server ACL") == refusals:
        assert reactor.seconds() < deadline, "A never refused B's join"
        await deferLater(reactor, 0.1, lambda: None)
    invitee = await a.register()
    version = state[("m.room.create", "")]["content"]["room_version"]
    invite_id, invite = as_b.pdu(version, room_id=room_id,
                                 sender=bob["user_id"], event_type="m.room.member", state_key=invitee["user_id"],
                                 content={"membership": "invite"}, auth_events=pdu["auth_events"],
                                 prev_events=pdu["prev_events"], depth=pdu["depth"])
    code, answer = await as_b.request("PUT", "/_matrix/federation/v2/invite/" + path_of(room_id, invite_id),
                                      {"event": invite, "room_version": version, "invite_room_state": []})
    assert (code, answer["errcode"]) == (403, "M_FORBIDDEN"), answer

    await ok(c, "PUT", f"rooms/{quote(room_id)}/send/m.room.message/t1", {"msgtype": "m.text", "body": "from C"},
             user=carl)
    alice_sync = SyncWatcher(a, alice)
    await alice_sync.wait_for(message_with_body("from C", room_id), "carl's message")
    # Both typing EDUs came in one transaction, the denied room's first.
    typing_sync = SyncWatcher(a, alice)
    await typing_sync.wait_for(typing_of(bob["user_id"], open_room), "bob typing in the room without ACL")
    assert not any(typing_of(bob["user_id"], room_id)(seen) for seen in typing_sync.seen)
    assert "from a denied server" not in bodies_of(await recent_events(a, alice, room_id))
    members = await ok(a, "GET", f"rooms/{quote(room_id)}/joined_members", user=alice)
    assert newcomer["user_id"] not in members["joined"]


@pytest_twisted.ensureDeferred
async def test_events_of_a_denied_server_relayed_by_another_are_refused(clients, trio, federation_http):  # noqa: F811
    """bob's (B's) message, signed by B but sent in a transaction of C, is refused once the ACL denies B;
    the same relay before the ACL is accepted."""
    a, b, c = clients
    alice, bob, carl, room_id = await joined_room(a, b, c)
    signer = Forger(federation_http, trio[1], trio[0])
    relay = Forger(federation_http, trio[2], trio[0])

    state = await room_state(a, alice, room_id)
    before_id, before = await signer.event(room_id, state, sender=bob["user_id"],
                                           content={"msgtype": "m.text", "body": "relayed before the ACL"})
    code, answer = await relay.send([before])
    assert (code, answer) == (200, {"pdus": {before_id: {}}})

    await ok(a, "PUT", f"rooms/{quote(room_id)}/state/m.room.server_acl/", ACL, user=alice)
    after_id, after = await signer.event(room_id, await room_state(a, alice, room_id), sender=bob["user_id"],
                                         content={"msgtype": "m.text", "body": "relayed after the ACL"},
                                         head=await relay.head(room_id))
    code, answer = await relay.send([after])
    assert code == 200 and "server ACL" in answer["pdus"][after_id]["error"], answer
    bodies = bodies_of(await recent_events(a, alice, room_id))
    assert "relayed before the ACL" in bodies and "relayed after the ACL" not in bodies


@pytest_twisted.ensureDeferred
async def test_an_acl_denying_ip_literals_refuses_b_and_lets_c_join(clients, trio, federation_http):  # noqa: F811
    """allow_ip_literals false denies B (an IP literal) even with allow ["*"]; C joins after the ACL."""
    a, b, c = clients
    alice = await a.register()
    room_id = await create_room(a, alice, preset="public_chat")
    await ok(a, "PUT", f"rooms/{quote(room_id)}/state/m.room.server_acl/",
             {"allow": ["*"], "allow_ip_literals": False}, user=alice)
    as_b = Forger(federation_http, trio[1], trio[0])
    code, answer = await as_b.make_join(room_id, f"@someone:{as_b.name}")
    assert (code, answer["errcode"]) == (403, "M_FORBIDDEN"), answer
    carl = await c.register()
    await ok(c, "POST", f"join/{quote(room_id)}", {}, user=carl, query={"via": a.server.server_name})
    await SyncWatcher(a, alice).wait_for(membership_of(carl["user_id"], "join", room_id), "carl's join")
