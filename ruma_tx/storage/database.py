"""
Our one wrapper around txpostgres: a pool that survives PostgreSQL restarts,
transactions written as C{async def} functions, retried on serialization
failures and deadlocks.

txpostgres traps this module hides (see shared/notes/stack.md): its
C{runInteraction} silently commits an empty transaction when handed a
coroutine function; its plain pool never recovers after a restart; and
C{executemany} fails in async mode (use L{Transaction.insert_many}).
"""
from __future__ import annotations

import hashlib
from collections import deque
from typing import (
    Any,
    Callable,
    Concatenate,
    Coroutine,
    Iterator,
    ParamSpec,
    Sequence,
    TypeVar,
    cast,
)

import psycopg2
import psycopg2.errors
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from txpostgres import retrying, txpostgres
from txpostgres.reconnection import ConnectionDead, DeadConnectionDetector

from ruma_tx.cancellation import shielded
from ruma_tx.logs import logger
from ruma_tx.matrix.errors import Unavailable

log = logger(__name__)
T = TypeVar("T")
P = ParamSpec("P")

#: SQLSTATEs after which a transaction is simply run again.
_RETRYABLE = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_MAX_ATTEMPTS = 5


def _connection_lost(failure: Failure) -> bool:
    """
    Whether C{failure} means the connection itself is gone, for the
    connections' L{DeadConnectionDetector}.

    txpostgres' default checker takes every C{OperationalError} for a dead
    connection, and that includes query errors with an SQLSTATE such as
    serialization failures, deadlocks and statement timeouts: it would tear
    down a healthy connection, and the retry of the transaction would fail
    with C{ConnectionDead}.
    """
    if failure.check(psycopg2.InterfaceError, txpostgres.RollbackFailed):
        return True
    error = failure.value
    if not isinstance(error, psycopg2.OperationalError):
        return False
    code = error.pgcode
    # No SQLSTATE: the socket broke. Class 08 is connection_exception;
    # 57P01-57P03 are admin_shutdown, crash_shutdown, cannot_connect_now.
    return not code or code.startswith(("08", "57P"))


def _reconnection_delays() -> Iterator[float]:
    """Retry soon and often: requests fail with 503 until we are back."""
    return retrying.simpleBackoffIterator(
        initialDelay=0.2, maxDelay=2.0, factor=1.5, maxRetries=0, now=True
    )


def _first_failure(failure: Failure) -> Failure:
    """The failure inside the C{FirstError} of a C{gatherResults(consumeErrors=True)}."""
    return cast(defer.FirstError, failure.value).subFailure


def new_detector(reactor: IReactorTime) -> DeadConnectionDetector:
    """The dead-connection detector every connection of ours uses."""
    return DeadConnectionDetector(
        deathChecker=_connection_lost, reconnectionIterator=_reconnection_delays, reactor=reactor
    )


class DatabaseUnavailable(Unavailable):
    """PostgreSQL cannot be reached right now; the pool is reconnecting."""

    def __init__(self, why: str) -> None:
        super().__init__()
        self.why = why

    def __str__(self) -> str:
        return self.why


class Transaction:
    """
    The cursor of one running transaction, handed to transaction functions.
    """

    def __init__(self, cursor: txpostgres.Cursor) -> None:
        self._cursor = cursor

    async def execute(self, sql: str, args: Sequence[Any] | dict = ()) -> int:
        """Run one statement; return the number of rows it touched."""
        await self._cursor.execute(sql, args)
        return self._cursor.rowcount

    async def fetch_all(self, sql: str, args: Sequence[Any] | dict = ()) -> list[tuple]:
        await self._cursor.execute(sql, args)
        return self._cursor.fetchall()

    async def fetch_one(self, sql: str, args: Sequence[Any] | dict = ()) -> tuple | None:
        await self._cursor.execute(sql, args)
        return self._cursor.fetchone()

    async def insert_many(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], suffix: str = ""
    ) -> int:
        """
        Insert many rows with one multi-row C{INSERT ... VALUES (...), (...)}.

        @param suffix: appended SQL, e.g. C{ON CONFLICT DO NOTHING}.
        """
        if not rows:
            return 0
        placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
        values = ", ".join([placeholder] * len(rows))
        flat = [value for row in rows for value in row]
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} {suffix}"
        return await self.execute(sql, flat)


#: Statements prepared per pooled session at most (see L{Database.fetch_prepared}).
MAX_PREPARED = 100


def _prepared(sql: str, count: int) -> tuple[str, str, str]:
    """
    The name, PREPARE and EXECUTE statements of C{sql} with C{count}
    positional parameters (each C{%s} becomes C{$n}); named by a hash of
    the text, so the same text is the same statement on every connection.
    """
    name = "ruma_" + hashlib.blake2b(sql.encode("utf-8"), digest_size=8).hexdigest()
    parts = sql.split("%s")
    if len(parts) != count + 1 or "%" in "".join(parts):
        raise ValueError("a prepared statement takes exactly its positional %s parameters")
    numbered = "".join(part + (f"${i}" if i <= count else "") for i, part in enumerate(parts, start=1))
    run = f"EXECUTE {name}" + (f" ({', '.join(['%s'] * count)})" if count else "")
    return name, f"PREPARE {name} AS {numbered}", run


class Database:
    """
    A pool of txpostgres connections, each with its own dead-connection
    detector, so the pool recovers by itself when PostgreSQL restarts.

    Connections are checked out exclusively: one query or one transaction
    at a time per connection; callers beyond C{pool_size} wait in line.

    @param on_query: told how long each query or transaction held its
        connection (for metrics).
    """

    def __init__(self, dsn: str, pool_size: int, reactor: IReactorTime,
                 on_query: Callable[[float], None] | None = None) -> None:
        self._dsn = dsn
        self._reactor = reactor
        self._on_query = on_query
        self._connections = [self._new_connection() for _ in range(pool_size)]
        self._free: list[txpostgres.Connection] = []
        self._waiting: deque[defer.Deferred[txpostgres.Connection]] = deque()
        self._closed = False
        # Per connection: its psycopg2 session and the statements prepared
        # in it (a reconnection is a new session, with none).
        self._prepared: dict[txpostgres.Connection, tuple[object, set[str]]] = {}

    def _new_connection(self) -> txpostgres.Connection:
        return txpostgres.Connection(
            reactor=self._reactor,
            detector=new_detector(self._reactor),
        )

    async def open(self) -> None:
        """Connect every connection of the pool; fails if PostgreSQL is down."""
        await defer.gatherResults(
            [defer.ensureDeferred(self._connect(c)) for c in self._connections],
            consumeErrors=True,
        ).addErrback(_first_failure)
        self._free = list(self._connections)

    async def _connect(self, connection: txpostgres.Connection) -> None:
        await connection.connect(self._dsn)

    @property
    def in_use(self) -> int:
        """How many connections of the pool are checked out now."""
        return len(self._connections) - len(self._free)

    def close(self) -> None:
        self._closed = True
        for connection in self._connections:
            try:
                connection.close()
            except (psycopg2.Error, AttributeError):
                pass  # already closed or never connected
        while self._waiting:
            self._waiting.popleft().errback(DatabaseUnavailable("database pool closed"))

    async def fetch_all(self, sql: str, args: Sequence[Any] | dict = ()) -> list[tuple]:
        """Run one query in its own transaction; return all rows."""
        return await self._use(lambda c: c.runQuery(sql, args))

    async def fetch_prepared(self, sql: str, args: Sequence[Any]) -> list[tuple]:
        """
        L{fetch_all} for a statement that runs often with other arguments
        (the reads of every sync): prepared once per connection, so
        PostgreSQL parses it once and, after a few runs, plans it once
        (its generic plan, when not worse). Planning was half of what
        PostgreSQL spent on a sliding sync response. C{sql} takes
        positional C{%s} parameters only.
        """
        name, prepare, run = _prepared(sql, len(args))

        def operation(connection: txpostgres.Connection) -> defer.Deferred[list[tuple]]:
            session = connection.pollable()
            known = self._prepared.get(connection)
            if known is None or known[0] is not session:  # new, or reconnected since
                known = self._prepared[connection] = (session, set())
            if name in known[1]:
                return connection.runQuery(run, args)
            if len(known[1]) >= MAX_PREPARED:
                # Statement texts vary with clients' filters: a session keeps
                # a bounded number, and runs the others unprepared.
                return connection.runQuery(sql, args)
            prepared = connection.runOperation(prepare)
            prepared.addCallback(lambda _: known[1].add(name))
            return prepared.addCallback(lambda _: connection.runQuery(run, args))

        return await self._use(operation)

    async def fetch_one(self, sql: str, args: Sequence[Any] | dict = ()) -> tuple | None:
        rows = await self.fetch_all(sql, args)
        return rows[0] if rows else None

    async def execute(self, sql: str, args: Sequence[Any] | dict = ()) -> None:
        """Run one statement in its own transaction."""
        await self._use(lambda c: c.runOperation(sql, args))

    async def transaction(
        self, name: str, fn: Callable[Concatenate[Transaction, P], Coroutine[Any, Any, T]],
        *args: P.args, **kwargs: P.kwargs,
    ) -> T:
        """
        Run C{await fn(txn, *args, **kwargs)} inside one transaction.

        The transaction commits when C{fn} returns and rolls back when it
        raises; serialization failures and deadlocks run it again (so C{fn}
        must have no side effects outside the database).

        @param name: names the transaction in logs.
        """

        def interaction(cursor: txpostgres.Cursor) -> defer.Deferred[T]:
            return defer.ensureDeferred(fn(Transaction(cursor), *args, **kwargs))

        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                return await self._use(lambda c: c.runInteraction(interaction))
            except psycopg2.Error as e:
                if e.pgcode not in _RETRYABLE or attempt == _MAX_ATTEMPTS:
                    raise
                log.debug("transaction {name} retried after {code}", name=name, code=e.pgcode)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _use(self, operation: Callable[[txpostgres.Connection], defer.Deferred[T]]) -> T:
        """
        Run C{operation} on a connection of the pool, given back to the pool
        only once the operation has finished.

        The operation is shielded from its caller's cancellation: a client
        hanging up must not interrupt a query on a pooled connection (the
        connection would be handed to the next caller mid-query, or taken
        for dead), nor a transaction half-way through. The caller stops
        waiting; the query runs to its end.
        """
        connection = await self._checkout()
        try:
            running = operation(connection)
        except BaseException:
            self._checkin(connection)
            raise
        running.addBoth(self._finished, connection, self._reactor.seconds())
        try:
            return await shielded(running)
        except (ConnectionDead, psycopg2.OperationalError, psycopg2.InterfaceError) as e:
            if isinstance(e, psycopg2.OperationalError) and e.pgcode:
                raise  # a query error with an SQLSTATE, not a lost connection
            raise DatabaseUnavailable(str(e) or type(e).__name__) from None
        except txpostgres.RollbackFailed:
            raise DatabaseUnavailable("connection lost during a transaction") from None

    def _finished(self, result: object, connection: txpostgres.Connection, started: float) -> object:
        if self._on_query is not None:
            self._on_query(self._reactor.seconds() - started)
        self._checkin(connection)
        return result

    def _checkout(self) -> defer.Deferred[txpostgres.Connection]:
        if self._closed:
            return defer.fail(DatabaseUnavailable("database pool closed"))
        if self._free:
            return defer.succeed(self._free.pop())
        d: defer.Deferred[txpostgres.Connection] = defer.Deferred(
            canceller=lambda d: self._waiting.remove(d))
        self._waiting.append(d)
        return d

    def _checkin(self, connection: txpostgres.Connection) -> None:
        if self._waiting:
            self._waiting.popleft().callback(connection)
        else:
            self._free.append(connection)
