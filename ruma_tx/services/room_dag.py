"""
The state of rooms shared with other servers, read from their DAG: the
state after known events (snapshots, cached) and state resolution of
several of them. Local sends and received events both build on it.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from ruma_tx.matrix.room_versions import RoomVersion
from ruma_tx.matrix.state_res import resolve_state
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.ports.room_dag import DagEvents, DagUpdate, StateAfter, StateIds, StateKey

#: Spec (pdu_v4): at most 20 prev_events; like Synapse, a local event
#: names at most 10 of the room's forward extremities, the deepest.
MAX_PREV_EVENTS = 10


def state_changes(before: StateIds, after: StateIds) -> dict[StateKey, str | None]:
    """What turns C{before} into C{after} (C{None}: a key removed)."""
    changes: dict[StateKey, str | None] = {key: None for key in before if key not in after}
    changes.update({key: event_id for key, event_id in after.items() if before.get(key) != event_id})
    return changes


def without_auth_events(pdu: JsonDict) -> JsonDict:
    """An event to check against a state rather than against the auth events it cites."""
    return {key: value for key, value in pdu.items() if key != "auth_events"}


class RoomDag:
    """
    @param store: the rooms' DAG.
    @param cache_size: how many events' states after are kept (they never
        change, so the cache needs no invalidation).
    """

    def __init__(self, *, store: DagEvents, cache_size: int = 2_000) -> None:
        self._store = store
        self._states: LRUCache[str, dict[StateKey, str]] = LRUCache(cache_size)

    async def state_after(self, event_ids: Sequence[str]) -> dict[str, dict[StateKey, str]]:
        """The state after each of those events that has a snapshot."""
        found = {event_id: state for event_id in event_ids
                 if (state := self._states.get(event_id)) is not None}
        missing = [event_id for event_id in event_ids if event_id not in found]
        if missing:
            for event_id, state in (await self._store.get_state_after(missing)).items():
                self._states[event_id] = found[event_id] = state
        return found

    async def resolve(self, room_version: RoomVersion, states: Sequence[StateIds],
                      unstored: Mapping[str, JsonDict] | None = None) -> dict[StateKey, str]:
        """
        Several states of a room as one (state resolution, reading events
        only on a conflict).

        @param unstored: events of those states not stored yet (an event
            being accepted), by id.
        """
        if not states:
            return {}
        first = states[0]
        if all(state == first for state in states[1:]):
            return dict(first)
        event_ids = {event_id for state in states for event_id in state.values()}
        event_map = {**(unstored or {}), **await self._store.get_auth_chain_pdus(sorted(event_ids))}
        return resolve_state(room_version, states, event_map)

    async def state_before(self, room_version: RoomVersion,
                           prev_events: Sequence[str]) -> dict[StateKey, str] | None:
        """The state before an event with these prev events; C{None} if one has no snapshot."""
        states = await self.state_after(prev_events)
        if any(event_id not in states for event_id in prev_events):
            return None
        return await self.resolve(room_version, [states[event_id] for event_id in prev_events])

    async def local_update(self, room_id: str, prev_events: Sequence[str], event_id: str,
                           key: StateKey | None) -> DagUpdate:
        """
        What a local event on C{prev_events} (the room's extremities, whose
        resolved state is its current state) records in the DAG.
        """
        own: dict[StateKey, str | None] = {key: event_id} if key is not None else {}
        if len(prev_events) == 1:
            return DagUpdate(StateAfter(prev_events[0], own), tuple(prev_events))
        base = prev_events[0]
        base_state = (await self.state_after([base]))[base]
        current = await self._store.get_current_state_ids(room_id)
        return DagUpdate(StateAfter(base, {**state_changes(base_state, current), **own}), tuple(prev_events))

    def remember(self, event_id: str, state: Mapping[StateKey, str]) -> None:
        """The state after an event just stored (so that the next one reads no snapshot)."""
        self._states[event_id] = dict(state)
