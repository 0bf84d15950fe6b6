"""
The C{[media]} configuration section: the media repository's limits,
thumbnails and byte store. Part of the schema in L{ruma_tx.runtime.config};
kept here with its checks so that module stays small.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, NoReturn

from ruma_tx.matrix.media import DEFAULT_THUMBNAIL_SIZES, METHODS, ThumbnailSize
from ruma_tx.matrix.url_previews import UrlPattern


@dataclass(frozen=True)
class ThumbnailSizeConfig:
    width: int
    height: int
    # "crop" (exactly this size) or "scale" (fitted inside it).
    method: str = "scale"


@dataclass(frozen=True)
class S3Config:
    """An S3-compatible bucket (AWS, MinIO, Garage...): the files go there instead of data_dir."""

    bucket: str
    # The service's URL; absent: AWS S3.
    endpoint_url: str | None = None
    region: str | None = None
    # Absent: boto3 looks for credentials itself (environment, instance role...).
    access_key_id: str | None = None
    secret_access_key: str | None = None
    # Prepended to every object's key, e.g. "media/".
    prefix: str = ""


@dataclass(frozen=True)
class MediaConfig:
    # The largest upload, in bytes (Synapse's default: 50 MiB); advertised
    # as m.upload.size.
    max_upload_size: int = 50 * 1024 * 1024
    # The total bytes a user may upload; absent: no quota.
    max_bytes_per_user: int | None = None
    # Media ids from POST /media/v1/create a user may hold before uploading
    # (Synapse: 5), and how long one waits for its content (Synapse: 24 h).
    max_pending_uploads: int = 5
    unused_expiration_ms: int = 24 * 3600 * 1000
    # The thumbnail sizes made (once per image and size, on first request).
    thumbnail_sizes: tuple[ThumbnailSizeConfig, ...] = tuple(
        ThumbnailSizeConfig(s.width, s.height, s.method) for s in DEFAULT_THUMBNAIL_SIZES)
    # Images larger than this (width x height) are not thumbnailed (413).
    max_thumbnail_pixels: int = 32_000_000
    # Images decoded at once (each in its own thread).
    thumbnail_threads: int = 2
    # Threads for file and S3 I/O.
    io_threads: int = 8
    # Serve media on the deprecated unauthenticated /_matrix/media/v3/download
    # and /thumbnail endpoints (default: frozen, 404, as the spec asks).
    legacy_unauthenticated: bool = False
    # "local" (files under data_dir/media) or "s3" (the [media.s3] bucket).
    backend: str = "local"
    s3: S3Config | None = None
    # URL previews (GET /_matrix/client/v1/media/preview_url); off, the
    # endpoints do not exist (404 M_UNRECOGNIZED, as in Synapse). Pages are
    # fetched through [outbound]: blocked address ranges are never reached.
    url_preview_enabled: bool = False
    # The largest page or image fetched for a preview (Synapse's
    # max_spider_size: 10 MiB), and the longest one fetch may take.
    url_preview_max_bytes: int = 10 * 1024 * 1024
    url_preview_timeout_s: float = 10.0
    # URLs never previewed: an entry blocks the URLs whose every named part
    # (scheme, netloc, hostname, port, username, password, path, query,
    # fragment) matches its glob, or its regular expression when it starts
    # with ^ (Synapse's url_preview_url_blacklist).
    url_preview_url_blocklist: tuple[UrlPattern, ...] = ()

    def thumbnail_size_list(self) -> tuple[ThumbnailSize, ...]:
        return tuple(ThumbnailSize(s.width, s.height, s.method) for s in self.thumbnail_sizes)


def check_media(media: MediaConfig, bad: Callable[[str, str], NoReturn]) -> None:
    if media.max_upload_size < 1:
        bad("media.max_upload_size", "must be at least 1")
    if media.max_bytes_per_user is not None and media.max_bytes_per_user < 0:
        bad("media.max_bytes_per_user", "must be at least 0")
    if media.max_pending_uploads < 1:
        bad("media.max_pending_uploads", "must be at least 1")
    if media.unused_expiration_ms < 1000:
        bad("media.unused_expiration_ms", "must be at least 1000")
    if not media.thumbnail_sizes:
        bad("media.thumbnail_sizes", "at least one size is needed")
    for i, size in enumerate(media.thumbnail_sizes):
        if not (0 < size.width <= 10_000 and 0 < size.height <= 10_000):
            bad(f"media.thumbnail_sizes[{i}]", "width and height must be between 1 and 10000")
        if size.method not in METHODS:
            bad(f"media.thumbnail_sizes[{i}].method", "must be crop or scale")
    if media.max_thumbnail_pixels < 1:
        bad("media.max_thumbnail_pixels", "must be at least 1")
    for key in ("thumbnail_threads", "io_threads"):
        if getattr(media, key) < 1:
            bad(f"media.{key}", "must be at least 1")
    if media.backend not in ("local", "s3"):
        bad("media.backend", "must be local or s3")
    if media.backend == "s3" and media.s3 is None:
        bad("media.s3", "backend = \"s3\" needs a [media.s3] table with at least a bucket")
    if media.s3 is not None and not media.s3.bucket:
        bad("media.s3.bucket", "must not be empty")
    if media.url_preview_max_bytes < 1024:
        bad("media.url_preview_max_bytes", "must be at least 1024")
    if not 0 < media.url_preview_timeout_s < float("inf"):
        bad("media.url_preview_timeout_s", "must be a positive number of seconds")
    for i, pattern in enumerate(media.url_preview_url_blocklist):
        key = f"media.url_preview_url_blocklist[{i}]"
        if not pattern.parts():
            bad(key, "must name at least one part of a URL")
        for part, text in pattern.parts().items():
            if text.startswith("^"):
                try:
                    re.compile(text)
                except re.error as e:
                    bad(f"{key}.{part}", f"not a regular expression: {e}")
