"""
The server admins' side of event reports (Synapse's admin API "Event
Reports"): list them with what a moderator needs to judge them, read one
with its event, delete one once dealt with. Users file them through
L{ruma_tx.services.reports.ContentReports}.
"""
from __future__ import annotations

from ruma_tx.matrix.errors import not_found
from ruma_tx.services.ports.admin_reports import AdminReportStorage, EventReportFilter, EventReportView


class EventReportsAdmin:
    """@param reports: the L{ruma_tx.storage.admin_reports.AdminReportStore}."""

    def __init__(self, reports: AdminReportStorage) -> None:
        self._reports = reports

    async def list_reports(self, *, start: int, limit: int, newest_first: bool,
                           which: EventReportFilter) -> tuple[list[EventReportView], int]:
        """A page of the reports, by offset, and how many C{which} selects in all."""
        return await self._reports.get_event_reports(start=start, limit=limit, newest_first=newest_first,
                                                     which=which)

    async def get_report(self, report_id: int) -> EventReportView:
        """@raise NotFound: no event report has that id."""
        report = await self._reports.get_event_report(report_id)
        if report is None:
            raise not_found("Event report not found")
        return report

    async def delete_report(self, report_id: int) -> None:
        """@raise NotFound: no event report has that id."""
        if not await self._reports.delete_event_report(report_id):
            raise not_found("Event report not found")
