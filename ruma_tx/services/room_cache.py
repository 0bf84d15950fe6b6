"""
What creating a room's next event reads, kept between events (see
L{ruma_tx.services.events.EventCreator}), and who hears of an event.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.room_versions import RoomVersion, referenced_event_ids
from ruma_tx.services.ports.events import NewEvent

#: Memberships whose holders hear of a room's events.
AUDIENCE_MEMBERSHIPS = ("join", "invite", "knock")


@dataclass
class RoomCache:
    """
    What creating a room's next event reads, kept between events: its head,
    the state events the auth rules have asked for (and which keys were
    looked up and absent), and its members. Updated under the room's lock
    after each event is stored, so it is exact while this process is the
    room's only writer; dropped on redactions (they rewrite stored events).

    @ivar complete: every state key is known (a room this process created):
        a key not in C{state} is absent, with nothing to look up.
    @ivar extremities: in a room shared with other servers, its forward
        extremities, deepest first (C{depth} is the deepest's); C{None} in
        a local room, whose one extremity is C{last_event_id}.
    """

    room_version: RoomVersion
    last_event_id: str
    depth: int
    state: dict[tuple[str, str], StoredEvent] = field(default_factory=dict)
    looked_up: set[tuple[str, str]] = field(default_factory=set)
    members: dict[str, str] | None = None
    complete: bool = False
    extremities: list[str] | None = None

    def apply(self, event: NewEvent, position: int) -> None:
        if self.extremities is not None:
            replaced = set(referenced_event_ids(event.pdu, "prev_events"))
            self.extremities = [event.event_id, *(e for e in self.extremities if e not in replaced)]
        self.last_event_id, self.depth = event.event_id, max(event.depth, self.depth)
        state_key = event.pdu.get("state_key")
        if state_key is None:
            return
        key = (event.pdu["type"], state_key)
        self.state[key] = StoredEvent(position, event.event_id, event.room_id, event.pdu)
        self.looked_up.add(key)
        if key[0] == "m.room.member" and self.members is not None:
            membership = event.pdu["content"].get("membership")
            if membership in AUDIENCE_MEMBERSHIPS:
                self.members[state_key] = membership
            else:
                self.members.pop(state_key, None)


def touched(event: NewEvent, audience: set[str]) -> dict[str, Sequence[str]]:
    """The kinds of change the event is, per user (a member event also changes the target's rooms)."""
    touched: dict[str, Sequence[str]] = {"events": list(audience)}
    # Keyed by the room: clients peeking into it (GET /events?room_id=)
    # wait on its id; room and user ids never collide (their sigils differ).
    touched["room_events"] = [event.room_id]
    if event.pdu["type"] == "m.room.member":
        touched["membership"] = [event.pdu["state_key"]]   # the target's own rooms changed
        touched["room_membership"] = list(audience)        # who is in their rooms changed
    return touched
