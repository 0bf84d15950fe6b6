"""OpenID tokens (schema C{023_openid.sql}). SQL only; see L{ruma_tx.services.openid}."""
from __future__ import annotations

from ruma_tx.storage.database import Database, Transaction


class OpenIdStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def add_token(self, token_hash: str, user_id: str, expires_ts: int, now_ms: int) -> None:
        """Store a new token and delete the expired ones, in one transaction."""

        async def add(txn: Transaction) -> None:
            await txn.execute("DELETE FROM openid_tokens WHERE expires_ts <= %s", (now_ms,))
            await txn.execute(
                "INSERT INTO openid_tokens (token_hash, user_id, expires_ts) VALUES (%s, %s, %s)",
                (token_hash, user_id, expires_ts),
            )

        await self._db.transaction("add_openid_token", add)

    async def get_token_user(self, token_hash: str, now_ms: int) -> str | None:
        """The user of an unexpired token, unless their account is deactivated."""
        row = await self._db.fetch_one(
            "SELECT t.user_id FROM openid_tokens t JOIN users u ON u.user_id = t.user_id"
            " WHERE t.token_hash = %s AND t.expires_ts > %s AND NOT u.deactivated",
            (token_hash, now_ms),
        )
        return row[0] if row else None
