"""
Account registration: POST /register, GET /register/available and the
registration token validity check.
"""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, query_arg, read_json_object
from ruma_tx.http.routing import CLIENT_V1, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.http.uia import bound_request
from ruma_tx.matrix.devices import check_device_display_name
from ruma_tx.matrix.errors import invalid_param, missing_param
from ruma_tx.matrix.registration import registration_form
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.registration import Registrar


class RegisterApi:
    """
    @param registrar: the L{ruma_tx.services.registration.Registrar}.
    """

    def __init__(self, registrar: Registrar) -> None:
        self._registrar = registrar

    @endpoint("POST", "/register", auth="none", rate_limit="register")
    async def register(self, request: MatrixRequest, requester: None) -> JsonDict:
        kind = query_arg(request, "kind", "user")
        if kind not in ("user", "guest"):
            raise invalid_param("'kind' must be 'user' or 'guest'")
        body = read_json_object(request)
        if kind == "guest":
            # The spec: every other parameter of a guest registration is ignored.
            display_name = get_field(body, "initial_device_display_name", str, default=None)
            check_device_display_name(display_name)
            return await self._registrar.register_guest(initial_device_display_name=display_name)
        return await self._registrar.register(registration_form(body), bound_request(request, body))

    @endpoint("GET", "/register/available", auth="none", rate_limit="register")
    async def available(self, request: MatrixRequest, requester: None) -> JsonDict:
        username = query_arg(request, "username")
        if username is None:
            raise missing_param("Missing parameter: username")
        await self._registrar.check_available(username)
        return {"available": True}

    # The spec asks for a rate limit against guessing tokens: the
    # registration one (per client IP).
    @endpoint("GET", "/register/m.login.registration_token/validity", auth="none", rate_limit="register",
              prefixes=CLIENT_V1)
    async def registration_token_validity(self, request: MatrixRequest, requester: None) -> JsonDict:
        token = query_arg(request, "token")
        if token is None:
            raise missing_param("Missing parameter: token")
        return {"valid": await self._registrar.registration_token_valid(token)}
