"""
Ports: reading rooms' history over federation, both ways. Implemented by
C{ruma_tx.storage.federation_reads.FederationReadStore}.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.ports.events import NewEvent


@dataclass(frozen=True)
class DagEvent:
    """An event of a room's DAG as stored, with its stream position (see L{ruma_tx.matrix.stream_token})."""

    event_id: str
    position: int
    pdu: JsonDict


class ServerHistory(Protocol):
    """What answering other servers' reads needs (L{ruma_tx.services.federation_reads})."""

    async def server_in_room(self, room_id: str, server_name: str) -> bool:
        """Whether one of the server's users is joined to the room now."""

    async def get_server_timelines(self, room_id: str, server_name: str
                                   ) -> tuple[list[tuple[int, str, str | None]], list[tuple[int, str | None]]]:
        """
        C{(position, user_id, membership)} of the member events of the
        server's users in the room, and C{(position, history_visibility)} of
        its history visibility events, each in position order.
        """

    async def walk_prev_events(self, room_id: str, start: Sequence[str], *, depth_span: int,
                               stop: Sequence[str] = ()) -> dict[str, DagEvent]:
        """
        The events of the room among C{start} and those they reach through
        C{prev_events}, by id: not past an event of C{stop} (left out) nor
        past C{depth_span} below the deepest of C{start}.
        """


class BackfillEvents(Protocol):
    """What fetching other servers' history needs (L{ruma_tx.services.federation_backfill})."""

    async def get_oldest_events(self, room_id: str, limit: int) -> list[DagEvent]:
        """The room's C{limit} oldest events in the line, oldest first."""

    async def persist_backfilled(self, room_id: str, events: Sequence[NewEvent]) -> int:
        """
        Put events of the room's past into the line, below every event in
        it, C{events} newest first: new ones are stored, outliers move in,
        those in it already (or soft-failed) are left. The current state
        does not change. How many were added or moved in.
        """
