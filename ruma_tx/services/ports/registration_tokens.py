"""Ports: registration tokens."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RegistrationToken:
    """
    A registration token as the admin API shows it.

    @ivar uses_allowed: registrations it allows in all; C{None}: unlimited.
    @ivar pending: uses held by UIA sessions that passed the token stage
        and have not registered yet.
    @ivar completed: registrations made with it.
    @ivar expiry_time: the last moment (ms) it is valid; C{None}: never expires.
    """

    token: str
    uses_allowed: int | None
    pending: int
    completed: int
    expiry_time: int | None


class RegistrationTokens(Protocol):
    """What the services need of token storage (implemented by C{ruma_tx.storage.registration_tokens.RegistrationTokenStore})."""

    async def list_tokens(self, valid: bool | None, now_ms: int) -> list[RegistrationToken]: ...
    async def get_token(self, token: str) -> RegistrationToken | None: ...
    async def create_token(self, token: str, uses_allowed: int | None, expiry_time: int | None) -> bool: ...
    async def update_token(self, token: str, changes: dict[str, int | None]) -> RegistrationToken | None: ...
    async def delete_token(self, token: str) -> bool: ...
    async def is_valid(self, token: str, now_ms: int) -> bool: ...
    async def reserve_use(self, token: str, session_id: str, now_ms: int) -> bool: ...

