"""
Room discovery for other servers (server-server spec: "Public Room
Directory" C{/publicRooms}, "Spaces" C{/hierarchy/{roomId}}). Served by
the "federation" listener only; every request is signed by its origin
server (C{auth="server"}).
"""
from __future__ import annotations

from ruma_tx.http.directory import public_rooms_search
from ruma_tx.http.parsing import query_arg, query_bool, query_int, read_json_object
from ruma_tx.http.routing import FEDERATION_V1, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.directory import Directory
from ruma_tx.services.spaces import RoomSummaries


class FederationRoomDirectoryApi:
    """
    @param directory: the L{ruma_tx.services.directory.Directory}.
    @param summaries: the L{ruma_tx.services.spaces.RoomSummaries}.
    """

    def __init__(self, *, directory: Directory, summaries: RoomSummaries) -> None:
        self._directory = directory
        self._summaries = summaries

    @endpoint("GET", "/publicRooms", auth="server", prefixes=FEDERATION_V1)
    async def public_rooms(self, request: MatrixRequest, origin: str) -> JsonDict:
        return await self._directory.public_rooms(
            limit=query_int(request, "limit"),
            since=query_arg(request, "since"),
            include_all_networks=query_bool(request, "include_all_networks"),
            third_party_instance_id=query_arg(request, "third_party_instance_id"),
        )

    @endpoint("POST", "/publicRooms", auth="server", prefixes=FEDERATION_V1)
    async def search_public_rooms(self, request: MatrixRequest, origin: str) -> JsonDict:
        return await self._directory.public_rooms(**public_rooms_search(read_json_object(request)))

    @endpoint("GET", "/hierarchy/<room_id>", auth="server", prefixes=FEDERATION_V1)
    async def hierarchy(self, request: MatrixRequest, origin: str, room_id: str) -> JsonDict:
        return await self._summaries.hierarchy_for_server(
            origin, room_id, suggested_only=query_bool(request, "suggested_only"))
