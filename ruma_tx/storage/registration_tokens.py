"""
Registration tokens and the uses UIA sessions hold of them. A session's
use ends in the database itself (see C{schema/040_registration_tokens.sql}):
completed when its registration records the account, given back when the
session is deleted.
"""
from __future__ import annotations

from ruma_tx.services.ports.registration_tokens import RegistrationToken
from ruma_tx.storage.database import Database, Transaction

_COLUMNS = "token, uses_allowed, pending, completed, expiry_time"

#: A token that still allows a registration at %(now)s.
_VALID = ("(uses_allowed IS NULL OR pending + completed < uses_allowed)"
          " AND (expiry_time IS NULL OR expiry_time >= %(now)s)")

#: The columns an admin may change.
_CHANGEABLE = ("uses_allowed", "expiry_time")


class RegistrationTokenStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def list_tokens(self, valid: bool | None, now_ms: int) -> list[RegistrationToken]:
        """Every token, or only the valid (C{True}) or invalid (C{False}) ones."""
        where = "" if valid is None else f" WHERE {'' if valid else 'NOT '}({_VALID})"
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM registration_tokens{where} ORDER BY token", {"now": now_ms})
        return [RegistrationToken(*row) for row in rows]

    async def get_token(self, token: str) -> RegistrationToken | None:
        row = await self._db.fetch_one(
            f"SELECT {_COLUMNS} FROM registration_tokens WHERE token = %s", (token,))
        return None if row is None else RegistrationToken(*row)

    async def create_token(self, token: str, uses_allowed: int | None, expiry_time: int | None) -> bool:
        """Store a new token; C{False} if it exists already."""
        rows = await self._db.fetch_all(
            "INSERT INTO registration_tokens (token, uses_allowed, expiry_time) VALUES (%s, %s, %s)"
            " ON CONFLICT (token) DO NOTHING RETURNING 1",
            (token, uses_allowed, expiry_time),
        )
        return bool(rows)

    async def update_token(self, token: str, changes: dict[str, int | None]) -> RegistrationToken | None:
        """Set C{changes} (column to value) on a token; the token as it is now, C{None} if unknown."""
        if any(column not in _CHANGEABLE for column in changes):
            raise ValueError(f"only {_CHANGEABLE} can be changed")
        assignments = ", ".join(f"{column} = %({column})s" for column in changes) or "token = token"
        row = await self._db.fetch_one(
            f"UPDATE registration_tokens SET {assignments} WHERE token = %(token)s RETURNING {_COLUMNS}",
            {**changes, "token": token},
        )
        return None if row is None else RegistrationToken(*row)

    async def delete_token(self, token: str) -> bool:
        """Delete a token; C{False} if unknown."""
        rows = await self._db.fetch_all(
            "DELETE FROM registration_tokens WHERE token = %s RETURNING 1", (token,))
        return bool(rows)

    async def is_valid(self, token: str, now_ms: int) -> bool:
        row = await self._db.fetch_one(
            f"SELECT 1 FROM registration_tokens WHERE token = %(token)s AND {_VALID}",
            {"token": token, "now": now_ms},
        )
        return row is not None

    async def reserve_use(self, token: str, session_id: str, now_ms: int) -> bool:
        """
        Have a UIA session hold one use of a valid token (C{pending} + 1);
        C{False} if the token is not valid. A session holds one use at
        most: if it holds one of this token already (a retry), that is it.
        """

        async def reserve(txn: Transaction) -> bool:
            held = await txn.fetch_one(
                "SELECT registration_token FROM uia_sessions WHERE session_id = %s FOR UPDATE",
                (session_id,),
            )
            if held is None:
                return False  # the session is gone (expired meanwhile)
            if held[0] is not None:
                return bool(held[0] == token)
            reserved = await txn.fetch_one(
                f"UPDATE registration_tokens SET pending = pending + 1"
                f" WHERE token = %(token)s AND {_VALID} RETURNING 1",
                {"token": token, "now": now_ms},
            )
            if reserved is None:
                return False
            await txn.execute(
                "UPDATE uia_sessions SET registration_token = %s WHERE session_id = %s",
                (token, session_id),
            )
            return True

        return await self._db.transaction("reserve_registration_token", reserve)
