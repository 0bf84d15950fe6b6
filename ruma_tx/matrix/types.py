"""
Type names shared by the pure core.
"""
from __future__ import annotations

from typing import Any, Mapping, TypeAlias

#: A JSON object as decoded by C{json}: events, contents, request bodies.
JsonDict: TypeAlias = dict[str, Any]

#: Room state: C{(type, state_key) -> event} (events as PDU dicts).
StateMap: TypeAlias = Mapping[tuple[str, str], JsonDict]
