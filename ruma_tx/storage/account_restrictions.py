"""The lock and suspension flags of accounts (C{users.locked}, C{users.suspended})."""
from __future__ import annotations

from ruma_tx.storage.database import Database, Transaction

#: The flags that can be set here.
_FLAGS = ("locked", "suspended")


class AccountFlagStore:
    """
    Each change also announces every access token of the account on the
    token channel (C{ruma_tokens_revoked}, as a revocation does), after
    commit: each process's auth guard then forgets its verified copies,
    which carry the flags, and reads them anew.
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    async def set_locked(self, user_id: str, locked: bool) -> list[str] | None:
        return await self._set("locked", user_id, locked)

    async def set_suspended(self, user_id: str, suspended: bool) -> list[str] | None:
        return await self._set("suspended", user_id, suspended)

    async def _set(self, flag: str, user_id: str, value: bool) -> list[str] | None:
        """The account's token ids, or C{None} if there is no such account."""
        assert flag in _FLAGS

        async def update(txn: Transaction) -> list[str] | None:
            if not await txn.execute(f"UPDATE users SET {flag} = %s WHERE user_id = %s", (value, user_id)):
                return None
            rows = await txn.fetch_all(
                "SELECT token_id, pg_notify('ruma_tokens_revoked', token_id) FROM access_tokens"
                " WHERE user_id = %s",
                (user_id,),
            )
            return [row[0] for row in rows]

        return await self._db.transaction(f"set_{flag}", update)
