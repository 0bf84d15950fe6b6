"""
State resolution v2 (rooms/v2.md "State resolution", used by room versions
2 to 11) and v2.1 (rooms/v12.md, MSC4297), as pure functions; room version
1 is resolved by L{ruma_tx.matrix.state_res_v1}.

The caller gives the state sets to merge as C{(type, state_key) -> event
ID} maps, and every event the algorithm may look at (the events of the
state sets and their auth chains) as C{event ID -> PDU}. Events missing
from that map are left out of the resolution, as Synapse does.

Where the spec is open to reading, this follows Synapse, so that servers
resolve a room to the same state:
  - the auth chain of a state set includes the state events themselves;
  - the reverse topological power ordering (and the auth chain enlarging
    the power events) follows only the C{auth_events} edges between events
    of the full conflicted set;
  - events are authorised by the state-dependent auth rules only: whether
    an event cites the right C{auth_events} was checked when it was
    received, and the resolved state usually differs from what it cited.
"""
from __future__ import annotations

import heapq
from typing import AbstractSet, Collection, Iterable, Mapping, Sequence

from ruma_tx.matrix.auth_rules import (
    JOIN_RULES,
    MEMBER,
    AuthError,
    auth_types_for_event,
    check_event_auth,
)
from ruma_tx.matrix.power_levels import CREATE, POWER_LEVELS, event_content, user_power_level
from ruma_tx.matrix.room_versions import RoomVersion, as_room_version, auth_event_ids
from ruma_tx.matrix.state_res_v1 import resolve_state_v1
from ruma_tx.matrix.types import JsonDict, StateIds, StateKey


def resolve_state(
    room_version: RoomVersion | str,
    state_sets: Sequence[StateIds],
    event_map: Mapping[str, JsonDict],
    *,
    auth_chains: Sequence[AbstractSet[str]] | None = None,
    rejected: AbstractSet[str] = frozenset(),
) -> dict[StateKey, str]:
    """
    Resolve several states of a room into one.

    @param room_version: The room version: v2.1 for version 12, v2 for 2
        to 11, v1 for 1 (which reads neither C{auth_chains} nor C{rejected}).
    @param state_sets: The states to merge, e.g. the states after each of
        an event's C{prev_events}.
    @param event_map: Event ID -> PDU for the events of the state sets and
        of their auth chains (a PDU need not carry its C{event_id}).
    @param auth_chains: For each state set, in order, the IDs of its full
        auth chain (the auth chains of its events plus the events
        themselves), if the caller has them indexed; computed from
        C{event_map} otherwise.
    @param rejected: IDs of events that were rejected; they are not used as
        auth events for a key the partially resolved state lacks.
    @return: The resolved state, C{(type, state_key) -> event ID}.
    """
    version = as_room_version(room_version)
    if not version.state_res_v2:
        return resolve_state_v1(version, state_sets, event_map)
    events = _EventGraph(event_map, version)
    unconflicted, conflicted = _separate(state_sets)
    if not conflicted:
        return unconflicted

    if auth_chains is None:
        auth_chains = [events.auth_chain(state.values()) for state in state_sets]
    auth_difference = set().union(*auth_chains).difference(
        set(auth_chains[0]).intersection(*auth_chains[1:])
    )
    full_conflicted = conflicted | auth_difference
    if version.state_res_v2_1:
        full_conflicted |= events.conflicted_subgraph(conflicted)
    full_conflicted = {eid for eid in full_conflicted if eid in event_map}

    power_events = [eid for eid in full_conflicted if _is_power_event(event_map[eid])]
    sorted_power = events.reverse_topological_power_order(power_events, full_conflicted)
    base: StateIds = {} if version.state_res_v2_1 else unconflicted
    resolved = events.iterative_auth_checks(sorted_power, base, rejected)

    picked = set(sorted_power)
    others = [eid for eid in full_conflicted if eid not in picked]
    ordered = events.mainline_order(others, resolved.get(POWER_LEVELS))
    resolved = events.iterative_auth_checks(ordered, resolved, rejected)

    resolved.update(unconflicted)
    return resolved


def _separate(state_sets: Sequence[StateIds]) -> tuple[dict[StateKey, str], set[str]]:
    """
    @return: The unconflicted state map (keys every state set holds with the
        same event) and the conflicted state set (the event IDs of every
        other key, including keys some state sets lack).
    """
    unconflicted: dict[StateKey, str] = {}
    conflicted: set[str] = set()
    keys = {key for state in state_sets for key in state}
    for key in keys:
        values = [state.get(key) for state in state_sets]
        first = values[0]
        if first is not None and all(v == first for v in values):
            unconflicted[key] = first
        else:
            conflicted.update(v for v in values if v is not None)
    return unconflicted, conflicted


def _is_power_event(event: JsonDict) -> bool:
    """
    @return: Whether the event may take a right away from someone: power
        levels, join rules, or a kick or ban (a leave or ban sent by someone
        else than the target).
    """
    event_type = event.get("type")
    state_key = event.get("state_key")
    if (event_type, state_key) in (POWER_LEVELS, JOIN_RULES):
        return True
    if event_type == MEMBER and isinstance(state_key, str):
        membership = event_content(event).get("membership")
        return membership in ("leave", "ban") and event.get("sender") != state_key
    return False


def _origin_server_ts(event: JsonDict) -> int:
    """@return: The event's C{origin_server_ts}, 0 when it has none."""
    ts = event.get("origin_server_ts")
    return ts if type(ts) is int else 0


class _EventGraph:
    """
    The events of one resolution and the walks over their C{auth_events}.

    @ivar _events: Event ID -> PDU, as the caller gave them.
    @ivar _version: The room version.
    @ivar _auth_ids: L{auth_event_ids} already computed, as the walks
        visit the same events many times; it lives as long as one
        resolution.
    """

    def __init__(self, events: Mapping[str, JsonDict], version: RoomVersion) -> None:
        self._events = events
        self._version = version
        self._auth_ids: dict[str, list[str]] = {}

    def pdu(self, event_id: str) -> JsonDict:
        """
        @return: The event's PDU with its C{event_id}, as the auth rules
            read it.
        """
        pdu = self._events[event_id]
        return pdu if pdu.get("event_id") == event_id else {**pdu, "event_id": event_id}

    def auth_event_ids(self, event_id: str) -> list[str]:
        """
        @return: The event's auth events that are in the event map; in room
            version 12 the create event is implied by the room ID (MSC4291)
            and added for every other event.
        """
        known = self._auth_ids.get(event_id)
        if known is not None:
            return known
        ids = auth_event_ids(self._events[event_id], self._version)
        known = self._auth_ids[event_id] = [a for a in ids if a in self._events]
        return known

    def _auth_event_with_key(self, event_id: str, key: StateKey) -> str | None:
        """@return: The event's auth event holding C{key}, if any."""
        for auth_id in self.auth_event_ids(event_id):
            auth = self._events[auth_id]
            if (auth.get("type"), auth.get("state_key")) == key:
                return auth_id
        return None

    def auth_chain(self, event_ids: Iterable[str]) -> set[str]:
        """
        @return: The given events (those in the event map) and every event
            reachable from them through C{auth_events}.
        """
        seen: set[str] = set()
        todo = [eid for eid in event_ids if eid in self._events]
        while todo:
            event_id = todo.pop()
            if event_id in seen:
                continue
            seen.add(event_id)
            todo.extend(self.auth_event_ids(event_id))
        return seen

    def conflicted_subgraph(self, conflicted: Collection[str]) -> set[str]:
        """
        The events on some C{auth_events} path from one conflicted event to
        another, endpoints included (v2.1): the conflicted events' auth
        chains, kept where a conflicted event is reachable from them.
        """
        ancestors = self.auth_chain(conflicted)
        cited_by: dict[str, list[str]] = {}
        for event_id in ancestors:
            for auth_id in self.auth_event_ids(event_id):
                cited_by.setdefault(auth_id, []).append(event_id)
        subgraph: set[str] = set()
        todo = [eid for eid in conflicted if eid in ancestors]
        while todo:
            event_id = todo.pop()
            if event_id not in subgraph:
                subgraph.add(event_id)
                todo.extend(cited_by.get(event_id, ()))
        return subgraph

    def sender_power_level(self, event_id: str) -> int | float:
        """
        @return: The sender's level by the event's own auth events: its
            power levels and the create event (100 for the creator without
            power levels; infinite for a v12 creator).
        """
        state: dict[StateKey, JsonDict] = {}
        for key in (CREATE, POWER_LEVELS):
            auth_id = self._auth_event_with_key(event_id, key)
            if auth_id is not None:
                state[key] = self._events[auth_id]
        return user_power_level(self._events[event_id].get("sender", ""), state, self._version)

    def reverse_topological_power_order(
        self, power_events: Iterable[str], full_conflicted: AbstractSet[str]
    ) -> list[str]:
        """
        The power events and the events of their auth chains in the full
        conflicted set, auth events first (Kahn's algorithm); among the
        events ready at each step: higher sender level, then earlier
        C{origin_server_ts}, then smaller event ID.
        """
        cites: dict[str, set[str]] = {}
        todo = list(power_events)
        while todo:
            event_id = todo.pop()
            if event_id in cites:
                continue
            edges = {a for a in self.auth_event_ids(event_id) if a in full_conflicted}
            cites[event_id] = edges
            todo.extend(edges)

        cited_by: dict[str, list[str]] = {eid: [] for eid in cites}
        for event_id, edges in cites.items():
            for auth_id in edges:
                cited_by[auth_id].append(event_id)

        def order(event_id: str) -> tuple[int | float, int, str]:
            level = self.sender_power_level(event_id)
            return -level, _origin_server_ts(self._events[event_id]), event_id

        waiting = {eid: len(edges) for eid, edges in cites.items()}
        ready = [(order(eid), eid) for eid, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        result: list[str] = []
        while ready:
            _key, event_id = heapq.heappop(ready)
            result.append(event_id)
            for child in cited_by[event_id]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, (order(child), child))
        return result

    def iterative_auth_checks(
        self, event_ids: Sequence[str], base: StateIds, rejected: AbstractSet[str]
    ) -> dict[StateKey, str]:
        """
        Apply the events in order onto C{base}, each one only if the auth
        rules allow it against the state so far. A key the rules need that
        the state lacks is taken from the event's own auth events, unless
        that auth event was rejected.

        @return: The new state.
        """
        state = dict(base)
        for event_id in event_ids:
            event = self.pdu(event_id)
            state_key = event.get("state_key")
            event_type = event.get("type")
            if not isinstance(state_key, str) or not isinstance(event_type, str):
                continue
            auth_state: dict[StateKey, JsonDict] = {}
            for auth_id in self.auth_event_ids(event_id):
                auth = self._events[auth_id]
                auth_type, auth_key = auth.get("type"), auth.get("state_key")
                if auth_id not in rejected and isinstance(auth_type, str) and isinstance(auth_key, str):
                    auth_state[(auth_type, auth_key)] = self.pdu(auth_id)
            needed = auth_types_for_event(
                event_type, state_key, event.get("sender", ""), event_content(event),
                self._version,
            )
            for key in needed:
                if key in state and state[key] in self._events:
                    auth_state[key] = self.pdu(state[key])
            # The cited auth_events were checked on receipt; here only the
            # rules that depend on the state apply.
            unchecked = {k: v for k, v in event.items() if k != "auth_events"}
            try:
                check_event_auth(unchecked, auth_state, self._version)
            except AuthError:
                continue
            state[(event_type, state_key)] = event_id
        return state

    def mainline_order(self, event_ids: Iterable[str], power_levels_id: str | None) -> list[str]:
        """
        Order events by the mainline of the resolved power levels: events
        whose closest power levels ancestor is earlier on the mainline (or
        off it) first, then by C{origin_server_ts}, then by event ID.
        """
        position: dict[str, int] = {}
        current = power_levels_id
        while current is not None and current in self._events and current not in position:
            position[current] = len(position)
            current = self._auth_event_with_key(current, POWER_LEVELS)

        def mainline_position(event_id: str) -> int | float:
            seen: set[str] = set()
            current = self._auth_event_with_key(event_id, POWER_LEVELS)
            while current is not None and current not in seen:
                if current in position:
                    return position[current]
                seen.add(current)
                current = self._auth_event_with_key(current, POWER_LEVELS)
            return float("inf")

        def order(event_id: str) -> tuple[int | float, int, str]:
            return -mainline_position(event_id), _origin_server_ts(self._events[event_id]), event_id

        return sorted(event_ids, key=order)
