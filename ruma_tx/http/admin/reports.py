"""
The admin API's event reports (Synapse's "Event Reports"): what users
reported, for the admins' moderation page.
"""
from __future__ import annotations

from ruma_tx.http.admin.paging import numeric_id, read_page
from ruma_tx.http.parsing import query_arg
from ruma_tx.http.routing import SYNAPSE_ADMIN, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.admin_reports import EventReportsAdmin
from ruma_tx.services.guard import Requester
from ruma_tx.services.ports.admin_reports import EventReportFilter, EventReportView


def _report_json(report: EventReportView) -> JsonDict:
    return {
        "id": report.report_id,
        "received_ts": report.received_ts,
        "room_id": report.room_id,
        "name": report.room_name,
        "event_id": report.event_id,
        "user_id": report.reporter,
        "reason": report.reason,
        "score": report.score,
        "sender": report.sender,
        "canonical_alias": report.canonical_alias,
    }


class EventReportsAdminApi:
    """@param reports: the L{ruma_tx.services.admin_reports.EventReportsAdmin}."""

    def __init__(self, reports: EventReportsAdmin) -> None:
        self._reports = reports

    @endpoint("GET", "/v1/event_reports", prefixes=SYNAPSE_ADMIN, admin=True)
    async def list_reports(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        """Newest first unless C{dir=f}; C{user_id} and C{room_id} match parts of ids, as Synapse."""
        page = read_page(request, default_dir="b")
        which = EventReportFilter(reporter=query_arg(request, "user_id") or None,
                                  room_id=query_arg(request, "room_id") or None,
                                  event_sender=query_arg(request, "event_sender_user_id") or None)
        reports, total = await self._reports.list_reports(start=page.start, limit=page.limit,
                                                          newest_first=page.backwards, which=which)
        # Here next_token is a number, as Synapse answers it.
        return page.listing("event_reports", [_report_json(report) for report in reports], total, token=int)

    @endpoint("GET", "/v1/event_reports/<report_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def get_report(self, request: MatrixRequest, requester: Requester, report_id: str) -> JsonDict:
        report = await self._reports.get_report(numeric_id(report_id, "The report id"))
        return {**_report_json(report), "event_json": report.event_json}

    @endpoint("DELETE", "/v1/event_reports/<report_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def delete_report(self, request: MatrixRequest, requester: Requester, report_id: str) -> JsonDict:
        await self._reports.delete_report(numeric_id(report_id, "The report id"))
        return {}
