"""The resume record of an import from Synapse (the C{ImportProgress} port)."""
from __future__ import annotations

from ruma_tx.services.ports.synapse_import import StepProgress
from ruma_tx.storage.database import Database


class ImportProgressStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def imported_server(self) -> tuple[str, bool] | None:
        row = await self._database.fetch_one("SELECT server_name, finished_ts FROM synapse_import")
        return None if row is None else (row[0], row[1] is not None)

    async def holds_users_or_rooms(self) -> bool:
        row = await self._database.fetch_one(
            "SELECT EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM rooms)")
        return bool(row and row[0])

    async def begin(self, server_name: str, now_ms: int) -> None:
        await self._database.execute(
            "INSERT INTO synapse_import (server_name, started_ts) VALUES (%s, %s)"
            " ON CONFLICT (only_one) DO NOTHING", (server_name, now_ms))

    async def step_progress(self, step: str) -> StepProgress:
        row = await self._database.fetch_one(
            "SELECT checkpoint, done_count, finished FROM synapse_import_progress WHERE step = %s", (step,))
        if row is None:
            return StepProgress(checkpoint=None, done_count=0, finished=False)
        return StepProgress(checkpoint=row[0], done_count=row[1], finished=row[2])

    async def record_step(self, step: str, progress: StepProgress, now_ms: int) -> None:
        await self._database.execute(
            "INSERT INTO synapse_import_progress (step, checkpoint, done_count, finished, updated_ts)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (step) DO UPDATE SET checkpoint = EXCLUDED.checkpoint,"
            " done_count = EXCLUDED.done_count, finished = EXCLUDED.finished, updated_ts = EXCLUDED.updated_ts",
            (step, progress.checkpoint, progress.done_count, progress.finished, now_ms))

    async def finish(self, now_ms: int) -> None:
        await self._database.execute("UPDATE synapse_import SET finished_ts = %s", (now_ms,))
