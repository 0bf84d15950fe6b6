"""
PostgreSQL's own programs, as the embedded cluster drives them: finding its
binaries, running them as child processes and reading what they print,
and the few blocking libpq calls (run in threads by the caller).
"""
from __future__ import annotations

import glob
import os
import pathlib
import re
import shutil
import stat
from collections import deque
from typing import Iterable

import psycopg2.errors
from psycopg2 import sql
from twisted.internet import defer, protocol
from twisted.python.failure import Failure

from ruma_tx.logs import logger

log = logger(__name__)

STDERR_TAIL = 40


DSN_HINT = (
    "or set [database] dsn in the configuration to use a PostgreSQL server "
    "of your own"
)


class EmbeddedClusterError(Exception):
    """
    The private PostgreSQL cluster cannot be created, started or stopped.
    The message says what to do (e.g. configure C{[database] dsn}).
    """


def _version_key(path: str) -> tuple[int, ...]:
    """/usr/lib/postgresql/<version>/bin/<name> -> numeric version tuple."""
    version = pathlib.Path(path).parent.parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)


def find_pg_binary(name: str) -> str:
    """
    Find a PostgreSQL program: C{shutil.which(name)} first, else the newest
    C{/usr/lib/postgresql/*/bin/<name>}.

    @raise EmbeddedClusterError: if there is none.
    """
    found = shutil.which(name)
    if found:
        return found
    candidates = [
        path
        for path in glob.glob(f"/usr/lib/postgresql/*/bin/{glob.escape(name)}")
        if os.path.isfile(path) and os.access(path, os.X_OK)
    ]
    if not candidates:
        raise EmbeddedClusterError(
            f"cannot find the PostgreSQL program {name!r} (not on PATH nor in "
            f"/usr/lib/postgresql/*/bin): install the PostgreSQL server "
            f"(e.g. apt-get install postgresql) {DSN_HINT}"
        )
    return max(candidates, key=_version_key)


def pg_binaries(cluster_dir: pathlib.Path) -> tuple[str, str]:
    """
    C{(initdb, postgres)} from the same installation; for an existing
    cluster, prefer the installation of the cluster's own major version.
    """
    try:
        major = (cluster_dir / "PG_VERSION").read_text().strip()
    except OSError:
        major = ""
    if re.fullmatch(r"\d+(\.\d+)?", major):
        bindir = pathlib.Path("/usr/lib/postgresql") / major / "bin"
        if os.access(bindir / "postgres", os.X_OK):
            return str(bindir / "initdb"), str(bindir / "postgres")
    postgres = find_pg_binary("postgres")
    sibling = pathlib.Path(os.path.realpath(postgres)).parent / "initdb"
    if os.access(sibling, os.X_OK):
        return str(sibling), postgres
    return find_pg_binary("initdb"), postgres


def dsn_value(value: str) -> str:
    """Quote one libpq keyword/value connection-string value if needed."""
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def socket_dir_setting(path: str) -> str:
    """A value for unix_socket_directories (a comma-separated list)."""
    if re.search(r"[\s,]", path):
        return '"' + path + '"'
    return path


def child_env() -> dict[str, str]:
    """Our environment without libpq/PostgreSQL variables (PGPORT, ...)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return env


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_postgres_process(pid: int) -> bool:
    """
    Whether C{pid} is a PostgreSQL server process (and not an unrelated
    process that reused the pid of a crashed postmaster). Where /proc cannot
    tell, assume it is.
    """
    try:
        comm = pathlib.Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return pid_alive(pid) and not os.path.isdir("/proc/self")
    except OSError:
        return True
    return comm.startswith("postgres") or comm.startswith("postmaster")


def tail_of(lines: Iterable[str]) -> str:
    text = "\n".join(f"  {line}" for line in lines)
    return text or "  (no output)"


class CollectingProtocol(protocol.ProcessProtocol):
    """Collects a short-lived child's output and tells how it exited."""

    def __init__(self) -> None:
        self.output: list[bytes] = []
        self.result: tuple[int | None, int | None] | None = None
        self._waiters: list[defer.Deferred[tuple[int | None, int | None]]] = []

    def connectionMade(self) -> None:
        assert self.transport is not None  # makeConnection has set it
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.output.append(data)

    def errReceived(self, data: bytes) -> None:
        self.output.append(data)

    def processEnded(self, reason: Failure) -> None:
        value = reason.value
        self.result = (getattr(value, "exitCode", None), getattr(value, "signal", None))
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(self.result)

    def wait(self) -> defer.Deferred[tuple[int | None, int | None]]:
        """A new Deferred firing C{(exit code, signal)} once the child exited."""
        if self.result is not None:
            return defer.succeed(self.result)
        waiter: defer.Deferred[tuple[int | None, int | None]] = defer.Deferred()
        self._waiters.append(waiter)
        return waiter

    def lines(self) -> list[str]:
        text = b"".join(self.output).decode("utf-8", "replace")
        return [line.rstrip() for line in text.splitlines() if line.strip()]


class PostmasterProtocol(protocol.ProcessProtocol):
    """
    The postmaster's process protocol: logs its output, keeps the last lines
    for error messages and tells when it exits.
    """

    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=STDERR_TAIL)
        self.ended = False
        #: set by L{EmbeddedPostgres.stop}: an exit is then expected.
        self.stopping = False
        self.reason: BaseException | None = None
        self._buffer = b""
        self._waiters: list[defer.Deferred[None]] = []

    def connectionMade(self) -> None:
        assert self.transport is not None  # makeConnection has set it
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self._feed(data)

    def errReceived(self, data: bytes) -> None:
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\n")
        for raw in complete:
            self._line(raw)

    def _line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip()
        if not text:
            return
        self.lines.append(text)
        if re.search(r"\b(ERROR|FATAL|PANIC|WARNING):", text):
            log.warn("postgres: {line}", line=text)
        else:
            log.info("postgres: {line}", line=text)

    def processEnded(self, reason: Failure) -> None:
        if self._buffer:
            self._line(self._buffer)
            self._buffer = b""
        self.ended = True
        self.reason = reason.value
        if not self.stopping:
            log.error(
                "the embedded PostgreSQL exited unexpectedly ({how})",
                how=self.describe_exit(),
            )
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def wait(self) -> defer.Deferred[None]:
        """A new Deferred that fires when the process has exited."""
        waiter: defer.Deferred[None] = defer.Deferred()
        if self.ended:
            waiter.callback(None)
        else:
            self._waiters.append(waiter)
        return waiter

    def describe_exit(self) -> str:
        value = self.reason
        code = getattr(value, "exitCode", None)
        signal = getattr(value, "signal", None)
        if signal:
            return f"killed by signal {signal}"
        return f"exit code {code}"


def first_unsearchable(
    directory: pathlib.Path, uid: int, groups: set[int]
) -> pathlib.Path | None:
    """
    The first directory on the way to C{directory} (itself included) that
    the user C{uid} with C{groups} cannot search, judged by owner, group and
    mode bits (as the kernel does, ignoring ACLs); None if all can be.
    """
    paths = {pathlib.Path(os.path.abspath(directory))}
    paths.add(pathlib.Path(os.path.realpath(directory)))
    todo: list[pathlib.Path] = []
    for path in paths:
        todo.extend(reversed([path, *path.parents]))
    seen: set[pathlib.Path] = set()
    for path in todo:
        if path in seen:
            continue
        seen.add(path)
        try:
            st = os.stat(path)
        except OSError:
            return path
        if st.st_uid == uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return path
    return None


def probe(dsn: str) -> None:
    """Connect once (in a thread); raises OperationalError if not ready."""
    conn = psycopg2.connect(dsn, connect_timeout=5)
    conn.close()


def ensure_database(admin_dsn: str, dbname: str) -> None:
    """CREATE DATABASE dbname unless it exists (in a thread)."""
    conn = psycopg2.connect(admin_dsn, connect_timeout=10)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
            if cur.fetchone() is None:
                try:
                    cur.execute(
                        sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
                    )
                except psycopg2.errors.DuplicateDatabase:
                    pass
    finally:
        conn.close()
