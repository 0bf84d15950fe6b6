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


def long_poll_timeout(timeout_ms: int) -> int:
    """A long-poll C{timeout} (ms), capped at L{MAX_TIMEOUT_MS}."""
    if timeout_ms < 0:
        raise invalid_param("'timeout' must not be negative")
    return min(timeout_ms, MAX_TIMEOUT_MS)


def query_timeout(request: MatrixRequest) -> int:
    """The C{timeout} query parameter of a long poll (default 0)."""
    timeout = query_arg(request, "timeout", "0")
    if not timeout.isdigit():
        raise invalid_param("'timeout' must be a non-negative integer")
    return long_poll_timeout(int(timeout))


def set_presence_arg(value: str) -> str:
    """A C{set_presence} value (spec: online, offline or unavailable)."""
    if value not in ("online", "offline", "unavailable"):
        raise invalid_param("'set_presence' must be online, offline or unavailable")
    return value


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
        timeout_ms = query_timeout(request)
        sync_filter = await self._filter(requester.user_id, query_arg(request, "filter"))
        await self._presence(requester.user_id, set_presence_arg(query_arg(request, "set_presence", "online")))
        return await self._sync.sync(SyncRequest(
            user_id=requester.user_id,
            device_id=requester.device_id,
            since=since_token,
            timeout_ms=timeout_ms,
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
