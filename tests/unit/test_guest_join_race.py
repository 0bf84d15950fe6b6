"""
A guest's join and the change that closes its room to guests, sent at
the same time: L{MembershipChanger.join} on a real L{EventCreator} over
fakes. The guest-access check happens under the room's lock, against the
state the join is authorised with, so the join cannot slip in after the
change (when the eviction has already looked for guests to evict).
"""
from __future__ import annotations

import pytest
from signedjson.key import generate_signing_key
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from ruma_tx.matrix.errors import Forbidden
from ruma_tx.matrix.events import StoredEvent
from ruma_tx.services.event_spec import EventSpec
from ruma_tx.services.events import EventCreator
from ruma_tx.services.membership import MembershipChanger
from ruma_tx.services.ports.events import RoomHead

ROOM = "!room:hs"
ADMIN = "@admin:hs"
GUEST = "@guest:hs"


def state_event(position: int, event_type: str, content: dict, state_key: str = "") -> StoredEvent:
    pdu = {"type": event_type, "state_key": state_key, "content": content, "sender": ADMIN,
           "room_id": ROOM, "depth": position, "origin_server_ts": 0, "auth_events": [], "prev_events": []}
    return StoredEvent(position, f"$e{position}", ROOM, pdu)


class FakeEvents:
    """
    A public room version 11 whose admin is joined, stored in memory. While
    C{gate} is set, storing an event waits for it (the room's lock is held).
    """

    def __init__(self, guest_access: str) -> None:
        self.gate: Deferred[None] | None = None
        self.state = {(e.pdu["type"], e.pdu["state_key"]): e for e in [
            state_event(1, "m.room.create", {"room_version": "11"}),
            state_event(2, "m.room.member", {"membership": "join"}, ADMIN),
            state_event(3, "m.room.power_levels", {"users": {ADMIN: 100}}),
            state_event(4, "m.room.join_rules", {"join_rule": "public"}),
            state_event(5, "m.room.guest_access", {"guest_access": guest_access}),
        ]}

    async def get_room_head(self, room_id):
        return RoomHead("11", "$e5", 5)

    async def get_state(self, room_id, keys=None):
        return {key: event for key, event in self.state.items() if keys is None or key in keys}

    async def get_members(self, room_id, memberships):
        return {key[1]: e.pdu["content"]["membership"] for key, e in self.state.items()
                if key[0] == "m.room.member" and e.pdu["content"]["membership"] in memberships}

    async def persist_event(self, event, position, now_ms):
        if self.gate is not None:
            await self.gate
        key = (event.pdu["type"], event.pdu.get("state_key"))
        self.state[key] = StoredEvent(position, event.event_id, ROOM, event.pdu)


class FakeStreams:
    position = 0

    async def write(self, persist):
        self.position += 1
        await persist(self.position)
        return self.position


class FakePush:
    async def state_before(self, event):
        return None

    async def evaluate(self, event, state):
        return None, state

    def stored(self, event, state):
        pass

    def forget(self, room_id):
        pass


async def no_profile(user_id):
    return None, None


async def no_relation(event):
    return None


def membership(events: FakeEvents) -> tuple[MembershipChanger, EventCreator]:
    creator = EventCreator(events=events, streams=FakeStreams(), clock=Clock(), server_name="hs",
                           signing_key=generate_signing_key("1"), check_canonical_alias=None,
                           push=FakePush(), relations=no_relation, dag_events=None, dag=None)
    return MembershipChanger(creator=creator, events=events, directory=None, profiles=no_profile,
                             server_name="hs"), creator


def test_a_guest_join_queued_behind_closing_the_room_is_refused():
    """A guest's join that waits while guest access is being turned off is refused once it runs."""
    events = FakeEvents("can_join")
    members, creator = membership(events)
    events.gate = Deferred()
    closing = ensureDeferred(creator.send(EventSpec(ROOM, ADMIN, "m.room.guest_access",
                                                    {"guest_access": "forbidden"}, "")))
    joining = ensureDeferred(members.join(GUEST, ROOM, is_guest=True))
    assert not closing.called and not joining.called  # the join waits for the room's lock
    gate, events.gate = events.gate, None
    gate.callback(None)
    assert closing.called
    refused = joining.result
    assert isinstance(refused, Failure) and refused.check(Forbidden), refused
    assert ("m.room.member", GUEST) not in events.state
    joining.addErrback(lambda _: None)


@pytest.mark.parametrize("guest_access, is_guest", [("can_join", True), ("forbidden", False)])
def test_joins_the_room_admits(guest_access, is_guest):
    """A guest joins a room with can_join; a full account joins whatever the guest access."""
    events = FakeEvents(guest_access)
    members, _ = membership(events)
    joined = ensureDeferred(members.join(GUEST, ROOM, is_guest=is_guest))
    assert joined.result == ROOM
    assert events.state[("m.room.member", GUEST)].pdu["content"]["membership"] == "join"


def test_a_guest_cannot_join_a_room_closed_to_guests():
    """A guest's join into a room whose guest access is forbidden is 403 M_FORBIDDEN, and nothing is stored."""
    events = FakeEvents("forbidden")
    members, _ = membership(events)
    joining = ensureDeferred(members.join(GUEST, ROOM, is_guest=True))
    refused = joining.result
    assert isinstance(refused, Failure) and refused.check(Forbidden), refused
    assert refused.value.errcode == "M_FORBIDDEN"
    assert ("m.room.member", GUEST) not in events.state
    joining.addErrback(lambda _: None)
