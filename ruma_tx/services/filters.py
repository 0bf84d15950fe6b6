"""Uploading and reading filters; parsed filters are cached (bounded LRU)."""
from __future__ import annotations

import json

from ruma_tx.matrix.errors import BadRequest, forbidden, not_found
from ruma_tx.matrix.filters import Filter, FilterError, parse_filter
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.ports.events import Filters


class FilterKeeper:
    """
    @param filters: the L{ruma_tx.storage.filters.FilterStore}.
    @param cache_size: parsed filters kept; filters never change once
        stored, so the cache needs no invalidation.
    """

    def __init__(self, *, filters: Filters, cache_size: int = 10_000) -> None:
        self._filters = filters
        self._cache: LRUCache[tuple[str, str], Filter] = LRUCache(cache_size)

    async def upload(self, requester_id: str, user_id: str, body: dict) -> str:
        if requester_id != user_id:
            raise forbidden("Cannot create filters for other users")
        try:
            parse_filter(body)
        except FilterError as e:
            raise BadRequest("M_BAD_JSON", str(e)) from None
        return await self._filters.add_filter(user_id, json.dumps(body))

    async def get_json(self, requester_id: str, user_id: str, filter_id: str) -> dict:
        if requester_id != user_id:
            raise forbidden("Cannot read filters of other users")
        text = await self._filters.get_filter(user_id, filter_id)
        if text is None:
            raise not_found("No such filter")
        return json.loads(text)

    async def get_parsed(self, user_id: str, filter_id: str) -> Filter | None:
        key = (user_id, filter_id)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        text = await self._filters.get_filter(user_id, filter_id)
        if text is None:
            return None
        parsed = parse_filter(json.loads(text))
        self._cache[key] = parsed
        return parsed
