"""GET /sync."""
from __future__ import annotations

from typing import Awaitable, Callable

from ruma_tx.http.parsing import query_arg, query_bool
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import BadRequest, invalid_param
from ruma_tx.matrix.filters import Filter, FilterError, parse_filter_text
from ruma_tx.matrix.stream_token import InvalidToken, StreamToken
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.sync import SyncRequest, SyncResponder

#: Longest long-poll we honour (Synapse does not cap; keep connections sane).
MAX_TIMEOUT_MS = 5 * 60 * 1000


class SyncApi:
    """
    @param sync: the L{ruma_tx.services.sync.SyncResponder}.
    @param filters: C{async (user_id, filter_id) -> Filter | None}.
    @param presence: C{async (user_id, state)}: applies C{set_presence}.
    """

    def __init__(self, *, sync: SyncResponder,
                 filters: Callable[[str, str], Awaitable[Filter | None]],
                 presence: Callable[[str, str], Awaitable[None]]) -> None:
        self._sync = sync
        self._filters = filters
        self._presence = presence

    @endpoint("GET", "/sync", guest=True)
    async def sync(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        since = query_arg(request, "since")
        try:
            since_token = StreamToken.parse(since) if since else None
        except InvalidToken:
            raise invalid_param("Invalid 'since' token") from None
        timeout = query_arg(request, "timeout", "0")
        if not timeout.isdigit():
            raise invalid_param("'timeout' must be a non-negative integer")
        sync_filter = await self._filter(requester.user_id, query_arg(request, "filter"))
        set_presence = query_arg(request, "set_presence", "online")
        if set_presence not in ("online", "offline", "unavailable"):
            raise invalid_param("'set_presence' must be online, offline or unavailable")
        await self._presence(requester.user_id, set_presence)
        return await self._sync.sync(SyncRequest(
            user_id=requester.user_id,
            device_id=requester.device_id,
            since=since_token,
            timeout_ms=min(int(timeout), MAX_TIMEOUT_MS),
            filter=sync_filter,
            full_state=query_bool(request, "full_state"),
            use_state_after=query_bool(request, "use_state_after"),
        ))

    async def _filter(self, user_id: str, text: str | None) -> Filter:
        if text is None:
            return Filter()
        if text.lstrip().startswith("{"):
            try:
                return parse_filter_text(text)
            except FilterError as e:
                raise BadRequest("M_INVALID_PARAM", str(e)) from None
        found = await self._filters(user_id, text)
        if found is None:
            raise BadRequest("M_INVALID_PARAM", "Unknown filter id")
        return found
