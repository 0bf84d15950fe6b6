"""
Guests leave a room that stops admitting them (spec: module "Guest Access",
"Server behaviour": "If the m.room.guest_access event is changed to stop
this from being the case, the server MUST set those users' m.room.member
state to leave").

L{GuestEviction.event_stored} is one of the event creator's C{stored}
hooks: it only notices the change and schedules the leaves, which are
ordinary events sent afterwards. L{GuestEviction.stop} waits for the
evictions under way at shutdown, so none is cut off by the database closing.
"""
from __future__ import annotations

from typing import Awaitable, Callable, Protocol, Sequence

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall

from ruma_tx.cancellation import shielded
from ruma_tx.logs import logger
from ruma_tx.matrix.guest_access import GUEST_MEMBERSHIPS_REVOKED, closes_room_to_guests
from ruma_tx.services.clock import Clock
from ruma_tx.services.ports.events import NewEvent

log = logger(__name__)

#: C{async (user_id, room_id)}: the user leaves the room (or declines its invite).
Leave = Callable[[str, str], Awaitable[None]]


class GuestMembers(Protocol):
    """Which of a room's members are guest accounts (the accounts store)."""

    async def get_guest_members(self, room_id: str, memberships: Sequence[str]) -> list[str]:
        """The guests whose current membership of the room is one of C{memberships}."""
        ...


class GuestEviction:
    """
    When a room's C{m.room.guest_access} stops being C{can_join}, each
    guest joined to (or invited into) the room leaves it.

    As Synapse (C{RoomMemberHandler.kick_guest_users}), each guest leaves
    of their own accord rather than being kicked by whoever changed the
    guest access: a user may always leave, so no power level can stop it,
    and no reason is given (Synapse gives none either).

    @param guests: finds the room's guests (the L{AccountStore}).
    @param leave: makes a user leave a room
        (L{ruma_tx.services.membership.MembershipChanger.leave}).
    @param clock: schedules the leaves after the change is stored.

    @ivar _scheduled: the room id of each eviction scheduled and not started yet.
    @ivar _in_flight: the evictions under way; each leaves the set when done.
    """

    def __init__(self, *, guests: GuestMembers, leave: Leave, clock: Clock) -> None:
        self._guests = guests
        self._leave = leave
        self._clock = clock
        self._scheduled: dict[IDelayedCall, str] = {}
        self._in_flight: set[defer.Deferred[None]] = set()

    def event_stored(self, event: NewEvent, position: int) -> None:
        """
        Told of each stored event (an C{EventStored} hook: neither waits
        nor fails): when it closes the room to guests, schedule their
        leaves for after the event creator is done with it.
        """
        if closes_room_to_guests(event.pdu):
            call = self._clock.callLater(0, lambda: self._start(call))
            self._scheduled[call] = event.room_id

    def _start(self, call: IDelayedCall) -> None:
        room_id = self._scheduled.pop(call)
        d = defer.ensureDeferred(self.evict(room_id))
        d.addErrback(lambda f: log.failure("evicting guests from {room_id}", f, room_id=room_id))
        if not d.called:
            self._in_flight.add(d)
            d.addBoth(lambda _: self._in_flight.discard(d))

    async def stop(self, timeout_s: float) -> None:
        """
        At shutdown, once no more events are sent: start the evictions
        still scheduled and wait for every one under way, at most
        C{timeout_s} seconds. Those still running then are not cancelled,
        only no longer waited for: the database closing ends them.
        """
        for call in list(self._scheduled):
            call.cancel()
            self._start(call)
        if not self._in_flight:
            return
        # Shielded: the timeout stops the waiting, never a leave half-way.
        waiting = shielded(defer.DeferredList(list(self._in_flight)))
        timer = self._clock.callLater(timeout_s, waiting.cancel)
        try:
            await waiting
        except defer.CancelledError:
            log.warn("shutdown: {count} guest evictions still running after {timeout_s}s",
                     count=len(self._in_flight), timeout_s=timeout_s)
        else:
            timer.cancel()

    async def evict(self, room_id: str) -> None:
        """
        Make every guest of the room leave it. A guest whose leave fails is
        logged and the others still leave.
        """
        for user_id in await self._guests.get_guest_members(room_id, GUEST_MEMBERSHIPS_REVOKED):
            try:
                await self._leave(user_id, room_id)
            except Exception:
                log.failure("guest {user_id} could not leave {room_id}", user_id=user_id, room_id=room_id)
            else:
                log.info("guest {user_id} left {room_id}: guest access was turned off",
                         user_id=user_id, room_id=room_id)
