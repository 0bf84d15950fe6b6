"""The admin API's registration tokens (Synapse's "Registration Tokens" API)."""
from __future__ import annotations

from ruma_tx.http.parsing import query_arg, read_json_object
from ruma_tx.http.routing import SYNAPSE_ADMIN, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import invalid_param
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.ports.registration_tokens import RegistrationToken
from ruma_tx.services.registration_tokens import RegistrationTokenKeeper

_TOKENS = "/v1/registration_tokens"


class RegistrationTokensAdminApi:
    """
    @param tokens: the L{RegistrationTokenKeeper}.
    """

    def __init__(self, tokens: RegistrationTokenKeeper) -> None:
        self._tokens = tokens

    @endpoint("GET", _TOKENS, prefixes=SYNAPSE_ADMIN, admin=True)
    async def list_tokens(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        valid = query_arg(request, "valid")
        if valid not in (None, "true", "false"):
            raise invalid_param("Query parameter 'valid' must be true or false")
        tokens = await self._tokens.list_tokens(None if valid is None else valid == "true")
        return {"registration_tokens": [_token_json(token) for token in tokens]}

    @endpoint("POST", f"{_TOKENS}/new", prefixes=SYNAPSE_ADMIN, admin=True)
    async def create(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return _token_json(await self._tokens.create(read_json_object(request, allow_empty=True)))

    @endpoint("GET", f"{_TOKENS}/<token>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def get(self, request: MatrixRequest, requester: Requester, token: str) -> JsonDict:
        return _token_json(await self._tokens.get(token))

    @endpoint("PUT", f"{_TOKENS}/<token>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def update(self, request: MatrixRequest, requester: Requester, token: str) -> JsonDict:
        return _token_json(await self._tokens.update(token, read_json_object(request, allow_empty=True)))

    @endpoint("DELETE", f"{_TOKENS}/<token>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def delete(self, request: MatrixRequest, requester: Requester, token: str) -> JsonDict:
        await self._tokens.delete(token)
        return {}


def _token_json(token: RegistrationToken) -> JsonDict:
    return {"token": token.token, "uses_allowed": token.uses_allowed, "pending": token.pending,
            "completed": token.completed, "expiry_time": token.expiry_time}
