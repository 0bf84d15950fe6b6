"""
C{ruma-admin backup} and C{ruma-admin restore} (see docs/backup.md).

A backup is a directory holding:

  - C{database.dump}: the whole database, C{pg_dump --format=custom}: a
    consistent snapshot, whether the daemon runs or not;
  - C{media/}: C{data_dir/media} without its upload spool (local media
    only: with C{[media] backend = "s3"} the media stays in the bucket);
  - C{secrets/}: the signing key, the macaroon key and, if any, the retired
    signing keys, mode 0600;
  - C{manifest.json}: what the backup holds, written last: a directory
    without one is not a (finished) backup.

PostgreSQL's programs run as child processes of the reactor and the files
are copied in threads. A DSN's password reaches pg_dump and pg_restore in
their environment (C{PGPASSWORD}), never on their command line, and is
masked in every message.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

import psycopg2
import psycopg2.extensions
from twisted.internet import defer, threads

from ruma_tx.runtime.admin import PROG, AdminError, database_dsn, running_embedded_dsn, with_dsn_database
from ruma_tx.runtime.config import Config
from ruma_tx.runtime.postgres_tools import CollectingProtocol, EmbeddedClusterError, find_pg_binary
from ruma_tx.runtime.reactor import IRuntimeReactor
from ruma_tx.runtime.secrets import replace_file
from ruma_tx.services.clock import now_ms
from ruma_tx.storage import backups
from ruma_tx.storage.migrations import available_migrations

if TYPE_CHECKING:
    from ruma_tx.storage.database import Database

T = TypeVar("T")

#: The version of the backup layout, in the manifest.
FORMAT = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
MEDIA = "media"
SECRETS = "secrets"
#: The upload spool of C{data_dir/media}: files being received, never backed up.
MEDIA_SPOOL = "tmp"
#: The secrets' file names in a backup's C{secrets/}, in L{secret_paths}' order.
SECRET_NAMES = ("signing.key", "macaroon_secret.key", "old_signing_keys.json")
#: The secrets without which a restored server is another one: the tokens
#: it issued and the events it signed would no longer verify.
REQUIRED_SECRETS = SECRET_NAMES[:2]


def secret_paths(config: Config) -> dict[str, Path]:
    """Each secret's file name in a backup's C{secrets/} -> its path for C{config}."""
    return dict(zip(SECRET_NAMES, (config.signing_key_path, config.macaroon_key_path,
                                   config.old_signing_keys_path)))


def masked_dsn(dsn: str) -> str:
    """C{dsn} fit for a message: its password, if any, replaced by C{***}."""
    try:
        params = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError:
        return "(an invalid DSN)"
    if "password" in params:
        params["password"] = "***"
    return psycopg2.extensions.make_dsn(**params)


# --------------------------------------------------------------------------
# PostgreSQL's programs


def pg_program(name: str, major: int) -> str:
    """
    PostgreSQL's program C{name} of the server's major version when it is
    installed (pg_dump refuses a server newer than itself), else the one
    L{find_pg_binary} finds.
    """
    own = Path("/usr/lib/postgresql") / str(major) / "bin" / name
    if os.access(own, os.X_OK):
        return str(own)
    try:
        return find_pg_binary(name)
    except EmbeddedClusterError:
        raise AdminError(f"cannot find {name} (not on PATH nor in /usr/lib/postgresql/*/bin): install "
                         f"PostgreSQL {major}'s client programs (e.g. apt-get install "
                         f"postgresql-client-{major})") from None


async def run_pg_program(reactor: IRuntimeReactor, program: str, args: list[str], dsn: str) -> None:
    """
    Run C{program --dbname=<dsn without its password> args...} with the
    password in its environment.

    @raise AdminError: naming its first error line, if it fails.
    """
    params = psycopg2.extensions.parse_dsn(dsn)
    env = dict(os.environ)
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = password
    argv = [program, "--no-password", f"--dbname={psycopg2.extensions.make_dsn(**params)}", *args]
    collected = CollectingProtocol()
    try:
        reactor.spawnProcess(collected, program, argv, env=env)
    except OSError as e:
        raise AdminError(f"cannot run {program}: {e}") from None
    code, signal = await collected.wait()
    if code != 0:
        lines = collected.lines()
        errors = [line for line in lines if "error" in line.lower()] or lines[-1:] or ["no output"]
        how = f"killed by signal {signal}" if signal else f"exit code {code}"
        raise AdminError(f"{Path(program).name} failed ({how}): {errors[0]}")


# --------------------------------------------------------------------------
# Files (each function runs in a thread)


def _in_thread(reactor: IRuntimeReactor, fn: Callable[..., T], *args: Any) -> defer.Deferred[T]:
    return threads.deferToThreadPool(reactor, reactor.getThreadPool(), fn, *args)


def _media_files(root: Path) -> Iterator[Path]:
    """
    The files under C{root} (relative to it), without the upload spool nor
    the temporary files of files being put in place (named C{.*}).
    """
    for directory, subdirectories, files in os.walk(root):
        if Path(directory) == root and MEDIA_SPOOL in subdirectories:
            subdirectories.remove(MEDIA_SPOOL)
        subdirectories.sort()
        for name in sorted(files):
            if not name.startswith("."):
                yield (Path(directory) / name).relative_to(root)


def make_backup_dir(directory: Path) -> bool:
    """
    Create C{directory} (mode 0700: it will hold the secrets), or accept it
    empty; whether it was created.

    @raise AdminError: if it exists and is not an empty directory.
    """
    try:
        directory.mkdir(mode=0o700, parents=True)
        return True
    except FileExistsError:
        pass
    except OSError as e:
        raise AdminError(f"cannot create {directory}: {e.strerror}") from None
    if not directory.is_dir():
        raise AdminError(f"{directory} exists and is not a directory")
    if any(directory.iterdir()):
        raise AdminError(f"{directory} is not empty: back up into a new or empty directory")
    return False


def remove_unfinished(directory: Path, created: bool) -> None:
    """Remove what a failed backup wrote into C{directory} (and the directory if it made it)."""
    for name in (DUMP, MANIFEST):
        (directory / name).unlink(missing_ok=True)
    for name in (MEDIA, SECRETS):
        shutil.rmtree(directory / name, ignore_errors=True)
    if created:
        try:
            directory.rmdir()
        except OSError:
            pass  # not empty: something else wrote there; leave it


def create_private_file(path: Path, data: bytes = b"") -> None:
    """Create C{path} (which must not exist) with mode 0600, holding C{data}."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as stream:
        os.fchmod(stream.fileno(), 0o600)  # whatever the umask
        stream.write(data)


def copy_media_out(root: Path, target: Path) -> tuple[int, int]:
    """Copy the media files under C{root} to C{target} (made here); C{(files, bytes)} copied."""
    target.mkdir()
    count = size = 0
    for relative in _media_files(root):
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(root / relative, destination)
        except FileNotFoundError:
            continue  # deleted by the running daemon since the walk saw it
        count += 1
        size += destination.stat().st_size
    return count, size


def copy_media_in(source: Path, root: Path) -> tuple[int, int]:
    """
    Copy the media files under C{source} into C{root}, each whole or not at
    all (copied beside its place under a temporary name, then renamed);
    C{(files, bytes)} copied. Files are named by their content's hash: one
    already there holds the same bytes.
    """
    count = size = 0
    for relative in _media_files(source):
        destination = root / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{destination.name}-", dir=destination.parent)
        try:
            with os.fdopen(fd, "wb") as out, open(source / relative, "rb") as data:
                shutil.copyfileobj(data, out)
            shutil.copystat(source / relative, temporary)
            os.replace(temporary, destination)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        count += 1
        size += destination.stat().st_size
    return count, size


def copy_secrets_out(config: Config, target: Path) -> list[str]:
    """Copy the secrets of C{config} that exist to C{target}, mode 0600; their names."""
    target.mkdir(mode=0o700)
    copied = []
    for name, path in secret_paths(config).items():
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue  # only old_signing_keys.json may be missing: checked before
        create_private_file(target / name, data)
        copied.append(name)
    return copied


def copy_secrets_in(source: Path, names: tuple[str, ...], config: Config) -> None:
    """Put the secrets C{names} of C{source} in place for C{config}, each atomically, mode 0600."""
    paths = secret_paths(config)
    for name in names:
        replace_file(paths[name], (source / name).read_bytes())


# --------------------------------------------------------------------------
# The manifest


@dataclass(frozen=True)
class Manifest:
    """What C{restore} needs of a backup's C{manifest.json}."""

    server_name: str
    schema_version: int
    media_included: bool
    secrets: tuple[str, ...]

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        """
        @raise AdminError: if C{directory} holds no manifest, or one this
            code does not read.
        """
        path = directory / MANIFEST
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise AdminError(f"{directory} has no {MANIFEST}: it is not a backup made by "
                             f"`{PROG} backup`, or an unfinished one") from None
        except (OSError, ValueError) as e:
            raise AdminError(f"{path}: cannot read the manifest: {e}") from None
        try:
            if raw["format"] != FORMAT:
                raise ValueError(f"format {raw['format']!r}, this ruma_tx reads format {FORMAT}")
            manifest = cls(raw["server_name"], raw["schema_version"], raw["media"]["included"],
                           tuple(raw["secrets"]))
            if not (isinstance(manifest.server_name, str) and type(manifest.schema_version) is int
                    and type(manifest.media_included) is bool):
                raise ValueError("server_name, schema_version or media.included has the wrong type")
            unknown = set(manifest.secrets) - set(SECRET_NAMES)
            if unknown:
                raise ValueError(f"unknown secrets {sorted(map(str, unknown))}")
        except (KeyError, TypeError, ValueError) as e:
            raise AdminError(f"{path}: not a valid backup manifest: {e}") from None
        return manifest


def manifest_json(config: Config, schema_version: int, postgresql_major: int, created_ms: int,
                  media: dict[str, object], secrets: list[str]) -> bytes:
    created = datetime.fromtimestamp(created_ms / 1000, tz=timezone.utc)
    return json.dumps({
        "format": FORMAT,
        "server_name": config.server_name,
        "schema_version": schema_version,
        "created_ts": created_ms,
        "created": created.isoformat(timespec="seconds"),
        "ruma_tx_version": importlib.metadata.version("ruma_tx"),
        "database": {"file": DUMP, "format": "pg_dump --format=custom",
                     "postgresql_major": postgresql_major},
        "media": media,
        "secrets": secrets,
    }, indent=2).encode("utf-8") + b"\n"


# --------------------------------------------------------------------------
# The commands


def _progress(line: str) -> None:
    print(line, flush=True)


async def _describe_for_backup(database: Database) -> tuple[int | None, int]:
    return await backups.schema_version(database), await backups.postgresql_major(database)


async def _describe_for_restore(database: Database) -> tuple[bool, int]:
    return await backups.holds_server(database), await backups.postgresql_major(database)


async def cmd_backup(reactor: IRuntimeReactor, config: Config, args: argparse.Namespace) -> None:
    """
    Dump the database first, then copy the media: every media file the dump
    names was stored before the dump began (uploads write the file, then
    the row), so it is there to copy.
    """
    output = Path(args.output).absolute()
    for name in REQUIRED_SECRETS:
        path = secret_paths(config)[name]
        if not path.is_file():
            raise AdminError(f"no {path}: there is no server to back up here "
                             "(it is made on the daemon's first start)")
    created = await _in_thread(reactor, make_backup_dir, output)
    try:
        await _back_up(reactor, config, output)
    except Exception:
        await _in_thread(reactor, remove_unfinished, output, created)
        raise


async def _back_up(reactor: IRuntimeReactor, config: Config, output: Path) -> None:
    dump = output / DUMP
    async with database_dsn(reactor, config) as dsn:
        version, major = await with_dsn_database(reactor, config, dsn, _describe_for_backup)
        if version is None:
            raise AdminError("the database has no ruma_tx schema: there is no server to back up")
        _progress(f"backing up {config.server_name} (schema version {version:03d}) into {output}")
        _progress(f"database: pg_dump of {masked_dsn(dsn)}")
        await _in_thread(reactor, create_private_file, dump)
        await run_pg_program(reactor, pg_program("pg_dump", major),
                             ["--format=custom", f"--file={dump}"], dsn)
    _progress(f"database: {dump.stat().st_size} bytes in {DUMP}")
    if config.media.backend == "s3" and config.media.s3 is not None:
        media: dict[str, object] = {"backend": "s3", "included": False, "bucket": config.media.s3.bucket,
                                    "prefix": config.media.s3.prefix}
        _progress(f"media: in the S3 bucket {config.media.s3.bucket}, not copied "
                  "(back the bucket up with its provider's tools)")
    else:
        files, size = await _in_thread(reactor, copy_media_out, config.data_dir / MEDIA, output / MEDIA)
        media = {"backend": "local", "included": True, "files": files, "bytes": size}
        _progress(f"media: {files} files, {size} bytes")
    secrets = await _in_thread(reactor, copy_secrets_out, config, output / SECRETS)
    _progress(f"secrets: {', '.join(secrets)}")
    manifest = manifest_json(config, version, major, now_ms(reactor), media, secrets)
    await _in_thread(reactor, replace_file, output / MANIFEST, manifest)
    _progress(f"wrote {MANIFEST}: the backup is complete")


def _check_backup(source: Path, manifest: Manifest, config: Config) -> None:
    """Refuse a backup that is not this server's, not whole, or that this code cannot run."""
    if manifest.server_name != config.server_name:
        raise AdminError(f"the backup is of {manifest.server_name}, but the config's server_name is "
                         f"{config.server_name}: a server cannot change its name")
    newest = max((version for version, _, _ in available_migrations()), default=0)
    if manifest.schema_version > newest:
        raise AdminError(f"the backup's schema version {manifest.schema_version:03d} is newer than this "
                         f"ruma_tx knows ({newest:03d}): restore it with the ruma_tx that made it, or newer")
    missing = [name for name in REQUIRED_SECRETS if name not in manifest.secrets]
    missing += [name for name in (DUMP, *(f"{SECRETS}/{name}" for name in manifest.secrets))
                if not (source / name).is_file()]
    if manifest.media_included and not (source / MEDIA).is_dir():
        missing.append(f"{MEDIA}/")
    if missing:
        raise AdminError(f"the backup in {source} is incomplete: no {', '.join(missing)}")
    if manifest.media_included and config.media.backend == "s3":
        raise AdminError(f"the backup holds local media files but [media] backend is s3 here: restore "
                         f"with backend = \"local\", or copy {source / MEDIA}/content into the bucket "
                         "yourself (see docs/backup.md)")


async def cmd_restore(reactor: IRuntimeReactor, config: Config, args: argparse.Namespace) -> None:
    """
    Restore the files first and the database last, in one transaction: the
    database stays empty until everything else is in place, so a failed
    restore can simply be run again. (Secrets replaced in a server whose
    database is empty protected nothing yet.)
    """
    source = Path(args.input).absolute()
    manifest = Manifest.read(source)
    _check_backup(source, manifest, config)
    if config.database.dsn is None and running_embedded_dsn(config) is not None:
        raise AdminError("the daemon is running (its embedded PostgreSQL is): stop it, then restore")
    async with database_dsn(reactor, config) as dsn:
        holds_server, major = await with_dsn_database(reactor, config, dsn, _describe_for_restore)
        if holds_server:
            raise AdminError(f"the database ({masked_dsn(dsn)}) is not empty (it has a ruma_tx schema or "
                             "users): restore only into a new, empty database")
        _progress(f"restoring {manifest.server_name} (schema version {manifest.schema_version:03d}) "
                  f"from {source}")
        if manifest.media_included:
            files, size = await _in_thread(reactor, copy_media_in, source / MEDIA, config.data_dir / MEDIA)
            _progress(f"media: {files} files, {size} bytes")
        else:
            _progress("media: not in the backup (S3): point [media.s3] at the same bucket")
        await _in_thread(reactor, copy_secrets_in, source / SECRETS, manifest.secrets, config)
        _progress(f"secrets: {', '.join(manifest.secrets)}")
        _progress(f"database: pg_restore into {masked_dsn(dsn)}")
        role = psycopg2.extensions.parse_dsn(dsn).get("user")
        await run_pg_program(reactor, pg_program("pg_restore", major), [
            "--no-owner", "--no-privileges", *([f"--role={role}"] if role else []),
            "--single-transaction", str(source / DUMP)], dsn)
    _progress(f"restored {manifest.server_name}: start the daemon")
