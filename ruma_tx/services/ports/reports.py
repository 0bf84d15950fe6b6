"""
Ports: records and protocols shared by services and the storage that implements them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

#: The kinds of report (spec: "Reporting Content").
REPORT_KINDS = ("event", "room", "user")


@dataclass(frozen=True)
class Report:
    """
    A report kept for the server's admins.

    @ivar kind: C{"event"}, C{"room"} or C{"user"}.
    @ivar room_id: the reported room, or the room of the reported event.
    @ivar user_id: the reported user (a user report).
    @ivar report_id: the order reports arrived in (0 before it is stored).
    """

    kind: str
    reporter: str
    received_ts: int
    reason: str | None
    room_id: str | None = None
    event_id: str | None = None
    user_id: str | None = None
    score: int | None = None
    report_id: int = 0


class ReportStorage(Protocol):
    """What the services need of report storage (implemented by C{ruma_tx.storage.reports.ReportStore})."""

    async def add_report(self, report: Report) -> int: ...
    async def get_reports(self, *, before: int | None, limit: int, kind: str | None) -> list[Report]: ...
