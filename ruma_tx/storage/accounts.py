"""Users, their password hashes and profiles. SQL only; no Matrix rules."""
from __future__ import annotations

from typing import Sequence

import psycopg2.errors

from ruma_tx.services.ports.accounts import Account, UserExists
from ruma_tx.storage.database import Database, Transaction


class AccountStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def create_user(
        self, user_id: str, password_hash: str | None, now_ms: int, *, is_guest: bool = False,
        is_admin: bool = False, displayname: str | None = None,
    ) -> None:
        """
        Create a user and its profile.

        @raise UserExists: if the id is taken.
        """

        async def create(txn: Transaction) -> None:
            await txn.execute(
                "INSERT INTO users (user_id, password_hash, is_guest, is_admin, created_ts)"
                " VALUES (%s, %s, %s, %s, %s)",
                (user_id, password_hash, is_guest, is_admin, now_ms),
            )
            await txn.execute(
                "INSERT INTO profiles (user_id, displayname) VALUES (%s, %s)", (user_id, displayname)
            )

        try:
            await self._db.transaction("create_user", create)
        except psycopg2.errors.UniqueViolation:
            raise UserExists(user_id) from None

    async def next_guest_number(self) -> int:
        row = await self._db.fetch_one("SELECT nextval('guest_localparts')")
        assert row is not None  # a SELECT without FROM: always one row
        return row[0]

    async def upgrade_guest(self, user_id: str, password_hash: str, displayname: str) -> list[str] | None:
        """
        Turn a guest into a full account and revoke its guest tokens (they
        carry C{guest = true}). Return the revoked token ids, or C{None} if
        the user is no longer a guest.
        """

        async def upgrade(txn: Transaction) -> list[str] | None:
            row = await txn.fetch_one(
                "UPDATE users SET is_guest = FALSE, password_hash = %s"
                " WHERE user_id = %s AND is_guest AND NOT deactivated RETURNING user_id",
                (password_hash, user_id),
            )
            if row is None:
                return None
            await txn.execute(
                "UPDATE profiles SET displayname = COALESCE(displayname, %s) WHERE user_id = %s",
                (displayname, user_id),
            )
            rows = await txn.fetch_all(
                "DELETE FROM access_tokens WHERE user_id = %s RETURNING token_id", (user_id,)
            )
            return [r[0] for r in rows]

        return await self._db.transaction("upgrade_guest", upgrade)

    async def get_account(self, user_id: str) -> Account | None:
        row = await self._db.fetch_one(
            "SELECT user_id, password_hash, is_guest, is_admin, deactivated, locked, suspended, shadow_banned"
            " FROM users WHERE user_id = %s",
            (user_id,),
        )
        return Account(*row) if row else None

    async def user_exists(self, user_id: str) -> bool:
        row = await self._db.fetch_one("SELECT 1 FROM users WHERE user_id = %s", (user_id,))
        return row is not None

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._db.execute(
            "UPDATE users SET password_hash = %s WHERE user_id = %s", (password_hash, user_id)
        )

    async def deactivate(self, user_id: str) -> list[str]:
        """
        Mark the account deactivated, clear its password and profile, delete
        its devices (and so its tokens); return the revoked token ids.
        """

        async def deactivate(txn: Transaction) -> list[str]:
            await txn.execute(
                "UPDATE users SET deactivated = TRUE, password_hash = NULL WHERE user_id = %s",
                (user_id,),
            )
            await txn.execute(
                "UPDATE profiles SET displayname = NULL, avatar_url = NULL WHERE user_id = %s",
                (user_id,),
            )
            rows = await txn.fetch_all(
                "DELETE FROM access_tokens WHERE user_id = %s RETURNING token_id", (user_id,)
            )
            await txn.execute("DELETE FROM devices WHERE user_id = %s", (user_id,))
            return [row[0] for row in rows]

        return await self._db.transaction("deactivate", deactivate)

    async def get_profile(self, user_id: str) -> tuple[str | None, str | None] | None:
        """Return C{(displayname, avatar_url)}, or C{None} for an unknown user."""
        row = await self._db.fetch_one(
            "SELECT displayname, avatar_url FROM profiles WHERE user_id = %s", (user_id,)
        )
        return (row[0], row[1]) if row else None

    async def set_profile_field(self, user_id: str, field: str, value: str | None) -> None:
        column = {"displayname": "displayname", "avatar_url": "avatar_url"}[field]
        await self._db.execute(
            f"UPDATE profiles SET {column} = %s WHERE user_id = %s", (value, user_id)
        )

    async def get_guest_members(self, room_id: str, memberships: Sequence[str]) -> list[str]:
        """
        The guest accounts whose current membership of the room is one of
        C{memberships}, in user id order.
        """
        rows = await self._db.fetch_all(
            "SELECT c.state_key FROM current_state c JOIN users u ON u.user_id = c.state_key"
            " WHERE c.room_id = %s AND c.type = 'm.room.member' AND c.membership = ANY(%s)"
            " AND u.is_guest ORDER BY c.state_key",
            (room_id, list(memberships)),
        )
        return [row[0] for row in rows]
