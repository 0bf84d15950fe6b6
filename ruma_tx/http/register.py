"""Account registration: POST /register and GET /register/available."""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, query_arg, read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.matrix.errors import invalid_param, missing_param
from ruma_tx.services.registration import RegistrationForm

#: The longest password accepted (as Synapse).
MAX_PASSWORD_LENGTH = 512


class RegisterApi:
    def __init__(self, registrar):
        self._registrar = registrar

    @endpoint("POST", "/register", auth="none", rate_limit="register")
    async def register(self, request, requester):
        kind = query_arg(request, "kind", "user")
        if kind not in ("user", "guest"):
            raise invalid_param("'kind' must be 'user' or 'guest'")
        body = read_json_object(request)
        display_name = get_field(body, "initial_device_display_name", str, default=None)
        if kind == "guest":
            # The spec: every other parameter of a guest registration is ignored.
            return await self._registrar.register_guest(initial_device_display_name=display_name)
        return await self._registrar.register(_registration_form(body, display_name))

    @endpoint("GET", "/register/available", auth="none", rate_limit="register")
    async def available(self, request, requester):
        username = query_arg(request, "username")
        if username is None:
            raise missing_param("Missing parameter: username")
        await self._registrar.check_available(username)
        return {"available": True}


def _registration_form(body: dict, display_name: str | None) -> RegistrationForm:
    password = get_field(body, "password", str, default=None)
    if password is not None and len(password) > MAX_PASSWORD_LENGTH:
        raise invalid_param(f"Password may not be longer than {MAX_PASSWORD_LENGTH} characters")
    return RegistrationForm(
        username=get_field(body, "username", str, default=None),
        password=password,
        device_id=get_field(body, "device_id", str, default=None),
        initial_device_display_name=display_name,
        inhibit_login=get_field(body, "inhibit_login", bool, default=False),
        refresh_token=get_field(body, "refresh_token", bool, default=False),
        guest_access_token=get_field(body, "guest_access_token", str, default=None),
        auth=body.get("auth"),
    )
