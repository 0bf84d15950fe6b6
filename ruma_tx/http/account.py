"""
The account's own endpoints (spec: "Current account information",
"Password management", "Account deactivation").
"""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.http.uia import bound_request
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.login import Authenticator


class AccountApi:
    """
    @param authenticator: the L{ruma_tx.services.login.Authenticator}.
    """

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    @endpoint("GET", "/account/whoami", guest=True)
    async def whoami(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return self._authenticator.whoami(requester)

    @endpoint("GET", "/account/3pid")
    async def third_party_ids(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        # This server binds no email addresses or phone numbers (no identity
        # server support), so the list is always empty; clients ask at login.
        return {"threepids": []}

    @endpoint("POST", "/account/password")
    async def change_password(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        body = read_json_object(request)
        await self._authenticator.change_password(
            requester,
            body,
            new_password=get_field(body, "new_password", str),
            logout_devices=get_field(body, "logout_devices", bool, default=True),
            request=bound_request(request, body),
        )
        return {}

    @endpoint("POST", "/account/deactivate")
    async def deactivate(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        body = read_json_object(request)
        # id_server is ignored (we bind no 3PIDs, so there is nothing to
        # unbind), but must still be a string.
        get_field(body, "id_server", str, default=None)
        return await self._authenticator.deactivate(
            requester, body, erase=get_field(body, "erase", bool, default=False),
            request=bound_request(request, body),
        )
