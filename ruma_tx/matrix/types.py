"""
Type names shared by the pure core.
"""
from __future__ import annotations

from typing import Any, Mapping, TypeAlias

#: A JSON object as decoded by C{json}: events, contents, request bodies.
JsonDict: TypeAlias = dict[str, Any]

#: Room state: C{(type, state_key) -> event} (events as PDU dicts).
StateMap: TypeAlias = Mapping[tuple[str, str], JsonDict]

#: C{(event type, state key)}.
StateKey: TypeAlias = tuple[str, str]

#: A room state by event ID: C{(type, state_key) -> event ID}.
StateIds: TypeAlias = Mapping[StateKey, str]
