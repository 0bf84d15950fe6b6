"""
Ports: the DAG of rooms shared with other servers (schema 026), as the
services see it. Implemented by C{ruma_tx.storage.room_dag.DagStore}.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence

from ruma_tx.matrix.types import JsonDict

#: C{(type, state_key)}.
StateKey = tuple[str, str]

#: A room state by event id.
StateIds = Mapping[StateKey, str]

#: Where a known event stands (L{DagEvents.get_statuses}).
ACCEPTED = "accepted"        # in the line: shown to clients
OUTLIER = "outlier"          # known as the auth or state of others only
SOFT_FAILED = "soft_failed"  # in the DAG, hidden from clients
REJECTED = "rejected"        # failed the auth rules: used for nothing


@dataclass(frozen=True)
class StateAfter:
    """
    The state after an event, as stored: the state after C{base} with
    C{changes} (C{None} removes a key); with C{base} C{None}, C{changes} is
    the whole state.
    """

    base: str | None
    changes: Mapping[StateKey, str | None]


@dataclass(frozen=True)
class DagUpdate:
    """
    What storing an event of a federated room records besides the event.

    @ivar state_after: its state snapshot.
    @ivar replaces: the forward extremities it replaces (its prev_events
        that were ones); it becomes one itself.
    @ivar current_state: the change to the room's current state, when it is
        not just the event's own key (state resolution moved others);
        C{None}: the event's own key, as in a local room.
    """

    state_after: StateAfter
    replaces: tuple[str, ...]
    current_state: Mapping[StateKey, str | None] | None = None


@dataclass(frozen=True)
class Outlier:
    """An event stored outside the line (no stream position clients see)."""

    event_id: str
    pdu: JsonDict
    pdu_json: str


class DagEvents(Protocol):
    """What the services need of the rooms' DAG (C{ruma_tx.storage.room_dag.DagStore})."""

    async def mark_federated(self, room_id: str) -> bool: ...
    async def get_extremities(self, room_id: str) -> list[tuple[str, int]]: ...
    async def get_statuses(self, event_ids: Sequence[str]) -> dict[str, str]: ...
    async def get_pdus(self, event_ids: Sequence[str]) -> dict[str, JsonDict]: ...
    async def get_auth_chain_pdus(self, event_ids: Sequence[str]) -> dict[str, JsonDict]: ...
    async def get_state_after(self, event_ids: Sequence[str]) -> dict[str, dict[StateKey, str]]: ...
    async def get_current_state_ids(self, room_id: str) -> dict[StateKey, str]: ...
    async def store_outliers(self, room_id: str, events: Sequence[Outlier]) -> None: ...
    async def store_rejected(self, room_id: str, event_id: str, pdu_json: str, reason: str) -> None: ...
    async def store_soft_failed(self, event: Outlier, room_id: str, state_after: StateAfter) -> None: ...
