"""
What callers give the L{ruma_tx.services.events.EventCreator}: the event
a client asks for, and the hooks it runs around storing events.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from ruma_tx.matrix.relations import EventRelation
from ruma_tx.matrix.room_versions import RoomVersion
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.ports.events import NewEvent

#: C{(event, position)}: told of each event once it is stored, before
#: anyone is woken; must not fail or wait (in-memory bookkeeping only).
EventStored = Callable[[NewEvent, int], None]

#: C{(event) -> its relation as stored, or None}: run on each event sent
#: into an existing room, under its lock; raises for a refused relation.
RelationCheck = Callable[[NewEvent], Awaitable[EventRelation | None]]

#: C{(invite, room_version) -> the invite's PDU signed by the invitee's
#: server too}: asked before storing an invite of another server's user
#: (spec: "Inviting to a room"); raises when that server refuses it.
RemoteInvite = Callable[[NewEvent, RoomVersion], Awaitable[JsonDict]]


@dataclass(frozen=True)
class EventSpec:
    """
    What a client asks to send.

    @ivar sender_is_guest: the sender is a guest account: a join of theirs
        needs the room to admit guests, checked under the room's lock
        against the state the join is authorised with, so that no join
        slips in after the room was closed to guests (its eviction has
        already looked for the guests to evict).
    @ivar sender_suspended: the sender's account is suspended: of
        redactions, only those of its own events are allowed (spec:
        "Account suspension"; the endpoints refuse its other events).
    """

    room_id: str | None
    sender: str
    event_type: str
    content: JsonDict
    state_key: str | None = None
    redacts: str | None = None
    sender_is_guest: bool = False
    sender_suspended: bool = False


#: C{(spec) -> event id or None}: a fake id for an event that must seem
#: sent but never be stored (a shadow-banned sender's), or C{None} to send it.
Withheld = Callable[[EventSpec], Awaitable[str | None]]
