"""Event reports for the admin API: listed, read with their event, deleted. SQL only."""
from __future__ import annotations

import json
from typing import Any, Sequence

from ruma_tx.services.ports.admin_reports import EventReportFilter, EventReportView
from ruma_tx.storage.database import Database


def _room_state(event_type: str, key: str) -> str:
    """The C{content.key} of the report's room's current C{event_type} state (state key "")."""
    return (f"(SELECT s.pdu::jsonb #>> '{{content,{key}}}' FROM current_state c"
            " JOIN events s ON s.event_id = c.event_id"
            f" WHERE c.room_id = r.room_id AND c.type = '{event_type}' AND c.state_key = '')")


_COLUMNS = ("r.report_id, r.received_ts, r.room_id, r.event_id, r.reporter, r.reason, r.score, e.sender,"
            f" {_room_state('m.room.name', 'name')}, {_room_state('m.room.canonical_alias', 'alias')}")
_FROM = " FROM content_reports r LEFT JOIN events e ON e.event_id = r.event_id"
# strpos, not LIKE: an admin's "_" or "%" is a character to find, not a pattern.
_WHERE = (" WHERE r.kind = 'event'"
          " AND (%(reporter)s::text IS NULL OR strpos(r.reporter, %(reporter)s) > 0)"
          " AND (%(room_id)s::text IS NULL OR strpos(r.room_id, %(room_id)s) > 0)"
          " AND (%(sender)s::text IS NULL OR e.sender = %(sender)s)")


def _view(row: Sequence[Any], event_json: str | None = None) -> EventReportView:
    report_id, received_ts, room_id, event_id, reporter, reason, score, sender, name, alias = row
    return EventReportView(report_id, received_ts, room_id, event_id, reporter, reason, score, sender, name, alias,
                           None if event_json is None else json.loads(event_json))


class AdminReportStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_event_reports(self, *, start: int, limit: int, newest_first: bool,
                                which: EventReportFilter) -> tuple[list[EventReportView], int]:
        args = {"reporter": which.reporter, "room_id": which.room_id, "sender": which.event_sender,
                "limit": limit, "start": start}
        order = "DESC" if newest_first else "ASC"
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS}{_FROM}{_WHERE} ORDER BY r.report_id {order} LIMIT %(limit)s OFFSET %(start)s",
            args)
        total = await self._db.fetch_one(f"SELECT count(*){_FROM}{_WHERE}", args)
        assert total is not None  # an aggregate: always one row
        return [_view(row) for row in rows], int(total[0])

    async def get_event_report(self, report_id: int) -> EventReportView | None:
        row = await self._db.fetch_one(
            f"SELECT {_COLUMNS}, e.pdu{_FROM} WHERE r.kind = 'event' AND r.report_id = %s", (report_id,))
        return None if row is None else _view(row[:-1], row[-1])

    async def delete_event_report(self, report_id: int) -> bool:
        row = await self._db.fetch_one(
            "DELETE FROM content_reports WHERE kind = 'event' AND report_id = %s RETURNING report_id",
            (report_id,))
        return row is not None
