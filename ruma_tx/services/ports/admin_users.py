"""
Ports of the user admin API: what its use cases need of account storage
beyond L{ruma_tx.services.ports.accounts.Accounts} (implemented by
C{ruma_tx.storage.admin_users.AdminUserStore}).
"""
from __future__ import annotations

from typing import Protocol

from ruma_tx.matrix.admin_users import UserListQuery, UserRecord


class ShadowBanStore(Protocol):
    async def is_shadow_banned(self, user_id: str) -> bool: ...
    async def set_shadow_banned(self, user_id: str, shadow_banned: bool) -> None: ...


class RateLimitOverrideStore(Protocol):
    async def get_ratelimit_override(self, user_id: str) -> tuple[int, int] | None:
        """C{(messages_per_second, burst_count)}, or C{None} without an override."""
    async def set_ratelimit_override(self, user_id: str, messages_per_second: int, burst_count: int) -> None: ...
    async def delete_ratelimit_override(self, user_id: str) -> None: ...


class AdminUsers(Protocol):
    async def list_users(self, query: UserListQuery) -> tuple[list[UserRecord], int]:
        """One page of the accounts the query selects, and how many it selects in all."""
    async def get_user(self, user_id: str) -> UserRecord | None: ...
    async def set_admin(self, user_id: str, admin: bool) -> None: ...
    async def set_user_type(self, user_id: str, user_type: str | None) -> None: ...
    async def reactivate(self, user_id: str) -> None:
        """Lift a deactivation (the account keeps no password: one is set apart)."""
