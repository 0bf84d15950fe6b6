"""
The C{[federation]} configuration section: talking to other homeservers
over the Server-Server API. Part of the schema in L{ruma_tx.runtime.config};
kept here with its checks so that module stays small.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NoReturn

from ruma_tx.matrix.identifiers import is_valid_server_name


@dataclass(frozen=True)
class FederationConfig:
    """
    Federation is off by default: a fresh install talks to no other server
    until its operator has a TLS certificate and turns it on.
    """

    # false: no "federation" listener is allowed and nothing is sent out.
    enabled: bool = False
    # An extra CA trusted for outbound TLS, besides the system's (a path,
    # relative to the config file).
    ca_file: str | None = None
    # false: other servers' certificates are not checked (testing only).
    verify_certificates: bool = True
    # Exceptions to [outbound] ip_range_blocklist for federation requests.
    ip_range_allowlist: tuple[str, ...] = ()
    # Empty: every server; otherwise only these server names, both ways.
    domain_allowlist: tuple[str, ...] = ()
    # Notaries asked for other servers' keys (POST /_matrix/key/v2/query)
    # before the servers themselves; empty: always ask the server itself.
    trusted_key_servers: tuple[str, ...] = ()
    # The longest one request to another server may take, in seconds.
    timeout_s: float = 30.0
    # The largest answer read from another server.
    max_response_bytes: int = 50 * 1024 * 1024
    # The largest request body the federation listener accepts.
    max_request_bytes: int = 10 * 1024 * 1024
    # Requests each other server may make (a leaky bucket per origin, off
    # with [rate_limits] enabled = false): more get 429 M_LIMIT_EXCEEDED.
    # Generous: a server joining a big room asks for many events at once.
    rate_limit_per_second: float = 50.0
    rate_limit_burst_count: int = 1000


def check_federation(federation: FederationConfig, bad: Callable[[str, str], NoReturn]) -> None:
    """Refuse settings that cannot work."""
    for key in ("domain_allowlist", "trusted_key_servers"):
        for i, name in enumerate(getattr(federation, key)):
            if not is_valid_server_name(name):
                bad(f"federation.{key}[{i}]", f"{name!r} is not a server name")
    if not 0 < federation.timeout_s < float("inf"):
        bad("federation.timeout_s", "must be a positive number of seconds")
    if federation.max_response_bytes < 64 * 1024:
        bad("federation.max_response_bytes", "must be at least 65536")
    if federation.max_request_bytes < 64 * 1024:
        bad("federation.max_request_bytes", "must be at least 65536")
    # Also refuses nan and inf, which TOML allows.
    if not 0 < federation.rate_limit_per_second < float("inf"):
        bad("federation.rate_limit_per_second", "must be a positive number")
    if federation.rate_limit_burst_count < 1:
        bad("federation.rate_limit_burst_count", "must be at least 1")
    if federation.ca_file is not None and not federation.ca_file.strip():
        bad("federation.ca_file", "must not be empty")
