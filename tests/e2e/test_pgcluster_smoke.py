"""Smoke test of the test suite's own throwaway PostgreSQL cluster."""
import psycopg2

from tests.pgcluster import TestCluster


def _select_one(dsn: str) -> int:
    conn = psycopg2.connect(dsn, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_cluster_start_create_restart_cleanup():
    """A TestCluster starts, serves a new database over TCP, survives a restart on the same port and leaves no folder behind."""
    cluster = TestCluster()
    try:
        cluster.start()
        dsn = cluster.create_database("smoke")
        assert dsn == f"postgresql://ruma@127.0.0.1:{cluster.port}/smoke"
        assert _select_one(dsn) == 1

        port = cluster.port
        cluster.restart()
        assert cluster.port == port
        assert _select_one(dsn) == 1

        cluster.drop_database("smoke")
        conn = psycopg2.connect(cluster.dsn("postgres"))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_database WHERE datname = 'smoke'")
                assert cur.fetchone()[0] == 0
        finally:
            conn.close()
    finally:
        cluster.cleanup()
    assert not cluster.root.exists()
