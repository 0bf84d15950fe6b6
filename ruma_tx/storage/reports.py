"""Reports of events, rooms and users, for the server's admins. SQL only."""
from __future__ import annotations

from ruma_tx.services.ports.reports import Report
from ruma_tx.storage.database import Database

_COLUMNS = ("kind, reporter, received_ts, reason, room_id, event_id, target_user_id, score, report_id")


class ReportStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def add_report(self, report: Report) -> int:
        """Store a report; return its id."""
        row = await self._db.fetch_one(
            "INSERT INTO content_reports"
            " (kind, reporter, received_ts, reason, room_id, event_id, target_user_id, score)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING report_id",
            (report.kind, report.reporter, report.received_ts, report.reason, report.room_id,
             report.event_id, report.user_id, report.score),
        )
        assert row is not None
        return int(row[0])

    async def get_reports(self, *, before: int | None, limit: int, kind: str | None) -> list[Report]:
        """
        The newest reports (of one kind, if given) with ids below
        C{before}, newest first.
        """
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM content_reports"
            " WHERE (%s::text IS NULL OR kind = %s) AND (%s::bigint IS NULL OR report_id < %s)"
            " ORDER BY report_id DESC LIMIT %s",
            (kind, kind, before, before, limit),
        )
        return [Report(kind, reporter, received_ts, reason, room_id, event_id, user_id, score, report_id)
                for kind, reporter, received_ts, reason, room_id, event_id, user_id, score, report_id in rows]
