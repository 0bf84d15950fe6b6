"""
Logging in and passwords (spec: "Login", "Account management"): which
user an identifier names, and which passwords are acceptable.
"""
from __future__ import annotations

from typing import Any, Mapping

from ruma_tx.matrix.errors import (
    BadRequest,
    Forbidden,
    MatrixError,
    bad_json,
    forbidden,
    invalid_param,
    missing_param,
)
from ruma_tx.matrix.identifiers import InvalidIdentifier, parse_user_id
from ruma_tx.matrix.uia import claimed_user_id

#: One message for an unknown user, another server's user and a wrong
#: password, so a failed login does not tell which (Synapse's wording).
INVALID_CREDENTIALS = "Invalid username or password"

#: Synapse refuses longer new passwords; the spec is silent.
MAX_PASSWORD_LENGTH = 512

_THIRD_PARTY_IDENTIFIERS = ("m.id.thirdparty", "m.id.phone")


def login_user_id(body: Mapping[str, Any], server_name: str) -> str:
    """
    The local user a password login names: C{identifier} of type
    C{m.id.user} or the legacy top-level C{user}, as a full user id or a
    localpart (parsed by L{claimed_user_id}).

    The localpart is lower-cased: new localparts are lower-case only, and
    Synapse matches the user case-insensitively at login.

    @raise MatrixError: 400 for a missing or malformed identifier (M_UNKNOWN
        for an unknown identifier type, as Synapse); 403 M_FORBIDDEN for a
        third-party identifier (the spec: a 3PID the server does not know;
        we keep none) and for a user of another server, with the message of
        a wrong password.
    """
    identifier = body.get("identifier")
    if identifier is not None:
        if not isinstance(identifier, dict):
            raise bad_json("'identifier' must be an object")
        kind = identifier.get("type")
        if kind is None:
            raise missing_param("'identifier' has no 'type'")
        if kind in _THIRD_PARTY_IDENTIFIERS:
            raise forbidden(INVALID_CREDENTIALS)
        if kind != "m.id.user":
            raise BadRequest("M_UNKNOWN", "Unknown login identifier type")
        user = identifier.get("user")
    elif "user" in body:
        user = body["user"]
    elif "medium" in body and "address" in body:  # the legacy 3PID fields
        raise forbidden(INVALID_CREDENTIALS)
    else:
        raise missing_param("Missing parameter: identifier")
    if user is None:
        raise missing_param("The user identifier has no 'user'")
    if not isinstance(user, str):
        raise bad_json("The identifier's 'user' must be a string")
    claimed = claimed_user_id(body, server_name)
    if claimed is None:  # not reached: C{user} was checked a string above
        raise forbidden(INVALID_CREDENTIALS)
    try:
        localpart, server = parse_user_id(claimed)
    except InvalidIdentifier:
        raise forbidden(INVALID_CREDENTIALS) from None
    if server.lower() != server_name.lower():
        raise forbidden(INVALID_CREDENTIALS)
    return f"@{localpart.lower()}:{server_name}"


def check_new_password(password: str) -> None:
    """
    @raise MatrixError: 400 M_MISSING_PARAM for an empty password (Synapse
        treats it as absent), 400 M_INVALID_PARAM past
        L{MAX_PASSWORD_LENGTH} characters (Synapse's limit).
    """
    if not password:
        raise missing_param("Missing parameter: new_password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise invalid_param(f"Password cannot be longer than {MAX_PASSWORD_LENGTH} characters")


def user_deactivated() -> MatrixError:
    """The spec's (and Synapse's) refusal of a deactivated account's login."""
    return Forbidden("M_USER_DEACTIVATED", "This account has been deactivated")


