"""ruma_tx.storage.database (our txpostgres wrapper) against a real PostgreSQL database."""
import itertools
import uuid

import psycopg2
import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from ruma_tx.storage.database import Database, DatabaseUnavailable

#: How long a test may wait on the database before it counts as hung.
TIMEOUT = 20


async def open_database(pg_cluster, pool_size: int = 2) -> Database:
    """Open a pool on a fresh, empty database of its own."""
    dsn = pg_cluster.create_database(f"ruma_db_{uuid.uuid4().hex}")
    database = Database(dsn, pool_size, reactor)
    await database.open()
    return database


def within_timeout(*deferreds: defer.Deferred) -> defer.Deferred:
    """All of C{deferreds}' results, or a failure if they take longer than L{TIMEOUT}."""
    return defer.gatherResults(list(deferreds), consumeErrors=True).addTimeout(TIMEOUT, reactor)


@pytest_twisted.ensureDeferred
async def test_async_transaction_runs_its_body_and_commits(pg_cluster):
    """An C{async def} transaction function really runs (past its first await) and its writes are committed."""
    database = await open_database(pg_cluster)
    try:
        await database.execute("CREATE TABLE t (id int PRIMARY KEY)")

        async def insert_two(txn, first):
            await txn.execute("INSERT INTO t (id) VALUES (%s)", (first,))
            await txn.execute("INSERT INTO t (id) VALUES (%s)", (first + 1,))
            return "done"

        assert await database.transaction("insert_two", insert_two, 1) == "done"
        assert await database.fetch_all("SELECT id FROM t ORDER BY id") == [(1,), (2,)]
    finally:
        database.close()


@pytest_twisted.ensureDeferred
async def test_exception_rolls_the_transaction_back(pg_cluster):
    """An exception raised inside a transaction reaches the caller and undoes every write the transaction made."""

    class Boom(Exception):
        pass

    database = await open_database(pg_cluster)
    try:
        await database.execute("CREATE TABLE t (id int PRIMARY KEY)")
        seen = []

        async def insert_then_fail(txn):
            await txn.execute("INSERT INTO t (id) VALUES (1), (2)")
            seen.append(await txn.fetch_one("SELECT count(*) FROM t"))
            raise Boom()

        with pytest.raises(Boom):
            await database.transaction("insert_then_fail", insert_then_fail)
        assert seen == [(2,)], "the rows were written inside the transaction"
        assert await database.fetch_one("SELECT count(*) FROM t") == (0,)
    finally:
        database.close()




@pytest_twisted.ensureDeferred
async def test_serialization_failure_is_retried(pg_cluster):
    """Two serializable read-then-write transactions on one row conflict, and the loser is run again so both increments commit."""
    database = await open_database(pg_cluster, pool_size=2)
    try:
        await database.execute("CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL)")
        await database.execute("INSERT INTO counter VALUES (1, 0)")
        runs = []
        # Both first attempts read before either writes: each waits here until both have read.
        both_read = [defer.Deferred(), defer.Deferred()]
        arrived = itertools.count()

        async def increment(txn, name):
            runs.append(name)
            await txn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            (n,) = await txn.fetch_one("SELECT n FROM counter WHERE id = 1")
            index = next(arrived)
            if index < 2:
                if index == 1:
                    for waiter in both_read:
                        waiter.callback(None)
                await both_read[index]
            await txn.execute("UPDATE counter SET n = %s WHERE id = 1", (n + 1,))
            return name

        results = await within_timeout(
            defer.ensureDeferred(database.transaction("increment", increment, "a")),
            defer.ensureDeferred(database.transaction("increment", increment, "b")),
        )
        assert sorted(results) == ["a", "b"]
        assert len(runs) > 2, f"no transaction was retried: {runs}"
        assert await database.fetch_one("SELECT n FROM counter WHERE id = 1") == (2,)
    finally:
        database.close()


@pytest_twisted.ensureDeferred
async def test_insert_many_is_one_statement(pg_cluster):
    """insert_many writes 1000 rows with a single INSERT, and with ON CONFLICT DO NOTHING skips the duplicates."""
    database = await open_database(pg_cluster)
    try:
        # A statement-level trigger counts the INSERT statements the table receives.
        await database.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        await database.execute("CREATE TABLE statements (n int NOT NULL)")
        await database.execute("INSERT INTO statements VALUES (0)")
        await database.execute(
            "CREATE FUNCTION count_statement() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN UPDATE statements SET n = n + 1; RETURN NULL; END $$"
        )
        await database.execute(
            "CREATE TRIGGER count_inserts AFTER INSERT ON items "
            "FOR EACH STATEMENT EXECUTE FUNCTION count_statement()"
        )

        async def insert(txn, ids, suffix=""):
            rows = [(i, f"item {i}") for i in ids]
            return await txn.insert_many("items", ("id", "name"), rows, suffix=suffix)

        assert await database.transaction("insert", insert, range(1000)) == 1000
        assert await database.fetch_one("SELECT n FROM statements") == (1,)
        assert await database.fetch_all("SELECT id, name FROM items ORDER BY id") == [
            (i, f"item {i}") for i in range(1000)
        ]

        # 500 of these ids are already there.
        inserted = await database.transaction(
            "insert", insert, range(500, 1500), suffix="ON CONFLICT DO NOTHING"
        )
        assert inserted == 500
        assert await database.fetch_one("SELECT n FROM statements") == (2,)
        assert await database.fetch_all("SELECT id, name FROM items ORDER BY id") == [
            (i, f"item {i}") for i in range(1500)
        ]
    finally:
        database.close()


@pytest_twisted.ensureDeferred
async def test_callers_beyond_pool_size_wait_in_line(pg_cluster):
    """With pool_size 2, ten concurrent queries share two connections, two at a time, and all finish with their own results."""
    database = await open_database(pg_cluster, pool_size=2)
    try:
        results = await within_timeout(*[
            defer.ensureDeferred(database.fetch_one(
                "SELECT pg_backend_pid(), %s, clock_timestamp(), (SELECT clock_timestamp()"
                " FROM pg_sleep(0.05))", (i,)))
            for i in range(10)
        ])
        assert [value for _, value, _, _ in results] == list(range(10))
        assert len({pid for pid, _, _, _ in results}) == 2
        # The server's own clock: each query ran 50 ms, and at no instant
        # were more than two queries running.
        assert all(end > start for _, _, start, end in results), results
        for _, _, start, _ in results:
            running = sum(1 for _, _, s, e in results if s <= start < e)
            assert running <= 2, (start, results)
    finally:
        database.close()


@pytest_twisted.ensureDeferred
async def test_calls_after_close_fail_with_database_unavailable(pg_cluster):
    """Once the pool is closed, queries, statements and transactions fail with DatabaseUnavailable."""
    database = await open_database(pg_cluster)
    assert await database.fetch_one("SELECT 1") == (1,)
    database.close()
    ran = []

    async def body(txn):
        ran.append(True)

    with pytest.raises(DatabaseUnavailable):
        await database.fetch_all("SELECT 1")
    with pytest.raises(DatabaseUnavailable):
        await database.execute("SELECT 1")
    with pytest.raises(DatabaseUnavailable):
        await database.transaction("body", body)
    assert ran == []


@pytest_twisted.ensureDeferred
async def test_prepared_reads_answer_like_plain_ones_and_survive_lost_sessions(pg_cluster):
    """
    A prepared read gives what the same query gives unprepared, on every
    connection of the pool, with arrays and empty arrays; after the pool's
    sessions are killed (and their prepared statements with them) it is
    prepared again instead of failing.
    """
    dsn = pg_cluster.create_database(f"ruma_db_{uuid.uuid4().hex}")
    database = Database(dsn, 2, reactor)
    await database.open()
    try:
        await database.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
        await database.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three')")
        sql = "SELECT id, name FROM t WHERE name = ANY(%s::text[]) AND id > %s ORDER BY id"
        for names, above in ((["one", "three"], 0), ([], 0), (["two", "three"], 2)):
            plain = await database.fetch_all(sql, (names, above))
            both = await within_timeout(defer.ensureDeferred(database.fetch_prepared(sql, (names, above))),
                                        defer.ensureDeferred(database.fetch_prepared(sql, (names, above))))
            assert both == [plain, plain]
        with pytest.raises(ValueError):
            await database.fetch_prepared("SELECT * FROM t WHERE name LIKE 'o%%' AND id = %s", (1,))
        # Kill the pool's sessions only (this database's), as a PostgreSQL restart would.
        with psycopg2.connect(dsn) as killer, killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                           " WHERE datname = current_database() AND pid <> pg_backend_pid()")
        found = []
        for _ in range(100):  # the pool reconnects by itself
            try:
                found = await within_timeout(defer.ensureDeferred(database.fetch_prepared(sql, (["two"], 0))),
                                             defer.ensureDeferred(database.fetch_prepared(sql, (["two"], 0))))
                break
            except defer.FirstError as e:  # one of them met a dead session
                assert e.subFailure.check(DatabaseUnavailable), e
                await deferLater(reactor, 0.1, lambda: None)
        assert found == [[(2, "two")], [(2, "two")]]
    finally:
        database.close()


@pytest_twisted.ensureDeferred
async def test_statements_past_the_prepared_bound_still_answer(pg_cluster, monkeypatch):
    """Statement texts vary with clients' filters: past the bound a session runs them unprepared, right all the same."""
    monkeypatch.setattr("ruma_tx.storage.database.MAX_PREPARED", 1)
    database = await open_database(pg_cluster, pool_size=1)
    try:
        for extra in ("", " + 0", " + 0 + 0"):
            assert await database.fetch_prepared(f"SELECT %s::int{extra}", (7,)) == [(7,)]
            assert await database.fetch_prepared(f"SELECT %s::int{extra}", (8,)) == [(8,)]
    finally:
        database.close()
