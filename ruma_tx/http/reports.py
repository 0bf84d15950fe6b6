"""Reporting content (spec: "Reporting Content"): events, rooms and users."""
from __future__ import annotations

from ruma_tx.http.parsing import read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.reports import parse_report
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.reports import ContentReports


class ReportApi:
    """@param reports: the L{ruma_tx.services.reports.ContentReports}."""

    def __init__(self, reports: ContentReports) -> None:
        self._reports = reports

    @endpoint("POST", "/rooms/<room_id>/report/<event_id>", rate_limit="report")
    async def report_event(self, request: MatrixRequest, requester: Requester, room_id: str,
                           event_id: str) -> JsonDict:
        report = parse_report(read_json_object(request), reason_required=False, with_score=True)
        await self._reports.report_event(requester.user_id, room_id, event_id, report)
        return {}

    @endpoint("POST", "/rooms/<room_id>/report", rate_limit="report")
    async def report_room(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        report = parse_report(read_json_object(request), reason_required=True)
        await self._reports.report_room(requester.user_id, room_id, report)
        return {}

    @endpoint("POST", "/users/<user_id>/report", rate_limit="report")
    async def report_user(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        report = parse_report(read_json_object(request), reason_required=True)
        await self._reports.report_user(requester.user_id, user_id, report)
        return {}
