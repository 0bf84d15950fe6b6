"""Ports of OpenID tokens (implemented by C{ruma_tx.storage.openid.OpenIdStore})."""
from __future__ import annotations

from typing import Protocol


class OpenIdTokenStorage(Protocol):
    """OpenID tokens, known by the hash of the token."""

    async def add_token(self, token_hash: str, user_id: str, expires_ts: int, now_ms: int) -> None: ...
    async def get_token_user(self, token_hash: str, now_ms: int) -> str | None: ...
