"""
Per-user rate limit overrides (Synapse's admin API): a user's own message
limit, or none at all.
"""
from __future__ import annotations

from ruma_tx.services.caches import LRUCache
from ruma_tx.services.ports.admin_users import RateLimitOverrideStore
from ruma_tx.services.ratelimit import UNLIMITED, RateLimit, Unlimited

#: The action whose limit an override with a positive rate replaces.
MESSAGE = "message"


class RateLimitOverrides:
    """
    Looked up on every rate-limited request of a user, so each user's
    override (or its absence) is kept in a bounded cache, which L{set} and
    L{delete} (the admin API's only ways to change them) keep up to date.
    """

    def __init__(self, store: RateLimitOverrideStore, cache_size: int = 10_000) -> None:
        self._store = store
        self._overrides: LRUCache[str, tuple[int, int] | None] = LRUCache(cache_size)

    async def __call__(self, action: str, user_id: str) -> RateLimit | Unlimited | None:
        """
        The limit of C{action} for C{user_id} in place of the configured
        one, or C{None} to keep that. As Synapse, an override with a rate of
        0 lifts every limit of the user; any other replaces the message limit
        only.
        """
        if user_id in self._overrides:
            override = self._overrides[user_id]
        else:
            # A change stored while this was read wins.
            override = self._overrides.setdefault(user_id, await self._store.get_ratelimit_override(user_id))
        if override is None:
            return None
        per_second, burst_count = override
        if per_second == 0:
            return UNLIMITED
        return RateLimit(per_second, burst_count) if action == MESSAGE else None

    async def get(self, user_id: str) -> tuple[int, int] | None:
        return await self._store.get_ratelimit_override(user_id)

    async def set(self, user_id: str, per_second: int, burst_count: int) -> None:
        await self._store.set_ratelimit_override(user_id, per_second, burst_count)
        self._overrides[user_id] = (per_second, burst_count)

    async def delete(self, user_id: str) -> None:
        await self._store.delete_ratelimit_override(user_id)
        self._overrides[user_id] = None
