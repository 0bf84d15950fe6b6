"""
Reads of the deprecated C{GET /events} stream and C{GET /initialSync}. SQL
only; the rules are in L{ruma_tx.services.legacy_events} and
L{ruma_tx.services.initial_sync}.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.storage.database import Database
from ruma_tx.storage.event_rows import event_columns, stored_event


class LegacyEventStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_events_after(self, windows: Mapping[str, tuple[int, int]], *, limit: int,
                               hidden_senders: Sequence[str] = ()) -> list[StoredEvent]:
        """
        The first C{limit} events of all the rooms together, each room in
        its window C{(after, upto]}, oldest first (one stream across rooms).

        @param hidden_senders: senders whose non-state events are left out
            (ignored users).
        """
        if not windows:
            return []
        room_ids = list(windows)
        rows = await self._db.fetch_all(
            f"SELECT {event_columns('e')} FROM unnest(%s::text[], %s::bigint[], %s::bigint[])"
            " AS w(room_id, after, upto)"
            " JOIN events e ON e.room_id = w.room_id"
            "  AND e.stream_ordering > w.after AND e.stream_ordering <= w.upto"
            " WHERE e.state_key IS NOT NULL OR NOT (e.sender = ANY(%s))"
            " ORDER BY e.stream_ordering LIMIT %s",
            [room_ids, [windows[r][0] for r in room_ids], [windows[r][1] for r in room_ids],
             list(hidden_senders), limit],
        )
        return [stored_event(row) for row in rows]

    async def get_published_rooms(self, room_ids: Sequence[str]) -> set[str]:
        """Those of the rooms published in the room directory."""
        if not room_ids:
            return set()
        rows = await self._db.fetch_all(
            "SELECT room_id FROM rooms WHERE room_id = ANY(%s) AND published", (list(room_ids),))
        return {row[0] for row in rows}
