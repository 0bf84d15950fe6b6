"""
What C{ruma-admin backup} and C{restore} ask of a database before running
pg_dump or pg_restore on it: its schema version, whether it holds a server
already, and its PostgreSQL major version. Each works on a database with
no ruma_tx schema at all (a new, empty one).
"""
from __future__ import annotations

from ruma_tx.storage.database import Database


async def _has_table(database: Database, name: str) -> bool:
    row = await database.fetch_one("SELECT to_regclass(%s) IS NOT NULL", (name,))
    return bool(row and row[0])


async def schema_version(database: Database) -> int | None:
    """The newest schema migration applied; C{None} for a database without any."""
    if not await _has_table(database, "schema_version"):
        return None
    row = await database.fetch_one("SELECT max(version) FROM schema_version")
    return None if row is None else row[0]


async def holds_server(database: Database) -> bool:
    """Whether the database holds a server already: a migrated schema or any user."""
    if await schema_version(database) is not None:
        return True
    if not await _has_table(database, "users"):
        return False
    row = await database.fetch_one("SELECT EXISTS (SELECT 1 FROM users)")
    return bool(row and row[0])


async def postgresql_major(database: Database) -> int:
    """The major version of the PostgreSQL server (15 for 15.4)."""
    row = await database.fetch_one("SELECT current_setting('server_version_num')::int / 10000")
    assert row is not None  # one row, always
    return int(row[0])
