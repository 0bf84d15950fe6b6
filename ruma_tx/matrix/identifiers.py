"""
The grammar of Matrix identifiers, per the "Identifier Grammar" appendix of the
specification: server names, user IDs, room IDs, room aliases and event IDs.

Two grammars exist for user ID localparts:

  - the current one (C{a-z 0-9 . _ = - / +}, non-empty), which new
    registrations must follow: see L{validate_localpart} and
    L{validate_user_id};
  - the historical one (any non-surrogate code point except C{:} and NUL,
    even empty), which servers MUST accept for existing users: see
    L{parse_user_id}.

All functions are pure.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import string
from typing import TypeGuard

#: The most bytes (UTF-8) a user ID, room ID, room alias or event ID may have.
MAX_IDENTIFIER_BYTES = 255

_LOCALPART_RE = re.compile(r"[a-z0-9._=\-/+]+")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_IPV4_RE = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
_IPV6_CHARS_RE = re.compile(r"[0-9A-Fa-f:.]{2,45}")
_DNS_NAME_RE = re.compile(r"[0-9A-Za-z\-]+(?:\.[0-9A-Za-z\-]+)*")
# Historical localparts and room-ID / alias localparts: anything but ':' and NUL,
# and no lone surrogates (which Python strings can hold but UTF-8 cannot).
_FORBIDDEN_HISTORICAL_RE = re.compile("[:\x00\ud800-\udfff]")
# Domain-less event IDs (room versions 3+) and room IDs (room version 12+) are
# a base64 hash: standard alphabet in v3, URL-safe alphabet from v4 on.
_HASH_ID_RE = re.compile(r"[A-Za-z0-9+/_\-]+")
_RANDOM_ALPHABET = string.ascii_letters


class InvalidIdentifier(ValueError):
    """
    An identifier does not follow the Matrix grammar. The message is meant for
    humans and may be shown to the client.
    """


def validate_localpart(localpart: str) -> None:
    """
    Check that a localpart is allowed for a new user ID.

    The full user ID's length is checked by L{validate_user_id} or
    L{user_id_for}, since it depends on the server name.

    @param localpart: The proposed localpart, without C{@} or server name.
    @raise InvalidIdentifier: If it is empty or has a character outside
        C{a-z 0-9 . _ = - / +}.
    """
    if not isinstance(localpart, str) or not localpart:
        raise InvalidIdentifier("User ID localpart must not be empty")
    if _LOCALPART_RE.fullmatch(localpart) is None:
        raise InvalidIdentifier(
            "User ID localpart may only contain the characters a-z, 0-9, "
            "'.', '_', '=', '-', '/' and '+'"
        )


def is_valid_server_name(name: str) -> bool:
    """
    @param name: A candidate server name: a DNS name, a dotted-quad IPv4
        literal or a bracketed IPv6 literal, optionally followed by
        C{:port}.
    @return: Whether it follows the server name grammar. DNS names must be
        dot-separated non-empty labels of letters, digits and hyphens, at
        most 255 characters; IPv4 octets must be 0-255; IPv6 literals must
        parse (RFC 3513); a port is 1-5 digits, at most 65535.
    """
    if not isinstance(name, str) or not name:
        return False
    if name.startswith("["):
        close = name.find("]")
        if close < 0:
            return False
        host, rest = name[: close + 1], name[close + 1 :]
    else:
        host, sep, port = name.partition(":")
        rest = sep + port
    if rest:
        if not rest.startswith(":"):
            return False
        port = rest[1:]
        if _PORT_RE.fullmatch(port) is None or int(port) > 65535:
            return False
    return _is_valid_hostname(host)


def _is_valid_hostname(host: str) -> bool:
    """
    @param host: A server name without its port.
    @return: Whether it is a valid IPv6 literal, IPv4 literal or DNS name.
    """
    if host.startswith("["):
        if not host.endswith("]"):
            return False
        literal = host[1:-1]
        if _IPV6_CHARS_RE.fullmatch(literal) is None:
            return False
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            return False
        return True
    if _IPV4_RE.fullmatch(host) is not None:
        # Something shaped like a dotted quad is an IPv4 literal, not a name.
        return all(int(octet) <= 255 for octet in host.split("."))
    return len(host) <= 255 and _DNS_NAME_RE.fullmatch(host) is not None


def _check_length(identifier: str, what: str) -> None:
    """
    @param identifier: A complete identifier, sigil included.
    @param what: Its kind, for the error message.
    @raise InvalidIdentifier: If it is longer than 255 bytes in UTF-8.
    """
    if len(identifier.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        raise InvalidIdentifier(
            f"{what} must not be longer than {MAX_IDENTIFIER_BYTES} bytes"
        )


def _split_sigil_domain(identifier: str, sigil: str, what: str) -> tuple[str, str]:
    """
    Split C{<sigil><localpart>:<server>}, where the localpart follows the
    lenient grammar (anything but C{:} and NUL).

    @param identifier: The identifier.
    @param sigil: Its expected first character.
    @param what: Its kind, for error messages.
    @return: (localpart, server name); the localpart may be empty.
    @raise InvalidIdentifier: If the sigil, separator, localpart, server name
        or length is invalid.
    """
    if not isinstance(identifier, str) or not identifier.startswith(sigil):
        raise InvalidIdentifier(f"{what} must start with '{sigil}'")
    localpart, sep, server = identifier[1:].partition(":")
    if not sep:
        raise InvalidIdentifier(f"{what} must have the form {sigil}localpart:server")
    if _FORBIDDEN_HISTORICAL_RE.search(localpart) is not None:
        raise InvalidIdentifier(f"{what} localpart must not contain NUL or surrogates")
    if not is_valid_server_name(server):
        raise InvalidIdentifier(f"{what} has an invalid server name: {server!r}")
    _check_length(identifier, what)
    return localpart, server


def parse_user_id(user_id: str) -> tuple[str, str]:
    """
    Split a user ID, accepting the historical grammar that existing users
    and events may still have.

    The localpart is everything between C{@} and the first C{:}; it may hold
    any non-surrogate code point except NUL, and may be empty.

    @param user_id: C{@localpart:server}.
    @return: (localpart, server name).
    @raise InvalidIdentifier: If it lacks the C{@} sigil or the C{:}, has an
        invalid server name or localpart, or is longer than 255 bytes.
    """
    return _split_sigil_domain(user_id, "@", "User ID")


def validate_user_id(user_id: str) -> None:
    """
    Check that a user ID follows the current (non-historical) grammar, as a
    newly created user ID must.

    @param user_id: C{@localpart:server}.
    @raise InvalidIdentifier: If it is malformed, its localpart has a
        character outside C{a-z 0-9 . _ = - / +} or is empty, or it is
        longer than 255 bytes.
    """
    localpart, _server = parse_user_id(user_id)
    validate_localpart(localpart)


def is_valid_user_id(user_id: object) -> TypeGuard[str]:
    """
    @param user_id: Anything.
    @return: Whether it is a string that L{parse_user_id} accepts (the
        historical grammar).
    """
    try:
        parse_user_id(user_id)  # type: ignore[arg-type]
    except InvalidIdentifier:
        return False
    return True


def user_id_for(localpart: str, server_name: str) -> str:
    """
    Build a user ID.

    Only the historical grammar is enforced here, so this works for existing
    users too; call L{validate_localpart} first for new registrations.

    @param localpart: The localpart.
    @param server_name: The server name.
    @return: C{@localpart:server_name}.
    @raise InvalidIdentifier: If the result would not be a valid user ID
        (for instance it is longer than 255 bytes, or the localpart has C{:}).
    """
    if not isinstance(localpart, str) or ":" in localpart:
        raise InvalidIdentifier("User ID localpart must not contain ':'")
    user_id = f"@{localpart}:{server_name}"
    parse_user_id(user_id)
    return user_id


def parse_room_id(room_id: str) -> tuple[str, str | None]:
    """
    Split a room ID.

    Room versions 1-11 use C{!opaque:server}, where C{opaque} is any
    non-empty string without C{:} or NUL. Room version 12 and later use
    C{!hash}, the create event's ID with C{!} as sigil: an unpadded base64
    hash with no server part.

    @param room_id: The room ID.
    @return: (opaque part, server name), the server name being L{None} for a
        domain-less room ID.
    @raise InvalidIdentifier: If it lacks the C{!} sigil, has an empty or
        invalid opaque part or server name, or is longer than 255 bytes.
    """
    if not isinstance(room_id, str) or not room_id.startswith("!"):
        raise InvalidIdentifier("Room ID must start with '!'")
    if ":" not in room_id:
        opaque = room_id[1:]
        if _HASH_ID_RE.fullmatch(opaque) is None:
            raise InvalidIdentifier(
                "Room ID without a server name must be an unpadded base64 hash"
            )
        _check_length(room_id, "Room ID")
        return opaque, None
    opaque, server = _split_sigil_domain(room_id, "!", "Room ID")
    if not opaque:
        raise InvalidIdentifier("Room ID must not have an empty localpart")
    return opaque, server


def is_valid_room_id(room_id: object) -> TypeGuard[str]:
    """
    @param room_id: Anything.
    @return: Whether L{parse_room_id} accepts it.
    """
    try:
        parse_room_id(room_id)  # type: ignore[arg-type]
    except InvalidIdentifier:
        return False
    return True


def parse_room_alias(alias: str) -> tuple[str, str]:
    """
    Split a room alias.

    @param alias: C{#localpart:server}; the localpart may hold any
        non-surrogate code point except C{:} and NUL, and must not be empty.
    @return: (localpart, server name).
    @raise InvalidIdentifier: If it lacks the C{#} sigil or the C{:}, has an
        empty or invalid localpart, an invalid server name, or is longer than
        255 bytes.
    """
    localpart, server = _split_sigil_domain(alias, "#", "Room alias")
    if not localpart:
        raise InvalidIdentifier("Room alias must not have an empty localpart")
    return localpart, server


def is_valid_event_id(s: object) -> TypeGuard[str]:
    """
    @param s: Anything.
    @return: Whether it is an event ID: C{$opaque:server} (room versions 1
        and 2, opaque being non-empty without C{:} or NUL) or C{$hash} (room
        versions 3+, an unpadded base64 hash in either alphabet), at most 255
        bytes.
    """
    if not isinstance(s, str) or not s.startswith("$"):
        return False
    if ":" not in s:
        if _HASH_ID_RE.fullmatch(s[1:]) is None:
            return False
        return len(s.encode("utf-8")) <= MAX_IDENTIFIER_BYTES
    try:
        opaque, _server = _split_sigil_domain(s, "$", "Event ID")
    except InvalidIdentifier:
        return False
    return bool(opaque)


def random_string(length: int) -> str:
    """
    @param length: How many characters; not negative.
    @return: A cryptographically random string of ASCII letters
        (C{[A-Za-z]}).
    """
    return "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(length))
