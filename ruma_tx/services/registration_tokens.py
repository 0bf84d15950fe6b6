"""
Registration tokens (spec: "Token-authenticated registration"): what
admins create and manage, what the C{m.login.registration_token} stage of
registration checks, and what a client may ask of a token before using it.
"""
from __future__ import annotations

import secrets

from ruma_tx.matrix.errors import NotFound, invalid_param, not_found
from ruma_tx.matrix.registration_tokens import (
    INVALID_TOKEN,
    TOKEN_CHARACTERS,
    new_token_request,
    stage_token,
    token_changes,
)
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.ports.accounts import UiaSession
from ruma_tx.services.ports.registration_tokens import RegistrationToken, RegistrationTokens

#: How many server-picked tokens to try before giving up (as Synapse: a
#: 16-character token is all but never taken).
_GENERATED_TOKEN_ATTEMPTS = 10


class RegistrationTokenKeeper:
    """
    @param store: the L{RegistrationTokens} storage.
    """

    def __init__(self, *, store: RegistrationTokens, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def list_tokens(self, valid: bool | None) -> list[RegistrationToken]:
        """Every token, or only the valid (C{True}) or the used-up or expired (C{False}) ones."""
        return await self._store.list_tokens(valid, now_ms(self._clock))

    async def get(self, token: str) -> RegistrationToken:
        """@raise NotFound: 404 M_NOT_FOUND for an unknown token."""
        found = await self._store.get_token(token)
        if found is None:
            raise _unknown(token)
        return found

    async def create(self, body: JsonDict) -> RegistrationToken:
        """
        Store the token an admin asks for (L{new_token_request}), picking
        one when the request names none.

        @raise BadRequest: 400 M_INVALID_PARAM for a bad request or a token
            that exists already.
        """
        new = new_token_request(body, now_ms(self._clock))
        if new.token is not None:
            if not await self._store.create_token(new.token, new.uses_allowed, new.expiry_time):
                raise invalid_param(f"Token already exists: {new.token}")
            return await self.get(new.token)
        for _ in range(_GENERATED_TOKEN_ATTEMPTS):
            token = "".join(secrets.choice(TOKEN_CHARACTERS) for _ in range(new.length))
            if await self._store.create_token(token, new.uses_allowed, new.expiry_time):
                return await self.get(token)
        # Only short tokens run out: 64 one-character ones, say.
        raise invalid_param(f"No free token of length {new.length} was found; ask for a longer one")

    async def update(self, token: str, body: JsonDict) -> RegistrationToken:
        """
        Set the C{uses_allowed} and C{expiry_time} that C{body} has
        (L{token_changes}); the others stay.

        @raise MatrixError: 400 M_INVALID_PARAM for a bad value, 404
            M_NOT_FOUND for an unknown token.
        """
        updated = await self._store.update_token(token, token_changes(body, now_ms(self._clock)))
        if updated is None:
            raise _unknown(token)
        return updated

    async def delete(self, token: str) -> None:
        """
        Delete a token. Sessions that passed its stage still register (as
        in Synapse); their uses are no longer counted anywhere.

        @raise NotFound: 404 M_NOT_FOUND for an unknown token.
        """
        if not await self._store.delete_token(token):
            raise _unknown(token)

    async def is_valid(self, token: str) -> bool:
        """Whether C{token} would pass the registration stage now (unknown tokens do not)."""
        return await self._store.is_valid(token, now_ms(self._clock))

    async def check_stage(self, auth: JsonDict, session: UiaSession) -> str | None:
        """
        The C{m.login.registration_token} stage: the session holds one use
        of a valid token from now on, until it registers (C{completed}) or
        ends (the use is given back). Asked once per session.

        @return: C{None} when the stage is passed, else why not.
        @raise BadRequest: 400 for a stage without a string C{token}.
        """
        token = stage_token(auth)
        if await self._store.reserve_use(token, session.session_id, now_ms(self._clock)):
            return None
        return INVALID_TOKEN


def _unknown(token: str) -> NotFound:
    return not_found(f"No such registration token: {token}")
