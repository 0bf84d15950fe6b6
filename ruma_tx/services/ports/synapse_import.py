"""
What moving in from Synapse (C{ruma-admin import-synapse}) works through:
a read-only view of Synapse's database, and the import steps that copy
one kind of data each (users, devices, rooms, media...).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Protocol, Sequence


class SynapseSource(Protocol):
    """
    Read-only queries on Synapse's database, PostgreSQL or SQLite. Queries
    use C{%s} placeholders and C{%%} for a literal C{%} (psycopg2's style,
    converted for SQLite) and only SQL both accept.
    """

    server_name: str

    async def fetch_all(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]: ...

    async def table_exists(self, table: str) -> bool: ...


class ImportStep(Protocol):
    """
    One kind of data to import. Steps run in a fixed order (users before
    devices before rooms...), each in batches committed one at a time, so
    an interrupted import resumes after the last committed batch.
    """

    #: A short name, shown in the progress output and the resume record.
    name: str

    async def source_count(self) -> int:
        """How many items Synapse holds (for the progress bar and the final check)."""

    async def imported_count(self) -> int:
        """How many of them ruma_tx holds now (equal to C{source_count} when done)."""

    def batches(self, checkpoint: str | None) -> AsyncIterator[tuple[int, str]]:
        """
        Import everything after C{checkpoint} (C{None}: from the start),
        one committed batch at a time; yield C{(items in the batch,
        checkpoint after it)} after each commit. Importing a batch again
        (a crash between its commit and the recorded checkpoint) must be
        harmless: writes are idempotent.
        """


@dataclass(frozen=True)
class StepProgress:
    """
    What the resume record holds of one step.

    @ivar checkpoint: where its last committed batch ended (C{None}: not started).
    @ivar done_count: items imported so far (for the progress bar).
    """

    checkpoint: str | None
    done_count: int
    finished: bool


class ImportProgress(Protocol):
    """
    The resume record of an import, in ruma_tx's database: which Synapse
    server it moves in, and how far each step got.
    """

    async def imported_server(self) -> tuple[str, bool] | None:
        """The server name of the import this database holds and whether it finished; C{None}: none."""

    async def holds_users_or_rooms(self) -> bool:
        """Whether ruma_tx's database has any user or room."""

    async def begin(self, server_name: str, now_ms: int) -> None:
        """Record that an import of C{server_name} started (nothing when it is already recorded)."""

    async def step_progress(self, step: str) -> StepProgress:
        """How far C{step} got (not started: no checkpoint, nothing done)."""

    async def record_step(self, step: str, progress: StepProgress, now_ms: int) -> None:
        """Record how far C{step} got after a committed batch."""

    async def finish(self, now_ms: int) -> None:
        """Record that the import finished and was verified."""
