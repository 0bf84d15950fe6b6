"""Filters: POST /user/{userId}/filter and GET /user/{userId}/filter/{filterId}."""
from __future__ import annotations

from ruma_tx.http.parsing import read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.filters import FilterKeeper
from ruma_tx.services.guard import Requester


class FilterApi:
    """@param filters: the L{ruma_tx.services.filters.FilterKeeper}."""

    def __init__(self, filters: FilterKeeper) -> None:
        self._filters = filters

    @endpoint("POST", "/user/<user_id>/filter")
    async def upload(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        body = read_json_object(request)
        return {"filter_id": await self._filters.upload(requester.user_id, user_id, body)}

    @endpoint("GET", "/user/<user_id>/filter/<filter_id>")
    async def get(self, request: MatrixRequest, requester: Requester, user_id: str,
                  filter_id: str) -> JsonDict:
        return await self._filters.get_json(requester.user_id, user_id, filter_id)
