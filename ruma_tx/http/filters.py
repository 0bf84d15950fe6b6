"""Filters: POST /user/{userId}/filter and GET /user/{userId}/filter/{filterId}."""
from __future__ import annotations

from ruma_tx.http.parsing import read_json_object
from ruma_tx.http.routing import endpoint


class FilterApi:
    """@param filters: the L{ruma_tx.services.filters.FilterKeeper}."""

    def __init__(self, filters):
        self._filters = filters

    @endpoint("POST", "/user/<user_id>/filter")
    async def upload(self, request, requester, user_id):
        body = read_json_object(request)
        return {"filter_id": await self._filters.upload(requester.user_id, user_id, body)}

    @endpoint("GET", "/user/<user_id>/filter/<filter_id>")
    async def get(self, request, requester, user_id, filter_id):
        return await self._filters.get_json(requester.user_id, user_id, filter_id)
