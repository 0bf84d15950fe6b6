"""
Minting and verifying access and refresh tokens as macaroons.

A token is a version 2 macaroon whose identifier is the token id and whose
first-party caveats carry the claims (C{user_id = ...}, C{type = ...}, ...).
Anyone holding a macaroon can append caveats, so verification matches every
caveat exactly against a fixed grammar, requires the identity caveats exactly
once and rejects anything unknown.

The server ends what it mints with C{gen = 2}: everything before it is the
server's, everything after it was appended by a holder, who may only narrow
the token, with C{time}, C{method}, C{room_id} and C{path_prefix} caveats.
An identity caveat after C{gen} (say C{guest = true}) makes the token
invalid. Tokens of the first generation (C{gen = 1}, first) could not tell
the two apart and are refused: their holders log in again.

A token must be exactly as minted: the serialization the server gives out
is the only one accepted (no extra padding, bytes or other spelling of the
same macaroon), so one token has one cache entry.

This module does no I/O; the current time is an argument, in milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from pymacaroons import Macaroon, Verifier
from pymacaroons.macaroon import MACAROON_V2

__all__ = [
    "InvalidToken",
    "Restrictions",
    "TokenClaims",
    "mint_token",
    "verify_token",
]

# Longest serialized token accepted; minted tokens are ~150-250 characters.
_MAX_TOKEN_LENGTH = 8192

# URL-safe base64 as written by pymacaroons (unpadded), padding tolerated.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+={0,2}")

# Value fragments.  Explicit character classes only (no \d, which matches
# non-ASCII digits); full matches only (no $, which accepts a trailing "\n").
_VALUE = r"[^\x00-\x20\x7f-\x9f\s]+"
_USER_ID = r"@[!-9;-~]+:[!-~]+"
# "!opaque:server", or "!hash" (room version 12 ids have no server part).
_ROOM_ID = r"![!-9;-~]+(?::[!-~]+)?"
_WORD = r"[a-z][a-z0-9_]*"
_METHOD = r"[A-Z]+"
_PATH = r"/[!-~]*"
_MS = r"[0-9]{1,18}"

# One full-match grammar per caveat key; the key is the text before the
# first space, and the grammar repeats it literally.
_GRAMMAR = {
    "gen": re.compile(r"gen = (2)"),
    "user_id": re.compile(r"user_id = (" + _USER_ID + ")"),
    "type": re.compile(r"type = (" + _WORD + ")"),
    "device_id": re.compile(r"device_id = (" + _VALUE + ")"),
    "guest": re.compile(r"guest = (true)"),
    "time": re.compile(r"time < (" + _MS + ")"),
    "method": re.compile(r"method = (" + _METHOD + ")"),
    "room_id": re.compile(r"room_id = (" + _ROOM_ID + ")"),
    "path_prefix": re.compile(r"path_prefix = (" + _PATH + ")"),
}

# Keys that fix who the token is for: each may appear at most once.
_SINGLE_KEYS = frozenset({"gen", "user_id", "type", "device_id", "guest"})
_REQUIRED_KEYS = ("gen", "user_id", "type")
#: What a holder may append after C{gen}.
_HOLDER_KEYS = frozenset({"time", "method", "room_id", "path_prefix"})
#: What the server mints before C{gen}.
_MINTED_KEYS = frozenset({"user_id", "type", "device_id", "guest", "time"})

_VALUE_RE = re.compile(_VALUE)
_USER_ID_RE = re.compile(_USER_ID)
_WORD_RE = re.compile(_WORD)


class InvalidToken(Exception):
    """
    A token was rejected.

    @ivar reason: why, for logs; never contains the token.
    @ivar soft_logout: C{True} only when the token is valid apart from
        having expired, so the client may refresh it.
    """

    def __init__(self, reason: str, soft_logout: bool = False) -> None:
        """
        @param reason: why the token was rejected, without the token.
        @param soft_logout: whether the only problem is expiry.
        """
        super().__init__(reason)
        self.reason = reason
        self.soft_logout = soft_logout


@dataclass(frozen=True)
class Restrictions:
    """
    Attenuation caveats a holder appended to a token; all optional.

    @ivar methods: the HTTP methods allowed, or C{None} for any.  Several
        C{method} caveats intersect.
    @ivar room_ids: the rooms the token may act in, or C{None} for any.
        Several C{room_id} caveats intersect.
    @ivar path_prefixes: the request path must start with every one of
        these, at a segment boundary.
    """

    methods: frozenset[str] | None = None
    room_ids: frozenset[str] | None = None
    path_prefixes: tuple[str, ...] = field(default=())

    @property
    def unrestricted(self) -> bool:
        """
        Whether no attenuation caveat applies.
        """
        return (
            self.methods is None
            and self.room_ids is None
            and not self.path_prefixes
        )

    def allows(self, method: str, path: str, room_id: str | None) -> bool:
        """
        Decide whether a request is within these restrictions.

        C{HEAD} counts as C{GET}; C{OPTIONS} is always allowed.  A
        room-restricted token may only call endpoints about one of its rooms.

        @param method: the HTTP method.
        @param path: the raw request path, without the query string.
        @param room_id: the room the request path names, or C{None} if it
            names none.
        @return: C{True} if the request is allowed.
        """
        method = method.upper()
        if method == "OPTIONS":
            return True
        if self.methods is not None:
            effective = "GET" if method == "HEAD" else method
            if effective not in self.methods and method not in self.methods:
                return False
        if self.room_ids is not None:
            if room_id is None or room_id not in self.room_ids:
                return False
        if self.path_prefixes:
            if _has_dot_segment(path):
                return False
            for prefix in self.path_prefixes:
                if not _has_path_prefix(path, prefix):
                    return False
        return True


def _has_dot_segment(path: str) -> bool:
    """
    Whether C{path} has a C{.} or C{..} segment, plain or percent-encoded.
    """
    return any(seg in (".", "..") for seg in unquote(path).split("/"))


def _has_path_prefix(path: str, prefix: str) -> bool:
    """
    Whether C{path} starts with C{prefix} at a segment boundary, so
    C{/a/b} covers C{/a/b} and C{/a/b/c} but not C{/a/bc}.
    """
    if not path.startswith(prefix):
        return False
    if len(path) == len(prefix) or prefix.endswith("/"):
        return True
    return path[len(prefix)] == "/"


_UNRESTRICTED = Restrictions()


@dataclass(frozen=True)
class TokenClaims:
    """
    What a verified token says.

    @ivar token_id: the macaroon identifier.
    @ivar user_id: the user the token is for.
    @ivar device_id: the device, or C{None}.
    @ivar guest: whether the user is a guest.
    @ivar token_type: C{"access"} or C{"refresh"}.
    @ivar expires_at_ms: the earliest C{time < N} caveat, or C{None}.
    @ivar restrictions: the holder-appended attenuation caveats.
    """

    token_id: str
    user_id: str
    device_id: str | None
    guest: bool
    token_type: str
    expires_at_ms: int | None
    restrictions: Restrictions


def _check_key(key: bytes) -> None:
    """
    Refuse an empty or non-bytes key: pymacaroons skips signing without one.

    @raise ValueError: if C{key} is unusable.
    """
    if not isinstance(key, bytes) or not key:
        raise ValueError("macaroon key must be non-empty bytes")


def mint_token(
    key: bytes,
    *,
    token_id: str,
    user_id: str,
    device_id: str | None,
    token_type: str = "access",
    guest: bool = False,
    expires_at_ms: int | None = None,
    location: str = "",
) -> str:
    """
    Mint a token.

    @param key: the server's macaroon secret.
    @param token_id: the identifier, e.g. the database id of the token.
    @param user_id: the full user id, C{@localpart:server}.
    @param device_id: the device, or C{None}.
    @param token_type: C{"access"} or C{"refresh"}.
    @param guest: whether the user is a guest.
    @param expires_at_ms: when the token expires, or C{None} for never.
    @param location: the macaroon location hint (not checked on verify).
    @return: the serialized token, URL-safe base64.
    @raise ValueError: if the key is empty or a value would not verify.
    """
    _check_key(key)
    if not _VALUE_RE.fullmatch(token_id):
        raise ValueError("bad token_id")
    if not _USER_ID_RE.fullmatch(user_id):
        raise ValueError("bad user_id")
    if not _WORD_RE.fullmatch(token_type):
        raise ValueError("bad token_type")
    if device_id is not None and not _VALUE_RE.fullmatch(device_id):
        raise ValueError("bad device_id")
    if expires_at_ms is not None and (
        type(expires_at_ms) is not int
        or not re.fullmatch(_MS, str(expires_at_ms))
    ):
        raise ValueError("bad expires_at_ms")

    m = Macaroon(
        location=location, identifier=token_id, key=key, version=MACAROON_V2
    )
    m.add_first_party_caveat(f"user_id = {user_id}")
    m.add_first_party_caveat(f"type = {token_type}")
    if device_id is not None:
        m.add_first_party_caveat(f"device_id = {device_id}")
    if guest:
        m.add_first_party_caveat("guest = true")
    if expires_at_ms is not None:
        m.add_first_party_caveat(f"time < {expires_at_ms}")
    m.add_first_party_caveat("gen = 2")  # last: what follows is the holder's
    token: str = m.serialize()
    return token


def _accept_any(predicate: str) -> bool:
    """
    Let pymacaroons check the signature over every first-party caveat;
    the caveats themselves are checked by L{_parse_caveats}.
    """
    return True


def _parse_macaroon(key: bytes, token: str) -> Macaroon:
    """
    Deserialize C{token} and check its signature.

    @raise InvalidToken: if it is malformed or not signed with C{key}.
    """
    if not isinstance(token, str):
        raise InvalidToken("token is not a string")
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        raise InvalidToken("token is empty or too long")
    if not token.isascii() or not _TOKEN_RE.fullmatch(token):
        raise InvalidToken("token is not base64")
    try:
        m = Macaroon.deserialize(token)
    except Exception:
        raise InvalidToken("token does not parse as a macaroon") from None
    if m.version != MACAROON_V2:
        raise InvalidToken("token is not a version 2 macaroon")
    if m.serialize() != token:
        raise InvalidToken("token is not in the form it was minted in")
    if m.third_party_caveats():
        raise InvalidToken("token has a third-party caveat")
    verifier = Verifier()
    verifier.satisfy_general(_accept_any)
    try:
        ok = verifier.verify(m, key)
    except Exception:
        raise InvalidToken("token signature does not verify") from None
    if ok is not True:
        raise InvalidToken("token signature does not verify")
    return m


def _parse_caveats(m: Macaroon) -> dict[str, list[str]]:
    """
    Match every caveat of a verified macaroon exactly against the grammar.

    @return: the values of each key, in caveat order.
    @raise InvalidToken: if a caveat is unknown or malformed, a single key
        repeats, or a required key is missing.
    """
    values: dict[str, list[str]] = {}
    minted = True  # before the gen caveat: the server's own
    for caveat in m.first_party_caveats():
        try:
            predicate = caveat.caveat_id_bytes.decode("utf-8")
        except (UnicodeDecodeError, AttributeError):
            raise InvalidToken("caveat is not UTF-8") from None
        key = predicate.partition(" ")[0]
        grammar = _GRAMMAR.get(key)
        match = grammar.fullmatch(predicate) if grammar is not None else None
        if match is None:
            raise InvalidToken("unknown or malformed caveat")
        if key == "gen":
            minted = False
        elif key not in (_MINTED_KEYS if minted else _HOLDER_KEYS):
            raise InvalidToken(f"caveat {key} is not allowed here")
        seen = values.setdefault(key, [])
        if seen and key in _SINGLE_KEYS:
            raise InvalidToken(f"caveat {key} repeats")
        seen.append(match.group(1))
    for key in _REQUIRED_KEYS:
        if key not in values:
            raise InvalidToken(f"caveat {key} missing")
    return values


def _intersect(values: list[str] | None) -> frozenset[str] | None:
    """
    Intersect repeated attenuation caveats; C{None} if there are none.
    """
    if not values:
        return None
    result = frozenset(values[:1])
    for value in values[1:]:
        result &= {value}
    return result


def verify_token(
    key: bytes, token: str, *, now_ms: int, expected_type: str = "access"
) -> TokenClaims:
    """
    Verify a token and return its claims.

    @param key: the server's macaroon secret.
    @param token: the serialized token from the client.
    @param now_ms: the current time, in milliseconds since the epoch.
    @param expected_type: the token type the endpoint takes.
    @return: the claims of a valid, unexpired token.
    @raise InvalidToken: for anything wrong; C{soft_logout} is set only
        when the token is valid but expired.
    @raise ValueError: if C{key} is empty.
    """
    _check_key(key)
    m = _parse_macaroon(key, token)
    try:
        token_id = m.identifier_bytes.decode("utf-8")
    except (UnicodeDecodeError, AttributeError):
        raise InvalidToken("identifier is not UTF-8") from None
    if not _VALUE_RE.fullmatch(token_id):
        raise InvalidToken("identifier is malformed")

    values = _parse_caveats(m)
    (token_type,) = values["type"]
    if token_type != expected_type:
        raise InvalidToken(f"token type is {token_type}, not {expected_type}")
    (user_id,) = values["user_id"]
    device_ids = values.get("device_id")
    times = values.get("time")
    expires_at_ms = min(int(t) for t in times) if times else None

    if "method" in values or "room_id" in values or "path_prefix" in values:
        restrictions = Restrictions(
            methods=_intersect(values.get("method")),
            room_ids=_intersect(values.get("room_id")),
            path_prefixes=tuple(values.get("path_prefix", ())),
        )
    else:
        restrictions = _UNRESTRICTED

    if expires_at_ms is not None and now_ms >= expires_at_ms:
        raise InvalidToken("token expired", soft_logout=True)

    return TokenClaims(
        token_id=token_id,
        user_id=user_id,
        device_id=device_ids[0] if device_ids else None,
        guest="guest" in values,
        token_type=token_type,
        expires_at_ms=expires_at_ms,
        restrictions=restrictions,
    )
