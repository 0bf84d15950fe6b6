"""User-interactive auth sessions. Never stores a password (only a registration's bcrypt hash)."""
from __future__ import annotations

from ruma_tx.services.ports.accounts import UiaSession
from ruma_tx.storage.database import Database

_COLUMNS = ("session_id, user_id, action, completed, expires_ts, method, path, params,"
            " password_hash, registered_user_id, claimed")


def _session(row: tuple) -> UiaSession:
    return UiaSession(row[0], row[1], row[2], tuple(row[3]), row[4], row[5], row[6], row[7],
                      row[8], row[9], row[10])


class UiaStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def create_session(
        self, session_id: str, user_id: str | None, action: str, now_ms: int, expires_ts: int,
        *, method: str | None = None, path: str | None = None, params: str | None = None,
    ) -> None:
        await self._db.execute(
            "INSERT INTO uia_sessions (session_id, user_id, action, created_ts, expires_ts,"
            " method, path, params) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (session_id, user_id, action, now_ms, expires_ts, method, path, params),
        )

    async def get_session(self, session_id: str, now_ms: int) -> UiaSession | None:
        row = await self._db.fetch_one(
            f"SELECT {_COLUMNS} FROM uia_sessions WHERE session_id = %s AND expires_ts > %s",
            (session_id, now_ms),
        )
        return None if row is None else _session(row)

    async def mark_completed(self, session_id: str, stage: str) -> None:
        await self._db.execute(
            "UPDATE uia_sessions SET completed = array_append(completed, %s)"
            " WHERE session_id = %s AND NOT (%s = ANY(completed))",
            (stage, session_id, stage),
        )

    async def set_params(self, session_id: str, params: str) -> None:
        """Give a session started without parameters those of a later request."""
        await self._db.execute(
            "UPDATE uia_sessions SET params = %s WHERE session_id = %s AND params = '{}'",
            (params, session_id),
        )

    async def set_password_hash(self, session_id: str, password_hash: str) -> None:
        """Remember a registration's password hash, unless one already is."""
        await self._db.execute(
            "UPDATE uia_sessions SET password_hash = %s"
            " WHERE session_id = %s AND password_hash IS NULL",
            (password_hash, session_id),
        )

    async def claim_session(self, session_id: str) -> UiaSession | None:
        """Mark a session as being completed; C{None} if another request already had."""
        row = await self._db.fetch_one(
            f"UPDATE uia_sessions SET claimed = TRUE WHERE session_id = %s AND NOT claimed"
            f" RETURNING {_COLUMNS}",
            (session_id,),
        )
        return None if row is None else _session(row)

    async def release_session(self, session_id: str) -> None:
        """Undo L{claim_session} after the request failed."""
        await self._db.execute(
            "UPDATE uia_sessions SET claimed = FALSE WHERE session_id = %s", (session_id,)
        )

    async def set_registered_user(self, session_id: str, user_id: str) -> None:
        await self._db.execute(
            "UPDATE uia_sessions SET registered_user_id = %s WHERE session_id = %s",
            (user_id, session_id),
        )

    async def delete_session(self, session_id: str) -> bool:
        """Delete a session; C{False} if another request already had."""
        rows = await self._db.fetch_all(
            "DELETE FROM uia_sessions WHERE session_id = %s RETURNING 1", (session_id,)
        )
        return bool(rows)

    async def delete_expired(self, now_ms: int) -> None:
        await self._db.execute("DELETE FROM uia_sessions WHERE expires_ts <= %s", (now_ms,))
