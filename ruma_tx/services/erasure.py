"""
Which senders are erased (see L{ruma_tx.matrix.erasure}), asked for the
senders of every page of events served, so it must cost nothing in the
common case: until some account is erased no query is made at all, and
after that answers come from a bounded cache, misses read in one query.
"""
from __future__ import annotations

from typing import Iterable

from ruma_tx.services.caches import LRUCache
from ruma_tx.services.ports.erasure import ErasureStorage


class ErasedUsers:
    """
    @param max_users: how many users' answers the cache keeps.
    """

    def __init__(self, store: ErasureStorage, max_users: int = 10_000) -> None:
        self._store = store
        # Whether any account is erased: None until first asked; set by L{set_erased}.
        self._any: bool | None = None
        # user_id -> erased. Entries change only through set_erased (an
        # account is erased or reactivated here, and nowhere else).
        self._cache: LRUCache[str, bool] = LRUCache(max_users)

    async def among(self, user_ids: Iterable[str]) -> frozenset[str]:
        """Those of C{user_ids} that are erased."""
        if self._any is None:
            self._any = await self._store.any_erased()
        if not self._any:
            return frozenset()
        wanted = set(user_ids)
        known = {user_id: self._cache[user_id] for user_id in wanted if user_id in self._cache}
        missing = sorted(wanted - known.keys())
        found = await self._store.get_erased(missing) if missing else set()
        for user_id in missing:
            self._cache[user_id] = user_id in found
        return frozenset(found | {user_id for user_id, erased in known.items() if erased})

    async def set_erased(self, user_id: str, erased: bool) -> None:
        """Erase an account (its deactivation asked for it), or lift that (its reactivation)."""
        await self._store.set_erased(user_id, erased)
        self._cache[user_id] = erased
        if erased:
            self._any = True
