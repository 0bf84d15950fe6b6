"""
C{ruma-admin import-synapse}: moving a Synapse server into a new ruma_tx
database in one command (see docs/import-synapse.md).

This module wires it: it opens Synapse's database and ruma_tx's, builds the
steps of L{IMPORT_STEPS}, installs Synapse's signing key, runs the import
(L{SynapseImporter}) with a progress bar on stderr, and prints the final
counts. Exit code 0 only when every step's counts match.
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TextIO

from signedjson.key import read_signing_keys, write_signing_keys
from signedjson.types import SigningKey
from twisted.internet.threads import deferToThreadPool

from ruma_tx.matrix.signing import key_id
from ruma_tx.runtime.admin import AdminError, _with_database, running_embedded_dsn
from ruma_tx.runtime.config import Config
from ruma_tx.runtime.media import media_byte_store
from ruma_tx.runtime.reactor import IRuntimeReactor
from ruma_tx.runtime.secrets import replace_file
from ruma_tx.services.clock import now_ms
from ruma_tx.services.ports.synapse_import import ImportStep
from ruma_tx.services.synapse_import import ImportRefused, StepCount, SynapseImporter
from ruma_tx.storage.synapse_import import StepContext
from ruma_tx.storage.synapse_import.account_data import GlobalAccountDataStep, RoomAccountDataStep, TagsStep
from ruma_tx.storage.synapse_import.accounts import (
    DevicesStep,
    ProfilesStep,
    RateLimitOverridesStep,
    RegistrationTokensStep,
    UsersStep,
)
from ruma_tx.storage.synapse_import.e2ee import (
    CrossSigningKeysStep,
    CrossSigningSignaturesStep,
    DeviceKeysStep,
    FallbackKeysStep,
    KeyBackupKeysStep,
    KeyBackupVersionsStep,
    OneTimeKeysStep,
)
from ruma_tx.storage.synapse_import.media import MediaStep
from ruma_tx.storage.synapse_import.progress import ImportProgressStore
from ruma_tx.storage.synapse_import.push import PushersStep, PushRulesStep
from ruma_tx.storage.synapse_import.room_events import RoomEventsStep
from ruma_tx.storage.synapse_import.room_receipts import ReceiptsStep
from ruma_tx.storage.synapse_import.rooms import RoomsStep
from ruma_tx.storage.synapse_source import SynapseSourceError, open_synapse_source

if TYPE_CHECKING:
    from ruma_tx.storage.database import Database

#: Every import step, in the order they run: a step may rely on what the
#: steps before it imported (devices on users, keys on devices, pushers on
#: the rooms' events...). Each is made from the one L{StepContext}.
IMPORT_STEPS: tuple[Callable[[StepContext], ImportStep], ...] = (
    UsersStep,
    ProfilesStep,
    DevicesStep,
    DeviceKeysStep,
    OneTimeKeysStep,
    FallbackKeysStep,
    CrossSigningKeysStep,
    CrossSigningSignaturesStep,
    KeyBackupVersionsStep,
    KeyBackupKeysStep,
    MediaStep,
    RegistrationTokensStep,
    RateLimitOverridesStep,
    RoomsStep,
    RoomEventsStep,
    ReceiptsStep,
    GlobalAccountDataStep,
    RoomAccountDataStep,
    TagsStep,
    PushRulesStep,
    PushersStep,
)

#: Characters of the progress bar.
BAR_WIDTH = 30


class StderrProgress:
    """
    The progress bar, one line per step (C{users  [#####-----] 512/1024}).
    On a terminal the line is redrawn in place; otherwise (a log, a pipe)
    a new line is written at most every C{interval_s} seconds.
    """

    def __init__(self, stream: TextIO, names: list[str], interval_s: float = 1.0) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._width = max(map(len, names), default=0)
        self._interval_s = interval_s
        self._last_line = float("-inf")

    def _line(self, step: str, done: int, total: int) -> str:
        filled = BAR_WIDTH if total == 0 else BAR_WIDTH * done // total
        return f"{step:<{self._width}}  [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {done}/{total}"

    def _show(self, step: str, done: int, total: int, final: bool) -> None:
        line = self._line(step, done, total)
        if self._tty:
            self._stream.write("\r" + line + ("\n" if final else ""))
        elif final or time.monotonic() - self._last_line >= self._interval_s:
            self._stream.write(line + "\n")
            self._last_line = time.monotonic()
        self._stream.flush()

    def step_started(self, step: str, done: int, total: int) -> None:
        self._last_line = float("-inf")
        self._show(step, done, total, final=False)

    def advanced(self, step: str, done: int, total: int) -> None:
        self._show(step, done, total, final=False)

    def step_finished(self, step: str, done: int, total: int) -> None:
        self._show(step, done, total, final=True)


def read_synapse_signing_key(path: Path) -> SigningKey:
    """Synapse's signing key: the first of its file, the one it signs with."""
    try:
        keys = read_signing_keys(line for line in path.read_text("ascii").splitlines() if line.strip())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise AdminError(f"{path}: cannot read Synapse's signing key: {e}") from None
    if not keys:
        raise AdminError(f"{path}: no signing key in the file")
    return keys[0]


def install_signing_key(config: Config, key: SigningKey) -> str:
    """
    Make Synapse's signing key ruma_tx's, with its key id, so what Synapse
    signed stays verifiable and other servers see the same server; what it
    did with the key that was there, for the operator.
    """
    target = config.signing_key_path
    text = io.StringIO()
    write_signing_keys(text, [key])
    if target.exists():
        try:
            current = read_signing_keys(line for line in target.read_text("ascii").splitlines() if line.strip())
        except (OSError, UnicodeDecodeError, ValueError):
            current = []
        if current and key_id(current[0]) == key_id(key) and bytes(current[0]) == bytes(key):
            return f"signing key {key_id(key)} already installed in {target}"
    try:
        replace_file(target, text.getvalue().encode("ascii"))
    except OSError as e:
        raise AdminError(f"cannot write the signing key to {target}: {e}") from None
    return f"installed Synapse's signing key {key_id(key)} as {target}"


async def _confirm(reactor: IRuntimeReactor, args: argparse.Namespace, server_name: str, resuming: bool) -> None:
    """Ask before writing (in a thread: the prompt waits), unless C{--yes}; refuse without a terminal."""
    if args.yes:
        return
    what = "resume the unfinished import" if resuming else "import"
    if not sys.stdin.isatty():
        raise AdminError(f"about to {what} Synapse's {server_name}: pass --yes to go ahead")
    answer = await deferToThreadPool(reactor, reactor.getThreadPool(), input,
                                     f"{what.capitalize()} Synapse's {server_name} into this ruma_tx database? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise AdminError("cancelled")


def print_summary(counts: list[StepCount], stream: TextIO) -> None:
    """The verification table: per step, Synapse's count, ruma_tx's and whether they match."""
    width = max((len(count.step) for count in counts), default=4)
    print(f"{'step':<{width}}  {'synapse':>9}  {'ruma_tx':>9}", file=stream)
    for count in counts:
        mark = "ok" if count.matches else "MISMATCH"
        print(f"{count.step:<{width}}  {count.source:>9}  {count.imported:>9}  {mark}", file=stream)


async def cmd_import_synapse(reactor: IRuntimeReactor, config: Config, args: argparse.Namespace) -> None:
    from ruma_tx.storage.migrations import SchemaTooNew, migrate

    if config.database.dsn is None and running_embedded_dsn(config) is not None:
        raise AdminError("the daemon is running (its embedded PostgreSQL is): stop it, then import")
    media_store = Path(args.media_store)
    if not media_store.is_dir():
        raise AdminError(f"{media_store}: not a directory (Synapse's media_store_path)")
    signing_key = read_synapse_signing_key(Path(args.signing_key))
    try:
        source = await open_synapse_source(reactor, args.synapse_db)
    except SynapseSourceError as e:
        raise AdminError(str(e)) from None
    try:
        async def work(database: Database) -> list[StepCount]:
            try:
                await migrate(database, now_ms(reactor))
            except SchemaTooNew as e:
                raise AdminError(str(e)) from None
            context = StepContext(
                source=source, database=database, media=media_byte_store(config, reactor),
                media_store=media_store, temp_dir=config.data_dir / "media" / "tmp",
                server_name=config.server_name, now_ms=now_ms(reactor), reactor=reactor,
                warn=lambda message: print(f"warning: {message}", file=sys.stderr),
                batch_size=args.batch_size)
            steps = [make(context) for make in IMPORT_STEPS]
            view = StderrProgress(sys.stderr, [step.name for step in steps])
            importer = SynapseImporter(config.server_name, source.server_name, steps,
                                       ImportProgressStore(database), view, reactor)
            try:
                resuming = await importer.check()
            except ImportRefused as e:
                raise AdminError(str(e)) from None
            await _confirm(reactor, args, source.server_name, resuming)
            print(install_signing_key(config, signing_key), file=sys.stderr)
            if resuming:
                print("resuming the unfinished import", file=sys.stderr)
            return await importer.run()

        counts = await _with_database(reactor, config, work)
    finally:
        source.close()
    print_summary(counts, sys.stdout)
    if not all(count.matches for count in counts):
        raise AdminError("verification failed: the counts above differ (run the command again to retry)")
    print(f"imported {source.server_name}: every count matches; start the daemon "
          "(users log in again: their old access tokens are not valid here)")
