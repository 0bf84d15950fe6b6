"""
State resolution v1 (rooms/v1.md "State resolution"), used by room
version 1 only; L{ruma_tx.matrix.state_res.resolve_state} dispatches here.

The spec resolves conflicted power levels, then join rules, then
memberships, then everything else, onto the unconflicted state. Where it
is open to reading, this follows Synapse, so that servers agree:
  - a key is conflicted only when state sets hold different events for
    it; a key some state sets lack is not (unlike v2);
  - each conflicted key is resolved on its own, in the order of the
    spec's passes; the keys of one pass (e.g. every membership) are
    checked against the state the previous passes left;
  - "allowed by the authorisation rules for a room in state R" uses the
    state-dependent rules only (whether an event cites the right
    C{auth_events} was checked when it was received).
"""
from __future__ import annotations

import hashlib
from typing import Mapping, Sequence

from ruma_tx.matrix.auth_rules import JOIN_RULES, MEMBER, AuthError, check_event_auth
from ruma_tx.matrix.power_levels import POWER_LEVELS
from ruma_tx.matrix.room_versions import RoomVersion
from ruma_tx.matrix.types import JsonDict, StateIds, StateKey


def resolve_state_v1(
    version: RoomVersion, state_sets: Sequence[StateIds], event_map: Mapping[str, JsonDict],
) -> dict[StateKey, str]:
    """
    Resolve several states of a v1 room into one.

    @param state_sets: The states to merge.
    @param event_map: Event ID -> PDU for (at least) the conflicted events
        and the unconflicted events the auth rules read. Conflicted events
        missing from it are left out, as Synapse does.
    @return: The resolved state, C{(type, state_key) -> event ID}.
    """
    candidates: dict[StateKey, set[str]] = {}
    for state in state_sets:
        for key, event_id in state.items():
            candidates.setdefault(key, set()).add(event_id)
    resolved = {key: next(iter(ids)) for key, ids in candidates.items() if len(ids) == 1}
    conflicted = {key: [eid for eid in ids if eid in event_map]
                  for key, ids in candidates.items() if len(ids) > 1}
    conflicted = {key: ids for key, ids in conflicted.items() if ids}

    def of_type(event_type: str) -> list[StateKey]:
        return sorted(key for key in conflicted if key[0] == event_type)

    power_levels = [POWER_LEVELS] if POWER_LEVELS in conflicted else []
    join_rules, members = of_type(JOIN_RULES[0]), of_type(MEMBER)
    others = sorted(conflicted.keys() - {*power_levels, *join_rules, *members})
    for keys, resolve in ((power_levels, _resolve_auth_key), (join_rules, _resolve_auth_key),
                          (members, _resolve_auth_key), (others, _resolve_other_key)):
        # Each pass reads the state as the previous passes left it.
        before = dict(resolved)
        for key in keys:
            resolved[key] = resolve(version, conflicted[key], before, event_map)
    return resolved


def _ordered(event_ids: list[str], event_map: Mapping[str, JsonDict]) -> list[str]:
    """The events by descending C{depth}, then ascending C{sha1(event_id)}."""
    def key(event_id: str) -> tuple[int, str]:
        depth = event_map[event_id].get("depth")
        return -(depth if type(depth) is int else 0), hashlib.sha1(event_id.encode("utf-8")).hexdigest()
    return sorted(event_ids, key=key)


def _allowed(version: RoomVersion, event_id: str, state: Mapping[StateKey, str],
             event_map: Mapping[str, JsonDict]) -> bool:
    """Whether the auth rules allow the event in the room state C{state}."""
    auth_state = {key: {**event_map[eid], "event_id": eid}
                  for key, eid in state.items() if eid in event_map}
    event = {k: v for k, v in event_map[event_id].items() if k != "auth_events"}
    try:
        check_event_auth({**event, "event_id": event_id}, auth_state, version)
    except AuthError:
        return False
    return True


def _resolve_auth_key(version: RoomVersion, event_ids: list[str],
                      resolved: Mapping[StateKey, str], event_map: Mapping[str, JsonDict]) -> str:
    """
    A conflicted key of power levels, join rules or a membership: by
    ascending depth then descending sha1, the first event, then each next
    one while the auth rules allow it on top of the previous one.
    """
    ordered = list(reversed(_ordered(event_ids, event_map)))
    state = dict(resolved)
    winner = ordered[0]
    for event_id in ordered[1:]:
        state[_key_of(event_map[winner])] = winner
        if not _allowed(version, event_id, state, event_map):
            break
        winner = event_id
    return winner


def _resolve_other_key(version: RoomVersion, event_ids: list[str],
                       resolved: Mapping[StateKey, str], event_map: Mapping[str, JsonDict]) -> str:
    """
    Any other conflicted key: the event of highest depth, then lowest
    sha1, that the auth rules allow in the resolved state; if none is
    allowed, the last one tried (as Synapse).
    """
    ordered = _ordered(event_ids, event_map)
    for event_id in ordered:
        if _allowed(version, event_id, resolved, event_map):
            return event_id
    return ordered[-1]


def _key_of(event: JsonDict) -> StateKey:
    """@return: The event's C{(type, state_key)}."""
    return event["type"], event["state_key"]
