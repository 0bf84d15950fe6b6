"""
What sliding sync reads and keeps beyond /sync's reads: rooms' recency
and the facts list filters ask, and connections' state. SQL only; the rules
live in ruma_tx.matrix.sliding_sync.
"""
from __future__ import annotations

from typing import Sequence

import orjson

from ruma_tx.matrix.sliding_sync import BUMP_EVENT_TYPES, RoomFacts
from ruma_tx.storage.database import Database, Transaction


class SlidingSyncStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_room_recency(self, room_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """
        Per room, the positions of its last event and of its last event of a
        bumping type (C{0} when it has none), each by one backward index scan.
        """
        if not room_ids:
            return {}
        rows = await self._db.fetch_all(
            "SELECT r.room_id,"
            " (SELECT e.stream_ordering FROM events e WHERE e.room_id = r.room_id"
            "   ORDER BY e.stream_ordering DESC LIMIT 1),"
            " (SELECT e.stream_ordering FROM events e WHERE e.room_id = r.room_id AND e.type = ANY(%s)"
            "   ORDER BY e.stream_ordering DESC LIMIT 1)"
            " FROM unnest(%s::text[]) AS r(room_id)",
            (sorted(BUMP_EVENT_TYPES), list(room_ids)),
        )
        return {room_id: (last or 0, bump or 0) for room_id, last, bump in rows}

    async def get_room_facts(self, room_ids: Sequence[str]) -> dict[str, RoomFacts]:
        """Per room, its type (from its create event) and whether it is encrypted."""
        if not room_ids:
            return {}
        rows = await self._db.fetch_all(
            "SELECT r.room_id,"
            " (SELECT e.pdu::jsonb -> 'content' ->> 'type' FROM current_state c"
            "   JOIN events e ON e.event_id = c.event_id"
            "   WHERE c.room_id = r.room_id AND c.type = 'm.room.create' AND c.state_key = ''),"
            " EXISTS (SELECT 1 FROM current_state c WHERE c.room_id = r.room_id"
            "   AND c.type = 'm.room.encryption' AND c.state_key = '')"
            " FROM unnest(%s::text[]) AS r(room_id)",
            (list(room_ids),),
        )
        return {room_id: RoomFacts(room_type, encrypted) for room_id, room_type, encrypted in rows}

    async def get_rooms_ever_joined(self, user_id: str, room_ids: Sequence[str]) -> set[str]:
        """Of C{room_ids}, those the user was ever joined to."""
        if not room_ids:
            return set()
        rows = await self._db.fetch_all(
            "SELECT DISTINCT room_id FROM events WHERE type = 'm.room.member' AND state_key = %s"
            " AND membership = 'join' AND room_id = ANY(%s)",
            (user_id, list(room_ids)),
        )
        return {room_id for (room_id,) in rows}

    # -- connections -------------------------------------------------------

    async def load_connection(self, user_id: str, device_id: str, conn_id: str) -> object | None:
        row = await self._db.fetch_one(
            "SELECT state FROM sliding_sync_connections WHERE user_id = %s AND device_id = %s AND conn_id = %s",
            (user_id, device_id, conn_id),
        )
        return None if row is None else orjson.loads(row[0])

    async def save_connections(self, rows: Sequence[tuple[str, str, str, object]], now_ms: int) -> None:
        """
        Store connections' states (C{(user_id, device_id, conn_id, state)}).
        One whose device has been deleted meanwhile is skipped.
        """
        async def save(txn: Transaction) -> None:
            for user_id, device_id, conn_id, state in rows:
                await txn.execute(
                    "INSERT INTO sliding_sync_connections (user_id, device_id, conn_id, state, updated_ts)"
                    " SELECT %(user)s, %(device)s, %(conn)s, %(state)s, %(now)s"
                    " WHERE EXISTS (SELECT 1 FROM devices WHERE user_id = %(user)s AND device_id = %(device)s)"
                    " ON CONFLICT (user_id, device_id, conn_id)"
                    " DO UPDATE SET state = EXCLUDED.state, updated_ts = EXCLUDED.updated_ts",
                    {"user": user_id, "device": device_id, "conn": conn_id,
                     "state": orjson.dumps(state).decode("utf-8"), "now": now_ms},
                )

        if rows:
            await self._db.transaction("save_sliding_sync_connections", save)

    async def delete_connections_before(self, before_ms: int) -> None:
        """Forget connections unused since C{before_ms}."""
        await self._db.execute("DELETE FROM sliding_sync_connections WHERE updated_ts < %s", (before_ms,))
