"""
/sync: initial and incremental responses, and long-polling on the notifier.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping, Protocol, Sequence

from twisted.internet.task import deferLater

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.filters import Filter
from ruma_tx.matrix.stream_token import StreamToken
from ruma_tx.matrix.sync import (
    empty_joined_room,
    empty_response,
    is_empty_response,
)
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.clock import Clock
from ruma_tx.services.notifier import KeptPerUser, Notifier
from ruma_tx.services.ports.events import Events
from ruma_tx.services.sync_rooms import RoomSections, RoomsRequest


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
    @ivar membership_changes: the user's own member events in C{(since,
        now]}, by room (rooms joined or left since the last sync).
    """

    request: "SyncRequest"
    since: StreamToken | None
    now: StreamToken
    joined: list[str]
    response: JsonDict
    notifier: Notifier | None = None
    membership_changes: Mapping[str, StoredEvent] = field(default_factory=dict)

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
            section = rooms[room_id] = empty_joined_room(self.now, self.request.use_state_after)
        return section


@dataclass(frozen=True)
class SyncRequest:
    user_id: str
    device_id: str
    since: StreamToken | None
    timeout_ms: int
    filter: Filter
    full_state: bool
    #: Rooms' state up to the end of their timelines, in C{state_after} (spec v1.16).
    use_state_after: bool = False
    #: At most this many to-device messages (sliding sync's C{to_device.limit}).
    to_device_limit: int | None = None


class UserMemberships(KeptPerUser[dict[str, tuple[str, int]]]):
    """
    Users' memberships (C{room_id -> (membership, position)}), from memory
    while no membership change of theirs happened since they were read.
    """

    def __init__(self, *, events: Events, notifier: Notifier, max_users: int = CACHED_USERS) -> None:
        super().__init__(notifier, "membership", events.get_rooms_for_user, max_users)


class SyncResponder:
    """
    @param events: the L{ruma_tx.storage.events.EventStore}.
    @param notifier: the L{ruma_tx.services.notifier.Notifier}.
    """

    def __init__(self, *, events: Events, rooms: RoomSections, notifier: Notifier, clock: Clock,
                 memberships: UserMemberships, sources: Sequence[SyncSource] = (),
                 ignored: Callable[[str], Awaitable[frozenset[str]]] | None = None) -> None:
        """
        @param sources: objects with C{async add_to_sync(ctx: SyncContext)}
            that add their sections (ephemeral events, account data,
            presence, unread counts...) to each response; a source adding
            nothing keeps an otherwise empty response empty.
        @param rooms: builds the rooms of each response.
        @param ignored: C{async (user_id) -> frozenset} of ignored users.
        """
        self._events = events
        self._notifier = notifier
        self._clock = clock
        self._sources = list(sources)
        self._rooms = rooms
        self._ignored = ignored
        self._memberships = memberships
        self._last_answered: LRUCache[tuple, float] = LRUCache(CACHED_USERS)

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
        # deferLater only calls the clock's callLater, which every Clock has.
        await deferLater(self._clock, pause, lambda: None)  # type: ignore[arg-type]
        return True

    def _answered(self, device: tuple) -> None:
        self._last_answered[device] = self._clock.seconds()

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
            if remaining <= 0 or self._notifier.stopping:
                # Every source was asked up to `since`, not necessarily `now`.
                return empty_response(since)
            await self._notifier.wait(request.user_id, since.stream, remaining)

    async def _respond(self, request: SyncRequest, since: StreamToken | None, now: StreamToken) -> JsonDict:
        """The response for the changes in C{(since, now]} (everything when C{since} is None)."""
        user_id = request.user_id
        changes: dict[str, StoredEvent] = {}
        if since is not None and self._notifier.touched_since(user_id, since.stream, "membership"):
            for change in await self._events.get_membership_changes(user_id, since.stream, now.stream):
                changes[change.room_id] = change
        rooms, joined = await self._rooms.build(RoomsRequest(
            user_id=user_id, device_id=request.device_id, since=since, now=now,
            memberships=await self._memberships.get(user_id, now.stream), changes=changes,
            ignored=await self._ignored(user_id) if self._ignored else frozenset(),
            state_after=request.use_state_after,
        ), request.filter)
        response: JsonDict = {"next_batch": str(now)}
        if rooms:
            response["rooms"] = rooms
        context = SyncContext(request, since, now, joined, response, self._notifier, changes)
        for source in self._sources:
            await source.add_to_sync(context)
        return response
