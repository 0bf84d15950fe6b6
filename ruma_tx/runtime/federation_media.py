"""
Wiring of federated media: the fetcher of other servers' media, which the
media repository uses when federation is on, and the endpoints that serve
this server's media to other servers on the C{"federation"} listener.
"""
from __future__ import annotations

from twisted.python.threadpool import ThreadPool

from ruma_tx.http.federation_media import FederationMediaApi
from ruma_tx.runtime.config import Config
from ruma_tx.runtime.reactor import IRuntimeReactor
from ruma_tx.services.media import MediaRepository
from ruma_tx.services.ports.federation import FederationDownloads
from ruma_tx.services.ports.outbound import OutboundHttp
from ruma_tx.services.remote_media import RemoteMediaFetcher


def remote_media_fetcher(config: Config, federation: FederationDownloads, outbound: OutboundHttp,
                         reactor: IRuntimeReactor, pool: ThreadPool) -> RemoteMediaFetcher:
    """
    Fetches other servers' media up to the largest upload; a C{Location}
    they point to goes through C{outbound} (and its blocklist).
    """
    return RemoteMediaFetcher(federation=federation, http=outbound, max_bytes=config.media.max_upload_size,
                              reactor=reactor, pool=pool)


def federation_media_apis(repository: MediaRepository, config: Config) -> tuple[object, ...]:
    """The endpoints for the C{"federation"} listener's router."""
    return (FederationMediaApi(repository, config.server_name),)
