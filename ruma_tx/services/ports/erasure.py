"""
Port of L{ruma_tx.services.erasure}: the C{users.erased} flag (schema 035),
implemented by C{ruma_tx.storage.erasure.ErasureStore}.
"""
from __future__ import annotations

from typing import Protocol


class ErasureStorage(Protocol):
    async def any_erased(self) -> bool:
        """Whether any account is erased."""
    async def get_erased(self, user_ids: list[str]) -> set[str]:
        """Those of C{user_ids} that are erased."""
    async def set_erased(self, user_id: str, erased: bool) -> None: ...
