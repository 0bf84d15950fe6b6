"""
Schema migrations: numbered SQL files in C{schema/} (C{NNN_name.sql}),
applied in order inside one transaction under an advisory lock, so two
daemons starting at once never both apply them. C{schema_version} records
what has been applied. A database holding a version this code does not
know was migrated by a newer ruma_tx: nothing is applied and start fails
(L{SchemaTooNew}), since older code could misread or damage its data.
"""
from __future__ import annotations

import re
from importlib import resources

from ruma_tx.logs import logger
from ruma_tx.storage.database import Database, Transaction

log = logger(__name__)

#: An arbitrary constant: the advisory lock key of schema migrations.
_MIGRATION_LOCK = 0x72756D61

_FILE_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


class SchemaTooNew(Exception):
    """The database was migrated by a newer ruma_tx than this one."""

    def __init__(self, database_version: int, code_version: int) -> None:
        super().__init__(
            f"the database schema is at version {database_version:03d}, newer than this ruma_tx "
            f"knows ({code_version:03d}): run the newer ruma_tx, or restore a backup taken before "
            f"the upgrade")
        self.database_version = database_version
        self.code_version = code_version


def available_migrations() -> list[tuple[int, str, str]]:
    """Return C{(version, name, sql)} for every migration file, in order."""
    found = []
    for entry in resources.files("ruma_tx.storage").joinpath("schema").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text()))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError("two schema files share a version number")
    return found


async def migrate(database: Database, now_ms: int) -> list[int]:
    """
    Apply every migration not yet recorded; return the versions applied.
    """
    migrations = available_migrations()

    async def apply(txn: Transaction) -> list[int]:
        await txn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        await txn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ts BIGINT NOT NULL)"
        )
        rows = await txn.fetch_all("SELECT version FROM schema_version")
        done = {row[0] for row in rows}
        known = {version for version, _, _ in migrations}
        if done - known and max(done) > max(known, default=0):
            raise SchemaTooNew(max(done), max(known, default=0))
        applied = []
        for version, name, sql in migrations:
            if version in done:
                continue
            await txn.execute(sql)
            await txn.execute(
                "INSERT INTO schema_version (version, name, applied_ts) VALUES (%s, %s, %s)",
                (version, name, now_ms),
            )
            applied.append(version)
        return applied

    applied = await database.transaction("migrate", apply)
    for version in applied:
        log.info("applied schema migration {version:03d}", version=version)
    return applied
