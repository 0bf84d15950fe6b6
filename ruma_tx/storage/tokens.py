"""Access and refresh token records: a token is valid while its row exists."""
from __future__ import annotations

from ruma_tx.services.ports.accounts import AccessTokenRecord, NewLogin
from ruma_tx.storage.database import Database, Transaction


class TokenStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_access_token(self, token_id: str) -> AccessTokenRecord | None:
        row = await self._db.fetch_one(
            "SELECT t.token_id, t.user_id, t.device_id, t.expires_at_ms, u.locked, u.suspended"
            " FROM access_tokens t JOIN users u USING (user_id) WHERE t.token_id = %s",
            (token_id,),
        )
        return AccessTokenRecord(*row) if row else None

    async def create_login(self, login: NewLogin, now_ms: int) -> tuple[list[str], bool]:
        """
        Create (or reuse) the device and store its new tokens. Reusing a
        device id replaces the tokens it had, as the spec asks.

        @return: the ids of the tokens so revoked, and whether the device is new.
        """

        async def create(txn: Transaction) -> tuple[list[str], bool]:
            new_device = bool(await txn.fetch_all(
                "INSERT INTO devices (user_id, device_id, display_name, created_ts)"
                " VALUES (%s, %s, %s, %s)"
                # The spec: the display name is ignored for a known device.
                " ON CONFLICT (user_id, device_id) DO NOTHING RETURNING 1",
                (login.user_id, login.device_id, login.device_display_name, now_ms),
            ))
            rows = await txn.fetch_all(
                "DELETE FROM access_tokens WHERE user_id = %s AND device_id = %s RETURNING token_id",
                (login.user_id, login.device_id),
            )
            await txn.execute(
                "DELETE FROM refresh_tokens WHERE user_id = %s AND device_id = %s",
                (login.user_id, login.device_id),
            )
            if login.refresh_token_id:
                await txn.execute(
                    "INSERT INTO refresh_tokens (token_id, user_id, device_id, created_ts)"
                    " VALUES (%s, %s, %s, %s)",
                    (login.refresh_token_id, login.user_id, login.device_id, now_ms),
                )
            await txn.execute(
                "INSERT INTO access_tokens"
                " (token_id, user_id, device_id, refresh_token_id, expires_at_ms, created_ts)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (login.access_token_id, login.user_id, login.device_id, login.refresh_token_id,
                 login.expires_at_ms, now_ms),
            )
            return [row[0] for row in rows], new_device

        return await self._db.transaction("create_login", create)

    async def rotate_refresh_token(
        self, old_refresh_id: str, user_id: str, device_id: str, new_refresh_id: str,
        new_access_id: str, expires_at_ms: int, now_ms: int,
    ) -> list[str] | None:
        """
        Replace a refresh token (and the access tokens issued with it) by a
        new pair. Return the revoked access token ids, or C{None} if the old
        refresh token is unknown (already used, or its device deleted).
        """

        async def rotate(txn: Transaction) -> list[str] | None:
            row = await txn.fetch_one(
                "DELETE FROM refresh_tokens WHERE token_id = %s AND user_id = %s AND device_id = %s"
                " RETURNING token_id",
                (old_refresh_id, user_id, device_id),
            )
            if row is None:
                return None
            revoked = await txn.fetch_all(
                "DELETE FROM access_tokens WHERE refresh_token_id = %s RETURNING token_id",
                (old_refresh_id,),
            )
            await txn.execute(
                "INSERT INTO refresh_tokens (token_id, user_id, device_id, created_ts)"
                " VALUES (%s, %s, %s, %s)",
                (new_refresh_id, user_id, device_id, now_ms),
            )
            await txn.execute(
                "INSERT INTO access_tokens"
                " (token_id, user_id, device_id, refresh_token_id, expires_at_ms, created_ts)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (new_access_id, user_id, device_id, new_refresh_id, expires_at_ms, now_ms),
            )
            return [r[0] for r in revoked]

        return await self._db.transaction("rotate_refresh_token", rotate)

    async def delete_access_token(self, token_id: str) -> str | None:
        """
        Log out one token: its device goes too, as the spec asks.

        @return: the token's user, or C{None} for an unknown token.
        """

        async def logout(txn: Transaction) -> str | None:
            row = await txn.fetch_one(
                "DELETE FROM access_tokens WHERE token_id = %s RETURNING user_id, device_id",
                (token_id,),
            )
            if row is None:
                return None
            await txn.execute("DELETE FROM devices WHERE user_id = %s AND device_id = %s", row)
            return row[0]

        return await self._db.transaction("logout", logout)

    async def delete_user_tokens(self, user_id: str, except_device: str | None = None) -> list[str]:
        """
        Delete the user's devices and tokens (but C{except_device}'s); return
        the revoked token ids.
        """

        async def delete(txn: Transaction) -> list[str]:
            rows = await txn.fetch_all(
                "DELETE FROM access_tokens WHERE user_id = %s AND device_id IS DISTINCT FROM %s"
                " RETURNING token_id",
                (user_id, except_device),
            )
            await txn.execute(
                "DELETE FROM devices WHERE user_id = %s AND device_id IS DISTINCT FROM %s",
                (user_id, except_device),
            )
            return [row[0] for row in rows]

        return await self._db.transaction("delete_user_tokens", delete)
