"""
The daemon's private PostgreSQL cluster, used when the configuration has no
C{[database] dsn}.

The cluster lives in C{<data_dir>/postgres}. It is created with C{initdb} on
first start, listens on a unix socket only (C{listen_addresses=''}, the
socket in a directory only the cluster user can enter) and runs the
C{postgres} server as a child process of the daemon, started and stopped by
it. PostgreSQL refuses to run as root: when the daemon runs as root, the
cluster runs as the C{postgres} OS user.

Everything here waits asynchronously: processes are spawned with
C{reactor.spawnProcess}, blocking libpq calls run in the reactor's thread
pool.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import pwd
import shutil
import tempfile
from typing import Any, Callable, TypeVar

import psycopg2
import psycopg2.errors
from twisted.internet import defer, error, protocol, threads
from twisted.internet.interfaces import IProcessTransport
from twisted.internet.task import deferLater

from ruma_tx.logs import logger
from ruma_tx.runtime.postgres_tools import (
    DSN_HINT,
    STDERR_TAIL,
    CollectingProtocol,
    EmbeddedClusterError,
    PostmasterProtocol,
    child_env,
    dsn_value,
    ensure_database,
    first_unsearchable,
    is_postgres_process,
    pg_binaries,
    pid_alive,
    probe,
    socket_dir_setting,
    tail_of,
)
from ruma_tx.runtime.reactor import IRuntimeReactor

log = logger(__name__)
T = TypeVar("T")

#: The OS user the cluster runs as when the daemon runs as root.
CLUSTER_OS_USER = "postgres"
#: The superuser role created by initdb; the daemon connects as it.
DB_ROLE = "ruma"
#: The port number only names the socket file (no TCP listener).
PORT = 5432
#: sockaddr_un.sun_path holds 108 bytes including the final NUL.
SOCKET_PATH_MAX = 107
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
QUIT_TIMEOUT = 10.0
_POLL_INTERVAL = 0.1


# --------------------------------------------------------------------------
# Finding the PostgreSQL programs


# --------------------------------------------------------------------------
# Small helpers


# --------------------------------------------------------------------------
# The cluster


class EmbeddedPostgres:
    """A private PostgreSQL cluster, a child process of the daemon."""

    def __init__(self, data_dir: pathlib.Path, reactor: IRuntimeReactor, dbname: str = "ruma") -> None:
        self.data_dir = pathlib.Path(os.path.abspath(os.fspath(data_dir)))
        self.cluster_dir = self.data_dir / "postgres"
        self.reactor = reactor
        self.dbname = dbname
        #: libpq DSN of database C{dbname}, after L{start}.
        self.dsn: str | None = None
        #: pid of the postmaster while it runs.
        self.pid: int | None = None
        self.socket_dir: pathlib.Path | None = None
        self._temp_socket_dir = False
        self._uid: int | None = None
        self._gid: int | None = None
        self._protocol: PostmasterProtocol | None = None
        self._transport: IProcessTransport | None = None
        self._trigger: object | None = None  # the shutdown trigger's id
        self._starting = False

    # -- public API --------------------------------------------------------

    async def start(self) -> str:
        """
        Create the cluster if needed, start it, wait until it accepts
        connections, create the database and return its DSN.
        """
        if self._protocol is not None and not self._protocol.ended:
            if self.dsn is not None:
                return self.dsn
            raise EmbeddedClusterError("the embedded PostgreSQL is already starting")
        if self._starting:
            raise EmbeddedClusterError("the embedded PostgreSQL is already starting")
        self._starting = True
        try:
            return await self._start()
        finally:
            self._starting = False

    async def stop(self) -> None:
        """
        Fast shutdown (SIGINT) of the postmaster; after C{STOP_TIMEOUT}
        seconds an immediate shutdown (SIGQUIT), then SIGKILL. Idempotent.
        """
        proto = self._protocol
        if proto is not None and not proto.ended:
            log.info("stopping the embedded PostgreSQL (pid {pid})", pid=self.pid)
            proto.stopping = True
            self._signal("INT")
            if not await self._wait_exit(proto, STOP_TIMEOUT):
                log.warn(
                    "the embedded PostgreSQL did not stop within {t} s: "
                    "immediate shutdown", t=STOP_TIMEOUT,
                )
                self._signal("QUIT")
                if not await self._wait_exit(proto, QUIT_TIMEOUT):
                    self._signal("KILL")
                    await proto.wait()
        self._cleanup()

    # -- start ---------------------------------------------------------------

    async def _start(self) -> str:
        self._resolve_user()
        self._prepare_cluster_dir()
        initdb, postgres = pg_binaries(self.cluster_dir)
        if not (self.cluster_dir / "PG_VERSION").exists():
            await self._initdb(initdb)
        self._prepare_socket_dir()
        try:
            self._clear_stale_pidfile()
            self._spawn(postgres)
            try:
                await self._wait_ready()
                await self._in_thread(
                    ensure_database, self._dsn_for("postgres"), self.dbname
                )
            except BaseException:
                await self.stop()
                raise
        except BaseException:
            self._cleanup()
            raise
        self.dsn = self._dsn_for(self.dbname)
        self._trigger = self.reactor.addSystemEventTrigger(
            "before", "shutdown", self._on_shutdown
        )
        log.info(
            "embedded PostgreSQL running (pid {pid}, socket in {sock})",
            pid=self.pid, sock=str(self.socket_dir),
        )
        return self.dsn

    def _resolve_user(self) -> None:
        """As root: run the cluster as the postgres user, who must reach data_dir."""
        if os.geteuid() != 0:
            self._uid = self._gid = None
            return
        try:
            pw = pwd.getpwnam(CLUSTER_OS_USER)
        except KeyError:
            raise EmbeddedClusterError(
                f"the daemon runs as root, and PostgreSQL refuses to run as "
                f"root, but there is no {CLUSTER_OS_USER!r} user to run the "
                f"embedded cluster as: install the PostgreSQL server package, "
                f"run the daemon as an unprivileged user, {DSN_HINT}"
            ) from None
        if pw.pw_uid == 0:
            raise EmbeddedClusterError(
                f"the {CLUSTER_OS_USER!r} user has uid 0; PostgreSQL refuses to "
                f"run as root: fix that user {DSN_HINT}"
            )
        self._uid, self._gid = pw.pw_uid, pw.pw_gid
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EmbeddedClusterError(
                f"cannot create data_dir {self.data_dir}: {e}"
            ) from None
        groups = set(os.getgrouplist(pw.pw_name, pw.pw_gid))
        blocked = first_unsearchable(self.data_dir, pw.pw_uid, groups)
        if blocked is not None:
            self.cluster_dir = self._relocate(pw, groups, blocked)

    def _relocate(self, pw: pwd.struct_passwd, groups: set[int], blocked: pathlib.Path) -> pathlib.Path:
        """
        The postgres user cannot reach data_dir (say, a checkout under a
        mode-700 home of root): keep the cluster in that user's own home
        instead, one folder per data_dir, and link data_dir/postgres to it.
        No permissions of the operator's folders are changed.
        """
        home = pathlib.Path(pw.pw_dir)
        unreachable = EmbeddedClusterError(
            f"the embedded PostgreSQL runs as the {CLUSTER_OS_USER!r} user "
            f"(PostgreSQL refuses to run as root), who cannot reach "
            f"{self.cluster_dir}: {blocked} is not searchable by that user, "
            f"nor is its home {home}. Move data_dir somewhere the "
            f"{CLUSTER_OS_USER!r} user can reach (e.g. under /var/lib), {DSN_HINT}"
        )
        if not home.is_dir() or first_unsearchable(home, pw.pw_uid, groups) is not None:
            raise unreachable
        base = home / "ruma_tx"
        base.mkdir(mode=0o700, exist_ok=True)
        os.chown(base, pw.pw_uid, pw.pw_gid)
        digest = hashlib.sha256(os.fsencode(str(self.data_dir))).hexdigest()[:16]
        target = base / digest
        link = self.data_dir / "postgres"
        if link.is_symlink():
            if pathlib.Path(os.readlink(link)) != target:
                raise EmbeddedClusterError(f"{link} links elsewhere than {target}, {DSN_HINT}")
        elif link.exists():
            raise unreachable
        else:
            link.symlink_to(target)
        log.warn(
            "the postgres user cannot reach {data_dir}; the embedded cluster lives in "
            "{target} (linked from {link})",
            data_dir=str(self.data_dir), target=str(target), link=str(link),
        )
        return target

    def _prepare_cluster_dir(self) -> None:
        """
        Check an existing cluster directory; remove what a failed first
        start left (an empty directory or only our socket directory).
        """
        cluster = self.cluster_dir
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EmbeddedClusterError(
                f"cannot create data_dir {self.data_dir}: {e}"
            ) from None
        if not cluster.exists() and not cluster.is_symlink():
            return
        if not cluster.is_dir():
            raise EmbeddedClusterError(f"{cluster} exists and is not a directory")
        if not (cluster / "PG_VERSION").exists():
            leftovers = [p.name for p in cluster.iterdir()]
            if leftovers in ([], ["run"]) and not cluster.is_symlink():
                shutil.rmtree(cluster)
                return
            raise EmbeddedClusterError(
                f"{cluster} holds no PostgreSQL cluster (no PG_VERSION) but "
                f"is not an empty directory: move its contents away so that a new "
                f"cluster can be created there, {DSN_HINT}"
            )
        if self._uid is not None:
            st = cluster.stat()
            if st.st_uid != self._uid:
                raise EmbeddedClusterError(
                    f"the cluster in {cluster} is owned by uid {st.st_uid}, "
                    f"but runs as the {CLUSTER_OS_USER!r} user: "
                    f"chown -R {CLUSTER_OS_USER}: {cluster}, {DSN_HINT}"
                )
        os.chmod(cluster, 0o700)

    async def _initdb(self, initdb: str) -> None:
        """
        Create the cluster in a side directory, renamed into place once
        initdb succeeded: an interrupted initdb never leaves a half cluster.
        """
        building = self.cluster_dir.with_name(self.cluster_dir.name + ".initdb")
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(mode=0o700)
        if self._uid is not None and self._gid is not None:  # set together
            os.chown(building, self._uid, self._gid)
        log.info("creating the embedded PostgreSQL cluster in {dir}",
                 dir=str(self.cluster_dir))
        argv = [
            initdb, "-D", str(building), "-U", DB_ROLE, "-E", "UTF8",
            "--locale=C", "--auth-local=trust", "--auth-host=reject",
        ]
        proto = CollectingProtocol()
        try:
            transport = self._spawn_process(proto, argv)
            try:
                code, signal = await proto.wait()
            except defer.CancelledError:
                # initdb cleans up after itself on SIGTERM.
                try:
                    transport.signalProcess("TERM")
                except error.ProcessExitedAlready:
                    pass
                await proto.wait()
                raise
            if code != 0 or not (building / "PG_VERSION").exists():
                how = f"signal {signal}" if signal else f"exit code {code}"
                raise EmbeddedClusterError(
                    f"initdb failed ({how}) for {self.cluster_dir}:\n"
                    f"{tail_of(proto.lines()[-STDERR_TAIL:])}\n"
                    f"Fix the cause, {DSN_HINT}"
                )
            os.rename(building, self.cluster_dir)
        finally:
            shutil.rmtree(building, ignore_errors=True)

    def _prepare_socket_dir(self) -> None:
        inside = self.cluster_dir / "run"
        if len(os.fsencode(str(inside / f".s.PGSQL.{PORT}"))) <= SOCKET_PATH_MAX:
            inside.mkdir(mode=0o700, exist_ok=True)
            self.socket_dir, self._temp_socket_dir = inside, False
        else:
            self.socket_dir = pathlib.Path(tempfile.mkdtemp(prefix="ruma-pg-"))
            self._temp_socket_dir = True
        if self._uid is not None and self._gid is not None:  # set together
            os.chown(self.socket_dir, self._uid, self._gid)
        os.chmod(self.socket_dir, 0o700)

    def _clear_stale_pidfile(self) -> None:
        pidfile = self.cluster_dir / "postmaster.pid"
        try:
            first = pidfile.read_text().splitlines()[:1]
        except FileNotFoundError:
            first = None
        if first is not None:
            try:
                pid = int(first[0].strip())
            except (IndexError, ValueError):
                pid = None
            if pid is not None and pid > 0 and pid_alive(pid):
                if is_postgres_process(pid):
                    raise EmbeddedClusterError(
                        f"a PostgreSQL server (pid {pid}) is already running on "
                        f"{self.cluster_dir} (another ruma_tx daemon using the "
                        f"same data_dir?): stop it (kill -INT {pid}) and start "
                        f"again"
                    )
                log.warn("removing postmaster.pid of pid {pid}, now reused by "
                         "another program", pid=pid)
            else:
                log.warn("removing the stale postmaster.pid left by a crashed "
                         "PostgreSQL (pid {pid})", pid=pid)
            pidfile.unlink(missing_ok=True)
        # No live postmaster owns this cluster: socket leftovers in our
        # private socket directory are stale too (their lock names a pid
        # that may have been reused).
        assert self.socket_dir is not None  # _prepare_socket_dir has set it
        for name in (f".s.PGSQL.{PORT}", f".s.PGSQL.{PORT}.lock"):
            try:
                (self.socket_dir / name).unlink()
            except FileNotFoundError:
                pass

    def _spawn(self, postgres: str) -> None:
        argv = [
            postgres, "-D", str(self.cluster_dir), "-p", str(PORT),
            "-c", "listen_addresses=",
            "-k", socket_dir_setting(str(self.socket_dir)),
            "-c", "unix_socket_permissions=0700",
        ]
        setpriv = shutil.which("setpriv")
        if setpriv:
            # If the daemon dies without stopping us (SIGKILL), the kernel
            # sends the postmaster SIGINT: a fast shutdown, never an orphan.
            argv = [setpriv, "--pdeathsig", "INT", "--"] + argv
        proto = PostmasterProtocol()
        self._protocol = proto
        self._transport = self._spawn_process(proto, argv, path=self.cluster_dir)
        self.pid = self._transport.pid

    def _spawn_process(self, proto: protocol.ProcessProtocol, argv: list[str],
                       path: pathlib.Path | None = None) -> IProcessTransport:
        try:
            return self.reactor.spawnProcess(
                proto, argv[0], argv, env=child_env(),
                path=str(path or self.data_dir), uid=self._uid, gid=self._gid,
            )
        except OSError as e:
            raise EmbeddedClusterError(f"cannot run {argv[0]}: {e}") from None

    async def _wait_ready(self) -> None:
        proto = self._protocol
        assert proto is not None and self.socket_dir is not None  # _spawn has run
        socket_path = self.socket_dir / f".s.PGSQL.{PORT}"
        admin_dsn = self._dsn_for("postgres")
        deadline = self.reactor.seconds() + START_TIMEOUT
        last_error: Exception | None = None
        while True:
            if proto.ended:
                raise EmbeddedClusterError(
                    f"the embedded PostgreSQL exited during start-up "
                    f"({proto.describe_exit()}); its last messages:\n"
                    f"{tail_of(proto.lines)}\nFix the cause, {DSN_HINT}"
                )
            if socket_path.exists():
                try:
                    await self._in_thread(probe, admin_dsn)
                    return
                except psycopg2.OperationalError as e:
                    last_error = e
            if self.reactor.seconds() >= deadline:
                detail = str(last_error).strip() if last_error else "no socket"
                raise EmbeddedClusterError(
                    f"the embedded PostgreSQL did not accept connections "
                    f"within {START_TIMEOUT:.0f} s ({detail}); its last "
                    f"messages:\n{tail_of(proto.lines)}"
                )
            await deferLater(self.reactor, _POLL_INTERVAL, lambda: None)

    # -- stop ----------------------------------------------------------------

    def _signal(self, name: str) -> None:
        if self._transport is None:
            return
        try:
            self._transport.signalProcess(name)
        except (error.ProcessExitedAlready, ProcessLookupError):
            pass

    async def _wait_exit(self, proto: PostmasterProtocol, timeout: float) -> bool:
        waiter = proto.wait()
        waiter.addTimeout(timeout, self.reactor)
        try:
            await waiter
        except defer.TimeoutError:
            return False
        return True

    def _on_shutdown(self) -> defer.Deferred[None]:
        self._trigger = None  # firing: must not be removed any more
        return defer.ensureDeferred(self.stop())

    def _cleanup(self) -> None:
        if self._trigger is not None:
            self.reactor.removeSystemEventTrigger(self._trigger)
            self._trigger = None
        if self._temp_socket_dir and self.socket_dir is not None:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self._temp_socket_dir = False
        if self._protocol is not None and self._protocol.ended:
            self.pid = None
            self.dsn = None
            self._transport = None

    # -- helpers -------------------------------------------------------------

    def _dsn_for(self, dbname: str) -> str:
        return " ".join([
            f"host={dsn_value(str(self.socket_dir))}",
            f"port={PORT}",
            f"dbname={dsn_value(dbname)}",
            f"user={DB_ROLE}",
        ])

    def _in_thread(self, fn: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        return threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), fn, *args
        )


