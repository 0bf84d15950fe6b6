"""
The deprecated (but still specified) stream endpoints: C{GET /events},
C{GET /events/{eventId}}, C{GET /initialSync}, and C{GET
/rooms/{roomId}/initialSync}, which with C{GET /events?room_id=} is how a
client peeks into a world-readable room ("Room Previews"). HTTP only; the
rules are in L{ruma_tx.services.legacy_events} and
L{ruma_tx.services.initial_sync}.
"""
from __future__ import annotations

# The history endpoints' parsing of pagination tokens and limits, shared.
from ruma_tx.http.history import _limit, _token
from ruma_tx.http.parsing import query_arg, query_bool
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.http.sync import MAX_TIMEOUT_MS
from ruma_tx.matrix.errors import invalid_param
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.initial_sync import InitialSync
from ruma_tx.services.legacy_events import EventStream

#: How long C{GET /events} waits when not told (as Synapse: 30 s).
DEFAULT_TIMEOUT_MS = 30_000


class LegacyApi:
    """
    @param stream: the L{ruma_tx.services.legacy_events.EventStream}.
    @param initial_sync: the L{ruma_tx.services.initial_sync.InitialSync}.
    """

    def __init__(self, *, stream: EventStream, initial_sync: InitialSync) -> None:
        self._stream = stream
        self._initial_sync = initial_sync

    # Guests may use it "as used for room previews" (spec): with a room_id.
    @endpoint("GET", "/events", guest=True)
    async def events(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        timeout = query_arg(request, "timeout", str(DEFAULT_TIMEOUT_MS))
        if not timeout.isdigit():
            raise invalid_param("'timeout' must be a non-negative integer")
        return await self._stream.events(
            requester.user_id, requester.device_id,
            from_token=_token(query_arg(request, "from"), "from"),
            timeout_ms=min(int(timeout), MAX_TIMEOUT_MS),
            room_id=query_arg(request, "room_id"),
            is_guest=requester.is_guest,
        )

    @endpoint("GET", "/events/<event_id>")
    async def event(self, request: MatrixRequest, requester: Requester, event_id: str) -> JsonDict:
        return await self._stream.event(requester.user_id, event_id)

    @endpoint("GET", "/initialSync")
    async def initial_sync(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return await self._initial_sync.snapshot(
            requester.user_id, requester.device_id, limit=_limit(request),
            archived=query_bool(request, "archived"))

    @endpoint("GET", "/rooms/<room_id>/initialSync", guest=True)
    async def room_initial_sync(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return await self._initial_sync.room_snapshot(
            requester.user_id, requester.device_id, room_id, limit=_limit(request))
