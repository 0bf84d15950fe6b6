"""The daemon's private PostgreSQL cluster (ruma_tx.runtime.embedded)."""
import os
import pathlib
import pwd
import shutil
import stat
import subprocess
import tempfile

import pytest
import pytest_twisted
from twisted.internet import reactor
from txpostgres import txpostgres

from ruma_tx.runtime.embedded import EmbeddedPostgres
from ruma_tx.runtime.postgres_tools import EmbeddedClusterError


def _tmp_root(mode: int = 0o755) -> pathlib.Path:
    """A fresh folder under /tmp that the cluster user can enter."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="ruma-emb-test-"))
    os.chmod(root, mode)
    return root


def _processes_using(path: pathlib.Path) -> list[int]:
    """Pids of live processes whose command line mentions path."""
    needle = os.fsencode(str(path))
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            pids.append(int(entry.name))
    return pids


def _dead_pid() -> int:
    """The pid of a process that has already exited."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


async def _query(dsn: str, statement: str):
    conn = txpostgres.Connection(reactor=reactor)
    await conn.connect(dsn)
    try:
        return await conn.runQuery(statement)
    finally:
        conn.close()


async def _execute(dsn: str, statement: str) -> None:
    conn = txpostgres.Connection(reactor=reactor)
    await conn.connect(dsn)
    try:
        await conn.runOperation(statement)
    finally:
        conn.close()


@pytest_twisted.ensureDeferred
async def test_embedded_cluster_lifecycle():
    """The embedded cluster starts on a unix socket only, stops without leftovers, and restarts on its existing data despite a stale postmaster.pid."""
    root = _tmp_root()
    data_dir = root / "data"
    pg = EmbeddedPostgres(data_dir, reactor)
    try:
        dsn = await pg.start()
        cluster = data_dir / "postgres"
        assert (cluster / "PG_VERSION").exists()
        assert pg.dsn == dsn
        assert f"host={cluster / 'run'}" in dsn
        assert "dbname=ruma" in dsn and "user=ruma" in dsn
        pid = pg.pid
        assert pid and os.path.exists(f"/proc/{pid}")

        assert await _query(dsn, "SHOW listen_addresses") == [("",)]
        assert await _query(dsn, "SELECT current_database(), current_user") == [
            ("ruma", "ruma")
        ]
        await _execute(dsn, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('x')")
        if os.geteuid() == 0:
            assert cluster.stat().st_uid != 0

        # A second daemon on the same data_dir is refused, naming the pid.
        with pytest.raises(EmbeddedClusterError, match=str(pid)):
            await EmbeddedPostgres(data_dir, reactor).start()

        await pg.stop()
        assert pg.pid is None
        assert not os.path.exists(f"/proc/{pid}")
        assert _processes_using(cluster) == []
        assert not (cluster / "postmaster.pid").exists()
        await pg.stop()  # idempotent

        # A crash left a postmaster.pid whose process is gone.
        (cluster / "postmaster.pid").write_text(f"{_dead_pid()}\n{cluster}\n")
        version_mtime = (cluster / "PG_VERSION").stat().st_mtime_ns
        dsn2 = await pg.start()
        assert dsn2 == dsn
        assert (cluster / "PG_VERSION").stat().st_mtime_ns == version_mtime
        assert await _query(dsn2, "SELECT v FROM kept") == [("x",)]
        pid2 = pg.pid
        await pg.stop()
        assert not os.path.exists(f"/proc/{pid2}")
        assert _processes_using(cluster) == []
    finally:
        await pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest_twisted.ensureDeferred
async def test_embedded_cluster_long_path_uses_short_socket_dir():
    """A data_dir too deep for a unix socket path gets a short socket folder under /tmp, removed on stop."""
    root = _tmp_root()
    data_dir = root / ("d" * 60) / ("e" * 60)
    data_dir.mkdir(parents=True)
    for path in (data_dir, data_dir.parent):
        os.chmod(path, 0o755)
    pg = EmbeddedPostgres(data_dir, reactor, dbname="other db")
    try:
        dsn = await pg.start()
        sock = pg.socket_dir
        assert sock.parent == pathlib.Path(tempfile.gettempdir())
        assert sock.name.startswith("ruma-pg-")
        assert (sock.stat().st_mode & 0o777) == 0o700
        assert await _query(dsn, "SELECT current_database()") == [("other db",)]
        await pg.stop()
        assert not sock.exists()
    finally:
        await pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the cluster to the postgres user")
@pytest_twisted.ensureDeferred
async def test_embedded_cluster_moves_out_of_unreachable_data_dir():
    """As root, with a data_dir the postgres user cannot reach, the cluster lives in that user's home, linked from data_dir/postgres, and works."""
    root = _tmp_root(mode=0o700)
    pg = EmbeddedPostgres(root / "data", reactor)
    target = None
    try:
        dsn = await pg.start()
        link = root / "data" / "postgres"
        assert link.is_symlink()
        target = link.resolve()
        assert target.is_relative_to(pwd.getpwnam("postgres").pw_dir)
        assert (target / "PG_VERSION").exists()
        assert await _query(dsn, "SELECT 1") == [(1,)]
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700  # nothing was opened up
    finally:
        await pg.stop()
        shutil.rmtree(root, ignore_errors=True)
        if target is not None:
            shutil.rmtree(target, ignore_errors=True)
