"""
A throwaway PostgreSQL cluster for the test run (synchronous helper).

The cluster lives in a temporary folder, listens on 127.0.0.1 on a free TCP
port and on a unix socket in that folder, trusts every local connection and
trades durability for speed (fsync off). PostgreSQL refuses to run as root:
when the tests run as root, the cluster runs as the ``postgres`` OS user.
"""
from __future__ import annotations

import glob
import os
import pathlib
import pwd
import re
import shutil
import socket
import subprocess
import tempfile

import psycopg2
from psycopg2 import sql

CLUSTER_OS_USER = "postgres"
SUPERUSER = "ruma"
#: sockaddr_un.sun_path holds 108 bytes including the final NUL.
_SOCKET_PATH_MAX = 107


def _pg_bindir() -> pathlib.Path:
    """The bin directory of the PostgreSQL on PATH, else the newest installed."""
    found = shutil.which("pg_ctl")
    if found:
        return pathlib.Path(os.path.realpath(found)).parent
    candidates = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    if not candidates:
        raise RuntimeError("PostgreSQL server programs (initdb, pg_ctl) not found")

    def version(path: str) -> tuple[int, ...]:
        name = pathlib.Path(path).parent.parent.name
        return tuple(int(n) for n in re.findall(r"\d+", name)) or (0,)

    return pathlib.Path(max(candidates, key=version)).parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


class TestCluster:
    """A throwaway PostgreSQL cluster in a temporary folder for the test run."""

    __test__ = False  # not a test class, despite its name

    def __init__(self, root: pathlib.Path | None = None):
        if root is None:
            root = pathlib.Path(tempfile.mkdtemp(prefix="ruma-test-pg-"))
        self.root = pathlib.Path(os.path.abspath(root))
        self.data = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self.bindir = _pg_bindir()
        self.port: int = _free_port()
        self.running = False
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            pw = pwd.getpwnam(CLUSTER_OS_USER)
            self._uid, self._gid = pw.pw_uid, pw.pw_gid
        else:
            self._uid, self._gid = os.geteuid(), os.getegid()

    # -- lifecycle ------------------------------------------------------------

    @property
    def socket_dir(self) -> pathlib.Path | None:
        """The unix socket directory (the folder), or None if its path is too long."""
        if len(os.fsencode(str(self.root / f".s.PGSQL.{self.port}"))) > _SOCKET_PATH_MAX:
            return None
        return self.root

    def start(self) -> None:
        """initdb if needed, then start the server and wait until it is ready."""
        if self.running:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        os.chown(self.root, self._uid, self._gid)
        os.chmod(self.root, 0o700)
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        self._write_config()
        self._run(
            [
                str(self.bindir / "pg_ctl"), "start", "-w", "-t", "60",
                "-D", str(self.data), "-l", str(self.logfile),
            ],
            what="pg_ctl start",
            log_on_error=True,
        )
        self.running = True

    def stop(self) -> None:
        """Stop the server (fast shutdown) and wait until it is down."""
        if not self.running:
            return
        self._run(
            [str(self.bindir / "pg_ctl"), "stop", "-w", "-t", "60", "-m", "fast",
             "-D", str(self.data)],
            what="pg_ctl stop",
        )
        self.running = False

    def restart(self) -> None:
        """Stop then start again on the same port."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop if running and remove the whole folder."""
        try:
            if self.running:
                self.stop()
            elif (self.data / "postmaster.pid").exists():
                # Started by an earlier TestCluster object on this folder?
                self.running = True
                try:
                    self.stop()
                except RuntimeError:
                    self.running = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "TestCluster":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # -- databases ------------------------------------------------------------

    def dsn(self, name: str) -> str:
        """The DSN of database C{name} over TCP."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """CREATE DATABASE name; returns its DSN."""
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE name, disconnecting its sessions."""
        self._admin(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )

    def refuse_connections(self, name: str) -> None:
        """Make database C{name} unreachable: no new connections, and its sessions ended."""
        self._admin(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name)))
        self._admin(sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {}").format(
            sql.Literal(name)))

    def allow_connections(self, name: str) -> None:
        """Undo L{refuse_connections}."""
        self._admin(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name)))

    def _admin(self, statement) -> None:
        conn = psycopg2.connect(self.dsn("postgres"), connect_timeout=10)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    # -- internals --------------------------------------------------------------

    def _initdb(self) -> None:
        if self.data.exists():
            shutil.rmtree(self.data)
        self._run(
            [
                str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                "-E", "UTF8", "--locale=C", "--auth=trust", "--no-sync",
            ],
            what="initdb",
        )

    def _write_config(self) -> None:
        sock = self.socket_dir
        settings = {
            "listen_addresses": _conf_quote("127.0.0.1"),
            "port": str(self.port),
            "unix_socket_directories": _conf_quote(str(sock) if sock else ""),
            "unix_socket_permissions": "0700",
            "max_connections": "300",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        # postgresql.auto.conf is read last and overrides postgresql.conf.
        auto = "".join(f"{k} = {v}\n" for k, v in settings.items())
        hba = (
            "local   all   all                 trust\n"
            "host    all   all   127.0.0.1/32  trust\n"
        )
        for name, text in (("postgresql.auto.conf", auto), ("pg_hba.conf", hba)):
            path = self.data / name
            path.write_text(text)
            os.chown(path, self._uid, self._gid)
            os.chmod(path, 0o600)

    def _run(self, argv: list[str], what: str, log_on_error: bool = False) -> None:
        if self._as_postgres:
            argv = ["runuser", "-u", CLUSTER_OS_USER, "--"] + argv
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        result = subprocess.run(
            argv, cwd=self.root, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=120,
        )
        if result.returncode != 0:
            message = f"{what} failed (exit code {result.returncode}):\n{result.stdout}"
            if log_on_error:
                try:
                    message += "\n--- server log ---\n" + self.logfile.read_text()[-4000:]
                except OSError:
                    pass
            raise RuntimeError(message)
