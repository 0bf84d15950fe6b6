"""
Registration tokens (spec: "Token-authenticated registration"): what a
token may look like, the C{m.login.registration_token} stage's C{auth},
and the admin API's requests to create or change a token (the shapes and
limits of Synapse's admin API, which the spec leaves to servers).
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any, Mapping

from ruma_tx.matrix.errors import bad_json, invalid_param, missing_param

#: The UIA stage type.
REGISTRATION_TOKEN = "m.login.registration_token"

#: What a token is made of: the spec's opaque identifier grammar.
TOKEN_CHARACTERS = string.ascii_letters + string.digits + "._~-"

#: The spec: "maximum length of 64 characters".
MAX_TOKEN_LENGTH = 64

#: The length of a token the server picks when the admin names none (Synapse's).
DEFAULT_TOKEN_LENGTH = 16

_TOKEN = re.compile(f"[{re.escape(TOKEN_CHARACTERS)}]{{1,{MAX_TOKEN_LENGTH}}}")

#: The largest C{uses_allowed} (the column is a 32-bit integer).
_MAX_USES = 2**31 - 1

#: The largest C{expiry_time} (a 64-bit integer of milliseconds).
_MAX_TIME = 2**63 - 1

#: The refusal's message of a token that is unknown, used up or expired.
INVALID_TOKEN = "Invalid registration token"


@dataclass(frozen=True)
class NewToken:
    """
    A token to create.

    @ivar token: the token, or C{None} for one the server picks, of
        C{length} characters.
    @ivar uses_allowed: how many registrations it allows; C{None}: any number.
    @ivar expiry_time: the last moment (ms since the epoch) it is valid;
        C{None}: it never expires.
    """

    token: str | None
    length: int
    uses_allowed: int | None
    expiry_time: int | None


def is_token_text(token: str) -> bool:
    """Whether C{token} fits the grammar: 1 to 64 of C{[A-Za-z0-9._~-]}."""
    return _TOKEN.fullmatch(token) is not None


def new_token_request(body: Mapping[str, Any], now_ms: int) -> NewToken:
    """
    The body of C{POST /_synapse/admin/v1/registration_tokens/new}: every
    field optional, a null one meaning its default.

    @raise BadRequest: 400 M_INVALID_PARAM for a value of the wrong type or
        out of range (as Synapse).
    """
    token = body.get("token")
    if token is not None and not (isinstance(token, str) and is_token_text(token)):
        raise invalid_param(
            f"'token' must be 1 to {MAX_TOKEN_LENGTH} characters of [A-Za-z0-9._~-]")
    length = body.get("length")
    if length is None:
        length = DEFAULT_TOKEN_LENGTH
    elif not _is_integer(length) or not 1 <= length <= MAX_TOKEN_LENGTH:
        raise invalid_param(f"'length' must be an integer between 1 and {MAX_TOKEN_LENGTH}")
    changes = token_changes(body, now_ms)
    return NewToken(token, length, changes.get("uses_allowed"), changes.get("expiry_time"))


def token_changes(body: Mapping[str, Any], now_ms: int) -> dict[str, int | None]:
    """
    The fields an admin sets on a token: C{uses_allowed} and C{expiry_time}
    when present in C{body} (null: unlimited, never expires); the others
    are left as they are.

    @raise BadRequest: 400 M_INVALID_PARAM for a negative or non-integer
        C{uses_allowed}, or an C{expiry_time} in the past (as Synapse).
    """
    changes: dict[str, int | None] = {}
    if "uses_allowed" in body:
        uses = body["uses_allowed"]
        if uses is not None and (not _is_integer(uses) or not 0 <= uses <= _MAX_USES):
            raise invalid_param("'uses_allowed' must be a non-negative integer or null")
        changes["uses_allowed"] = uses
    if "expiry_time" in body:
        expiry = body["expiry_time"]
        if expiry is not None and (not _is_integer(expiry) or expiry > _MAX_TIME):
            raise invalid_param("'expiry_time' must be a time in milliseconds since the epoch, or null")
        if expiry is not None and expiry < now_ms:
            raise invalid_param("'expiry_time' must not be in the past")
        changes["expiry_time"] = expiry
    return changes


def stage_token(auth: Mapping[str, Any]) -> str:
    """
    The C{token} of an C{m.login.registration_token} stage.

    @raise BadRequest: 400 M_MISSING_PARAM when absent, M_BAD_JSON when
        not a string.
    """
    token = auth.get("token")
    if token is None:
        raise missing_param("Missing parameter: auth.token")
    if not isinstance(token, str):
        raise bad_json("'auth.token' must be a string")
    return token


def _is_integer(value: object) -> bool:
    # JSON's true is not a number of uses.
    return isinstance(value, int) and not isinstance(value, bool)
