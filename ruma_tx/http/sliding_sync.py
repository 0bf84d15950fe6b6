"""
Simplified sliding sync (MSC4186) at its two paths, each in its own wire
format (L{ruma_tx.http.sliding_formats}), over one engine.
"""
from __future__ import annotations

from typing import Awaitable, Callable

from ruma_tx.http import sliding_formats as formats
from ruma_tx.http.parsing import get_field, query_arg, read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.http.sync import MAX_TIMEOUT_MS
from ruma_tx.matrix.errors import invalid_param
from ruma_tx.matrix.sliding_sync import SlidingSyncRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.sliding_sync import SlidingSync

STABLE = ("/_matrix/client/v4",)
UNSTABLE = ("/_matrix/client/unstable/org.matrix.simplified_msc3575",)

#: The /versions flag of the unstable path.
UNSTABLE_FLAG = "org.matrix.simplified_msc3575"

_PRESENCE = ("online", "offline", "unavailable")


class SlidingSyncApi:
    """
    @param sliding_sync: the L{ruma_tx.services.sliding_sync.SlidingSync}.
    @param presence: C{async (user_id, state)}: applies C{set_presence}, as /sync does.
    """

    def __init__(self, *, sliding_sync: SlidingSync, presence: Callable[[str, str], Awaitable[None]]) -> None:
        self._sliding_sync = sliding_sync
        self._presence = presence

    @endpoint("POST", "/sync", prefixes=STABLE)
    async def sync(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        body = read_json_object(request)
        user_id = requester.user_id
        timeout = get_field(body, "timeout", int, 0)
        asked = SlidingSyncRequest(
            conn_id=formats.conn_id(body), pos=get_field(body, "pos", str, None),
            timeout_ms=_timeout(timeout),
            lists=formats.lists(body, user_id, formats.stable_required_state, formats.stable_range, "is_invited"),
            subscriptions=formats.subscriptions(body, user_id, formats.stable_required_state),
            extensions=formats.extensions(body),
        )
        await self._set_presence(user_id, get_field(body, "set_presence", str, "online"))
        response = await self._sliding_sync.sync(user_id, requester.device_id, asked)
        response["rooms"] = formats.shown_rooms(response["rooms"], formats.STABLE_ROOM_FIELDS, keep_nulls=True)
        return response

    @endpoint("POST", "/sync", prefixes=UNSTABLE)
    async def sync_unstable(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        body = read_json_object(request)
        user_id = requester.user_id
        timeout = query_arg(request, "timeout", "0")
        if not timeout.isdigit():
            raise invalid_param("'timeout' must be a non-negative integer")
        asked = SlidingSyncRequest(
            conn_id=formats.conn_id(body), pos=query_arg(request, "pos"),
            timeout_ms=_timeout(int(timeout)),
            lists=formats.lists(body, user_id, formats.unstable_required_state, formats.unstable_ranges,
                                "is_invite"),
            subscriptions=formats.subscriptions(body, user_id, formats.unstable_required_state),
            extensions=formats.extensions(body),
            order_by_bump=True, unread_counts=True,
        )
        await self._set_presence(user_id, query_arg(request, "set_presence", "online"))
        response = await self._sliding_sync.sync(user_id, requester.device_id, asked)
        response["rooms"] = formats.shown_rooms(response["rooms"], formats.UNSTABLE_ROOM_FIELDS, keep_nulls=False)
        return response

    async def _set_presence(self, user_id: str, state: str) -> None:
        if state not in _PRESENCE:
            raise invalid_param("'set_presence' must be online, offline or unavailable")
        await self._presence(user_id, state)


def _timeout(timeout_ms: int) -> int:
    if timeout_ms < 0:
        raise invalid_param("'timeout' must not be negative")
    return min(timeout_ms, MAX_TIMEOUT_MS)
