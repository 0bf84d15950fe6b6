"""
The rooms of a /sync response: C{rooms.join}, C{invite}, C{knock} and
C{leave}, read with one query per kind of read for all of the user's rooms
(never one per room).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Collection, Mapping

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.filters import Filter, RoomEventFilter
from ruma_tx.matrix.relations import shown_timeline
from ruma_tx.matrix.stream_token import StreamToken
from ruma_tx.matrix.sync import (
    STRIPPED_STATE_TYPES,
    SUMMARY_TYPES,
    empty_joined_room,
    event_serializer,
    MemberCounts,
    lazy_members,
    member_counts,
    room_summary,
    state_section,
    stripped_event,
)
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.aggregations import Aggregator
from ruma_tx.services.caches import LastPositions
from ruma_tx.services.concurrency import SingleFlight
from ruma_tx.services.ports.events import Events, NewEvent, ResolvedByRoom, StateByRoom, SyncReads

#: A window's lower end that takes in a room's whole history.
_ALL_HISTORY = -(2 ** 63)

#: C{async (user_id, {room_id: events}) -> the events the user may see, per room}.
VisibilityFilter = Callable[[str, Mapping[str, list[StoredEvent]]], Awaitable[dict[str, list[StoredEvent]]]]


@dataclass(frozen=True)
class RoomsRequest:
    """What one /sync response asks of the rooms (see L{RoomSections.build})."""

    user_id: str
    device_id: str
    since: StreamToken | None
    now: StreamToken
    #: C{room_id -> (membership, position of the member event)}.
    memberships: Mapping[str, tuple[str, int]]
    #: The user's own member events in C{(since, now]}, by room.
    changes: Mapping[str, StoredEvent]
    ignored: frozenset[str]
    #: C{use_state_after}: rooms' state up to the end of their timelines.
    state_after: bool = False


def _needs_pdu(sync_filter: Filter) -> bool:
    """
    Whether the response needs events' PDUs: not when every event is shown
    as stored (the usual filter), which lets the reads leave the PDUs out.
    """
    return (sync_filter.event_format == "federation" or bool(sync_filter.event_fields)
            or _is_restrictive(sync_filter.room.state))


def _is_restrictive(event_filter: RoomEventFilter) -> bool:
    """Whether the timeline filter hides some events (so state may hide with them)."""
    return (event_filter.types is not None or bool(event_filter.not_types)
            or event_filter.senders is not None or bool(event_filter.not_senders)
            or event_filter.contains_url is not None)


class RoomSections:
    """
    @param reads: the many-room reads /sync makes.
    @param events: transaction ids and forgotten rooms.
    @param visible: history visibility, for timelines reaching back before
        the user joined (or after they left).
    @param aggregations: the bundled aggregations of timeline events.
    """

    def __init__(self, *, reads: SyncReads, events: Events, visible: VisibilityFilter | None,
                 aggregations: Aggregator, start_position: int, max_rooms: int = 100_000) -> None:
        """
        @param start_position: the stream position at start: what happened
            in rooms before it is unknown to L{event_stored}.
        """
        self._reads = reads
        self._events = events
        self._visible = visible
        self._aggregations = aggregations
        self._reads_in_flight = SingleFlight()
        # Room -> position of its last event: an incremental sync reads only
        # the rooms that changed since its token (a user in 1,000 rooms woken
        # by one message reads one room). Bounded; when unsure, a room is read.
        self._room_changes: LastPositions[str] = LastPositions(max_rooms, start_position)
        # Room -> position of the last event whose acceptance moved other
        # keys of its state (state resolution, in a room shared with other
        # servers): only then is the stream order of state events not the
        # state, and /sync reads what resolution chose (schema 033).
        self._resolutions: LastPositions[str] = LastPositions(max_rooms, start_position)

    def event_stored(self, event: NewEvent, position: int) -> None:
        """Told by the event creator of each stored event."""
        self._room_changes.record(event.room_id, position)
        if event.dag is not None and event.dag.current_state is not None:
            self._resolutions.record(event.room_id, position)

    async def build(self, request: RoomsRequest, sync_filter: Filter) -> tuple[JsonDict, list[str]]:
        """
        The C{rooms} of the response, and the joined rooms the filter keeps
        (the other sources of the response add to them).
        """
        room_filter = sync_filter.room
        since = request.since
        joined = [room_id for room_id, (membership, _) in request.memberships.items()
                  if membership == "join" and room_filter.matches_room(room_id)]
        newly_joined = {room_id for room_id in joined
                        if since is None or (room_id in request.changes and
                                             request.changes[room_id].content.get("membership") == "join")}
        rooms: JsonDict = {}
        join = await self._joined(request, sync_filter, joined, newly_joined)
        invited, knocked, left = [], [], []
        for room_id, (membership, position) in request.memberships.items():
            if not room_filter.matches_room(room_id) or (since is not None and room_id not in request.changes):
                continue
            if membership == "invite":
                invited.append(room_id)
            elif membership == "knock":
                knocked.append(room_id)
            elif membership in ("leave", "ban") and (since is not None or room_filter.include_leave):
                left.append(room_id)
        stripped = await self._stripped_state(request, invited + knocked)
        invite = {room_id: {"invite_state": {"events": stripped[room_id]}} for room_id in invited
                  if room_id in stripped}
        knock = {room_id: {"knock_state": {"events": stripped[room_id]}} for room_id in knocked
                 if room_id in stripped}
        leave = await self._left(request, sync_filter, left)
        for name, section in (("join", join), ("invite", invite), ("leave", leave), ("knock", knock)):
            if section:
                rooms[name] = section
        return rooms, joined

    # -- joined rooms ------------------------------------------------------

    async def _member_counts(self, room_ids: list[str]) -> dict[str, MemberCounts]:
        """
        The rooms' member counts; identical reads in flight share one query
        (a join wakes every member's sync, and they all ask for it).
        """
        key = ("member_counts", tuple(sorted(room_ids)))
        return await self._reads_in_flight.run(key, lambda: self._reads.get_member_counts(room_ids))

    async def _latest(self, windows: dict[str, tuple[int, int]], limit: int, event_filter: RoomEventFilter,
                      ignored: frozenset[str], pdu: bool) -> dict[str, list[StoredEvent]]:
        """
        The rooms' latest events; identical reads in flight at once share
        one query (a message wakes every member's sync with the same
        window, and they all ask for the same rows).
        """
        key = (tuple(sorted(windows.items())), limit, event_filter, ignored, pdu)
        return await self._reads_in_flight.run(key, lambda: self._reads.get_latest_events(
            windows, limit=limit, event_filter=event_filter, hidden_senders=sorted(ignored), pdu=pdu))

    async def _joined(self, request: RoomsRequest, sync_filter: Filter, joined: list[str],
                      newly_joined: set[str]) -> JsonDict:
        user_id, since, now = request.user_id, request.since, request.now
        timeline_filter = sync_filter.room.timeline
        state_filter = sync_filter.room.state
        limit = timeline_filter.effective_limit()
        restrictive = _is_restrictive(timeline_filter)
        # A room joined since the last sync is synced in full, timeline too;
        # others only when an event came since.
        windows = {room_id: (0 if room_id in newly_joined or since is None else since.stream, now.stream)
                   for room_id in joined if since is None or room_id in newly_joined
                   or self._room_changes.changed_since(room_id, since.stream)}
        pdu = _needs_pdu(sync_filter)
        latest = await self._latest(windows, limit, timeline_filter, request.ignored, pdu)
        full = [room_id for room_id in joined if room_id in newly_joined]
        current = await self._reads.get_current_state(full, pdu=pdu)

        timelines: dict[str, list[StoredEvent]] = {}
        limited: dict[str, bool] = {}
        starts: dict[str, int] = {}
        for room_id in windows:
            events = latest.get(room_id, [])
            if room_id not in current and not events:
                continue
            limited[room_id] = len(events) > limit
            events = events[-limit:] if limited[room_id] else events
            timelines[room_id] = events
            starts[room_id] = events[0].stream_ordering - 1 if events else now.stream
        reaching_back = {room_id: events for room_id, events in timelines.items()
                         if events and events[0].stream_ordering < request.memberships[room_id][1]}
        if self._visible is not None and reaching_back:
            timelines.update(await self._visible(user_id, reaching_back))

        if request.state_after:
            state = await self._state_after_sections(request, timelines, current, pdu)
        else:
            state = await self._state_sections(request, timelines, current, limited, starts, restrictive, pdu)
        # Rooms whose summary may have changed: by what the timeline or the
        # state section holds before lazy-loading adds members that merely
        # sent something (each sync of a big room would otherwise count it).
        summary_changed = {room_id for room_id, shown in timelines.items()
                           if any(e.type in SUMMARY_TYPES for e in shown + state.get(room_id, []))}
        if state_filter.lazy_load_members:
            state = await self._lazy_members(request, timelines, state, current)

        serialize = event_serializer(sync_filter)
        txn_ids = await self._transaction_ids(request, sync_filter, [
            e.event_id for shown in timelines.values() for e in shown if e.sender == user_id])
        # Spec: aggregations are bundled in a "limited" timeline; Synapse
        # also bundles those of rooms synced in full. Not when event_fields
        # leave unsigned out.
        fields = set(sync_filter.event_fields or ())
        bundled = not fields or bool({"unsigned", "unsigned.m\\.relations"} & fields)
        bundles = await self._aggregations.bundle(
            user_id, [e for room_id, shown in timelines.items() if limited[room_id] or room_id in newly_joined
                      for e in shown] if bundled else [], ignored=request.ignored, include_room_id=False)
        state_restricted = _is_restrictive(state_filter)
        result: JsonDict = {}
        needs_summary = []
        for room_id, shown in timelines.items():
            room = empty_joined_room(now, request.state_after)
            timeline = shown_timeline(shown, serialize, txn_ids, bundles, sync_filter)
            room["timeline"] = {"events": timeline, "limited": limited[room_id],
                                "prev_batch": str(StreamToken(starts[room_id]))}
            room_state = state.get(room_id, []) if state_filter.matches_room(room_id) else []
            room[state_section(request.state_after)] = {"events": [
                serialize(e) for e in room_state if not state_restricted or state_filter.matches(e.pdu, room_id)]}
            if room_id in current:
                room["summary"] = room_summary(member_counts(current[room_id]), user_id)
            elif room_id in summary_changed:
                needs_summary.append(room_id)
            result[room_id] = room
        for room_id, counts in (await self._member_counts(needs_summary)).items():
            result[room_id]["summary"] = room_summary(counts, user_id)
        return result

    async def _state_sections(self, request: RoomsRequest, timelines: dict[str, list[StoredEvent]],
                              current: StateByRoom, limited: dict[str, bool], starts: dict[str, int],
                              restrictive: bool, pdu: bool) -> dict[str, list[StoredEvent]]:
        """
        Each room's C{state}: synced in full, the state at the start of its
        timeline; incrementally, the keys that changed between the last sync
        and the start of the timeline (the gap of a limited one). State the
        timeline filter hides after the start still reaches the client, here.
        """
        now = request.now.stream
        rewind = {room_id: starts[room_id] for room_id in timelines if room_id in current
                  and any(e.state_key is not None for e in timelines[room_id])}
        at_start = await self._reads.get_state_at(rewind, pdu=pdu)
        gaps = {} if request.since is None else {
            room_id: (request.since.stream, starts[room_id]) for room_id in timelines
            if room_id not in current and limited[room_id]}
        in_gap = await self._reads.get_state_changes(gaps, pdu=pdu)
        hidden = await self._reads.get_state_changes(
            {room_id: (starts[room_id], now) for room_id in timelines} if restrictive else {}, pdu=pdu)
        # Resolution's choices up to the timeline's start (synced in full),
        # or since the last sync.
        resolved = await self._resolved({
            **{room_id: (_ALL_HISTORY, start) for room_id, start in rewind.items()},
            **({} if request.since is None else {room_id: (request.since.stream, now) for room_id in timelines
                                                 if room_id not in current})}, pdu)
        sections: dict[str, list[StoredEvent]] = {}
        for room_id, shown in timelines.items():
            if room_id in current:
                base = at_start[room_id] if room_id in at_start else current[room_id]
            else:
                base = in_gap.get(room_id, {})
            state = dict(base)
            shown_ids = {e.event_id for e in shown}
            for key, event in hidden.get(room_id, {}).items():
                if event.event_id not in shown_ids:
                    state[key] = event
            # Incrementally, a key the timeline shows ends as the timeline
            # leaves it: only state_after can show more (as in Synapse).
            shown_keys = {(e.type, e.state_key or "") for e in shown if e.state_key is not None}
            _with_resolved(state, resolved.get(room_id, {}), () if room_id in current else shown_keys)
            sections[room_id] = list(state.values())
        return sections

    async def _resolved(self, windows: dict[str, tuple[int, int]], pdu: bool) -> ResolvedByRoom:
        """The keys state resolution moved in those windows, in the rooms where it may have."""
        return await self._reads.get_resolved_state(
            {room_id: window for room_id, window in windows.items()
             if self._resolutions.changed_since(room_id, window[0])}, pdu=pdu)

    async def _state_after_sections(self, request: RoomsRequest, timelines: dict[str, list[StoredEvent]],
                                    current: StateByRoom, pdu: bool) -> dict[str, list[StoredEvent]]:
        """
        Each room's C{state_after} (spec v1.16, C{use_state_after}): synced
        in full, its state at the end of the timeline (the current state);
        incrementally, every key that changed between the last sync and the
        end of the timeline, the changes the timeline shows included, since
        the client takes no state from the timeline then.
        """
        since = request.since
        windows = {} if since is None else {
            room_id: (since.stream, request.now.stream) for room_id in timelines if room_id not in current}
        changed = await self._reads.get_state_changes(windows, pdu=pdu)
        for room_id, moved in (await self._resolved(windows, pdu)).items():
            _with_resolved(changed.setdefault(room_id, {}), moved)
        return {room_id: list((current[room_id] if room_id in current else changed.get(room_id, {})).values())
                for room_id in timelines}

    async def _lazy_members(self, request: RoomsRequest, timelines: dict[str, list[StoredEvent]],
                            state: dict[str, list[StoredEvent]],
                            current: StateByRoom) -> dict[str, list[StoredEvent]]:
        """
        Lazy-loading members (spec: "Lazy-loading room members"): of the
        member events, only those of the timeline's senders (and the user's
        own, in a room synced in full); an incremental sync adds the member
        events of senders it does not otherwise carry.
        """
        user_id = request.user_id
        missing: dict[str, list[tuple[str, str]]] = {}
        for room_id, shown in timelines.items():
            state[room_id] = lazy_members(state[room_id], shown, user_id, request.state_after)
            if room_id in current:
                continue
            carried = {e.state_key for e in state[room_id] + shown if e.type == "m.room.member"}
            senders = sorted({e.sender for e in shown} - carried)
            if senders:
                missing[room_id] = [("m.room.member", sender) for sender in senders]
        # Identical reads in flight share one query: a message wakes every
        # member's sync, and each asks for its sender's member event.
        key = ("member_events", tuple(sorted((room_id, tuple(keys)) for room_id, keys in missing.items())))
        found = await self._reads_in_flight.run(key, lambda: self._reads.get_current_state_keys(missing))
        for room_id, members in found.items():
            state[room_id] = state[room_id] + list(members.values())
        return state

    async def _transaction_ids(self, request: RoomsRequest, sync_filter: Filter,
                               own_event_ids: list[str]) -> dict[str, str]:
        """
        The transaction ids of the user's events sent from this device: its
        client sees them (unsigned.transaction_id), unless its event_fields
        leave them out.
        """
        fields = sync_filter.event_fields
        if not own_event_ids or (fields and not {"unsigned", "unsigned.transaction_id"} & set(fields)):
            return {}
        return await self._events.get_txn_ids(request.user_id, request.device_id, own_event_ids)

    # -- invites, knocks, left rooms ----------------------------------------

    async def _stripped_state(self, request: RoomsRequest, room_ids: list[str]) -> dict[str, list[JsonDict]]:
        return await stripped_states(self._reads, request.user_id, request.ignored, room_ids)

    async def _left(self, request: RoomsRequest, sync_filter: Filter, room_ids: list[str]) -> JsonDict:
        if not room_ids:
            return {}
        forgotten = await self._events.get_forgotten_rooms(request.user_id)
        room_ids = [r for r in room_ids if forgotten.get(r) != request.memberships[r][1]]
        timeline_filter = sync_filter.room.timeline
        limit = timeline_filter.effective_limit()
        after = 0 if request.since is None else request.since.stream
        windows = {room_id: (after, request.memberships[room_id][1]) for room_id in room_ids}
        latest = await self._reads.get_latest_events(windows, limit=limit, event_filter=timeline_filter,
                                                     hidden_senders=sorted(request.ignored),
                                                     pdu=_needs_pdu(sync_filter))
        timelines = {room_id: latest.get(room_id, [])[-limit:] for room_id in room_ids}
        if self._visible is not None:
            timelines = await self._visible(request.user_id, timelines)
        serialize = event_serializer(sync_filter)
        left: JsonDict = {}
        for room_id in room_ids:
            events = timelines[room_id]
            left_at = request.memberships[room_id][1]
            # A left room's state is what its timeline shows: taken from the
            # timeline with `state` (empty), listed again in `state_after`.
            shown_state = {(e.type, e.state_key): e for e in events if e.state_key is not None}
            left[room_id] = {
                "timeline": {
                    "events": [serialize(e) for e in events],
                    "limited": len(latest.get(room_id, [])) > limit,
                    "prev_batch": str(StreamToken(events[0].stream_ordering - 1 if events else left_at)),
                },
                state_section(request.state_after): {
                    "events": [serialize(e) for e in shown_state.values()] if request.state_after else []},
                "account_data": {"events": []},
            }
        return left


def _with_resolved(state: dict[tuple[str, str], StoredEvent], moved: Mapping[tuple[str, str], tuple[int, StoredEvent]],
                   kept: Collection[tuple[str, str]] = ()) -> None:
    """Set in C{state} each key resolution moved after the event it holds (except the C{kept} ones)."""
    for key, (position, event) in moved.items():
        if key not in kept and (key not in state or state[key].stream_ordering < position):
            state[key] = event


async def stripped_states(reads: SyncReads, user_id: str, ignored: frozenset[str],
                          room_ids: list[str]) -> dict[str, list[JsonDict]]:
    """
    Each room's stripped state (spec: "Stripped state"), for invites and
    knocks. A room whose invite comes from an ignored user is left out
    (spec: "Ignoring users": their invites are not sent).
    """
    keys = [(t, "") for t in STRIPPED_STATE_TYPES] + [("m.room.member", user_id)]
    states = await reads.get_current_state_keys({room_id: keys for room_id in room_ids})
    # The inviter's member event too, as Synapse sends it: clients show who
    # invited them by its name and avatar.
    inviters = {room_id: [("m.room.member", own.sender)] for room_id, room_state in states.items()
                if (own := room_state.get(("m.room.member", user_id))) is not None
                and own.membership == "invite" and own.sender != user_id}
    for room_id, members in (await reads.get_current_state_keys(inviters) if inviters else {}).items():
        states[room_id].update(members)
    stripped = {}
    for room_id, room_state in states.items():
        own = room_state.get(("m.room.member", user_id))
        if own is not None and own.sender in ignored:
            continue
        stripped[room_id] = [stripped_event(e) for e in room_state.values()]
        # An invite from another server to a room this server is not in (a
        # knock on one): the room's state is what that server sent with it.
        unsigned = own.pdu.get("unsigned", {}) if own is not None else {}
        sent = unsigned.get("invite_room_state", unsigned.get("knock_room_state"))
        if own is not None and isinstance(sent, list):
            stripped[room_id] = [*(e for e in sent if e.get("type") != "m.room.member"
                                   or e.get("state_key") != user_id), stripped_event(own)]
    return stripped
