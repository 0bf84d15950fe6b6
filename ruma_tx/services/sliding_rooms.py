"""
The rooms of a sliding-sync response (MSC4186 "Room results"), each in
full (C{initial}) or as what changed since the connection last sent it,
read with one query per kind of read for all the rooms of a response.
The reads and event rules are /sync's (L{ruma_tx.services.sync_rooms}).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable, Mapping

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.filters import Filter
from ruma_tx.matrix.relations import shown_timeline
from ruma_tx.matrix.sliding_sync import (
    RoomConfig,
    RoomSent,
    expanded_state,
    hero,
    lazy_member_targets,
    remembered_lazy,
    room_avatar,
    room_name,
)
from ruma_tx.matrix.stream_token import StreamToken
from ruma_tx.matrix.sync import MAX_HEROES, MemberCounts, shown_as_stored
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.aggregations import Aggregator
from ruma_tx.services.concurrency import concurrently
from ruma_tx.services.ports.events import Events, StateByRoom, SyncReads
from ruma_tx.services.sync_rooms import VisibilityFilter, stripped_states

#: C{async (user_id, room ids, up to position) -> {room_id: (notifications, highlights)}}.
UnreadCountsReader = Callable[[str, list[str], int], Awaitable[dict[str, tuple[int, int]]]]

_NAME = ("m.room.name", "")
#: State whose change changes a room's member counts or heroes.
_SUMMARY_TYPES = ("m.room.member", "m.room.name")
_AVATAR = ("m.room.avatar", "")
_DEFAULT_FILTER = Filter()


@dataclass(frozen=True)
class RoomPlan:
    """A room the response sends, and why."""

    room_id: str
    membership: str
    #: The stream position of the user's membership event.
    membership_position: int
    config: RoomConfig
    #: What the connection had of the room; C{None}: never sent.
    sent: RoomSent | None
    lists: tuple[str, ...]
    bump_stamp: int
    is_dm: bool

    @property
    def initial(self) -> bool:
        return self.sent is None or self.sent.membership != self.membership

    @property
    def expanded(self) -> bool:
        """The timeline limit grew since the room was last sent."""
        return self.sent is not None and not self.initial and self.config.more_timeline_than(self.sent.config)

    @property
    def state_expanded(self) -> bool:
        """Its config now asks state the connection was not sent under the old one."""
        return self.sent is not None and not self.initial and self.config.more_state_than(self.sent.config)


@dataclass(frozen=True)
class RoomsAsked:
    user_id: str
    device_id: str
    #: The stream position of the client's C{pos} (C{None} on a connection's first request).
    previous: int | None
    now: StreamToken
    ignored: frozenset[str]
    #: Whether rooms carry C{notification_count} and C{highlight_count} (the unstable path).
    unread_counts: bool


class SlidingRooms:
    """
    @param reads: /sync's many-room reads.
    @param events: transaction ids.
    @param visible: history visibility.
    @param aggregations: bundled aggregations of cut timelines.
    @param unread_counts: the rooms' unread counts, as /sync counts them.
    """

    def __init__(self, *, reads: SyncReads, events: Events, visible: VisibilityFilter,
                 aggregations: Aggregator, unread_counts: UnreadCountsReader) -> None:
        self._reads = reads
        self._events = events
        self._visible = visible
        self._aggregations = aggregations
        self._unread_counts = unread_counts

    async def build(self, asked: RoomsAsked, plans: list[RoomPlan]) -> tuple[dict[str, JsonDict], dict[str, RoomSent]]:
        """The rooms' results, and what the connection has of each once they are sent."""
        stripped_plans = [p for p in plans if p.membership in ("invite", "knock")]
        timeline_plans = [p for p in plans if p.membership not in ("invite", "knock")]
        results: dict[str, JsonDict] = {}
        sent: dict[str, RoomSent] = {}
        stripped = await stripped_states(self._reads, asked.user_id, asked.ignored,
                                         [p.room_id for p in stripped_plans])
        for plan in stripped_plans:
            if plan.room_id in stripped:
                results[plan.room_id] = {**_common(plan), "stripped_state": stripped[plan.room_id]}
                sent[plan.room_id] = RoomSent(plan.membership_position, plan.membership, plan.config,
                                              is_dm=plan.is_dm)
        if timeline_plans:
            await self._with_timelines(asked, timeline_plans, results, sent)
        return results, sent

    async def _with_timelines(self, asked: RoomsAsked, plans: list[RoomPlan], results: dict[str, JsonDict],
                              sent: dict[str, RoomSent]) -> None:
        now = asked.now.stream
        by_room = {p.room_id: p for p in plans}
        windows = {p.room_id: (0 if p.initial or p.expanded else min(p.sent.position, _upto(p, now)),  # type: ignore[union-attr]
                               _upto(p, now)) for p in plans}
        latest: dict[str, list[StoredEvent]] = {}
        for found in await concurrently(*(self._reads.get_latest_events(
                {r: w for r, w in windows.items() if by_room[r].config.timeline_limit == limit},
                limit=limit, hidden_senders=sorted(asked.ignored), pdu=False)
                for limit in {p.config.timeline_limit for p in plans})):
            latest.update(found)
        timelines: dict[str, list[StoredEvent]] = {}
        limited: dict[str, bool] = {}
        for p in plans:
            events = latest.get(p.room_id, [])
            limited[p.room_id] = len(events) > p.config.timeline_limit
            timelines[p.room_id] = events[len(events) - p.config.timeline_limit:] if limited[p.room_id] else events
        reaching_back = {r: events for r, events in timelines.items() if events and (
            by_room[r].membership != "join" or events[0].stream_ordering < by_room[r].membership_position)}
        if reaching_back:
            timelines.update(await self._visible(asked.user_id, reaching_back))

        # Lazy members (MSC4186): the timeline's senders and targets not sent
        # before; those the required state carries anyway are dropped below.
        lazy_targets: dict[str, set[str]] = {}
        for p in plans:
            if p.config.lazy_members:
                events = timelines[p.room_id]
                lazy_targets[p.room_id] = lazy_member_targets(
                    [e.sender for e in events],
                    [e.state_key for e in events if e.type == "m.room.member" and e.state_key],
                    frozenset() if p.sent is None else p.sent.lazy_members, p.initial or limited[p.room_id])
        # Member counts of rooms sent whole, and of rooms whose timeline changes them.
        summary_rooms = {p.room_id for p in plans if p.membership == "join" and (p.initial or any(
            e.type in _SUMMARY_TYPES for e in timelines[p.room_id]))}

        # Every read that depends only on the timelines, at once.
        state, changes, expansions, txn_ids, bundles, unread, lazy_found, counts = await concurrently(
            self._full_state([p for p in plans if p.initial]),
            self._reads.get_state_changes(
                {p.room_id: windows[p.room_id] if not p.expanded else (p.sent.position, now)  # type: ignore[union-attr]
                 for p in plans if not p.initial}),
            self._current_matching({p.room_id: p.config for p in plans if p.state_expanded}),
            self._transaction_ids(asked, timelines),
            self._aggregations.bundle(
                asked.user_id, [e for r, shown in timelines.items() if limited[r] or by_room[r].initial
                                for e in shown],
                ignored=asked.ignored, include_room_id=False),
            self._unread_counts(asked.user_id, [p.room_id for p in plans if p.membership == "join"], now)
            if asked.unread_counts else _nothing(),
            self._reads.get_current_state_keys(
                {r: [("m.room.member", u) for u in sorted(t)] for r, t in lazy_targets.items() if t}, pdu=False),
            self._reads.get_member_counts(sorted(summary_rooms)),
        )
        # A cut timeline may hide member changes: their rooms' counts too.
        hidden_changes = [p.room_id for p in plans if p.membership == "join" and p.room_id not in summary_rooms
                          and any(k[0] in _SUMMARY_TYPES for k in changes.get(p.room_id, {}))]
        if hidden_changes:
            counts.update(await self._reads.get_member_counts(hidden_changes))

        required: dict[str, dict[tuple[str, str], StoredEvent]] = {}
        lazy_sent: dict[str, set[str]] = {}
        for p in plans:
            room_id, config = p.room_id, p.config
            base = state.get(room_id) if p.initial else changes.get(room_id, {})
            shown = {k: e for k, e in (base or {}).items() if config.matches(*k)}
            if p.state_expanded:
                old = p.sent.config  # type: ignore[union-attr]
                shown.update({k: e for k, e in expansions.get(room_id, {}).items()
                              if expanded_state(old, config, *k)})
            if room_id in lazy_targets:
                if not (p.initial or limited[room_id]):  # MSC4186: every member change of a gapless sync
                    shown.update({k: e for k, e in (base or {}).items() if k[0] == "m.room.member"})
                lazy_sent[room_id] = lazy_targets[room_id] - {k for t, k in shown if t == "m.room.member"}
                found = lazy_found.get(room_id, {})
                shown.update({k: found[k] for k in (("m.room.member", u) for u in lazy_sent[room_id]) if k in found})
            required[room_id] = shown
        names = {p.room_id: (state.get(p.room_id, {}) if p.initial else changes.get(p.room_id, {})) for p in plans}
        heroes = await self._heroes(asked.user_id, counts, names, by_room)

        previous = asked.previous
        for p in plans:
            room_id = p.room_id
            events = timelines[room_id]
            result = _common(p)
            result["timeline"] = shown_timeline(events, shown_as_stored, txn_ids, bundles, _DEFAULT_FILTER)
            result["prev_batch"] = str(StreamToken(events[0].stream_ordering - 1 if events else windows[room_id][1]))
            result["limited"] = limited[room_id]
            result["num_live"] = 0 if previous is None else sum(1 for e in events if e.stream_ordering > previous)
            if p.expanded:
                result["expanded_timeline"] = True
            result["required_state"] = [shown_as_stored(e) for e in required[room_id].values()]
            _add_name_and_avatar(result, names[room_id], p.initial)
            if room_id in counts:
                result["joined_count"] = counts[room_id].joined
                result["invited_count"] = counts[room_id].invited
            if room_id in heroes:
                result["heroes"] = heroes[room_id]
            if room_id in unread:
                result["notification_count"], result["highlight_count"] = unread[room_id]
            results[room_id] = result
            already = frozenset() if p.sent is None else p.sent.lazy_members
            sent[room_id] = RoomSent(_upto(p, now), p.membership, p.config,
                                     remembered_lazy(already, lazy_sent.get(room_id, ()),
                                                     p.initial or limited[room_id]), p.is_dm)

    async def _full_state(self, plans: list[RoomPlan]) -> StateByRoom:
        """Rooms sent in full: joined ones' current state, left ones' state when they left."""
        joined = {p.room_id: p.config for p in plans if p.membership == "join"}
        current, at_leave = await concurrently(
            self._current_matching(joined, extra=(_NAME, _AVATAR)),
            self._reads.get_state_at({p.room_id: p.membership_position for p in plans if p.membership != "join"}))
        return {**current, **at_leave}

    async def _current_matching(self, configs: Mapping[str, RoomConfig],
                                extra: Iterable[tuple[str, str]] = ()) -> StateByRoom:
        """
        The current state each config may want (plus C{extra} keys): the
        whole state of rooms whose config asks every type, else only the
        asked types and keys.
        """
        whole = [r for r, c in configs.items() if c.reads_all_state()]
        others = {r: c for r, c in configs.items() if not c.reads_all_state()}
        # The rooms of a list share their config: one read per distinct key set.
        by_keys: dict[frozenset[tuple[str, str]], list[str]] = {}
        for room_id, config in others.items():
            by_keys.setdefault(config.exact_keys() | frozenset(extra), []).append(room_id)
        # Without PDUs: the events are shown as stored, and the few contents
        # read (name, avatar) come from the stored client JSON.
        state, typed, *keyed = await concurrently(
            self._reads.get_current_state(whole, pdu=False) if whole else _nothing(),
            self._reads.get_current_state_of_types(
                {r: sorted(c.whole_types()) for r, c in others.items() if c.whole_types()}, pdu=False),
            *(self._reads.get_current_state_of_keys(room_ids, sorted(keys), pdu=False)
              for keys, room_ids in by_keys.items()))
        for found in keyed:
            for room_id, room_state in found.items():
                state[room_id] = {**room_state, **typed.get(room_id, {})}
        return state

    async def _heroes(self, user_id: str, counts: Mapping[str, MemberCounts],
                      names: Mapping[str, Mapping[tuple[str, str], StoredEvent]],
                      plans: Mapping[str, RoomPlan]) -> dict[str, list[JsonDict]]:
        """MSC4186: heroes of rooms without a name, with their member events' names and avatars."""
        wanted: dict[str, list[str]] = {}
        for room_id, room_counts in counts.items():
            name_event = names.get(room_id, {}).get(_NAME)
            if plans[room_id].initial and room_name(name_event.content if name_event else None) is not None:
                continue
            wanted[room_id] = [u for u in room_counts.first_members if u != user_id][:MAX_HEROES]
        members = await self._reads.get_current_state_keys(
            {room_id: [("m.room.member", u) for u in users] for room_id, users in wanted.items()}, pdu=False)
        return {room_id: [hero(u, members.get(room_id, {}).get(("m.room.member", u)).content  # type: ignore[union-attr]
                               if ("m.room.member", u) in members.get(room_id, {}) else None)
                          for u in users]
                for room_id, users in wanted.items()}

    async def _transaction_ids(self, asked: RoomsAsked, timelines: Mapping[str, list[StoredEvent]]) -> dict[str, str]:
        own = [e.event_id for events in timelines.values() for e in events if e.sender == asked.user_id]
        return await self._events.get_txn_ids(asked.user_id, asked.device_id, own) if own else {}


async def _nothing() -> dict:
    return {}


def _upto(plan: RoomPlan, now: int) -> int:
    """How far a room's timeline reaches: now, or the user's leave."""
    return now if plan.membership == "join" else plan.membership_position


def _common(plan: RoomPlan) -> JsonDict:
    result: JsonDict = {"membership": plan.membership, "bump_stamp": plan.bump_stamp, "is_dm": plan.is_dm}
    if plan.lists:
        result["lists"] = list(plan.lists)
    if plan.initial:
        result["initial"] = True
    return result


def _add_name_and_avatar(result: JsonDict, state: Mapping[tuple[str, str], StoredEvent], initial: bool) -> None:
    """
    C{name} and C{avatar}: in full when sent in full (left out when unset);
    otherwise only when changed, C{None} meaning removed.
    """
    for field_name, key, read in (("name", _NAME, room_name), ("avatar", _AVATAR, room_avatar)):
        event = state.get(key)
        if event is None:
            continue
        value = read(event.content)
        if value is not None or not initial:
            result[field_name] = value
