"""
Wiring of federation: the client to other servers, their keys, the
authentication of their requests, and the root resource of the
C{"federation"} listener (C{/_matrix/federation/*}, C{/_matrix/key/*}).
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Iterable

from signedjson.types import SigningKey

from ruma_tx.http.federation_keys import FederationKeysApi
from ruma_tx.http.routing import ORIGIN_RATE_LIMIT, Router
from ruma_tx.http.site import MatrixRoot
from ruma_tx.runtime.config import Config
from ruma_tx.runtime.federation_client import FederationHttpClient, build_federation_client
from ruma_tx.runtime.reactor import IRuntimeReactor
from ruma_tx.runtime.secrets import load_old_signing_keys
from ruma_tx.services.federation_queries import RemoteQueries
from ruma_tx.services.guard import Guard
from ruma_tx.services.key_ring import KeyRing
from ruma_tx.services.key_server import KeyServer
from ruma_tx.services.ratelimit import RateLimit, RateLimiter
from ruma_tx.services.server_auth import DomainAllowlist, ServerAuthenticator
from ruma_tx.storage.database import Database
from ruma_tx.storage.server_keys import ServerKeyStore


def software_version() -> str:
    try:
        return metadata.version("ruma_tx")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


@dataclass(frozen=True)
class Federation:
    """
    What the rest of the server uses of federation.

    @ivar client: signed requests to other servers (the FederationClient port).
    @ivar key_ring: other servers' keys (the KeyRing port).
    @ivar remote: profile and alias queries for our clients; C{None} when
        federation is off (other servers' users and aliases stay unknown).
    """

    client: FederationHttpClient
    key_ring: KeyRing
    remote: RemoteQueries | None
    authenticator: ServerAuthenticator
    key_server: KeyServer
    #: Each origin's requests (L{ORIGIN_RATE_LIMIT}).
    rate_limiter: RateLimiter

    def root(self, apis: Iterable[object], *, guard: Guard) -> MatrixRoot:
        """
        The resource of C{"federation"} listeners: the key endpoints and
        C{apis} (their C{auth="server"} endpoints verified by L{authenticator}
        and rate-limited per origin).
        """
        router = Router([FederationKeysApi(self.key_server), *apis], guard=guard,
                        rate_limiter=self.rate_limiter, servers=self.authenticator)
        return MatrixRoot(router.resource())


def build_federation(config: Config, database: Database, reactor: IRuntimeReactor,
                     signing_key: SigningKey) -> Federation:
    settings = config.federation
    client = build_federation_client(
        reactor, server_name=config.server_name, signing_key=signing_key, enabled=settings.enabled,
        domain_allowlist=settings.domain_allowlist, ca_path=config.federation_ca_path,
        verify_certificates=settings.verify_certificates, blocklist=config.outbound.ip_range_blocklist,
        ip_range_allowlist=settings.ip_range_allowlist, timeout_s=settings.timeout_s,
        max_bytes=settings.max_response_bytes)
    old_keys = load_old_signing_keys(config.old_signing_keys_path)
    key_ring = KeyRing(store=ServerKeyStore(database), client=client, clock=reactor,
                       server_name=config.server_name, signing_key=signing_key, old_keys=old_keys,
                       trusted_key_servers=settings.trusted_key_servers)
    return Federation(
        client=client,
        key_ring=key_ring,
        remote=RemoteQueries(client=client, clock=reactor) if settings.enabled else None,
        authenticator=ServerAuthenticator(key_ring=key_ring, clock=reactor, server_name=config.server_name,
                                          allowlist=DomainAllowlist(settings.domain_allowlist)),
        key_server=KeyServer(key_ring=key_ring, clock=reactor, server_name=config.server_name,
                             signing_key=signing_key, old_verify_keys=old_keys),
        rate_limiter=RateLimiter(
            reactor, {ORIGIN_RATE_LIMIT: RateLimit(settings.rate_limit_per_second, settings.rate_limit_burst_count)},
            enabled=config.rate_limits.enabled),
    )
