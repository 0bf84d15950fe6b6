"""The erased flag of accounts (schema 035). SQL only."""
from __future__ import annotations

from ruma_tx.storage.database import Database


class ErasureStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def any_erased(self) -> bool:
        row = await self._db.fetch_one("SELECT EXISTS (SELECT 1 FROM users WHERE erased)")
        return bool(row and row[0])

    async def get_erased(self, user_ids: list[str]) -> set[str]:
        rows = await self._db.fetch_all("SELECT user_id FROM users WHERE user_id = ANY(%s) AND erased",
                                        (user_ids,))
        return {row[0] for row in rows}

    async def set_erased(self, user_id: str, erased: bool) -> None:
        await self._db.execute("UPDATE users SET erased = %s WHERE user_id = %s", (erased, user_id))
