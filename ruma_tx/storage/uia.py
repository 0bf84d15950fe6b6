"""User-interactive auth sessions. Never stores a password."""
from __future__ import annotations

from ruma_tx.services.ports.accounts import UiaSession


class UiaStore:
    def __init__(self, database):
        self._db = database

    async def create_session(
        self, session_id: str, user_id: str | None, action: str, now_ms: int, expires_ts: int
    ) -> None:
        await self._db.execute(
            "INSERT INTO uia_sessions (session_id, user_id, action, created_ts, expires_ts)"
            " VALUES (%s, %s, %s, %s, %s)",
            (session_id, user_id, action, now_ms, expires_ts),
        )

    async def get_session(self, session_id: str, now_ms: int) -> UiaSession | None:
        row = await self._db.fetch_one(
            "SELECT session_id, user_id, action, completed, expires_ts FROM uia_sessions"
            " WHERE session_id = %s AND expires_ts > %s",
            (session_id, now_ms),
        )
        if row is None:
            return None
        return UiaSession(row[0], row[1], row[2], tuple(row[3]), row[4])

    async def mark_completed(self, session_id: str, stage: str) -> None:
        await self._db.execute(
            "UPDATE uia_sessions SET completed = array_append(completed, %s)"
            " WHERE session_id = %s AND NOT (%s = ANY(completed))",
            (stage, session_id, stage),
        )

    async def delete_session(self, session_id: str) -> bool:
        """Delete a session; C{False} if another request already had."""
        rows = await self._db.fetch_all(
            "DELETE FROM uia_sessions WHERE session_id = %s RETURNING 1", (session_id,)
        )
        return bool(rows)

    async def delete_expired(self, now_ms: int) -> None:
        await self._db.execute("DELETE FROM uia_sessions WHERE expires_ts <= %s", (now_ms,))
