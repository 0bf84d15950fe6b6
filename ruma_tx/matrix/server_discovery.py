"""
Server discovery (spec: server-server-api.md "Resolving server names"), as
pure functions: which connection targets to try for a server name, which
C{Host} header and TLS name go with each, how to read a
C{/.well-known/matrix/server} response and how long to cache it.

The caller does the DNS and HTTP work. L{plan_discovery} returns a step;
the caller performs what it asks (L{FetchWellKnown}, L{LookupSrv}) and hands
the answer to the step's C{answer} method, which returns the next step,
until a L{Connect} lists the targets in the order to try them.

Times are arguments (seconds since the epoch); nothing here reads a clock.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Iterable, Sequence
from urllib.parse import urljoin, urlsplit

from ruma_tx.matrix.identifiers import is_valid_server_name

DEFAULT_FEDERATION_PORT = 8448

#: SRV service names, tried in this order; C{_matrix._tcp} is deprecated.
SRV_SERVICES = ("_matrix-fed._tcp", "_matrix._tcp")

#: Bodies larger than this are not delegation documents (Synapse: 50 KiB).
MAX_WELL_KNOWN_BYTES = 50 * 1024

#: Redirects followed before giving up on a well-known fetch (the spec only
#: asks to avoid loops; 20 is Twisted's RedirectAgent limit, as Synapse uses).
MAX_WELL_KNOWN_REDIRECTS = 20

#: Cache lifetime of a well-known response without cache headers (spec).
WELL_KNOWN_DEFAULT_CACHE_SECONDS = 24 * 3600
#: Upper bound on any well-known cache lifetime (spec).
WELL_KNOWN_MAX_CACHE_SECONDS = 48 * 3600
#: Lower bound on header-given lifetimes, so that C{no-store} or
#: C{max-age=0} do not cause a fetch per request (spec silent; as Synapse).
WELL_KNOWN_MIN_CACHE_SECONDS = 5 * 60
#: How long a failed or invalid well-known fetch is remembered (spec).
WELL_KNOWN_ERROR_CACHE_SECONDS = 3600


class InvalidServerName(ValueError):
    """A string does not follow the server name grammar."""


@dataclass(frozen=True)
class ServerName:
    """
    A parsed server name.

    @ivar host: The hostname as written: a DNS name, a dotted-quad IPv4
        literal or a bracketed IPv6 literal.
    @ivar port: The explicit port, or C{None}.
    @ivar is_ip_literal: Whether C{host} is an IPv4 or IPv6 literal.
    """

    host: str
    port: int | None
    is_ip_literal: bool

    @property
    def address(self) -> str:
        """
        The host without IPv6 brackets: what to connect to, or verify the
        certificate against, when it is an IP literal.
        """
        return self.host[1:-1] if self.host.startswith("[") else self.host

    def __str__(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


def parse_server_name(name: str) -> ServerName:
    """
    @param name: C{hostname[:port]}.
    @return: The parsed name.
    @raise InvalidServerName: If it does not follow the grammar.
    """
    if not is_valid_server_name(name):
        raise InvalidServerName(f"Invalid server name: {name!r}")
    if name.startswith("["):
        close = name.index("]")
        host, port = name[: close + 1], name[close + 2 :]
        return ServerName(host, int(port) if port else None, True)
    host, _sep, port = name.partition(":")
    parts = host.split(".")
    is_ipv4 = len(parts) == 4 and all(part.isdigit() for part in parts)
    return ServerName(host, int(port) if port else None, is_ipv4)


@dataclass(frozen=True)
class Target:
    """
    One place to send federation requests to.

    @ivar host: An IP address to connect to, or a hostname to resolve with
        CNAME/AAAA/A records.
    @ivar port: The TCP port.
    @ivar host_header: The C{Host} header of each request.
    @ivar tls_server_name: The name (or IP address) the server's
        certificate must be valid for.
    """

    host: str
    port: int
    host_header: str
    tls_server_name: str


@dataclass(frozen=True)
class SrvRecord:
    """One answer to an SRV query (RFC 2782)."""

    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True)
class Connect:
    """
    Discovery is over: try these targets in order. An empty tuple means
    the server decidedly offers no federation (an SRV target of C{.}).
    """

    targets: tuple[Target, ...]


@dataclass(frozen=True)
class LookupSrv:
    """
    Look up the SRV records of C{query} and pass them to L{answer}.

    @ivar query: The SRV name, e.g. C{_matrix-fed._tcp.example.org}.
    """

    query: str
    _hostname: str
    _next_services: tuple[str, ...]

    def answer(self, records: Sequence[SrvRecord]) -> Step:
        """
        @param records: The records found; empty if there are none (or the
            lookup failed).
        @return: The next step: the next SRV service name if there were no
            records, else the records' targets, which must present a
            certificate for the (delegated) hostname and get it as C{Host}
            header.
        """
        if not records:
            return _srv_then_default(self._hostname, self._next_services)
        if len(records) == 1 and records[0].target in (".", ""):
            return Connect(())
        # RFC 2782 picks among equal priorities at random, weighted; a pure
        # function cannot, so heavier records simply come first.
        ordered = sorted(records, key=lambda r: (r.priority, -r.weight))
        return Connect(
            tuple(
                Target(r.target.rstrip("."), r.port, self._hostname, self._hostname)
                for r in ordered
            )
        )


@dataclass(frozen=True)
class FetchWellKnown:
    """
    GET C{https://<hostname>/.well-known/matrix/server} (see
    L{well_known_delegation}, L{next_well_known_url}) and pass the
    delegated server name, or C{None}, to L{answer}.
    """

    hostname: str

    @property
    def url(self) -> str:
        """The URL to fetch first."""
        return f"https://{self.hostname}/.well-known/matrix/server"

    def answer(self, delegated: ServerName | None) -> Step:
        """
        @param delegated: The delegated server name, or C{None} if the
            response was an error or invalid (spec steps 4-6 then apply).
        @return: The next step (spec step 3.1-3.5, or 4-6).
        """
        if delegated is None:
            return _srv_then_default(self.hostname, SRV_SERVICES)
        if delegated.is_ip_literal or delegated.port is not None:
            return _direct(delegated)
        return _srv_then_default(delegated.host, SRV_SERVICES)


Step = FetchWellKnown | LookupSrv | Connect


def plan_discovery(server_name: ServerName) -> Step:
    """
    @param server_name: The destination server's name.
    @return: The first step: a L{Connect} for an IP literal or a name with
        an explicit port (spec steps 1-2), else a L{FetchWellKnown}.
    """
    if server_name.is_ip_literal or server_name.port is not None:
        return _direct(server_name)
    return FetchWellKnown(server_name.host)


def _direct(name: ServerName) -> Connect:
    """
    Spec steps 1, 2, 3.1 and 3.2: connect to the name itself, with the whole
    name (port included if given) as C{Host} and the host as TLS name.
    """
    port = DEFAULT_FEDERATION_PORT if name.port is None else name.port
    return Connect((Target(name.address, port, str(name), name.address),))


def _srv_then_default(hostname: str, services: tuple[str, ...]) -> Step:
    """
    Spec steps 3.3-3.5 and 4-6: the SRV services still to try, then the
    hostname on port 8448.
    """
    if services:
        return LookupSrv(f"{services[0]}.{hostname}", hostname, services[1:])
    return Connect((Target(hostname, DEFAULT_FEDERATION_PORT, hostname, hostname),))


def well_known_delegation(body: bytes) -> ServerName | None:
    """
    Read the body of a 200 response to C{/.well-known/matrix/server},
    whatever its C{Content-Type} (spec).

    @param body: The body; the caller stops reading after
        L{MAX_WELL_KNOWN_BYTES} + 1 bytes.
    @return: The delegated server name, or C{None} if the body is too large,
        not UTF-8 JSON, not an object, or lacks a valid C{m.server}.
    """
    if len(body) > MAX_WELL_KNOWN_BYTES:
        return None
    try:
        document = json.loads(body.decode("utf-8"))
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    delegated = document.get("m.server")
    if not isinstance(delegated, str):
        return None
    try:
        return parse_server_name(delegated)
    except InvalidServerName:
        return None


def next_well_known_url(current: str, location: str, visited: Iterable[str]) -> str | None:
    """
    Follow a 30x redirect of the well-known fetch.

    @param current: The URL that answered with a redirect.
    @param location: Its C{Location} header, possibly relative.
    @param visited: The URLs fetched so far, C{current} included.
    @return: The absolute URL to fetch next, or C{None} to give up (the
        fetch is then an error): a loop, more than
        L{MAX_WELL_KNOWN_REDIRECTS} redirects, or a non-HTTPS target
        (stricter than Synapse: the spec asks for an HTTPS request).
    """
    seen = set(visited)
    target = urljoin(current, location.strip())
    if target in seen or len(seen) > MAX_WELL_KNOWN_REDIRECTS:
        return None
    parts = urlsplit(target)
    if parts.scheme != "https" or not parts.hostname:
        return None
    return target


def well_known_cache_seconds(
    cache_control: Sequence[str], expires: Sequence[str], now: float
) -> float:
    """
    How long to cache a valid well-known response.

    @param cache_control: The values of its C{Cache-Control} headers.
    @param expires: The values of its C{Expires} headers.
    @param now: The current time, in seconds since the epoch.
    @return: Seconds: C{max-age} (or 0 for C{no-store}), else C{Expires}
        minus now (RFC 9111: C{Cache-Control} wins, and an invalid date means
        already expired), else 24 hours; header-given lifetimes are kept
        between L{WELL_KNOWN_MIN_CACHE_SECONDS} and 48 hours. Errors are
        cached for L{WELL_KNOWN_ERROR_CACHE_SECONDS} instead.
    """
    from_headers = _cache_seconds_from_headers(cache_control, expires, now)
    if from_headers is None:
        return WELL_KNOWN_DEFAULT_CACHE_SECONDS
    return min(max(from_headers, WELL_KNOWN_MIN_CACHE_SECONDS), WELL_KNOWN_MAX_CACHE_SECONDS)


def _cache_seconds_from_headers(
    cache_control: Sequence[str], expires: Sequence[str], now: float
) -> float | None:
    """@return: The lifetime the headers give, or C{None} if they give none."""
    directives: dict[str, str | None] = {}
    for header in cache_control:
        for directive in header.split(","):
            key, sep, value = directive.partition("=")
            directives[key.strip().lower()] = value.strip().strip('"') if sep else None
    if "no-store" in directives:
        return 0
    max_age = directives.get("max-age")
    if max_age is not None and max_age.isdigit():
        return int(max_age)
    if expires:
        try:
            expires_at = parsedate_to_datetime(expires[-1].strip())
        except (TypeError, ValueError, IndexError):
            return 0
        if expires_at.tzinfo is None:  # "-0000": HTTP dates are in GMT anyway
            expires_at = expires_at.replace(tzinfo=timezone.utc)
        return expires_at.timestamp() - now
    return None
