"""
Logging in and passwords (spec: "Login", "Account management"): which
user an identifier names, and which passwords are acceptable.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from ruma_tx.matrix.errors import (
    Forbidden,
    MatrixError,
    bad_json,
    forbidden,
    invalid_param,
    missing_param,
)
from ruma_tx.matrix.identifiers import InvalidIdentifier, parse_user_id
from ruma_tx.matrix.uia import INVALID_CREDENTIALS, identified_user

#: Synapse refuses longer new passwords; the spec is silent.
MAX_PASSWORD_LENGTH = 512

#: A lone surrogate (Python strings hold them; Unicode text does not).
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def login_user_id(body: Mapping[str, Any], server_name: str) -> str:
    """
    The local user a password login names: C{identifier} of type
    C{m.id.user} or the legacy top-level C{user}, as a full user id or a
    localpart (parsed by L{identified_user}), normalised by L{local_user_id}.

    @raise MatrixError: 400 for a missing or malformed identifier (M_UNKNOWN
        for an unknown identifier type, as Synapse); 403 M_FORBIDDEN for a
        third-party identifier (the spec: a 3PID the server does not know;
        we keep none) and for a user of another server, with the message of
        a wrong password.
    """
    claimed = identified_user(body, server_name)
    if claimed is None:
        if "medium" in body and "address" in body:  # the legacy 3PID fields
            raise forbidden(INVALID_CREDENTIALS)
        raise missing_param("Missing parameter: identifier")
    user_id = local_user_id(claimed, server_name)
    if user_id is None:
        raise forbidden(INVALID_CREDENTIALS)
    return user_id


def local_user_id(claimed: str, server_name: str) -> str | None:
    """
    The local user C{claimed} names, its localpart lower-cased (new
    localparts are lower-case only, and Synapse matches the user
    case-insensitively at login); C{None} if it is malformed or of another
    server.
    """
    try:
        localpart, server = parse_user_id(claimed)
    except InvalidIdentifier:
        return None
    if server.lower() != server_name.lower():
        return None
    return f"@{localpart.lower()}:{server_name}"


def check_password_text(password: str, field: str) -> None:
    """
    Refuse a password that is not valid Unicode text: JSON may escape a
    lone surrogate, which no UTF-8 (and so no hash) can hold.

    @raise MatrixError: 400 M_BAD_JSON naming C{field}.
    """
    if _SURROGATE_RE.search(password):
        raise bad_json(f"'{field}' is not valid Unicode: it holds a lone surrogate")


def check_new_password(password: str) -> None:
    """
    @raise MatrixError: 400 M_MISSING_PARAM for an empty password (Synapse
        treats it as absent), 400 M_INVALID_PARAM past
        L{MAX_PASSWORD_LENGTH} characters (Synapse's limit).
    """
    if not password:
        raise missing_param("Missing parameter: new_password")
    check_password_text(password, "new_password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise invalid_param(f"Password cannot be longer than {MAX_PASSWORD_LENGTH} characters")


def user_deactivated() -> MatrixError:
    """The spec's (and Synapse's) refusal of a deactivated account's login."""
    return Forbidden("M_USER_DEACTIVATED", "This account has been deactivated")


