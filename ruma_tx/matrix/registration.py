"""
Registration (spec: "Account registration"): which user ids may be
registered, and the parameters of a registration request.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, TypeVar

from ruma_tx.matrix.devices import check_device_display_name, check_requested_device_id
from ruma_tx.matrix.errors import BadRequest, MatrixError, bad_json, invalid_param
from ruma_tx.matrix.identifiers import (
    InvalidIdentifier,
    user_id_for,
    validate_localpart,
)
from ruma_tx.matrix.login import MAX_PASSWORD_LENGTH, check_password_text

#: Localparts made only of digits are reserved for server-picked ids
#: (guests, and users who gave no username), as Synapse reserves them.
_NUMERIC_LOCALPART = re.compile(r"[0-9]+")


def invalid_username(message: str) -> MatrixError:
    return BadRequest("M_INVALID_USERNAME", message)


def user_in_use() -> MatrixError:
    return BadRequest("M_USER_IN_USE", "User ID already taken.")


def new_user_id(localpart: str, server_name: str, *, numeric_allowed: bool = False) -> str:
    """
    The user id a registration asking for C{localpart} would get.

    Beyond the spec's grammar, two rules follow Synapse: a localpart may not
    start with C{_} (the prefix application services use), and all-digit
    localparts are reserved for ids the server picks.

    @param numeric_allowed: accept an all-digit localpart (a guest taking
        its own id in an upgrade).
    @raise MatrixError: 400 M_INVALID_USERNAME.
    """
    try:
        validate_localpart(localpart)
        user_id = user_id_for(localpart, server_name)
    except InvalidIdentifier as e:
        raise invalid_username(str(e)) from None
    if localpart.startswith("_"):
        raise invalid_username("User ID may not begin with _")
    if not numeric_allowed and _NUMERIC_LOCALPART.fullmatch(localpart):
        raise invalid_username("Numeric user IDs are reserved for guest users.")
    return user_id




_T = TypeVar("_T")


@dataclass(frozen=True)
class RegistrationForm:
    """
    The parameters of a C{kind=user} registration.

    @ivar username: the desired localpart, as sent, or C{None}.
    @ivar password: C{None} when absent (allowed until auth is attempted).
    @ivar guest_access_token: the token of a guest upgrading itself.
    @ivar auth: the UIA C{auth} member as sent (the UIA checks its shape).
    """

    username: str | None = None
    password: str | None = None
    device_id: str | None = None
    initial_device_display_name: str | None = None
    inhibit_login: bool = False
    refresh_token: bool = False
    guest_access_token: str | None = None
    auth: object = None


def registration_form(body: Mapping[str, Any]) -> RegistrationForm:
    """
    Parse the body (or the remembered parameters) of a registration.

    @raise MatrixError: 400 M_BAD_JSON naming a member of the wrong type,
        M_INVALID_PARAM for a password over L{MAX_PASSWORD_LENGTH}
        characters (Synapse's limit) or a device id or name that cannot be
        stored (checked here, before the account exists), M_TOO_LARGE for a
        long device name.
    """
    password = _field(body, "password", str)
    if password is not None:
        check_password_text(password, "password")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise invalid_param(f"Password may not be longer than {MAX_PASSWORD_LENGTH} characters")
    device_id = _field(body, "device_id", str)
    check_requested_device_id(device_id)
    display_name = _field(body, "initial_device_display_name", str)
    check_device_display_name(display_name)
    return RegistrationForm(
        username=_field(body, "username", str),
        password=password,
        device_id=device_id,
        initial_device_display_name=display_name,
        inhibit_login=_field(body, "inhibit_login", bool) or False,
        refresh_token=_field(body, "refresh_token", bool) or False,
        guest_access_token=_field(body, "guest_access_token", str),
        auth=body.get("auth"),
    )


def _field(body: Mapping[str, Any], name: str, kind: type[_T]) -> _T | None:
    """C{body[name]}, C{None} when absent or null; a bool is no C{str}, and no C{int}."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise bad_json(f"Parameter {name!r} has the wrong type")
    return value
