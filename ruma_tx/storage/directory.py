"""Room aliases and the public room directory. SQL only."""
from __future__ import annotations

import psycopg2.errors


class AliasExists(Exception):
    """The alias already names a room."""


class DirectoryStore:
    def __init__(self, database):
        self._db = database

    async def get_alias(self, room_alias: str) -> tuple[str, str] | None:
        """C{(room_id, creator)} of an alias, or C{None}."""
        row = await self._db.fetch_one(
            "SELECT room_id, creator FROM room_aliases WHERE room_alias = %s", (room_alias,)
        )
        return (row[0], row[1]) if row else None

    async def create_alias(self, room_alias: str, room_id: str, creator: str) -> None:
        """@raise AliasExists: if the alias is taken."""
        try:
            await self._db.execute(
                "INSERT INTO room_aliases (room_alias, room_id, creator) VALUES (%s, %s, %s)",
                (room_alias, room_id, creator),
            )
        except psycopg2.errors.UniqueViolation:
            raise AliasExists(room_alias) from None

    async def delete_alias(self, room_alias: str) -> bool:
        rows = await self._db.fetch_all(
            "DELETE FROM room_aliases WHERE room_alias = %s RETURNING 1", (room_alias,)
        )
        return bool(rows)

    async def get_aliases_for_room(self, room_id: str) -> list[str]:
        rows = await self._db.fetch_all(
            "SELECT room_alias FROM room_aliases WHERE room_id = %s ORDER BY room_alias", (room_id,)
        )
        return [row[0] for row in rows]

    async def set_published(self, room_id: str, published: bool) -> bool:
        rows = await self._db.fetch_all(
            "UPDATE rooms SET published = %s WHERE room_id = %s RETURNING 1", (published, room_id)
        )
        return bool(rows)

    async def is_published(self, room_id: str) -> bool | None:
        row = await self._db.fetch_one("SELECT published FROM rooms WHERE room_id = %s", (room_id,))
        return row[0] if row else None
