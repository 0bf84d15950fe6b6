"""
Shadow-banning (Synapse's admin API): a shadow-banned user's messages,
state changes and invites seem to succeed, each answered with an event id,
but are never stored, so nobody ever sees them. Their own joins, leaves and
profile updates happen as usual, and they still create rooms, without the
invites (as Synapse).
"""
from __future__ import annotations

import base64
import secrets

from ruma_tx.services.caches import LRUCache
from ruma_tx.services.event_spec import EventSpec
from ruma_tx.services.ports.admin_users import ShadowBanStore


def fake_event_id() -> str:
    """An id shaped like a real one (room versions 4 and later): C{$} and 43 URL-safe base64 characters."""
    return "$" + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


class ShadowBans:
    """
    Answers, for each event a local user asks to send, whether it is
    withheld. The flag is read once per user and kept in a bounded cache,
    which L{set} (the admin API's only way to change it) keeps up to date.
    """

    def __init__(self, store: ShadowBanStore, cache_size: int = 10_000) -> None:
        self._store = store
        self._banned: LRUCache[str, bool] = LRUCache(cache_size)

    async def withheld(self, spec: EventSpec) -> str | None:
        """
        The fake id to answer with when C{spec} must seem sent but not be
        (its sender is shadow-banned, and it is not a membership change of
        their own other than an invite); C{None} to send it.
        """
        if spec.event_type == "m.room.member" and spec.content.get("membership") != "invite":
            return None
        return fake_event_id() if await self.is_banned(spec.sender) else None

    async def is_banned(self, user_id: str) -> bool:
        banned = self._banned.get(user_id)
        if banned is None:
            # A change stored while this was read wins.
            banned = self._banned.setdefault(user_id, await self._store.is_shadow_banned(user_id))
        return banned

    async def set(self, user_id: str, shadow_banned: bool) -> None:
        await self._store.set_shadow_banned(user_id, shadow_banned)
        self._banned[user_id] = shadow_banned
