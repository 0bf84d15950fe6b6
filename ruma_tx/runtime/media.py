"""
Building the media repository from C{[media]}: its thread pools, its byte
store (local disk under C{data_dir/media}, or S3), the upload spooling
the site uses for the upload paths, URL previews when enabled, and the
fetching of other servers' media when federation is on.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from twisted.python.threadpool import ThreadPool

from ruma_tx.http.media import MediaApi, is_upload_request
from ruma_tx.http.uploads import UploadBodies
from ruma_tx.http.url_previews import UrlPreviewApi
from ruma_tx.runtime.config import Config
from ruma_tx.runtime.federation_media import remote_media_fetcher
from ruma_tx.runtime.reactor import IRuntimeReactor
from ruma_tx.services.media import MediaLimits, MediaRepository, sniff_content_types
from ruma_tx.services.ports.federation import FederationDownloads
from ruma_tx.services.ports.media import MediaFiles
from ruma_tx.services.ports.outbound import OutboundHttp
from ruma_tx.services.thumbnails import Thumbnailer
from ruma_tx.services.url_previews import PreviewSettings, UrlPreviewer
from ruma_tx.storage.database import Database
from ruma_tx.storage.media import MediaStore
from ruma_tx.storage.media_files import LocalMediaFiles, S3MediaFiles


@dataclass(frozen=True)
class Media:
    """
    @ivar repository: started here; stop it at shutdown (it flushes the
        last-access times).
    @ivar apis: the endpoints (URL previews' only when enabled).
    @ivar uploads: for the listeners' sites.
    """

    repository: MediaRepository
    apis: tuple[object, ...]
    uploads: UploadBodies


def build_media(config: Config, database: Database, reactor: IRuntimeReactor,
                outbound: OutboundHttp, federation: FederationDownloads | None = None) -> Media:
    """
    @param federation: to fetch media of other servers; C{None} (federation
        off): it is not found.
    """
    settings = config.media
    root = config.data_dir / "media"
    temp_dir = root / "tmp"
    io_pool = _thread_pool(reactor, "media-io", settings.io_threads)
    uploads = UploadBodies(directory=temp_dir, max_bytes=settings.max_upload_size, reactor=reactor,
                           pool=io_pool, accepts=is_upload_request, sniff=sniff_content_types)
    limits = MediaLimits(
        max_upload_size=settings.max_upload_size, max_pending=settings.max_pending_uploads,
        unused_expiry_ms=settings.unused_expiration_ms, quota_bytes=settings.max_bytes_per_user,
        thumbnail_sizes=settings.thumbnail_size_list(), max_pixels=settings.max_thumbnail_pixels,
    )
    thumbnailer = Thumbnailer(reactor, _thread_pool(reactor, "thumbnails", settings.thumbnail_threads),
                              settings.max_thumbnail_pixels)
    repository = MediaRepository(
        store=MediaStore(database), files=_byte_store(config, reactor, io_pool, root, temp_dir),
        thumbnailer=thumbnailer, clock=reactor, reactor=reactor, pool=io_pool,
        server_name=config.server_name, limits=limits,
        remote=None if federation is None else remote_media_fetcher(config, federation, outbound, reactor,
                                                                     io_pool),
    )
    repository.start()
    apis: tuple[object, ...] = (MediaApi(repository, legacy_unauthenticated=settings.legacy_unauthenticated),)
    if settings.url_preview_enabled:
        previewer = UrlPreviewer(
            http=outbound, store_image=repository.add_local_media, image_size=thumbnailer.image_size_of,
            clock=reactor, reactor=reactor, pool=io_pool,
            settings=PreviewSettings(max_bytes=settings.url_preview_max_bytes,
                                     timeout_s=settings.url_preview_timeout_s,
                                     url_blocklist=settings.url_preview_url_blocklist),
        )
        apis += (UrlPreviewApi(previewer),)
    return Media(repository=repository, uploads=uploads, apis=apis)


def media_byte_store(config: Config, reactor: IRuntimeReactor) -> MediaFiles:
    """The byte store of C{config} alone, with I/O threads of its own (for C{ruma-admin})."""
    root = config.data_dir / "media"
    pool = _thread_pool(reactor, "media-io", config.media.io_threads)
    return _byte_store(config, reactor, pool, root, root / "tmp")


def _byte_store(config: Config, reactor: IRuntimeReactor, pool: ThreadPool, root: Path,
                temp_dir: Path) -> MediaFiles:
    s3 = config.media.s3
    if config.media.backend != "s3" or s3 is None:
        return LocalMediaFiles(root, reactor, pool)
    import boto3

    client = boto3.client("s3", endpoint_url=s3.endpoint_url, region_name=s3.region,
                          aws_access_key_id=s3.access_key_id, aws_secret_access_key=s3.secret_access_key)
    return S3MediaFiles(client, s3.bucket, s3.prefix, reactor, pool, temp_dir)


def _thread_pool(reactor: IRuntimeReactor, name: str, size: int) -> ThreadPool:
    """A pool of at most C{size} threads, stopped when the reactor stops."""
    pool = ThreadPool(minthreads=0, maxthreads=size, name=name)
    pool.start()
    reactor.addSystemEventTrigger("during", "shutdown", pool.stop)
    return pool
