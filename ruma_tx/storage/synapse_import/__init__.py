"""
The steps of C{ruma-admin import-synapse} (the C{ImportStep} port): each
reads one kind of data from Synapse's database and writes it into ruma_tx's
tables with SQL, batch by batch, every write idempotent (a batch imported
twice after a crash leaves the same rows).

What every step is built from is one L{StepContext}; the list of steps,
in the order they run, is C{IMPORT_STEPS} in C{ruma_tx.runtime.synapse_import}.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable, ClassVar, Sequence

from twisted.internet.interfaces import IReactorThreads

from ruma_tx.services.ports.media import MediaFiles
from ruma_tx.services.ports.synapse_import import SynapseSource
from ruma_tx.storage.database import Database, Transaction


@dataclass(frozen=True)
class StepContext:
    """
    What the import steps work with.

    @ivar source: Synapse's database, read-only.
    @ivar database: ruma_tx's database.
    @ivar media: ruma_tx's media byte store (local disk or S3).
    @ivar media_store: Synapse's C{media_store_path} directory.
    @ivar temp_dir: for files on their way into C{media}, on its file system
        when local (ruma_tx's C{media/tmp}).
    @ivar server_name: the server both are (checked equal before any step runs).
    @ivar now_ms: when the import (this run) started.
    @ivar reactor: runs file work in its threads.
    @ivar warn: tells the operator of something not imported (one line).
    @ivar batch_size: source rows per committed batch.
    """

    source: SynapseSource
    database: Database
    media: MediaFiles
    media_store: Path
    temp_dir: Path
    server_name: str
    now_ms: int
    reactor: IReactorThreads
    warn: Callable[[str], None]
    batch_size: int = 500


#: The stream position of imported account data, receipts and the like: the
#: stream's start. Clients that moved must log in again and sync from
#: scratch, so they get all of it; later changes come at higher positions.
IMPORT_POSITION = 1


def _checkpoint(row: Sequence[Any], width: int) -> str:
    return json.dumps(list(row[:width]))


async def keyset_batches(source: SynapseSource, select: str, where: str, key: Sequence[str],
                         checkpoint: str | None, batch_size: int) -> AsyncIterator[tuple[list[tuple], str]]:
    """
    Walk the rows of C{SELECT <select> WHERE <where>} in the order of the
    C{key} columns (which the select list starts with, and which are
    unique), C{batch_size} rows at a time, from after C{checkpoint}:
    yield each batch and the checkpoint after it (the key of its last row,
    as JSON).

    @param select: C{"<columns> FROM <tables>"}, the key columns first.
    @param where: a condition on the rows (C{"TRUE"}: all).
    """
    after = None if checkpoint is None else json.loads(checkpoint)
    columns = ", ".join(key)
    holes = ", ".join(["%s"] * len(key))
    while True:
        sql = f"SELECT {select} WHERE ({where})"
        args: list[object] = []
        if after is not None:
            sql += f" AND ({columns}) > ({holes})"
            args.extend(after)
        sql += f" ORDER BY {columns} LIMIT {int(batch_size)}"
        rows = await source.fetch_all(sql, args)
        if not rows:
            return
        yield rows, _checkpoint(rows[-1], len(key))
        if len(rows) < batch_size:
            return
        after = list(rows[-1][:len(key)])


async def count(source: SynapseSource, select_from: str, where: str = "TRUE") -> int:
    """
    C{SELECT COUNT(*) FROM <select_from> WHERE <where>} on Synapse's database
    (C{select_from}: a table, or tables and joins). For the rows of a
    L{keyset_batches} query (a select list and its FROM), see L{count_rows}.
    """
    rows = await source.fetch_all(f"SELECT COUNT(*) FROM {select_from} WHERE ({where})")
    return int(rows[0][0])


async def count_rows(source: SynapseSource, select: str, where: str = "TRUE") -> int:
    """How many rows C{SELECT <select> WHERE <where>} gives (the rows L{keyset_batches} walks)."""
    return await count(source, f"(SELECT {select} WHERE ({where})) AS source_rows")


class CopyStep:
    """
    A step that copies the rows of one query on Synapse's database
    (C{SELECT <select> WHERE <where>}, in the order of its unique C{key}
    columns, which the select list starts with) into ruma_tx's tables.

    Subclasses say what to read and how to L{write} a batch; C{imported} is
    the query counting what ruma_tx holds of it (the database was empty
    before the import, so whole tables count).
    """

    name: str
    select: ClassVar[str]
    key: ClassVar[tuple[str, ...]]
    where: ClassVar[str] = "TRUE"
    imported: ClassVar[str]

    def __init__(self, context: StepContext) -> None:
        self.context = context

    async def source_count(self) -> int:
        return await count_rows(self.context.source, self.select, self.where)

    async def imported_count(self) -> int:
        row = await self.context.database.fetch_one(self.imported)
        return int(row[0]) if row else 0

    async def batches(self, checkpoint: str | None) -> AsyncIterator[tuple[int, str]]:
        context = self.context
        async for rows, after in keyset_batches(context.source, self.select, self.where, self.key, checkpoint,
                                                context.batch_size):
            prepared = await self.prepare(rows)
            await context.database.transaction(f"import_{self.name}", self.write, prepared)
            yield len(rows), after

    async def prepare(self, rows: list[tuple]) -> list[tuple]:
        """Work on a batch outside the transaction (copying files...); the rows to L{write}."""
        return rows

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        raise NotImplementedError


def as_json(text: str | bytes | None) -> Any:
    """A JSON column of Synapse's (text, or bytes on some tables), parsed; C{None} for NULL."""
    if text is None:
        return None
    return json.loads(text)
