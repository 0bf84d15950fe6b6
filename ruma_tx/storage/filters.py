"""Client-uploaded filters. SQL only."""
from __future__ import annotations

from ruma_tx.storage.database import Database


class FilterStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def add_filter(self, user_id: str, filter_json: str) -> str:
        row = await self._db.fetch_one(
            "INSERT INTO user_filters (user_id, filter_json) VALUES (%s, %s) RETURNING filter_id",
            (user_id, filter_json),
        )
        assert row is not None  # INSERT ... RETURNING: always one row
        return str(row[0])

    async def get_filter(self, user_id: str, filter_id: str) -> str | None:
        if not filter_id.isdigit() or len(filter_id) > 18:
            return None
        row = await self._db.fetch_one(
            "SELECT filter_json FROM user_filters WHERE user_id = %s AND filter_id = %s",
            (user_id, int(filter_id)),
        )
        return row[0] if row else None
