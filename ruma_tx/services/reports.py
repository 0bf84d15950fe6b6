"""
Reporting content (spec: client-server-api "Reporting Content"): users
report events, rooms and users; the reports are kept for the server's
admins, who read them with L{ContentReports.list_reports} (the admin API
will serve it).
"""
from __future__ import annotations

from ruma_tx.matrix.errors import invalid_param, not_found
from ruma_tx.matrix.identifiers import is_valid_user_id
from ruma_tx.matrix.reports import ReportRequest
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.history import HistoryReader
from ruma_tx.services.ports.accounts import Accounts
from ruma_tx.services.ports.events import Events
from ruma_tx.services.ports.reports import REPORT_KINDS, Report, ReportStorage

#: The most reports one listing returns.
MAX_LISTING = 1000


class ContentReports:
    """
    @param reports: the L{ruma_tx.storage.reports.ReportStore}.
    @param events: the L{ruma_tx.storage.events.EventStore}.
    @param history: the L{ruma_tx.services.history.HistoryReader}: which
        events a reporter may see.
    @param accounts: the L{ruma_tx.storage.accounts.AccountStore}: which
        local users exist.
    """

    def __init__(self, *, reports: ReportStorage, events: Events, history: HistoryReader,
                 accounts: Accounts, clock: Clock, server_name: str) -> None:
        self._reports = reports
        self._events = events
        self._history = history
        self._accounts = accounts
        self._clock = clock
        self._server_name = server_name

    async def report_event(self, reporter: str, room_id: str, event_id: str, request: ReportRequest) -> None:
        """
        Report an event of a room the reporter is joined to (spec v1.8:
        servers MUST check that) and may see.

        @raise NotFound: one answer, whether the event does not exist, is in
            another room, was redacted (as Synapse), or the reporter is not
            in the room or may not see it: nothing tells them which.
        """
        event = await self._events.get_event(event_id)
        member = (await self._events.get_rooms_for_user(reporter)).get(room_id)
        if event is None or event.room_id != room_id or event.redacted_by is not None \
                or member is None or member[0] != "join" \
                or not (await self._history.view(reporter, room_id)).can_see(event.stream_ordering):
            raise not_found("Unable to report event: it does not exist or you aren't able to see it.")
        await self._reports.add_report(Report("event", reporter, now_ms(self._clock), request.reason,
                                              room_id=room_id, event_id=event_id, score=request.score))

    async def report_room(self, reporter: str, room_id: str, request: ReportRequest) -> None:
        """
        Report a room, whether or not the reporter is in it (spec v1.13:
        servers MUST NOT require it).

        @raise NotFound: for a room this server does not know (the spec's
            404; it also allows answering 200 to hide that, which Synapse
            only does behind an experimental flag).
        """
        if await self._events.get_room_head(room_id) is None:
            raise not_found("Room does not exist")
        await self._reports.add_report(Report("room", reporter, now_ms(self._clock), request.reason,
                                              room_id=room_id))

    async def report_user(self, reporter: str, user_id: str, request: ReportRequest) -> None:
        """
        Report a user, whether or not the reporter shares a room with them
        (spec v1.14: servers MUST NOT require it). Another server's user
        cannot be looked up without federation: the report is kept as it
        is (Synapse drops it; an admin may still want to know).

        @raise BadRequest: M_INVALID_PARAM for a malformed user id.
        @raise NotFound: for a user of this server that does not exist (the
            spec's 404).
        """
        if not is_valid_user_id(user_id):
            raise invalid_param(f"Invalid user id: {user_id!r}")
        if user_id.endswith(":" + self._server_name) and await self._accounts.get_account(user_id) is None:
            raise not_found("The user was not found.")
        await self._reports.add_report(Report("user", reporter, now_ms(self._clock), request.reason,
                                              user_id=user_id))

    async def list_reports(self, *, kind: str | None = None, before: int | None = None,
                           limit: int = 100) -> list[Report]:
        """
        The newest reports first (for the admin API).

        @param kind: only C{"event"}, C{"room"} or C{"user"} reports.
        @param before: only reports with a lower C{report_id} (the last one
            of the previous page).
        @param limit: at most this many (up to L{MAX_LISTING}).
        @raise BadRequest: M_INVALID_PARAM for an unknown kind or a limit
            below 1.
        """
        if kind is not None and kind not in REPORT_KINDS:
            raise invalid_param(f"Unknown report kind {kind!r}")
        if limit < 1:
            raise invalid_param("'limit' must be at least 1")
        return await self._reports.get_reports(before=before, limit=min(limit, MAX_LISTING), kind=kind)
