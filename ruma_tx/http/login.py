"""
The session endpoints (spec: "Login", "Refreshing access tokens",
"Logout"): which login types we offer, password login, token refresh and
logging out.
"""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.login import Authenticator


class LoginApi:
    """
    @param authenticator: the L{ruma_tx.services.login.Authenticator}.
    """

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    @endpoint("GET", "/login", auth="none")
    async def login_flows(self, request: MatrixRequest, requester: None) -> JsonDict:
        return {"flows": self._authenticator.login_flows()}

    @endpoint("POST", "/login", auth="none", rate_limit="login")
    async def log_in(self, request: MatrixRequest, requester: None) -> JsonDict:
        body = read_json_object(request)
        return await self._authenticator.log_in(
            get_field(body, "type", str),
            body,
            password=get_field(body, "password", str, default=None),
            device_id=get_field(body, "device_id", str, default=None),
            display_name=get_field(body, "initial_device_display_name", str, default=None),
            refresh=get_field(body, "refresh_token", bool, default=False),
        )

    @endpoint("POST", "/refresh", auth="none")
    async def refresh(self, request: MatrixRequest, requester: None) -> JsonDict:
        body = read_json_object(request)
        return await self._authenticator.refresh(get_field(body, "refresh_token", str))

    @endpoint("POST", "/logout", locked=True)
    async def log_out(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        await self._authenticator.log_out(requester)
        return {}

    @endpoint("POST", "/logout/all", locked=True)
    async def log_out_all(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        await self._authenticator.log_out_all(requester)
        return {}
