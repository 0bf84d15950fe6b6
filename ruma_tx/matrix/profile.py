"""
Profiles (spec: "Profiles"): which display names, avatar URLs and custom
keys are acceptable.
"""
from __future__ import annotations

import re

from ruma_tx.matrix.errors import BadRequest, invalid_param
from ruma_tx.matrix.identifiers import (
    InvalidIdentifier,
    is_valid_server_name,
    parse_user_id,
)

#: The longest display name, in characters (Synapse's C{MAX_DISPLAYNAME_LEN}).
MAX_DISPLAYNAME_LENGTH = 256

#: The longest avatar URL, in characters (Synapse's C{MAX_AVATAR_URL_LEN}).
MAX_AVATAR_URL_LENGTH = 1000

#: The longest profile key, in bytes (the spec's C{M_KEY_TOO_LARGE}).
MAX_KEY_BYTES = 255

# The spec's keyName grammar: the two historical keys, m.tz, or a Common
# Namespaced Identifier.
_KEY_NAME_RE = re.compile(r"avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")

_MEDIA_ID_RE = re.compile(r"[A-Za-z0-9_\-]+")


def check_displayname(displayname: str) -> str | None:
    """
    The display name to store for a requested one: an empty string clears
    it (as Synapse does).

    @raise MatrixError: 400 M_TOO_LARGE if longer than L{MAX_DISPLAYNAME_LENGTH}.
    """
    if len(displayname) > MAX_DISPLAYNAME_LENGTH:
        raise BadRequest("M_TOO_LARGE", f"Display name is too long (max {MAX_DISPLAYNAME_LENGTH})")
    return displayname or None


def check_avatar_url(avatar_url: str) -> str | None:
    """
    The avatar URL to store for a requested one: an empty string clears it
    (as Synapse does); anything else must be an C{mxc://} URI, which the
    spec requires ("the value MUST be an MXC URI string"; Synapse accepts any
    string) with the server name and media id grammar of the content
    repository module.

    @raise MatrixError: 400 M_TOO_LARGE if longer than
        L{MAX_AVATAR_URL_LENGTH}, 400 M_INVALID_PARAM if no MXC URI.
    """
    if len(avatar_url) > MAX_AVATAR_URL_LENGTH:
        raise BadRequest("M_TOO_LARGE", f"Avatar URL is too long (max {MAX_AVATAR_URL_LENGTH})")
    if not avatar_url:
        return None
    if not is_mxc_uri(avatar_url):
        raise invalid_param("'avatar_url' must be an mxc:// URI")
    return avatar_url


def is_mxc_uri(uri: str) -> bool:
    """Whether C{uri} is C{mxc://<server-name>/<media-id>}."""
    if not uri.startswith("mxc://"):
        return False
    server_name, slash, media_id = uri[len("mxc://"):].partition("/")
    return bool(slash) and is_valid_server_name(server_name) and _MEDIA_ID_RE.fullmatch(media_id) is not None


def check_key_name(key_name: str) -> None:
    """
    @raise MatrixError: 400 M_KEY_TOO_LARGE for a key over 255 bytes, 400
        M_INVALID_PARAM for one outside the spec's keyName grammar.
    """
    if len(key_name.encode("utf-8")) > MAX_KEY_BYTES:
        raise BadRequest("M_KEY_TOO_LARGE", f"Profile key is longer than {MAX_KEY_BYTES} bytes")
    if _KEY_NAME_RE.fullmatch(key_name) is None:
        raise invalid_param("Invalid profile key")


def checked_user_id(user_id: str) -> str:
    """@raise MatrixError: 400 M_INVALID_PARAM for a malformed user id."""
    try:
        parse_user_id(user_id)
    except InvalidIdentifier as e:
        raise invalid_param(f"Invalid user id: {e}") from None
    return user_id


