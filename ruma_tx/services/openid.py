"""
OpenID tokens (spec: "OpenID"): a user proves who they are to a third
party (a widget, an integration manager) without giving it their access
token. The user asks for a token (C{POST /user/{userId}/openid/request_token});
the third party exchanges it for the user id at C{GET
/_matrix/federation/v1/openid/userinfo}. The token is good for nothing
else: it is not a macaroon, so the client API refuses it.
"""
from __future__ import annotations

import hashlib
import secrets

from ruma_tx.matrix.errors import forbidden, missing_token, unknown_token
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.ports.openid import OpenIdTokenStorage

#: How long a token is valid (Synapse: one hour; the spec's example too).
TOKEN_LIFETIME_S = 3600


class OpenIdTokens:
    """
    @param store: the L{ruma_tx.storage.openid.OpenIdStore}.
    @param server_name: where the third party checks the token.
    """

    def __init__(self, *, store: OpenIdTokenStorage, clock: Clock, server_name: str,
                 lifetime_s: int = TOKEN_LIFETIME_S) -> None:
        self._store = store
        self._clock = clock
        self._server_name = server_name
        self._lifetime_s = lifetime_s

    async def request_token(self, requester_id: str, user_id: str) -> JsonDict:
        """
        A new token proving C{user_id}, for that user only.

        @raise Forbidden: for another user's id (as Synapse).
        """
        if requester_id != user_id:
            raise forbidden("Cannot request tokens for other users.")
        token = secrets.token_urlsafe(32)
        now = now_ms(self._clock)
        await self._store.add_token(_token_hash(token), user_id, now + self._lifetime_s * 1000, now)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "matrix_server_name": self._server_name,
            "expires_in": self._lifetime_s,
        }

    async def userinfo(self, token: str | None) -> JsonDict:
        """
        Who a token was issued to: C{{"sub": user_id}}.

        @raise Unauthorized: 401 M_MISSING_TOKEN without a token (as
            Synapse), M_UNKNOWN_TOKEN for an unknown or expired one, or one
            of a deactivated account (spec).
        """
        if not token:
            raise missing_token("Access token required")
        user_id = await self._store.get_token_user(_token_hash(token), now_ms(self._clock))
        if user_id is None:
            raise unknown_token("Access token unknown or expired")
        return {"sub": user_id}


def _token_hash(token: str) -> str:
    """What is stored of a token: its SHA-256 (a token has 256 random bits: no salt needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
