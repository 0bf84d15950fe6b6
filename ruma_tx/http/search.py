"""
Finding things (spec: "Server Side Search", "User directory"):
C{POST /search} and C{POST /user_directory/search}. HTTP only; the rules
are in L{ruma_tx.matrix.search}, the use cases in
L{ruma_tx.services.search} and L{ruma_tx.services.user_directory}.
"""
from __future__ import annotations

from ruma_tx.http.parsing import query_arg, read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.search import parse_directory_request, parse_search_request, parse_search_token
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.search import RoomSearch
from ruma_tx.services.user_directory import UserDirectory


class SearchApi:
    """
    @param search: the L{ruma_tx.services.search.RoomSearch}.
    @param directory: the L{ruma_tx.services.user_directory.UserDirectory}.
    """

    def __init__(self, *, search: RoomSearch, directory: UserDirectory) -> None:
        self._search = search
        self._directory = directory

    @endpoint("POST", "/search")
    async def search(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        criteria = parse_search_request(read_json_object(request))
        next_batch = query_arg(request, "next_batch")
        token = parse_search_token(next_batch, criteria.order_by) if next_batch is not None else None
        return await self._search.search(requester.user_id, criteria, token)

    @endpoint("POST", "/user_directory/search")
    async def search_users(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        search_term, limit = parse_directory_request(read_json_object(request))
        return await self._directory.search(requester.user_id, search_term, limit)
