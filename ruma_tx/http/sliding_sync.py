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
from ruma_tx.http.sync import long_poll_timeout, query_timeout, set_presence_arg
from ruma_tx.matrix.sliding_sync import SlidingSyncRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.sliding_sync import SlidingSync

STABLE = ("/_matrix/client/v4",)
UNSTABLE = ("/_matrix/client/unstable/org.matrix.simplified_msc3575",)


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
        asked = SlidingSyncRequest(
            conn_id=formats.conn_id(body), pos=get_field(body, "pos", str, None),
            timeout_ms=long_poll_timeout(get_field(body, "timeout", int, 0)),
            lists=formats.lists(body, user_id, formats.stable_required_state, formats.stable_range, "is_invited"),
            subscriptions=formats.subscriptions(body, user_id, formats.stable_required_state),
            extensions=formats.extensions(body),
        )
        await self._presence(user_id, set_presence_arg(get_field(body, "set_presence", str, "online")))
        response = await self._sliding_sync.sync(user_id, requester.device_id, asked)
        response["rooms"] = formats.shown_rooms(response["rooms"], formats.STABLE_ROOM_FIELDS, keep_nulls=True)
        return response

    @endpoint("POST", "/sync", prefixes=UNSTABLE)
    async def sync_unstable(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        body = read_json_object(request)
        user_id = requester.user_id
        asked = SlidingSyncRequest(
            conn_id=formats.conn_id(body), pos=query_arg(request, "pos"),
            timeout_ms=query_timeout(request),
            lists=formats.lists(body, user_id, formats.unstable_required_state, formats.unstable_ranges,
                                "is_invite"),
            subscriptions=formats.subscriptions(body, user_id, formats.unstable_required_state),
            extensions=formats.extensions(body),
            order_by_bump=True, unread_counts=True,
        )
        await self._presence(user_id, set_presence_arg(query_arg(request, "set_presence", "online")))
        response = await self._sliding_sync.sync(user_id, requester.device_id, asked)
        response["rooms"] = formats.shown_rooms(response["rooms"], formats.UNSTABLE_ROOM_FIELDS, keep_nulls=False)
        return response
