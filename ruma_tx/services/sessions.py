"""
Logging in and out: devices with their access and refresh tokens.
Shared by registration, login and token refresh.
"""
from __future__ import annotations

import secrets
from typing import Awaitable, Callable, Iterable

from ruma_tx.matrix.access_tokens import InvalidToken, mint_token, verify_token
from ruma_tx.matrix.devices import check_device_display_name, check_requested_device_id, new_device_id
from ruma_tx.matrix.errors import Unauthorized
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.ports.accounts import NewLogin, Tokens


def _new_token_id() -> str:
    return secrets.token_urlsafe(18)


class SessionIssuer:
    """
    Issues and revokes the tokens of a device.

    @param forget_tokens: told the ids of revoked tokens (the guard's cache).
    """

    def __init__(self, *, tokens: Tokens, macaroon_key: bytes, clock: Clock, access_token_lifetime_ms: int,
                 forget_tokens: Callable[[Iterable[str]], None],
                 devices_changed: Callable[[str], Awaitable[None]]) -> None:
        """
        @param devices_changed: C{async (user_id)}, after a login made a new
            device or a logout deleted some (the user's device list changed).
        """
        self._devices_changed = devices_changed
        self._tokens = tokens
        self._key = macaroon_key
        self._clock = clock
        self._lifetime_ms = access_token_lifetime_ms
        self._forget_tokens = forget_tokens

    async def log_in(
        self, user_id: str, *, device_id: str | None, display_name: str | None,
        is_guest: bool = False, refresh: bool = False,
    ) -> dict:
        """
        Create (or reuse) a device and return the login response body.

        The callers check the device id and name before anything is stored
        (an account, a password check); they are checked again here, so no
        way of issuing a session can store a device the rules refuse.
        """
        check_requested_device_id(device_id)
        check_device_display_name(display_name)
        now = now_ms(self._clock)
        device_id = device_id or new_device_id()
        access_id = _new_token_id()
        refresh_id = _new_token_id() if refresh else None
        expires_at = now + self._lifetime_ms if refresh else None
        revoked, new_device = await self._tokens.create_login(
            NewLogin(user_id, device_id, display_name, access_id, expires_at, refresh_id), now
        )
        self._forget_tokens(revoked)
        if new_device:
            await self._devices_changed(user_id)
        return self._response(user_id, device_id, is_guest, access_id, refresh_id, expires_at, now)

    def _response(self, user_id: str, device_id: str, is_guest: bool, access_id: str, refresh_id: str | None,
                  expires_at: int | None, now: int) -> JsonDict:
        body: JsonDict = {
            "user_id": user_id,
            "device_id": device_id,
            "access_token": mint_token(
                self._key, token_id=access_id, user_id=user_id, device_id=device_id,
                guest=is_guest, expires_at_ms=expires_at,
            ),
        }
        if refresh_id is not None:
            assert expires_at is not None  # a refreshable access token always expires
            body["refresh_token"] = mint_token(
                self._key, token_id=refresh_id, user_id=user_id, device_id=device_id,
                token_type="refresh", guest=is_guest,
            )
            body["expires_in_ms"] = expires_at - now
        return body

    async def refresh(self, refresh_token: str) -> dict:
        """
        Exchange a refresh token for a new access and refresh token; the
        old refresh token (and its access token) stop working.
        """
        now = now_ms(self._clock)
        try:
            claims = verify_token(self._key, refresh_token, now_ms=now, expected_type="refresh")
        except InvalidToken:
            raise Unauthorized("M_UNKNOWN_TOKEN", "Invalid refresh token") from None
        if not claims.restrictions.unrestricted or claims.device_id is None:
            raise Unauthorized("M_UNKNOWN_TOKEN", "Invalid refresh token")
        access_id, refresh_id = _new_token_id(), _new_token_id()
        expires_at = now + self._lifetime_ms
        revoked = await self._tokens.rotate_refresh_token(
            claims.token_id, claims.user_id, claims.device_id, refresh_id, access_id, expires_at, now
        )
        if revoked is None:
            raise Unauthorized("M_UNKNOWN_TOKEN", "Unknown or already used refresh token")
        self._forget_tokens(revoked)
        body = self._response(
            claims.user_id, claims.device_id, claims.guest, access_id, refresh_id, expires_at, now
        )
        del body["user_id"], body["device_id"]
        return body

    async def log_out(self, token_id: str) -> None:
        """Revoke one access token and delete its device."""
        user_id = await self._tokens.delete_access_token(token_id)
        self._forget_tokens([token_id])
        if user_id is not None:
            await self._devices_changed(user_id)

    async def log_out_all(self, user_id: str, except_device: str | None = None) -> None:
        """Delete every device (but C{except_device}) of the user, and their tokens."""
        self._forget_tokens(await self._tokens.delete_user_tokens(user_id, except_device))
        await self._devices_changed(user_id)

    def revoked(self, token_ids: Iterable[str]) -> None:
        """Tell the guard that tokens were revoked elsewhere (device deletion)."""
        self._forget_tokens(token_ids)
