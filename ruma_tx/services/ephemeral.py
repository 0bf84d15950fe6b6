"""
A room's ephemeral events: typing notifications (spec: "Typing
Notifications"), receipts ("Receipts") and the read markers API ("Read and
unread markers"). Both classes are also /sync sources, adding C{m.typing}
and C{m.receipt} to each joined room's C{ephemeral} events.

Typing is kept in memory only: per room, who types until when, and the
stream position of the room's last change (a position taken without a
database write, so incremental syncs see the change and its waiters wake).
"""
from __future__ import annotations

from typing import Awaitable, Callable, Iterable, Sequence

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall

from ruma_tx.logs import logger
from ruma_tx.matrix.ephemeral import (
    FULLY_READ,
    READ,
    READ_PRIVATE,
    Receipt,
    check_receipt,
    receipt_event,
    typing_event,
    typing_timeout_ms,
)
from ruma_tx.matrix.errors import bad_json, forbidden, invalid_param, not_found
from ruma_tx.matrix.events import StoredEvent
from ruma_tx.services.account_data import AccountDataKeeper
from ruma_tx.services.caches import LastPositions
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.ports.ephemeral import Receipts
from ruma_tx.services.ports.events import Events, NewEvent
from ruma_tx.services.streams import StreamWriter
from ruma_tx.services.sync import SyncContext

log = logger(__name__)


class TypingTracker:
    """
    Who types in which room, in memory; each typer's expiry is a timer on
    C{clock}, so memory is bounded by the current typers plus the last
    change positions of at most C{max_rooms} rooms.

    @param events: the L{ruma_tx.storage.events.EventStore} (room members).
    @param streams: the L{ruma_tx.services.streams.StreamWriter}.
    @param clock: an C{IReactorTime}.
    @param max_rooms: rooms whose last change position is remembered; an
        incremental sync from before the oldest forgotten change gets the
        typing list of every joined room (always correct, rarely needed).
    @param changed: told C{(room_id, user_id, typing)} when a user starts
        or stops typing (must not wait: federation sends it on).
    @param silenced: C{async (user_id) -> bool}: whether the user's typing
        seems to work but reaches nobody (a shadow-banned user, as Synapse).
    """

    def __init__(self, *, events: Events, streams: StreamWriter, clock: Clock, max_rooms: int = 10_000,
                 changed: Sequence[Callable[[str, str, bool], None]] = (),
                 silenced: Callable[[str], Awaitable[bool]] | None = None) -> None:
        self._silenced = silenced
        self._events = events
        self._changed_hooks = list(changed)
        self._streams = streams
        self._clock = clock
        self._typers: dict[str, dict[str, IDelayedCall]] = {}   # room -> user -> expiry timer
        # Room -> the position of its last typing change. At first, positions
        # before this start count as forgotten (typing is not kept across
        # restarts).
        self._changed: LastPositions[str] = LastPositions(max_rooms, streams.current)

    def typers(self, room_id: str) -> list[str]:
        return sorted(self._typers.get(room_id, ()))

    async def set_typing(self, requester_id: str, room_id: str, user_id: str, typing: bool,
                         timeout_ms: int | None = None) -> None:
        """
        Start (for C{timeout_ms}) or stop the user's typing in the room.
        Renewing a typing user's timeout or stopping a user who does not
        type changes nothing visible, so wakes nobody (as Synapse).

        @raise MatrixError: 403 for another user's typing, or when the user
            is not joined to the room.
        """
        if requester_id != user_id:
            raise forbidden("Cannot set another user's typing state")
        members = await self._events.get_members(room_id, ("join",))
        if user_id not in members:
            raise forbidden("You are not in this room")
        if self._silenced is not None and await self._silenced(user_id):
            return
        room = self._typers.get(room_id, {})
        timer = room.get(user_id)
        if typing:
            delay = typing_timeout_ms(timeout_ms) / 1000
            if timer is not None:
                timer.reset(delay)
                return
            room = self._typers.setdefault(room_id, {})
            room[user_id] = self._clock.callLater(delay, self._expire, room_id, user_id)
        else:
            if timer is None:
                return
            timer.cancel()
            self._remove(room_id, user_id)
        self._tell(room_id, user_id, typing)
        await self._record_change(room_id, members)

    def _remove(self, room_id: str, user_id: str) -> None:
        room = self._typers.get(room_id)
        if room is None:
            return
        room.pop(user_id, None)
        if not room:
            del self._typers[room_id]

    def _tell(self, room_id: str, user_id: str, typing: bool) -> None:
        for hook in self._changed_hooks:
            hook(room_id, user_id, typing)

    def _expire(self, room_id: str, user_id: str) -> None:
        self._remove(room_id, user_id)
        self._tell(room_id, user_id, False)
        d = defer.ensureDeferred(self._expired(room_id))
        d.addErrback(lambda f: log.failure("typing expiry in {room_id}", f, room_id=room_id))

    async def _expired(self, room_id: str) -> None:
        members = await self._events.get_members(room_id, ("join",))
        await self._record_change(room_id, members)

    async def _record_change(self, room_id: str, members: Iterable[str]) -> None:
        """Take a stream position for the room's change and wake its members."""

        async def mark(position: int) -> list[str]:
            self._mark(room_id, position)
            return list(members)

        await self._streams.write(mark, kind="typing")

    def _mark(self, room_id: str, position: int) -> None:
        self._changed.record(room_id, position)

    def event_stored(self, event: NewEvent, position: int) -> None:
        """
        Told by the event creator of each stored event: a typer who leaves
        (or is kicked or banned) stops typing at once, the membership
        event's position marking the change (its audience, the room's
        members, is woken by it).
        """
        pdu = event.pdu
        if pdu.get("type") != "m.room.member" or pdu.get("content", {}).get("membership") == "join":
            return
        room = self._typers.get(event.room_id, {})
        state_key = pdu.get("state_key")
        timer = room.get(state_key) if state_key is not None else None
        if timer is None:
            return
        timer.cancel()
        self._remove(event.room_id, pdu["state_key"])
        self._tell(event.room_id, pdu["state_key"], False)
        self._mark(event.room_id, position)

    async def add_to_sync(self, ctx: SyncContext) -> None:
        """
        Add C{m.typing} to joined rooms whose typing changed in
        C{(since, now]}; for an initial sync, to rooms with typers.
        """
        ephemeral_filter = ctx.request.filter.room.ephemeral
        since = None if ctx.since is None else ctx.since.stream
        for room_id in ctx.joined:
            typers = self._typers.get(room_id, ())
            if since is None:
                if not typers:
                    continue
            else:
                changed = self._changed.get(room_id)
                if changed is None:
                    if since >= self._changed.forgotten_before:
                        continue
                elif not since < changed <= ctx.now.stream:
                    continue
            event = typing_event(typers)
            if ephemeral_filter.matches(event, room_id):
                ctx.joined_room(room_id)["ephemeral"]["events"].append(event)


class ReceiptKeeper:
    """
    Receipts and read markers.

    @param store: where receipts are stored (with the read position they
        move, for unread counts).
    @param events: the rooms' members and events.
    @param streams: the L{ruma_tx.services.streams.StreamWriter}.
    @param account_data: the L{ruma_tx.services.account_data.AccountDataKeeper}
        (the fully read marker is room account data).
    @param clock: an C{IReactorTime}, for the receipts' C{ts}.
    @param fits_thread: C{async (event_id, thread_id) -> bool}: whether a
        receipt for that thread (C{"main"} or a thread root) may point at
        the event (spec: 400 otherwise).
    @param read_moved: told the user's id once a receipt moved their read
        position (must not wait: push delivery sends badge updates).
    @param receipt_stored: awaited with each receipt stored (federation
        sends it on).
    """

    def __init__(self, *, store: Receipts, events: Events, streams: StreamWriter,
                 account_data: AccountDataKeeper, clock: Clock,
                 fits_thread: Callable[[str, str], Awaitable[bool]],
                 read_moved: Sequence[Callable[[str], None]] = (),
                 receipt_stored: Sequence[Callable[[Receipt], Awaitable[None]]] = ()) -> None:
        self._store = store
        self._events = events
        self._streams = streams
        self._account_data = account_data
        self._clock = clock
        self._fits_thread = fits_thread
        self._read_moved = list(read_moved)
        self._receipt_stored = list(receipt_stored)

    async def send_receipt(self, user_id: str, room_id: str, receipt_type: str, event_id: str,
                           thread_id: object = None) -> None:
        """
        Move the user's receipt of C{receipt_type} (and thread) in the room
        to C{event_id}; C{m.fully_read} moves the fully read marker instead
        (spec: this endpoint "effectively calls /read_markers").

        @raise MatrixError: 400 for a bad type or thread id (or an event
            not in that thread), 403 when not joined, 404 when the event
            is not in the room.
        """
        check_receipt(receipt_type, thread_id)
        members = await self._joined_members(user_id, room_id)
        event = await self._room_event(room_id, event_id)
        if isinstance(thread_id, str) and not await self._fits_thread(event.event_id, thread_id):
            raise invalid_param(f"event_id {event.event_id} is not related to thread {thread_id}")
        if receipt_type == FULLY_READ:
            await self._account_data.set_fully_read(user_id, room_id, event)
        else:
            thread = thread_id if isinstance(thread_id, str) else None  # checked: a string or None
            await self._put(user_id, room_id, receipt_type, event, thread, members)

    async def set_read_markers(self, user_id: str, room_id: str, *, fully_read: str | None,
                               read: str | None, read_private: str | None) -> None:
        """
        The read markers API: the receipts as C{/receipt} would set them,
        then the fully read marker; every event is checked before anything
        changes.
        """
        members = await self._joined_members(user_id, room_id)
        found: dict[str, StoredEvent] = {}
        for event_id in (fully_read, read, read_private):
            if event_id is not None and event_id not in found:
                found[event_id] = await self._room_event(room_id, event_id)
        if read is not None:
            await self._put(user_id, room_id, READ, found[read], None, members)
        if read_private is not None:
            await self._put(user_id, room_id, READ_PRIVATE, found[read_private], None, members)
        if fully_read is not None:
            await self._account_data.set_fully_read(user_id, room_id, found[fully_read])

    async def read_up_to(self, user_id: str, room_id: str) -> int | None:
        """
        The C{stream_ordering} of the latest event the user's C{m.read} or
        C{m.read.private} receipt in the room points at (the more recent of
        the two, as the spec says), unthreaded or for the main timeline;
        C{None} if they sent none. For unread counts.
        """
        return await self._store.get_read_up_to(user_id, room_id)

    async def thread_read_up_to(self, user_id: str, room_id: str) -> dict[str | None, int]:
        """
        Per thread (C{None} for unthreaded receipts, C{"main"}, or a thread
        root), the C{stream_ordering} the user's read receipts point at.
        """
        return await self._store.get_thread_read_up_to(user_id, room_id)

    async def _joined_members(self, user_id: str, room_id: str) -> dict[str, str]:
        members = await self._events.get_members(room_id, ("join",))
        if user_id not in members:
            raise forbidden("You are not in this room")
        return members

    async def _room_event(self, room_id: str, event_id: str) -> StoredEvent:
        if not isinstance(event_id, str):
            raise bad_json("Event ids must be strings")
        event = await self._events.get_event(event_id)
        if event is None or event.room_id != room_id:
            raise not_found("Event not found")
        return event

    async def _put(self, user_id: str, room_id: str, receipt_type: str, event: StoredEvent,
                   thread_id: str | None, members: Iterable[str]) -> None:
        receipt = Receipt(room_id, user_id, receipt_type, thread_id, event.event_id,
                          now_ms(self._clock))
        # m.read.private "MUST NOT" reach other users: wake only its sender.
        audience = [user_id] if receipt_type == READ_PRIVATE else list(members)

        stored = False

        async def persist(position: int) -> list[str]:
            nonlocal stored
            # It moves the read position of its thread (or the room's, unthreaded).
            stored = await self._store.put_receipt(receipt, event.stream_ordering, position)
            if stored:
                for hook in self._read_moved:
                    hook(user_id)
            return audience if stored else []

        await self._streams.write(persist, kind="receipts")
        if stored:
            for stored_hook in self._receipt_stored:
                await stored_hook(receipt)

    async def add_to_sync(self, ctx: SyncContext) -> None:
        """
        Add one C{m.receipt} per joined room with receipts changed in
        C{(since, now]} (all current receipts for an initial sync); other
        users' C{m.read.private} never appear.
        """
        after = 0 if ctx.since is None else ctx.since.stream
        if after >= ctx.now.stream or not ctx.joined or not ctx.touched("receipts"):
            return
        receipts = await self._store.get_changed_receipts(
            ctx.joined, after, ctx.now.stream, ctx.request.user_id)
        by_room: dict[str, list[Receipt]] = {}
        for receipt in receipts:
            by_room.setdefault(receipt.room_id, []).append(receipt)
        ephemeral_filter = ctx.request.filter.room.ephemeral
        for room_id in sorted(by_room):
            event = receipt_event(by_room[room_id])
            if ephemeral_filter.matches(event, room_id):
                ctx.joined_room(room_id)["ephemeral"]["events"].append(event)
