"""
Room discovery beyond the directory (spec: "Spaces" GET /hierarchy, "Room
Summaries", "Mutual Rooms").
"""
from __future__ import annotations

from ruma_tx.http.parsing import query_arg, query_bool
from ruma_tx.http.routing import CLIENT_V1, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import missing_param
from ruma_tx.matrix.spaces import parse_positive
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.spaces import MutualRooms, RoomSummaries

#: The room summary's unstable path (MSC3266), which clients still use (as Synapse serves it).
_SUMMARY_UNSTABLE = ("/_matrix/client/unstable/im.nheko.summary",)

#: Mutual rooms before spec v1.19 (MSC2666), as clients still call it.
_MUTUAL_ROOMS_UNSTABLE = ("/_matrix/client/unstable/uk.half-shot.msc2666/user",)


class SpacesApi:
    """
    @param summaries: the L{ruma_tx.services.spaces.RoomSummaries}.
    @param mutual_rooms: the L{ruma_tx.services.spaces.MutualRooms}.
    """

    def __init__(self, *, summaries: RoomSummaries, mutual_rooms: MutualRooms) -> None:
        self._summaries = summaries
        self._mutual_rooms = mutual_rooms

    # Not open to guests: the spec's guest allow-list does not name it (Synapse allows them).
    @endpoint("GET", "/rooms/<room_id>/hierarchy", prefixes=CLIENT_V1)
    async def hierarchy(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return await self._summaries.hierarchy(
            requester.user_id, room_id,
            suggested_only=query_bool(request, "suggested_only"),
            max_depth=parse_positive(query_arg(request, "max_depth"), "max_depth", minimum=0),
            limit=parse_positive(query_arg(request, "limit"), "limit", minimum=1),
            from_token=query_arg(request, "from"),
        )

    # Spec: servers MAY answer without a token for rooms anyone may preview. A guest token
    # is refused (the guest allow-list does not name it); a guest may ask without one.
    @endpoint("GET", "/summary/<room_id_or_alias>", auth="optional", prefixes=_SUMMARY_UNSTABLE)
    @endpoint("GET", "/room_summary/<room_id_or_alias>", auth="optional", prefixes=CLIENT_V1)
    async def room_summary(self, request: MatrixRequest, requester: Requester | None,
                           room_id_or_alias: str) -> JsonDict:
        return await self._summaries.summary(requester.user_id if requester else None, room_id_or_alias)

    @endpoint("GET", "/mutual_rooms", prefixes=CLIENT_V1)
    async def mutual_rooms(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return await self._mutual_rooms.mutual_rooms(requester.user_id, _user_id_arg(request),
                                                     query_arg(request, "from"))

    @endpoint("GET", "/mutual_rooms", prefixes=_MUTUAL_ROOMS_UNSTABLE)
    async def mutual_rooms_unstable(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        """MSC2666 as clients of today speak it: C{batch_token} in, C{next_batch_token} out."""
        page = await self._mutual_rooms.mutual_rooms(requester.user_id, _user_id_arg(request),
                                                     query_arg(request, "batch_token"))
        if "next_batch" in page:
            page["next_batch_token"] = page.pop("next_batch")
        return page


def _user_id_arg(request: MatrixRequest) -> str:
    user_id = query_arg(request, "user_id")
    if user_id is None:
        raise missing_param("Missing query parameter: user_id")
    return user_id
