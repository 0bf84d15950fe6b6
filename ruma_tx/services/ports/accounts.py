"""
Ports: records and protocols shared by services and the storage that implements them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class UserExists(Exception):
    """The user id is taken."""


@dataclass(frozen=True)
class Account:
    user_id: str
    password_hash: str | None
    is_guest: bool
    is_admin: bool
    deactivated: bool
    locked: bool = False
    suspended: bool = False
    shadow_banned: bool = False


@dataclass(frozen=True)
class Device:
    user_id: str
    device_id: str
    display_name: str | None
    last_seen_ts: int | None
    last_seen_ip: str | None


@dataclass(frozen=True)
class AccessTokenRecord:
    """An access token's row, with the flags of its account that every request needs."""

    token_id: str
    user_id: str
    device_id: str
    expires_at_ms: int | None
    locked: bool = False
    suspended: bool = False


@dataclass(frozen=True)
class NewLogin:
    """What L{TokenStore.create_login} stores: a device and its tokens."""

    user_id: str
    device_id: str
    device_display_name: str | None
    access_token_id: str
    expires_at_ms: int | None
    refresh_token_id: str | None


@dataclass(frozen=True)
class UiaSession:
    """
    A user-interactive auth session. C{method}, C{path} and C{params} are
    the request it was started for (C{None} for sessions of callers that
    bind none); C{password_hash} and C{registered_user_id} are only used
    by registration; C{claimed} once a request is completing it.
    """

    session_id: str
    user_id: str | None
    action: str
    completed: tuple[str, ...]
    expires_ts: int
    method: str | None = None
    path: str | None = None
    params: str | None = None
    password_hash: str | None = None
    registered_user_id: str | None = None
    claimed: bool = False


class Accounts(Protocol):
    """What the services need of account storage (implemented by C{ruma_tx.storage.accounts.AccountStore})."""

    async def create_user(self, user_id: str, password_hash: str | None, now_ms: int, *,
                          is_guest: bool = False, is_admin: bool = False,
                          displayname: str | None = None) -> None: ...
    async def next_guest_number(self) -> int: ...
    async def upgrade_guest(self, user_id: str, password_hash: str, displayname: str) -> list[str] | None: ...
    async def get_account(self, user_id: str) -> Account | None: ...
    async def user_exists(self, user_id: str) -> bool: ...
    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...
    async def deactivate(self, user_id: str) -> list[str]: ...
    async def get_profile(self, user_id: str) -> tuple[str | None, str | None] | None: ...
    async def set_profile_field(self, user_id: str, field: str, value: str | None) -> None: ...


class Devices(Protocol):
    """What the services need of device storage (implemented by C{ruma_tx.storage.devices.DeviceStore})."""

    async def get_devices(self, user_id: str) -> list[Device]: ...
    async def get_device(self, user_id: str, device_id: str) -> Device | None: ...
    async def set_display_name(self, user_id: str, device_id: str, display_name: str | None) -> bool: ...
    async def delete_devices(self, user_id: str, device_ids: list[str]) -> list[str]: ...
    async def record_last_seen(self, seen: list[tuple[str, str, int, str]]) -> None: ...


class Tokens(Protocol):
    """What the services need of token storage (implemented by C{ruma_tx.storage.tokens.TokenStore})."""

    async def get_access_token(self, token_id: str) -> AccessTokenRecord | None: ...
    async def create_login(self, login: NewLogin, now_ms: int) -> tuple[list[str], bool]: ...
    async def rotate_refresh_token(self, old_refresh_id: str, user_id: str, device_id: str, new_refresh_id: str, new_access_id: str, expires_at_ms: int, now_ms: int) -> list[str] | None: ...
    async def delete_access_token(self, token_id: str) -> str | None: ...
    async def delete_user_tokens(self, user_id: str, except_device: str | None=None) -> list[str]: ...


class UiaSessions(Protocol):
    """What the services need of uia storage (implemented by C{ruma_tx.storage.uia.UiaStore})."""

    async def create_session(self, session_id: str, user_id: str | None, action: str, now_ms: int, expires_ts: int, *, method: str | None = None, path: str | None = None, params: str | None = None) -> None: ...
    async def get_session(self, session_id: str, now_ms: int) -> UiaSession | None: ...
    async def mark_completed(self, session_id: str, stage: str) -> None: ...
    async def set_params(self, session_id: str, params: str) -> None: ...
    async def set_password_hash(self, session_id: str, password_hash: str) -> None: ...
    async def claim_session(self, session_id: str) -> UiaSession | None: ...
    async def release_session(self, session_id: str) -> None: ...
    async def set_registered_user(self, session_id: str, user_id: str) -> None: ...
    async def delete_session(self, session_id: str) -> bool: ...
    async def delete_expired(self, now_ms: int) -> None: ...
