"""
Registration (spec: "Account registration"): which user ids may be
registered.
"""
from __future__ import annotations

import re

from ruma_tx.matrix.errors import BadRequest, MatrixError
from ruma_tx.matrix.identifiers import (
    InvalidIdentifier,
    user_id_for,
    validate_localpart,
)

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


