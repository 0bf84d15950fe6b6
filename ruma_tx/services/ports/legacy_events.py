"""
Ports of the deprecated event stream and initial sync (implemented by
C{ruma_tx.storage.legacy_events.LegacyEventStore}).
"""
from __future__ import annotations

from typing import Mapping, Protocol, Sequence

from ruma_tx.matrix.events import StoredEvent


class LegacyEventReads(Protocol):
    """What C{GET /events} and C{GET /initialSync} read beyond /sync's reads."""

    async def get_events_after(self, windows: Mapping[str, tuple[int, int]], *, limit: int,
                               hidden_senders: Sequence[str] = ()) -> list[StoredEvent]: ...
    async def get_published_rooms(self, room_ids: Sequence[str]) -> set[str]: ...
