"""
Server access control lists (spec: client-server-api "Server Access
Control Lists (ACLs) for rooms", the C{m.room.server_acl} event;
server-server-api "Server Access Control Lists (ACLs)"): which servers a
room's ACL lets take part, as a pure function of the event's content and
a server's name.
"""
from __future__ import annotations

import ipaddress
from typing import Mapping

from ruma_tx.matrix.push_evaluation import glob_match

#: The state key of a room's ACL.
SERVER_ACL = ("m.room.server_acl", "")


def host_of(server_name: str) -> str:
    """
    A server name without its port, which ACLs never consider
    (C{evil.com:8448} is C{evil.com}; C{[::1]:8448} is C{[::1]}).
    """
    if server_name.startswith("["):
        close = server_name.find("]")
        return server_name[: close + 1] if close >= 0 else server_name
    return server_name.partition(":")[0]


def is_ip_literal(host: str) -> bool:
    """An IPv4 literal, or a bracketed IPv6 one."""
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
    except ValueError:
        return False
    return True


def _patterns(value: object) -> tuple[str, ...]:
    """The globs of an C{allow} or C{deny} list: a list that is not one is empty, entries not strings skipped."""
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


class ServerAcl:
    """
    A room's ACL, read once from its C{m.room.server_acl} content and
    asked about any number of servers.

    @param content: the event's content, or C{None} when the room has no
        ACL (every server is allowed).
    """

    def __init__(self, content: Mapping[str, object] | None) -> None:
        self._present = content is not None
        content = content or {}
        allow_ip_literals = content.get("allow_ip_literals", True)
        # "Defaults to true if missing or otherwise not a boolean."
        self._allow_ip_literals = allow_ip_literals if isinstance(allow_ip_literals, bool) else True
        self._allow = _patterns(content.get("allow"))
        self._deny = _patterns(content.get("deny"))

    def allows(self, server_name: str) -> bool:
        """
        The spec's order: no ACL allows; an IP literal is denied when
        C{allow_ip_literals} is false; then a C{deny} match denies, an
        C{allow} match allows, and anything else is denied. Globs match
        case-insensitively, against the name without its port.
        """
        if not self._present:
            return True
        host = host_of(server_name)
        if not self._allow_ip_literals and is_ip_literal(host):
            return False
        if any(glob_match(pattern, host) for pattern in self._deny):
            return False
        return any(glob_match(pattern, host) for pattern in self._allow)
