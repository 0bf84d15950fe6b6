"""Accounts as the user admin API reads and flags them. SQL only."""
from __future__ import annotations

from typing import Any

from ruma_tx.matrix.admin_users import UserListQuery, UserRecord
from ruma_tx.storage.database import Database, Transaction

_SELECT = (
    "SELECT u.user_id, u.is_guest, u.is_admin, u.deactivated, u.erased, u.shadow_banned, u.locked,"
    " u.suspended, u.user_type, p.displayname, p.avatar_url, u.created_ts,"
    " (SELECT MAX(d.last_seen_ts) FROM devices d WHERE d.user_id = u.user_id) AS last_seen_ts"
)
_FROM = " FROM users u LEFT JOIN profiles p ON p.user_id = u.user_id"

#: The column each C{order_by} of the list sorts on.
_ORDER_COLUMNS = {
    "name": "u.user_id",
    "is_guest": "u.is_guest",
    "admin": "u.is_admin",
    "user_type": "u.user_type",
    "deactivated": "u.deactivated",
    "shadow_banned": "u.shadow_banned",
    "displayname": "p.displayname",
    "avatar_url": "p.avatar_url",
    "creation_ts": "u.created_ts",
    "last_seen_ts": "last_seen_ts",
    "locked": "u.locked",
}


def _contains(text: str) -> str:
    """A LIKE pattern matching strings that contain C{text} as it is."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(query: UserListQuery) -> tuple[str, list[Any]]:
    filters: list[str] = []
    args: list[Any] = []
    if query.name:
        filters.append("(substr(split_part(u.user_id, ':', 1), 2) ILIKE %s OR p.displayname ILIKE %s)")
        args += [_contains(query.name)] * 2
    elif query.user_id:
        filters.append("u.user_id ILIKE %s")
        args.append(_contains(query.user_id))
    if not query.guests:
        filters.append("NOT u.is_guest")
    if query.deactivated is not None:
        filters.append("u.deactivated = %s")
        args.append(query.deactivated)
    if not query.locked:
        filters.append("NOT u.locked")
    if query.admins is not None:
        filters.append("u.is_admin = %s")
        args.append(query.admins)
    if "" in query.not_user_types:
        filters.append("u.user_type IS NOT NULL")
    named_types = [user_type for user_type in query.not_user_types if user_type]
    if named_types:
        filters.append("(u.user_type IS NULL OR u.user_type <> ALL(%s))")
        args.append(named_types)
    return (" WHERE " + " AND ".join(filters) if filters else ""), args


class AdminUserStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def list_users(self, query: UserListQuery) -> tuple[list[UserRecord], int]:
        where, args = _where(query)
        order = f"{_ORDER_COLUMNS[query.order_by]} {'DESC' if query.backwards else 'ASC'}, u.user_id ASC"

        async def read(txn: Transaction) -> tuple[list[UserRecord], int]:
            counted = await txn.fetch_one("SELECT COUNT(*)" + _FROM + where, args)
            assert counted is not None  # COUNT(*) always answers a row
            rows = await txn.fetch_all(
                f"{_SELECT}{_FROM}{where} ORDER BY {order} LIMIT %s OFFSET %s",
                [*args, query.limit, query.start])
            return [UserRecord(*row) for row in rows], counted[0]

        return await self._db.transaction("list_users", read)

    async def get_user(self, user_id: str) -> UserRecord | None:
        row = await self._db.fetch_one(f"{_SELECT}{_FROM} WHERE u.user_id = %s", (user_id,))
        return UserRecord(*row) if row else None

    async def set_admin(self, user_id: str, admin: bool) -> None:
        await self._db.execute("UPDATE users SET is_admin = %s WHERE user_id = %s", (admin, user_id))

    async def set_user_type(self, user_id: str, user_type: str | None) -> None:
        await self._db.execute("UPDATE users SET user_type = %s WHERE user_id = %s", (user_type, user_id))

    async def set_shadow_banned(self, user_id: str, shadow_banned: bool) -> None:
        await self._db.execute(
            "UPDATE users SET shadow_banned = %s WHERE user_id = %s", (shadow_banned, user_id))

    async def is_shadow_banned(self, user_id: str) -> bool:
        row = await self._db.fetch_one("SELECT shadow_banned FROM users WHERE user_id = %s", (user_id,))
        return bool(row and row[0])

    async def reactivate(self, user_id: str) -> None:
        await self._db.execute("UPDATE users SET deactivated = FALSE WHERE user_id = %s", (user_id,))

    async def get_ratelimit_override(self, user_id: str) -> tuple[int, int] | None:
        row = await self._db.fetch_one(
            "SELECT messages_per_second, burst_count FROM ratelimit_overrides WHERE user_id = %s", (user_id,))
        return (row[0], row[1]) if row else None

    async def set_ratelimit_override(self, user_id: str, messages_per_second: int, burst_count: int) -> None:
        await self._db.execute(
            "INSERT INTO ratelimit_overrides (user_id, messages_per_second, burst_count) VALUES (%s, %s, %s)"
            " ON CONFLICT (user_id) DO UPDATE SET messages_per_second = EXCLUDED.messages_per_second,"
            " burst_count = EXCLUDED.burst_count",
            (user_id, messages_per_second, burst_count))

    async def delete_ratelimit_override(self, user_id: str) -> None:
        await self._db.execute("DELETE FROM ratelimit_overrides WHERE user_id = %s", (user_id,))
