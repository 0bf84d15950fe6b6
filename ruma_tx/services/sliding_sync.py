"""
Simplified sliding sync (MSC4186): one engine behind both wire formats.

A request continues its connection (L{Connections}); the engine builds the
user's list of rooms, ordered by recency, cuts each requested list to its
filters and range, adds the subscribed rooms, and sends of each room only
what the connection does not have yet (L{SlidingRooms}), plus the
extensions (L{SlidingExtensions}). With nothing to send it long-polls on
/sync's notifier, recomputing only when something concerning the user
became visible.
"""
from __future__ import annotations

from typing import Awaitable, Callable

from ruma_tx.matrix.sliding_sync import (
    ConnectionState,
    RoomConfig,
    RoomSent,
    SlidingSyncRequest,
    UserRoomData,
    combine_configs,
    space_children,
    window,
)
from ruma_tx.matrix.stream_token import StreamToken
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock
from ruma_tx.services.concurrency import concurrently
from ruma_tx.services.notifier import KeptPerUser, Notifier
from ruma_tx.services.ports.events import SyncReads
from ruma_tx.services.sliding_connections import Connections
from ruma_tx.services.sliding_extensions import ExtensionsAsked, SlidingExtensions, has_news
from ruma_tx.services.sliding_lists import UserRooms
from ruma_tx.services.sliding_order import RoomLists
from ruma_tx.services.sliding_rooms import RoomPlan, RoomsAsked, SlidingRooms
from ruma_tx.services.sync import UserMemberships

#: Users whose DM rooms (m.direct) are kept.
CACHED_USERS = 10_000


class UserData:
    """
    What list filters and C{is_dm} ask of a user's account data; the DM
    rooms are kept until the user's account data changes (notifier).

    @param direct_rooms: C{async (user_id) -> the rooms m.direct names}.
    @param all_tags: C{async (user_id, upto) -> {room_id: tag names}}.
    """

    def __init__(self, *, direct_rooms: Callable[[str], Awaitable[frozenset[str]]],
                 all_tags: Callable[[str, int], Awaitable[dict[str, frozenset[str]]]],
                 reads: SyncReads, notifier: Notifier) -> None:
        self._direct = KeptPerUser(notifier, "account_data", direct_rooms, CACHED_USERS)
        self._all_tags = all_tags
        self._reads = reads

    async def read(self, user_id: str, request: SlidingSyncRequest, joined: frozenset[str], now: int) -> UserRoomData:
        direct = await self._direct.get(user_id, now)
        filters = [config.filters for config in request.lists.values()]
        tags = await self._all_tags(user_id, now) if any(
            f.tags is not None or f.not_tags for f in filters) else {}
        spaces = sorted({s for f in filters for s in f.spaces or () if s in joined})
        state = await self._reads.get_current_state_of_types({s: ["m.space.child"] for s in spaces})
        children = {space: space_children((e.type, e.state_key or "", e.content) for e in space_state.values())
                    for space, space_state in state.items()}
        return UserRoomData(direct, tags, children)


class SlidingSync:
    """
    @param ignored: C{async (user_id) -> the users they ignore}.
    """

    def __init__(self, *, memberships: UserMemberships, user_rooms: UserRooms, user_data: UserData,
                 lists: RoomLists, connections: Connections, rooms: SlidingRooms,
                 extensions: SlidingExtensions, notifier: Notifier, clock: Clock,
                 ignored: Callable[[str], Awaitable[frozenset[str]]]) -> None:
        self._memberships = memberships
        self._user_rooms = user_rooms
        self._user_data = user_data
        self._lists = lists
        self._connections = connections
        self._rooms = rooms
        self._extensions = extensions
        self._notifier = notifier
        self._clock = clock
        self._ignored = ignored

    async def sync(self, user_id: str, device_id: str, request: SlidingSyncRequest) -> JsonDict:
        """
        The response to a request: at once on a connection's first request
        or when there is something to send; otherwise when something comes
        within C{timeout_ms}, or empty once it has passed.

        @raise BadRequest: C{M_UNKNOWN_POS} for a C{pos} the connection does not know.
        """
        resumed = await self._connections.resume((user_id, device_id, request.conn_id), request.pos)
        previous = resumed.previous
        deadline = self._clock.seconds() + request.timeout_ms / 1000
        # A pos from before a restart may be ahead of the stream (typing
        # positions are never stored): nothing is lost from the current one.
        since = None if previous is None else min(previous.stream, self._notifier.current)
        computed_at = since
        first = True
        while True:
            if first or self._notifier.touched_since(user_id, computed_at or 0):
                now = StreamToken(self._notifier.current)
                response, state = await self._respond(user_id, device_id, request, previous, now)
                computed_at, first = now.stream, False
                if previous is None or response["rooms"] or has_news(response["extensions"]):
                    break
            remaining = deadline - self._clock.seconds()
            if remaining <= 0 or self._notifier.stopping:
                break
            await self._notifier.wait(user_id, state.stream, remaining)
        response["pos"] = self._connections.commit(resumed, state, StreamToken(state.stream))
        return response

    async def _respond(self, user_id: str, device_id: str, request: SlidingSyncRequest,
                       previous: ConnectionState | None, now: StreamToken) -> tuple[JsonDict, ConnectionState]:
        memberships = await self._memberships.get(user_id, now.stream)
        ignored = await self._ignored(user_id)
        outside = await self._user_rooms.outside_join(user_id, memberships, ignored)
        ordered = await self._lists.ordered(user_id, memberships, outside, request.order_by_bump, now.stream)
        sent_before = {} if previous is None else previous.rooms
        known_left = ordered.known_left(sent_before)
        rooms_in_order, listed = ordered.with_known(known_left)
        data = await self._user_data.read(user_id, request, ordered.joined, now.stream)

        in_lists: dict[str, list[str]] = {}
        scope: dict[str, list[RoomConfig]] = {}
        counts: JsonDict = {}
        for name, list_config in request.lists.items():
            verdicts = await self._lists.verdicts(ordered, list_config.filters, data, known_left)
            matching = [r for r in rooms_in_order if verdicts[r]]
            counts[name] = {"count": len(matching)}
            in_lists[name] = window(matching, list_config.ranges)
            for room_id in in_lists[name]:
                scope.setdefault(room_id, []).append(list_config.config)
        subscribed = [r for r in request.subscriptions if r in memberships and r not in outside.hidden]
        for room_id in subscribed:
            scope.setdefault(room_id, []).append(request.subscriptions[room_id])

        # A list of the whole range puts every room in scope on every wake-up:
        # the rooms with nothing new are skipped before any plan is made, each
        # distinct set of configs is combined (and compared with what was
        # sent) once, and rooms are looked up in sets.
        combined: dict[tuple[int, ...], RoomConfig] = {}
        grows: dict[tuple[int, tuple[int, ...]], bool] = {}
        list_members = {name: set(rooms) for name, rooms in in_lists.items()}
        plans = []
        for room_id, configs in scope.items():
            membership, membership_position = memberships[room_id]
            key = tuple(map(id, configs))
            config = combined.get(key) or combined.setdefault(key, combine_configs(configs))
            sent = sent_before.get(room_id)
            if sent is not None and sent.membership == membership and sent.is_dm == (room_id in data.direct):
                grown = grows.get((id(sent.config), key))
                if grown is None:
                    grown = grows[(id(sent.config), key)] = (
                        config.more_timeline_than(sent.config) or config.more_state_than(sent.config))
                position = ordered.last_positions.get(room_id, 0) if membership == "join" else membership_position
                if not grown and position <= sent.position:
                    continue
            plan = RoomPlan(room_id, membership, membership_position, config, sent,
                            tuple(name for name, members in list_members.items() if room_id in members),
                            ordered.bump_stamps.get(room_id, membership_position) if membership == "join"
                            else membership_position, room_id in data.direct)
            if _has_news(plan, ordered.last_positions.get(room_id, 0)):
                plans.append(plan)
        (rooms, sent), extensions = await concurrently(
            self._rooms.build(RoomsAsked(
                user_id=user_id, device_id=device_id, previous=None if previous is None else previous.stream,
                now=now, ignored=ignored, unread_counts=request.unread_counts), plans),
            self._extensions.build(ExtensionsAsked(
                user_id=user_id, device_id=device_id,
                previous=None if previous is None else StreamToken(min(previous.stream, now.stream)),
                now=now, lists=in_lists, subscriptions=subscribed, joined=ordered.joined,
                initial_rooms=frozenset(p.room_id for p in plans if p.initial)),
                request.extensions))
        state = ConnectionState(now.stream, {**sent_before, **sent}) if sent else ConnectionState(
            now.stream, sent_before)
        return {"lists": counts, "rooms": rooms, "extensions": extensions}, state


def _has_news(plan: RoomPlan, last_position: int) -> bool:
    """
    Whether a room in scope is sent: never sent on the connection, its
    membership or DM status changed, it has events the connection lacks,
    or its config now asks more than was sent (MSC4186 "Changing room
    configs").
    """
    sent: RoomSent | None = plan.sent
    if sent is None or plan.initial or sent.is_dm != plan.is_dm:
        return True
    if plan.membership != "join":
        return plan.membership_position > sent.position
    return last_position > sent.position or plan.expanded or plan.state_expanded
