"""
The deprecated event stream (spec: C{GET /events}, C{GET /events/{eventId}})
and its one living use, peeking (spec: "Room Previews": C{GET
/events?room_id=} into a room one has not joined).

The stream is /sync's: the same tokens (C{/initialSync}'s C{end} and
/sync's C{next_batch} are valid C{from}s), the same notifier wakes a
waiting request, and history visibility decides what is shown. It carries
room events only (with their C{room_id}): the events of the user's joined
rooms, and their own membership changes elsewhere (invites, leaving).
"""
from __future__ import annotations

from typing import Awaitable, Callable, Mapping

from ruma_tx.matrix.errors import missing_param, not_found
from ruma_tx.matrix.events import StoredEvent, room_event
from ruma_tx.matrix.stream_token import StreamToken
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock
from ruma_tx.services.history import HistoryReader
from ruma_tx.services.notifier import Notifier
from ruma_tx.services.ports.events import Events
from ruma_tx.services.ports.legacy_events import LegacyEventReads

#: At most this many events per response; the client goes on from C{end}.
PAGE_SIZE = 100

#: C{room_id -> (membership, position of the member event)}.
Memberships = Mapping[str, tuple[str, int]]


class EventStream:
    """
    @param reads: the stream across the user's rooms.
    @param history: history visibility, and the reads of one room (peeking).
    @param current_position: the highest position clients may be shown.
    @param ignored: C{async (user_id) -> frozenset} of ignored users.
    """

    def __init__(self, *, reads: LegacyEventReads, events: Events, history: HistoryReader,
                 notifier: Notifier, clock: Clock, current_position: Callable[[], int],
                 ignored: Callable[[str], Awaitable[frozenset[str]]]) -> None:
        self._reads = reads
        self._events = events
        self._history = history
        self._notifier = notifier
        self._clock = clock
        self._current = current_position
        self._ignored = ignored

    async def events(self, user_id: str, device_id: str, *, from_token: StreamToken | None,
                     timeout_ms: int, room_id: str | None, is_guest: bool) -> JsonDict:
        """
        The events after C{from_token} (after now when absent, as Synapse),
        at once if there are any, else as soon as one comes, or none at the
        timeout. With C{room_id}, that room's events only: it may be a room
        the user has not joined, if it is world-readable.

        @raise Forbidden: for a room the user may not read (checked before
            waiting).
        @raise BadRequest: 400 M_MISSING_PARAM for a guest without a
            C{room_id}: the spec lets guests use C{/events} for room
            previews only (Synapse answers 400 too).
        """
        if room_id is None and is_guest:
            raise missing_param("Guests must give a room_id: /events serves them room previews only")
        if room_id is not None:
            await self._history.readable_view(user_id, room_id)
        start = from_token if from_token is not None else StreamToken(self._current())
        since = min(start.stream, self._current())
        # Peekers are not in the room's audience: they wait on the room id.
        waiter = room_id if room_id is not None else user_id
        deadline = self._clock.seconds() + timeout_ms / 1000
        while True:
            now = self._current()
            if now > since and self._notifier.touched_since(waiter, since):
                chunk, end = await self._read(user_id, device_id, room_id, since, now)
                if chunk:
                    return {"start": str(start), "end": str(StreamToken(end)), "chunk": chunk}
                since = end  # nothing shown changed: wait for more from here
            remaining = deadline - self._clock.seconds()
            if remaining <= 0 or self._notifier.stopping:
                return {"start": str(start), "end": str(StreamToken(since)), "chunk": []}
            await self._notifier.wait(waiter, since, remaining)

    async def event(self, user_id: str, event_id: str) -> JsonDict:
        """
        One event, wherever it is, if the user may see it.

        @raise NotFound: when it is unknown or hidden from the user (spec).
        """
        event = await self._events.get_event(event_id)
        if event is None:
            raise not_found("Event not found")
        return await self._history.event(user_id, event.room_id, event_id)

    async def _read(self, user_id: str, device_id: str, room_id: str | None, since: int,
                    now: int) -> tuple[list[JsonDict], int]:
        """The events in C{(since, now]} to show, and the position the response ends at."""
        if room_id is not None:
            page = await self._history.messages(
                user_id, room_id, backwards=False, from_token=StreamToken(since),
                to_token=StreamToken(now), limit=PAGE_SIZE, event_filter=None)
            end = page.get("end")
            return page["chunk"], StreamToken.parse(end, backfilled=True).stream if end is not None else now
        memberships = await self._events.get_rooms_for_user(user_id)
        events = await self._stream_of(user_id, memberships, since, now)
        end = events[-1].stream_ordering if len(events) == PAGE_SIZE else now
        events = await self._visible(user_id, memberships, since, events)
        own = [e.event_id for e in events if e.sender == user_id]
        txn_ids = await self._events.get_txn_ids(user_id, device_id, own) if own else {}
        chunk = []
        for event in events:
            shown = room_event(event)
            txn_id = txn_ids.get(event.event_id)
            if txn_id is not None:
                shown.setdefault("unsigned", {})["transaction_id"] = txn_id
            chunk.append(shown)
        return chunk, end

    async def _stream_of(self, user_id: str, memberships: Memberships, since: int,
                         now: int) -> list[StoredEvent]:
        """
        The first page of the user's stream: their joined rooms' events,
        and their own member event in a room they are not joined to
        (invited, knocking, left, kicked or banned in the window).
        """
        windows: dict[str, tuple[int, int]] = {}
        for room_id, (membership, position) in memberships.items():
            if membership == "join":
                windows[room_id] = (since, now)
            elif since < position <= now:
                windows[room_id] = (position - 1, position)
        return await self._reads.get_events_after(
            windows, limit=PAGE_SIZE, hidden_senders=sorted(await self._ignored(user_id)))

    async def _visible(self, user_id: str, memberships: Memberships, since: int,
                       events: list[StoredEvent]) -> list[StoredEvent]:
        """
        Of C{events}, those the user may see: in a room they joined after
        C{since}, history visibility decides about the events before the
        join (as in /sync); their own member events are always theirs to see.
        """
        checked: dict[str, list[StoredEvent]] = {}
        for event in events:
            if not _own_membership(event, user_id) and memberships[event.room_id][1] > since:
                checked.setdefault(event.room_id, []).append(event)
        if not checked:
            return events
        visible = await self._history.filter_visible_rooms(user_id, checked)
        shown = {e.event_id for room_events in visible.values() for e in room_events}
        return [e for e in events if e.room_id not in checked or e.event_id in shown
                or _own_membership(e, user_id)]


def _own_membership(event: StoredEvent, user_id: str) -> bool:
    return event.type == "m.room.member" and event.state_key == user_id
