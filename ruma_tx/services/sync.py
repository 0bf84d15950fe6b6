"""
/sync: initial and incremental responses, and long-polling on the notifier.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol, Sequence

from twisted.internet.task import deferLater

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.filters import Filter
from ruma_tx.matrix.stream_token import StreamToken
from ruma_tx.matrix.sync import (
    STRIPPED_STATE_TYPES,
    SUMMARY_TYPES,
    empty_joined_room,
    empty_response,
    event_serializer,
    is_empty_response,
    lazy_members,
    room_summary,
    stripped_event,
)
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.clock import Clock
from ruma_tx.services.concurrency import SingleFlight
from ruma_tx.services.notifier import Notifier
from ruma_tx.services.ports.events import Events

#: C{async (user_id, room_id, events) -> the events the user may see}.
VisibilityFilter = Callable[[str, str, list[StoredEvent]], Awaitable[list[StoredEvent]]]


class SyncSource(Protocol):
    """A part of /sync responses other than rooms' timelines and state."""

    async def add_to_sync(self, ctx: SyncContext) -> None: ...


#: Users (or devices) whose memberships and last answer time are kept.
CACHED_USERS = 10_000

#: A device gets at most one incremental response per this many seconds
#: while events keep coming (see SyncResponder._pace).
BATCH_WINDOW_S = 0.2


@dataclass
class SyncContext:
    """
    What a sync source needs to add its part to a response.

    @ivar since: the client's token, or C{None} for an initial sync (or a
        full-state one).
    @ivar now: the token the response ends at (its C{next_batch}).
    @ivar joined: the rooms the user is joined to (and the filter keeps).
    @ivar response: the response being built; sources add to it.
    """

    request: "SyncRequest"
    since: StreamToken | None
    now: StreamToken
    joined: list[str]
    response: dict
    notifier: object = None

    def touched(self, kind: str) -> bool:
        """
        Whether a change of C{kind} may concern the user in C{(since, now]}
        (always on an initial sync): sources skip their queries otherwise.
        """
        if self.since is None or self.notifier is None:
            return True
        return self.notifier.touched_since(self.request.user_id, self.since.stream, kind)

    def joined_room(self, room_id: str) -> dict:
        """The room's section under C{rooms.join}, created if missing."""
        rooms = self.response.setdefault("rooms", {}).setdefault("join", {})
        section = rooms.get(room_id)
        if section is None:
            section = rooms[room_id] = empty_joined_room(self.now)
        return section


@dataclass(frozen=True)
class SyncRequest:
    user_id: str
    device_id: str
    since: StreamToken | None
    timeout_ms: int
    filter: Filter
    full_state: bool


class SyncResponder:
    """
    @param events: the L{ruma_tx.storage.events.EventStore}.
    @param notifier: the L{ruma_tx.services.notifier.Notifier}.
    """

    def __init__(self, *, events: Events, notifier: Notifier, clock: Clock,
                 sources: Sequence[SyncSource] = (),
                 visible: VisibilityFilter | None = None,
                 ignored: Callable[[str], Awaitable[frozenset[str]]] | None = None) -> None:
        """
        @param sources: objects with C{async add_to_sync(ctx: SyncContext)}
            that add their sections (ephemeral events, account data,
            presence, unread counts...) to each response; a source adding
            nothing keeps an otherwise empty response empty.
        @param visible: C{async (user_id, room_id, events) -> events}, the
            history visibility filter, for timelines reaching back before
            the user joined.
        @param ignored: C{async (user_id) -> frozenset} of ignored users.
        """
        self._events = events
        self._notifier = notifier
        self._clock = clock
        self._sources = list(sources)
        self._visible = visible
        self._ignored = ignored
        self._memberships: LRUCache[str, tuple[int, dict]] = LRUCache(CACHED_USERS)
        self._reads_in_flight = SingleFlight()
        self._last_answered: LRUCache[tuple, float] = LRUCache(CACHED_USERS)

    async def _latest_events(self, room_ids: list[str], after: int, upto: int, limit: int) -> dict:
        """
        The rooms' latest events; identical reads in flight at once share
        one query (a message wakes every member's sync with the same
        window, and they all ask for the same rows).
        """
        return await self._reads_in_flight.run(
            (tuple(room_ids), after, upto, limit),
            lambda: self._events.get_latest_events(room_ids, after=after, upto=upto, limit=limit),
        )

    async def _pace(self, device: tuple, deadline: float) -> bool:
        """
        Batch under a stream of events: a device answered less than
        L{BATCH_WINDOW_S} ago waits until that much time has passed, so
        each response carries everything that arrived meanwhile instead of
        one event per round trip. A device syncing less often than that
        (the usual case) never waits. Returns whether it waited.
        """
        last = self._last_answered.get(device)
        if last is None:
            return False
        pause = min(last + BATCH_WINDOW_S, deadline) - self._clock.seconds()
        if pause <= 0:
            return False
        await deferLater(self._clock, pause, lambda: None)
        return True

    def _answered(self, device: tuple) -> None:
        self._last_answered[device] = self._clock.seconds()

    async def _rooms_of(self, user_id: str, now: StreamToken) -> dict:
        """
        The user's memberships, from memory while no membership change of
        theirs happened since they were read (bounded LRU).
        """
        cached = self._memberships.get(user_id)
        if cached is not None and not self._notifier.touched_since(user_id, cached[0], "membership"):
            return cached[1]
        memberships = await self._events.get_rooms_for_user(user_id)
        self._memberships[user_id] = (now.stream, memberships)
        return memberships

    def current_token(self) -> StreamToken:
        return StreamToken(self._notifier.current)

    async def sync(self, request: SyncRequest) -> dict:
        """
        Answer at once when there is something new (or this is an initial
        or full-state sync); otherwise wait on the notifier until there is,
        or until the timeout, and answer then with the same position.
        """
        if request.since is None or request.full_state:
            return await self._respond(request, None, self.current_token())
        deadline = self._clock.seconds() + request.timeout_ms / 1000
        # A token from before a restart may be ahead of the stream: positions
        # above the stored maximum were typing notices, never stored, so
        # nothing is lost by starting from the current position instead.
        since = min(request.since, self.current_token())
        device = (request.user_id, request.device_id)
        while True:
            now = self.current_token()
            if self._notifier.touched_since(request.user_id, since.stream):
                if await self._pace(device, deadline):
                    now = self.current_token()
                response = await self._respond(request, since, now)
                if not is_empty_response(response):
                    self._answered(device)
                    return response
                since = now  # nothing we show changed: wait for more from here
            remaining = deadline - self._clock.seconds()
            if remaining <= 0:
                # Every source was asked up to `since`, not necessarily `now`.
                return empty_response(since)
            await self._notifier.wait(request.user_id, since.stream, remaining)

    async def _respond(self, request: SyncRequest, since: StreamToken | None, now: StreamToken) -> dict:
        """The response for the changes in C{(since, now]} (everything when C{since} is None)."""
        user_id = request.user_id
        room_filter = request.filter.room
        memberships = await self._rooms_of(user_id, now)
        changed_rooms: dict[str, StoredEvent] = {}
        if since is not None and self._notifier.touched_since(user_id, since.stream, "membership"):
            for change in await self._events.get_membership_changes(user_id, since.stream, now.stream):
                changed_rooms[change.room_id] = change
        join, invite, leave, knock = {}, {}, {}, {}
        joined = [room_id for room_id, (m, _) in memberships.items()
                  if m == "join" and room_filter.matches_room(room_id)]
        newly_joined = {room_id for room_id in joined
                        if since is None or (room_id in changed_rooms
                                             and changed_rooms[room_id].content.get("membership") == "join")}
        join = await self._joined_rooms(request, joined, newly_joined, since, now, memberships)
        forgotten = None
        for room_id, (membership, position) in memberships.items():
            if not room_filter.matches_room(room_id):
                continue
            if since is not None and room_id not in changed_rooms:
                continue
            if membership == "invite":
                invite[room_id] = {"invite_state": {"events": await self._stripped_state(room_id, user_id)}}
            elif membership == "knock":
                knock[room_id] = {"knock_state": {"events": await self._stripped_state(room_id, user_id)}}
            elif membership in ("leave", "ban") and (since is not None or room_filter.include_leave):
                if forgotten is None:
                    forgotten = await self._events.get_forgotten_rooms(user_id)
                if forgotten.get(room_id) == position:
                    continue
                leave[room_id] = await self._left_room(request, room_id, position, since)
        response = {"next_batch": str(now)}
        rooms = {name: section for name, section in
                 (("join", join), ("invite", invite), ("leave", leave), ("knock", knock)) if section}
        if rooms:
            response["rooms"] = rooms
        context = SyncContext(request, since, now, joined, response, self._notifier)
        for source in self._sources:
            await source.add_to_sync(context)
        return response

    async def _joined_rooms(self, request, joined, newly_joined, since, now, memberships) -> dict:
        user_id = request.user_id
        timeline_filter = request.filter.room.timeline
        state_filter = request.filter.room.state
        limit = timeline_filter.effective_limit()
        after = 0 if since is None else since.stream
        latest = await self._latest_events(joined, after, now.stream, limit)
        current = await self._events.get_current_state_many(
            [r for r in joined if since is None or r in newly_joined])
        ignored = await self._ignored(user_id) if self._ignored else frozenset()
        result, own_events, summary_rooms = {}, {}, []
        for room_id in joined:
            events = latest.get(room_id, [])
            if room_id not in current and not events:
                continue
            limited = len(events) > limit
            if limited:
                events = events[-limit:]
            start = events[0].stream_ordering - 1 if events else now.stream
            # Filters read type, sender and content, which the stored PDU
            # has as is: no client event is built just to be tested.
            shown = [e for e in events if timeline_filter.matches(e.pdu, room_id)
                     and (e.state_key is not None or e.sender not in ignored)]
            if self._visible is not None and shown and shown[0].stream_ordering < memberships[room_id][1]:
                shown = await self._visible(user_id, room_id, shown)
            state_events = await self._state_before(room_id, events, start, current, since, limited)
            # State the timeline filter hides still reaches the client, in state.
            shown_ids = {e.event_id for e in shown}
            state_events += [e for e in events if e.state_key is not None and e.event_id not in shown_ids]
            if state_filter.lazy_load_members:
                state_events = lazy_members(state_events, shown, user_id)
            room = empty_joined_room(now)
            timeline = []
            serialize = event_serializer(request.filter)
            for event in shown:
                timeline.append(serialize(event))
                if event.sender == user_id:
                    own_events[event.event_id] = timeline[-1]
            room["timeline"] = {"events": timeline, "limited": limited,
                                "prev_batch": str(StreamToken(start))}
            room["state"] = {"events": [serialize(e) for e in state_events
                                        if state_filter.matches(e.pdu, room_id)]}
            if room_id in current:
                room["summary"] = room_summary(current[room_id], user_id)
            elif any(e.type in SUMMARY_TYPES for e in events + state_events):
                summary_rooms.append(room_id)
            result[room_id] = room
        for room_id, state in (await self._events.get_current_state_many(summary_rooms)).items():
            result[room_id]["summary"] = room_summary(state, user_id)
        await self._add_transaction_ids(request, own_events)
        return result

    async def _state_before(self, room_id, events, start: int, current, since, limited) -> list:
        """
        The state section: for a room synced in full, the state at the start
        of its timeline; incrementally, the keys that changed between the
        last sync and the start of the timeline (the gap of a limited one).
        """
        if room_id in current:
            if any(e.state_key is not None for e in events):
                return list((await self._events.get_state_at(room_id, start)).values())
            return list(current[room_id].values())
        if not limited:
            return []
        changes = await self._events.get_state_changes([room_id], since.stream, start)
        return list(changes.get(room_id, {}).values())

    async def _add_transaction_ids(self, request, own_events: dict) -> None:
        """The sender's device sees the transaction id of what it sent (unsigned.transaction_id)."""
        fields = request.filter.event_fields
        if not own_events or (fields and not {"unsigned", "unsigned.transaction_id"} & set(fields)):
            return
        txn_ids = await self._events.get_txn_ids(request.user_id, request.device_id, list(own_events))
        for event_id, txn_id in txn_ids.items():
            own_events[event_id].setdefault("unsigned", {})["transaction_id"] = txn_id

    async def _left_room(self, request, room_id: str, left_at: int, since) -> dict:
        limit = request.filter.room.timeline.effective_limit()
        after = 0 if since is None else since.stream
        events = await self._events.get_room_events(room_id, after=after, upto=left_at, limit=limit + 1)
        limited = len(events) > limit
        events = events[-limit:]
        if self._visible is not None:
            events = await self._visible(request.user_id, room_id, events)
        return {
            "timeline": {
                "events": [event_serializer(request.filter)(e) for e in events],
                "limited": limited,
                "prev_batch": str(StreamToken(events[0].stream_ordering - 1 if events else left_at)),
            },
            "state": {"events": []},
            "account_data": {"events": []},
        }

    async def _stripped_state(self, room_id: str, user_id: str) -> list[dict]:
        keys = [(t, "") for t in STRIPPED_STATE_TYPES] + [("m.room.member", user_id)]
        state = await self._events.get_state(room_id, keys)
        return [stripped_event(e) for e in state.values()]


