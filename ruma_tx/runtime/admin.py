"""
C{ruma-admin}: the operator's command line.

  - C{generate-config}: write a complete, commented config and its secret key;
  - C{migrate}: apply the schema migrations and exit;
  - C{register-user}: create an account (optionally a server admin);
  - C{deactivate-user}: deactivate an account and revoke its tokens;
  - C{rotate-signing-key}: retire the federation signing key for a new one;
  - C{import-synapse}: move a Synapse server's data in (L{ruma_tx.runtime.synapse_import});
  - C{backup}, C{restore}: a whole server to a directory and back (L{ruma_tx.runtime.backup});
  - through the running daemon's admin API (L{ruma_tx.runtime.admin_commands}):
    C{list-users}, C{reset-password}, C{make-admin}, C{create-registration-token},
    C{purge-room}, C{quarantine-media}.

The database commands use the daemon's own code (L{Database}, L{migrate},
L{AccountStore}, L{PasswordHasher}): no SQL lives here. With no C{[database]
dsn} they use the embedded cluster under C{data_dir}: the running daemon's
cluster if there is one (through its unix socket), else one started for the
command and stopped after it.

Exit code 0 on success; 1 with a one-line message on stderr on error.
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable, NoReturn, TypeVar

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from twisted.internet import defer, task

from ruma_tx.matrix.identifiers import (
    InvalidIdentifier,
    parse_user_id,
    user_id_for,
    validate_localpart,
)
from ruma_tx.runtime.admin_commands import API_COMMANDS, ApiCommandError, add_api_commands, run_api_command
from ruma_tx.runtime.config import Config, ConfigError, load_config
from ruma_tx.runtime.config_template import generate_config
from ruma_tx.runtime.reactor import IRuntimeReactor
from ruma_tx.runtime.secrets import create_secrets, rotate_signing_key
from ruma_tx.services.clock import now_ms

if TYPE_CHECKING:
    from ruma_tx.storage.database import Database

T = TypeVar("T")

PROG = "ruma-admin"
#: Seconds to wait for the database to accept a connection.
CONNECT_TIMEOUT = 30.0


class AdminError(Exception):
    """A failure to report to the operator as one line on stderr."""


def _fail(message: str) -> NoReturn:
    """Print C{message} as one line on stderr and exit 1."""
    one_line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    print(f"{PROG}: error: {one_line}", file=sys.stderr)
    raise SystemExit(1)


# --------------------------------------------------------------------------
# Reaching the database


def running_embedded_dsn(config: Config) -> str | None:
    """
    The DSN of the embedded cluster of C{config} if a PostgreSQL server is
    running on it now (the daemon's), read from its C{postmaster.pid}: its
    lines are the pid, the data directory, the start time, the port and the
    unix socket directory.
    """
    from ruma_tx.runtime.embedded import DB_ROLE

    pidfile = config.data_dir / "postgres" / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
        pid, port, socket_dir = int(lines[0]), int(lines[3]), lines[4].strip()
    except (OSError, ValueError, IndexError):
        return None
    if pid <= 0 or not socket_dir:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # a crashed cluster's stale pidfile
    except PermissionError:
        pass  # alive, run by another user (postgres when we are root)
    # "ruma" is the database EmbeddedPostgres creates by default.
    return psycopg2.extensions.make_dsn(
        host=socket_dir, port=port, dbname="ruma", user=DB_ROLE
    )


@asynccontextmanager
async def database_dsn(reactor: IRuntimeReactor, config: Config) -> AsyncIterator[str]:
    """
    The DSN of the configured database for the time of the block: C{[database]
    dsn}, else the running embedded cluster's, else that of the embedded
    cluster started for the block (and stopped after it).
    """
    dsn = config.database.dsn or running_embedded_dsn(config)
    if dsn is not None:
        yield dsn
        return
    from ruma_tx.runtime.embedded import EmbeddedPostgres
    from ruma_tx.runtime.postgres_tools import EmbeddedClusterError

    cluster = EmbeddedPostgres(config.data_dir, reactor)
    try:
        dsn = await cluster.start()
    except EmbeddedClusterError as e:
        raise AdminError(f"cannot start the embedded PostgreSQL: {e}") from None
    try:
        yield dsn
    finally:
        await cluster.stop()


async def _with_database(reactor: IRuntimeReactor, config: Config,
                         work: Callable[[Database], Awaitable[T]]) -> T:
    """
    Open a one-connection pool on the configured database and run
    C{await work(database)}; start (then stop) the embedded cluster when
    there is no DSN and no running one.
    """
    async with database_dsn(reactor, config) as dsn:
        return await with_dsn_database(reactor, config, dsn, work)


async def with_dsn_database(reactor: IRuntimeReactor, config: Config, dsn: str,
                            work: Callable[[Database], Awaitable[T]]) -> T:
    """Open a one-connection pool on C{dsn} and run C{await work(database)}."""
    from ruma_tx.storage.database import Database, DatabaseUnavailable

    database = Database(dsn, 1, reactor)
    try:
        started = reactor.seconds()
        opening = defer.ensureDeferred(database.open())
        opening.addTimeout(CONNECT_TIMEOUT, reactor)
        try:
            await opening
        except (psycopg2.Error, DatabaseUnavailable, defer.TimeoutError) as e:
            # A cancelled connection attempt may fail with a psycopg2 error.
            if reactor.seconds() - started >= CONNECT_TIMEOUT:
                why = f"no answer within {CONNECT_TIMEOUT:.0f} s"
            else:
                why = _first_line(e)
            raise AdminError(f"cannot connect to the database: {why}") from None
        try:
            return await work(database)
        except psycopg2.errors.UndefinedTable:
            raise AdminError(
                "the database has no ruma_tx schema yet: run "
                f"`{PROG} migrate --config {config.path}` (or start the daemon once)"
            ) from None
        except (psycopg2.OperationalError, DatabaseUnavailable) as e:
            raise AdminError(f"database error: {_first_line(e)}") from None
    finally:
        database.close()


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


# --------------------------------------------------------------------------
# Commands


def cmd_generate_config(args: argparse.Namespace) -> None:
    """Write a config, then create the secrets it names (removing the config if that fails)."""
    path = Path(args.output)
    generate_config(path, args.server_name, data_dir=args.data_dir, port=args.port)
    config = load_config(path)
    try:
        create_secrets(config)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    print(f"wrote {config.path}")
    print(f"secret key: {config.macaroon_key_path}")


async def cmd_migrate(reactor: IRuntimeReactor, config: Config, args: argparse.Namespace) -> None:
    from ruma_tx.storage.migrations import SchemaTooNew, available_migrations, migrate

    try:
        applied = await _with_database(
            reactor, config, lambda database: migrate(database, now_ms(reactor))
        )
    except SchemaTooNew as e:
        raise AdminError(str(e)) from None
    names = {version: name for version, name, _ in available_migrations()}
    for version in applied:
        print(f"applied schema version {version:03d} ({names.get(version, '?')})")
    if not applied:
        latest = max(names, default=0)
        print(f"schema up to date at version {latest:03d}: nothing to apply")


def _target_user_id(config: Config, name: str) -> str:
    """A localpart or a full user id of this server -> the user id."""
    if name.startswith("@"):
        try:
            localpart, domain = parse_user_id(name)
        except InvalidIdentifier as e:
            raise AdminError(f"{name!r}: {e}") from None
        if domain != config.server_name:
            raise AdminError(f"{name} is not a user of this server ({config.server_name})")
        return name
    try:
        return user_id_for(name, config.server_name)
    except InvalidIdentifier as e:
        raise AdminError(f"{name!r}: {e}") from None


def _new_user_id(config: Config, name: str) -> tuple[str, str]:
    """Validate a new user's name (localpart or user id); C{(user_id, localpart)}."""
    user_id = _target_user_id(config, name)
    localpart = parse_user_id(user_id)[0]
    try:
        validate_localpart(localpart)
    except InvalidIdentifier as e:
        raise AdminError(f"{localpart!r}: {e}") from None
    if localpart.isdigit():
        # Guests get numeric localparts from a sequence (Synapse refuses these too).
        raise AdminError(f"{localpart!r}: numeric user ids are reserved for guest users")
    return user_id, localpart


def read_password(args: argparse.Namespace) -> str:
    """
    The password from C{--password}, else asked twice on a terminal, else
    the first line of stdin.
    """
    if args.password is not None:
        password = args.password
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if password and getpass.getpass("Confirm password: ") != password:
            raise AdminError("passwords do not match")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise AdminError("the password must not be empty")
    return password


async def cmd_register_user(reactor: IRuntimeReactor, config: Config, args: argparse.Namespace,
                            user_id: str, localpart: str, password: str) -> None:
    from ruma_tx.services.passwords import PasswordHasher
    from ruma_tx.storage.accounts import AccountStore, UserExists

    password_hash = await PasswordHasher(reactor, config.passwords.bcrypt_rounds).hash(password)

    async def register(database: Database) -> None:
        # The display name defaults to the localpart, as Synapse's does.
        await AccountStore(database).create_user(
            user_id, password_hash, now_ms(reactor), is_admin=args.admin, displayname=localpart
        )

    try:
        await _with_database(reactor, config, register)
    except UserExists:
        raise AdminError(f"user {user_id} already exists") from None
    print(user_id)


async def cmd_deactivate_user(reactor: IRuntimeReactor, config: Config, args: argparse.Namespace) -> None:
    from ruma_tx.storage.accounts import AccountStore

    user_id = _target_user_id(config, args.user_id)

    async def deactivate(database: Database) -> list[str]:
        accounts = AccountStore(database)
        if await accounts.get_account(user_id) is None:
            raise AdminError(f"no such user: {user_id}")
        return await accounts.deactivate(user_id)

    revoked = await _with_database(reactor, config, deactivate)
    print(f"deactivated {user_id}; revoked {len(revoked)} access token(s)")


async def cmd_rotate_signing_key(reactor: IRuntimeReactor, config: Config) -> None:
    """
    Retire the signing key as of now (others keep checking what it signed
    until now) and make a new one, which the daemon uses from its next
    start. Refused while the daemon's embedded PostgreSQL runs: a running
    daemon would go on signing with the retired key.
    """
    if config.database.dsn is None and running_embedded_dsn(config) is not None:
        raise AdminError("the daemon is running (its embedded PostgreSQL is): stop it, then rotate")
    old_id, new_id = rotate_signing_key(config.signing_key_path, config.old_signing_keys_path, now_ms(reactor))
    print(f"retired {old_id} (kept in {config.old_signing_keys_path}); new signing key {new_id}")
    print("start the daemon to sign with it")


# --------------------------------------------------------------------------
# Command line


class _Parser(argparse.ArgumentParser):
    """Usage errors too are one line on stderr and exit code 1."""

    def error(self, message: str) -> NoReturn:
        _fail(f"{message} (see {self.prog} --help)")


async def _api_command(reactor: IRuntimeReactor, config: Config, args: argparse.Namespace) -> None:
    try:
        await run_api_command(reactor, config, args, lambda name: _target_user_id(config, name))
    except ApiCommandError as e:
        raise AdminError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Administer a ruma_tx homeserver.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser(
        "generate-config", help="write a complete, commented config and its secret key"
    )
    generate.add_argument("--server-name", required=True, help="the domain of the user ids")
    generate.add_argument("--output", "-o", required=True, help="the config file to create")
    generate.add_argument("--data-dir", default="var",
                          help="data folder, relative to the config file (default: var)")
    generate.add_argument("--port", type=int, default=8008, help="client API port (default: 8008)")

    migrate = commands.add_parser("migrate", help="apply the schema migrations and exit")
    migrate.add_argument("--config", "-c", required=True, help="the TOML config file")

    register = commands.add_parser("register-user", help="create an account")
    register.add_argument("--config", "-c", required=True, help="the TOML config file")
    register.add_argument("username", help="the localpart (alice) or user id (@alice:example.org)")
    register.add_argument("--password", "-p",
                          help="the password (visible to other local users in the process "
                               "list: prefer the prompt or stdin)")
    register.add_argument("--admin", action="store_true", help="make the user a server admin")

    deactivate = commands.add_parser(
        "deactivate-user", help="deactivate an account and revoke its access tokens"
    )
    deactivate.add_argument("--config", "-c", required=True, help="the TOML config file")
    deactivate.add_argument("user_id", help="the user id (@alice:example.org) or localpart")

    rotate = commands.add_parser(
        "rotate-signing-key",
        help="retire the federation signing key for a new one (with the daemon stopped)",
    )
    rotate.add_argument("--config", "-c", required=True, help="the TOML config file")
    add_api_commands(commands)

    synapse = commands.add_parser(
        "import-synapse", help="move a (stopped) Synapse server's data into a new, empty database"
    )
    synapse.add_argument("--config", "-c", required=True, help="the TOML config file")
    synapse.add_argument("--synapse-db", required=True,
                         help="Synapse's database: a PostgreSQL DSN or URI, or its SQLite file")
    synapse.add_argument("--signing-key", required=True, help="Synapse's signing key file (signing_key_path)")
    synapse.add_argument("--media-store", required=True, help="Synapse's media directory (media_store_path)")
    synapse.add_argument("--batch-size", type=int, default=500,
                         help="rows per committed batch (default: 500)")
    synapse.add_argument("--yes", "-y", action="store_true", help="do not ask before importing")

    backup = commands.add_parser(
        "backup", help="copy the database, media and secrets into a new directory (daemon running or not)"
    )
    backup.add_argument("--config", "-c", required=True, help="the TOML config file")
    backup.add_argument("--output", "-o", required=True, help="the directory to create (or an empty one)")

    restore = commands.add_parser(
        "restore", help="restore a backup into a new server of the same name (with the daemon stopped)"
    )
    restore.add_argument("--config", "-c", required=True, help="the TOML config file")
    restore.add_argument("--input", "-i", required=True, help="the directory `backup` wrote")
    return parser


def main(argv: list[str] | None = None) -> NoReturn:
    """The C{ruma-admin} console script."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "generate-config":
            cmd_generate_config(args)
            raise SystemExit(0)
        config = load_config(args.config)
        if args.command == "migrate":
            run = lambda reactor: cmd_migrate(reactor, config, args)  # noqa: E731
        elif args.command == "register-user":
            # Check the name before asking for a password.
            user_id, localpart = _new_user_id(config, args.username)
            password = read_password(args)
            run = lambda reactor: cmd_register_user(  # noqa: E731
                reactor, config, args, user_id, localpart, password
            )
        elif args.command == "deactivate-user":
            _target_user_id(config, args.user_id)
            run = lambda reactor: cmd_deactivate_user(reactor, config, args)  # noqa: E731
        elif args.command == "rotate-signing-key":
            run = lambda reactor: cmd_rotate_signing_key(reactor, config)  # noqa: E731
        elif args.command in API_COMMANDS:
            run = lambda reactor: _api_command(reactor, config, args)  # noqa: E731
        elif args.command == "import-synapse":
            from ruma_tx.runtime.synapse_import import cmd_import_synapse

            if args.batch_size < 1:
                raise AdminError("--batch-size must be at least 1")
            run = lambda reactor: cmd_import_synapse(reactor, config, args)  # noqa: E731
        elif args.command in ("backup", "restore"):
            from ruma_tx.runtime.backup import cmd_backup, cmd_restore

            command = cmd_backup if args.command == "backup" else cmd_restore
            run = lambda reactor: command(reactor, config, args)  # noqa: E731
        else:  # pragma: no cover (argparse refuses unknown commands)
            raise AdminError(f"unknown command {args.command}")
    except (AdminError, ConfigError) as e:
        _fail(str(e))
    except (EOFError, KeyboardInterrupt):
        _fail("interrupted")
    interrupted: list[bool] = []
    try:
        task.react(lambda reactor: defer.ensureDeferred(_run(reactor, run, interrupted)))
    except SystemExit as e:
        # react exits 0 when a signal stopped the reactor mid-command.
        if interrupted and not e.code:
            raise SystemExit(1) from None
        raise


async def _run(reactor: IRuntimeReactor, run: Callable[[IRuntimeReactor], Awaitable[None]],
               interrupted: list[bool]) -> None:
    """Run one command inside the reactor; errors become one line and exit 1."""
    done: list[bool] = []

    def on_shutdown() -> None:
        if not done:
            interrupted.append(True)
            print(f"{PROG}: error: interrupted", file=sys.stderr)

    reactor.addSystemEventTrigger("before", "shutdown", on_shutdown)
    try:
        await run(reactor)
    except (AdminError, ConfigError) as e:
        _fail(str(e))
    except Exception as e:  # noqa: BLE001 - one line, never a traceback
        _fail(f"unexpected {type(e).__name__}: {e}")
    finally:
        done.append(True)


if __name__ == "__main__":  # pragma: no cover
    main()
