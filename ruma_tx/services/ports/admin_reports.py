"""
Ports: event reports as the admin API shows them (implemented by
C{ruma_tx.storage.admin_reports.AdminReportStore}).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ruma_tx.matrix.types import JsonDict


@dataclass(frozen=True)
class EventReportFilter:
    """
    Which event reports a listing shows (Synapse's query parameters).

    @ivar reporter: only reports whose reporter's id contains this.
    @ivar room_id: only reports whose room id contains this.
    @ivar event_sender: only reports of events this user sent (exactly).
    """

    reporter: str | None = None
    room_id: str | None = None
    event_sender: str | None = None


@dataclass(frozen=True)
class EventReportView:
    """
    An event report with what an admin needs to judge it.

    @ivar sender: the reported event's sender (C{None} if the event is unknown).
    @ivar room_name: the room's current C{m.room.name}, if any.
    @ivar canonical_alias: the room's current canonical alias, if any.
    @ivar event_json: the event as stored (pruned once redacted); read
        only for a single report.
    """

    report_id: int
    received_ts: int
    room_id: str
    event_id: str
    reporter: str
    reason: str | None
    score: int | None
    sender: str | None
    room_name: str | None
    canonical_alias: str | None
    event_json: JsonDict | None = None


class AdminReportStorage(Protocol):
    async def get_event_reports(self, *, start: int, limit: int, newest_first: bool,
                                which: EventReportFilter) -> tuple[list[EventReportView], int]:
        """A page of the event reports C{which} selects (by offset), and how many it selects."""
        ...

    async def get_event_report(self, report_id: int) -> EventReportView | None:
        """The event report with its event's JSON."""
        ...

    async def delete_event_report(self, report_id: int) -> bool:
        """Delete it; whether it existed."""
        ...
