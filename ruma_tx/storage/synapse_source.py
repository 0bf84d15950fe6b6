"""
Read-only access to a Synapse database (the C{SynapseSource} port), on
PostgreSQL (psycopg2) or SQLite (sqlite3): each query runs in a thread of
the reactor's pool, one at a time, so the reactor never blocks.

Values come back as Python values either engine gives alike: C{bytea} and
BLOBs as C{bytes}. Booleans differ (SQLite has none, and Synapse keeps some
flags as integers on PostgreSQL too): read them with C{bool(...)}.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import psycopg2
from twisted.internet import defer
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool

T = TypeVar("T")


#: The oldest Synapse schema the import reads (users.suspended came with 85).
MIN_SCHEMA_VERSION = 85


class SynapseSourceError(Exception):
    """The Synapse database cannot be opened or is not one."""


def _plain(value: object) -> object:
    return bytes(value) if isinstance(value, memoryview) else value


class SynapseDatabase:
    """
    A Synapse database, opened read-only.

    @ivar server_name: the server the database belongs to, from its local
        users' ids (every row of Synapse's C{users} table is a local user);
        see L{open_synapse_source}.
    """

    server_name: str

    def __init__(self, reactor: IReactorThreads, connection: Any, placeholder: str) -> None:
        self._reactor = reactor
        self._connection = connection
        self._placeholder = placeholder
        self._lock = defer.DeferredLock()
        self.server_name = ""

    async def _in_thread(self, fn: Callable[[], T]) -> T:
        # One query at a time: a connection serves one thread at a time.
        async with self._lock:
            return await deferToThreadPool(self._reactor, self._reactor.getThreadPool(), fn)

    async def fetch_all(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        if self._placeholder == "?":
            # psycopg2's escapes (arguments are always passed, so they always apply) for sqlite3.
            sql = sql.replace("%s", "?").replace("%%", "%")

        def run() -> list[tuple[Any, ...]]:
            cursor = self._connection.cursor()
            try:
                cursor.execute(sql, tuple(args))
                return [tuple(_plain(v) for v in row) for row in cursor.fetchall()]
            finally:
                cursor.close()

        return await self._in_thread(run)

    async def table_exists(self, table: str) -> bool:
        if self._placeholder == "?":
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s"
        else:
            sql = "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = %s"
        return bool(await self.fetch_all(sql, (table,)))

    async def column_exists(self, table: str, column: str) -> bool:
        """Whether C{table} has C{column} (Synapse's schema grows over its releases)."""
        if self._placeholder == "?":
            rows = await self.fetch_all(f"SELECT name FROM pragma_table_info('{table}')")
            return any(row[0] == column for row in rows)
        return bool(await self.fetch_all(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = %s AND column_name = %s", (table, column)))

    def close(self) -> None:
        self._connection.close()


def _connect(target: str) -> tuple[Any, str]:
    """A read-only connection to C{target} (a PostgreSQL DSN or URI, or an SQLite file) and its placeholder."""
    if target.startswith(("postgres://", "postgresql://")) or "=" in target:
        try:
            connection = psycopg2.connect(target, connect_timeout=30)
        except psycopg2.Error as e:
            raise SynapseSourceError(f"cannot connect to Synapse's PostgreSQL: {str(e).strip()}") from None
        connection.set_session(readonly=True, autocommit=True)
        return connection, "%s"
    path = Path(target)
    if not path.is_file():
        raise SynapseSourceError(f"{target}: neither a PostgreSQL DSN nor an SQLite database file")
    try:
        # mode=ro: never write to Synapse's database, not even a journal.
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                               check_same_thread=False), "?"
    except sqlite3.Error as e:
        raise SynapseSourceError(f"{target}: cannot open the SQLite database: {e}") from None


async def open_synapse_source(reactor: IReactorThreads, target: str) -> SynapseDatabase:
    """
    Open Synapse's database C{target} read-only and learn its server name.

    Synapse does not store its server name as such; every user id in its
    C{users} table is a local user's, so their common domain is it. A
    database whose users disagree, or that has none, is refused.

    @raise SynapseSourceError: if it cannot be opened, is not Synapse's, is
        older than L{MIN_SCHEMA_VERSION} or names no single server.
    """
    connection, placeholder = await deferToThreadPool(reactor, reactor.getThreadPool(), _connect, target)
    source = SynapseDatabase(reactor, connection, placeholder)
    try:
        if not (await source.table_exists("users") and await source.table_exists("schema_version")):
            raise SynapseSourceError(f"{target}: not a Synapse database (it has no users or schema_version table)")
        version = (await source.fetch_all("SELECT version FROM schema_version"))[0][0]
        if version < MIN_SCHEMA_VERSION:
            raise SynapseSourceError(
                f"{target}: Synapse's schema is at version {version}; the import reads version "
                f"{MIN_SCHEMA_VERSION} or newer: upgrade Synapse (start it once), stop it, then import")
        # The domain is everything after the first colon of "@localpart:domain".
        sql = ("SELECT DISTINCT substr(name, strpos(name, ':') + 1) FROM users" if placeholder == "%s"
               else "SELECT DISTINCT substr(name, instr(name, ':') + 1) FROM users")
        domains = [row[0] for row in await source.fetch_all(sql)]
    except (psycopg2.Error, sqlite3.Error) as e:
        source.close()
        raise SynapseSourceError(f"{target}: cannot read Synapse's users: {e}") from None
    except SynapseSourceError:
        source.close()
        raise
    if len(domains) != 1:
        source.close()
        found = ", ".join(sorted(domains)[:5]) or "no users"
        raise SynapseSourceError(f"{target}: cannot tell Synapse's server name from its users ({found})")
    source.server_name = domains[0]
    return source

