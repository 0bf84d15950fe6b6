"""
Moving a Synapse server's data into ruma_tx (C{ruma-admin import-synapse}):
the checks before anything is written, the steps run in order with their
progress recorded after every committed batch (so a killed import resumes
where it stopped), and the final verification of the counts.

The steps themselves (what is copied, and how) are storage; the list of
them is C{IMPORT_STEPS} in C{ruma_tx.runtime.synapse_import}.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.ports.synapse_import import ImportProgress, ImportStep, StepProgress


class ImportRefused(Exception):
    """The import must not run into this database (a one-line reason for the operator)."""


class ProgressView(Protocol):
    """Shows the operator how far each step got."""

    def step_started(self, step: str, done: int, total: int) -> None: ...

    def advanced(self, step: str, done: int, total: int) -> None: ...

    def step_finished(self, step: str, done: int, total: int) -> None: ...


@dataclass(frozen=True)
class StepCount:
    """A step's items in Synapse and in ruma_tx after the import."""

    step: str
    source: int
    imported: int

    @property
    def matches(self) -> bool:
        return self.source == self.imported


class SynapseImporter:
    """
    One import of Synapse's database into ruma_tx's.

    @param server_name: ruma_tx's (its config's).
    @param source_server_name: Synapse's.
    @param steps: in the order they run (users before what belongs to them).
    """

    def __init__(self, server_name: str, source_server_name: str, steps: Sequence[ImportStep],
                 progress: ImportProgress, view: ProgressView, clock: Clock) -> None:
        names = [step.name for step in steps]
        if len(set(names)) != len(names):
            raise ValueError(f"import steps share a name: {names}")
        self._server_name = server_name
        self._source_server_name = source_server_name
        self._steps = steps
        self._progress = progress
        self._view = view
        self._clock = clock

    async def check(self) -> bool:
        """
        Refuse an import that would mix servers or data; return whether
        this resumes an unfinished import.

        @raise ImportRefused: the server names differ; the database holds
            users or rooms of its own; or it holds a finished import.
        """
        if self._server_name != self._source_server_name:
            raise ImportRefused(
                f"Synapse's server name is {self._source_server_name} but ruma_tx's config says "
                f"{self._server_name}: user and room ids cannot change, so they must be the same")
        recorded = await self._progress.imported_server()
        if recorded is None:
            if await self._progress.holds_users_or_rooms():
                raise ImportRefused("ruma_tx's database already holds users or rooms: "
                                    "import only into a new, empty database")
            return False
        server_name, finished = recorded
        if server_name != self._source_server_name:
            raise ImportRefused(f"this database holds an import of {server_name}, not of "
                                f"{self._source_server_name}")
        if finished:
            raise ImportRefused(f"this database already holds a finished import of {server_name}")
        return True

    async def run(self) -> list[StepCount]:
        """
        Run every step not finished yet, from its last checkpoint, then
        compare each step's counts. The import is recorded finished only
        when they all match; a step whose counts differ is recorded as not
        started, so running the import again (after fixing the cause, a
        missing media file say) walks it again: its writes are idempotent.
        """
        await self._progress.begin(self._source_server_name, now_ms(self._clock))
        for step in self._steps:
            await self._run_step(step)
        counts = [StepCount(step.name, await step.source_count(), await step.imported_count())
                  for step in self._steps]
        for count in counts:
            if not count.matches:
                await self._progress.record_step(count.step, StepProgress(None, 0, False), now_ms(self._clock))
        if all(count.matches for count in counts):
            await self._progress.finish(now_ms(self._clock))
        return counts

    async def _run_step(self, step: ImportStep) -> None:
        progress = await self._progress.step_progress(step.name)
        total = await step.source_count()
        # A batch imported again after a crash counts twice: never show more than there is.
        shown = lambda done: min(done, total)  # noqa: E731
        if progress.finished:
            self._view.step_finished(step.name, shown(progress.done_count), total)
            return
        self._view.step_started(step.name, shown(progress.done_count), total)
        done = progress.done_count
        checkpoint = progress.checkpoint
        async for items, checkpoint in step.batches(progress.checkpoint):
            done += items
            await self._progress.record_step(step.name, StepProgress(checkpoint, done, False),
                                             now_ms(self._clock))
            self._view.advanced(step.name, shown(done), total)
        await self._progress.record_step(step.name, StepProgress(checkpoint, done, True), now_ms(self._clock))
        self._view.step_finished(step.name, shown(done), total)
