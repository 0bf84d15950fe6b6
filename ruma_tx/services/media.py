"""
The media repository (spec: "Content repository"): uploads (direct, and
asynchronous through C{/create}), downloads, thumbnails, and the deletions
the admin API uses (L{ruma_tx.services.admin_media}, which also sets the
quarantine that downloads honour). Media of other servers is fetched on
first request (L{RemoteMediaFetcher}) and kept, its file shared as an
upload's is.

Files are stored once per content hash. Storing a file and recording it
run under an in-process lock on that hash, and so does deleting a file no
row refers to any more: an upload of the same bytes as a media being
deleted either finds the file kept or stores it again. (This process is
the only writer; several processes would take these locks in PostgreSQL.)
"""
from __future__ import annotations

import hashlib
import secrets
import string
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable, Collection, TypeVar

import puremagic
from twisted.internet import defer
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from ruma_tx.cancellation import shielded
from ruma_tx.logs import logger
from ruma_tx.matrix.errors import (
    Conflict,
    Forbidden,
    MatrixError,
    NotYetAvailable,
    RateLimited,
    TooLarge,
    not_found,
)
from ruma_tx.matrix.identifiers import is_valid_server_name
from ruma_tx.matrix.media import (
    THUMBNAIL_SOURCE_TYPES,
    ThumbnailSize,
    check_upload_name,
    checked_content_type,
    choose_thumbnail_size,
    essence,
    is_valid_media_id,
    mxc_uri,
    normalize_content_type,
)
from ruma_tx.services.clock import Clock, Periodic, now_ms
from ruma_tx.services.ports.media import (
    LocalMedia,
    MediaFiles,
    MediaReader,
    MediaStore,
    SNIFF_BYTES,
    NewContent,
    RemoteMedia,
    SpooledUpload,
    StoredThumbnail,
    UploadRefused,
)
from ruma_tx.services.concurrency import SingleFlight
from ruma_tx.services.remote_media import RemoteMediaFetcher
from ruma_tx.services.thumbnails import Thumbnailer, cannot_thumbnail

log = logger(__name__)
T = TypeVar("T")

_MEDIA_ID_ALPHABET = string.ascii_letters + string.digits
#: The longest a download waits for a pending id's content, whatever the
#: client asks (the spec says servers SHOULD cap C{timeout_ms}).
MAX_WAIT_MS = 60_000
#: Seconds between writes of the batched last-access times (and sweeps of
#: expired pending ids).
FLUSH_INTERVAL_S = 10.0


@dataclass(frozen=True)
class MediaLimits:
    """
    @ivar max_pending: pending ids (created, not yet uploaded) a user may hold.
    @ivar unused_expiry_ms: how long a pending id waits for its content.
    @ivar quota_bytes: the total size of a user's uploads, or C{None}.
    @ivar max_pixels: the largest image thumbnailed.
    """

    max_upload_size: int
    max_pending: int
    unused_expiry_ms: int
    quota_bytes: int | None
    thumbnail_sizes: tuple[ThumbnailSize, ...]
    max_pixels: int


@dataclass(frozen=True)
class ThumbnailAnswer:
    """A thumbnail to serve: already stored (read it with L{MediaRepository.open}), or just made."""

    content_type: str
    length: int
    sha256: str
    data: bytes | None


class MediaRepository:
    """
    @param files: the byte store.
    @param reactor: with C{pool}, runs content-type sniffing off the reactor thread.
    @param remote: fetches media of other servers; C{None} (federation
        off): their media is not found.
    """

    def __init__(self, *, store: MediaStore, files: MediaFiles, thumbnailer: Thumbnailer, clock: Clock,
                 reactor: IReactorFromThreads, pool: ThreadPool, server_name: str,
                 limits: MediaLimits, remote: RemoteMediaFetcher | None = None) -> None:
        self._store = store
        self._files = files
        self._thumbnailer = thumbnailer
        self._clock = clock
        self._reactor = reactor
        self._pool = pool
        self._server_name = server_name
        self.limits = limits
        self._locks: dict[str, defer.DeferredLock] = {}
        # Downloads waiting for a pending id's content, woken by its upload.
        self._waiters: dict[str, set[defer.Deferred[None]]] = {}
        # Last download time per media id, not yet written (emptied each flush).
        self._accessed: dict[str, int] = {}
        self._remote_accessed: dict[tuple[str, str], int] = {}
        self._remote = remote
        # One fetch per remote media, however many clients ask at once.
        self._fetches = SingleFlight()
        self._maintenance = Periodic(clock, FLUSH_INTERVAL_S, self._maintain, last=self.flush)

    # ------------------------------------------------------------------
    # Uploads

    async def upload(self, user_id: str, upload: SpooledUpload, content_type: str | None,
                     filename: str | None) -> str:
        """
        Store an upload under a new media id.

        @return: its C{mxc://} URI.
        @raise MatrixError: 413 M_TOO_LARGE, 403 M_FORBIDDEN over the quota,
            400 for a bad file name.
        """
        content = self._new_content(upload.sha256, upload.length, upload.sniffed, content_type, filename)
        media_id = _new_media_id()
        await self._check_quota(user_id, content.length)
        await self._keep(content.sha256, lambda: self._files.store_file(content.sha256, upload.path),
                         lambda: self._store.add_media(media_id, user_id, content, self._now(),
                                                       self.limits.quota_bytes))
        return mxc_uri(self._server_name, media_id)

    async def add_local_media(self, user_id: str, data: bytes, content_type: str | None,
                              filename: str | None) -> str:
        """
        Store bytes the server fetched itself (a URL preview's image) as
        local media of C{user_id}, checked as an upload is.

        @return: its C{mxc://} URI.
        """
        sha256, sniffed = await self._in_thread(_hash_and_sniff, data)
        content = self._new_content(sha256, len(data), sniffed, content_type, filename)
        media_id = _new_media_id()
        await self._keep(sha256, lambda: self._files.store_bytes(sha256, data),
                         lambda: self._store.add_media(media_id, user_id, content, self._now(), None))
        return mxc_uri(self._server_name, media_id)

    async def create(self, user_id: str) -> tuple[str, int]:
        """
        Reserve a media id for a later upload (C{POST /media/v1/create}).

        @return: its C{mxc://} URI and when it expires unused.
        @raise RateLimited: M_LIMIT_EXCEEDED when the user holds too many
            pending ids, until the earliest expires.
        """
        now = self._now()
        media_id = _new_media_id()
        expires = now + self.limits.unused_expiry_ms
        earliest = await self._store.create_pending(media_id, user_id, now, expires, self.limits.max_pending)
        if earliest is not None:
            raise RateLimited(max(0, earliest - now) / 1000)
        return mxc_uri(self._server_name, media_id), expires

    async def upload_to(self, user_id: str, server_name: str, media_id: str, upload: SpooledUpload,
                        content_type: str | None, filename: str | None) -> None:
        """
        Upload the content of a pending id (C{PUT /media/v3/upload/...}).

        @raise MatrixError: 404 M_NOT_FOUND for an unknown or expired id,
            403 M_FORBIDDEN when another user created it, 409
            M_CANNOT_OVERWRITE_MEDIA when it has content already.
        """
        media = await self._local(server_name, media_id)
        if media is None or self._expired(media):
            raise not_found("Unknown media ID")
        if media.user_id != user_id:
            raise Forbidden("M_FORBIDDEN", "Only the user who created this media ID may upload to it")
        if media.sha256 is not None:
            raise _cannot_overwrite()
        content = self._new_content(upload.sha256, upload.length, upload.sniffed, content_type, filename)
        await self._check_quota(user_id, content.length)
        await self._keep(content.sha256, lambda: self._files.store_file(content.sha256, upload.path),
                         lambda: self._store.fill_pending(media_id, content, self._now(),
                                                          self.limits.quota_bytes))
        for waiter in list(self._waiters.pop(media_id, ())):
            waiter.callback(None)  # its download reads the media again

    def _new_content(self, sha256: str, length: int, sniffed: tuple[str, ...], content_type: str | None,
                     filename: str | None) -> NewContent:
        if length > self.limits.max_upload_size:
            raise _too_large(self.limits.max_upload_size)
        name = check_upload_name(filename)
        checked = checked_content_type(normalize_content_type(content_type), sniffed)
        return NewContent(sha256, length, checked, name)

    async def _check_quota(self, user_id: str, length: int) -> None:
        """Refuse early, before the file is stored (the recording transaction checks again)."""
        quota = self.limits.quota_bytes
        if quota is not None and await self._store.uploaded_bytes(user_id) + length > quota:
            raise _over_quota()

    async def _keep(self, sha256: str, put: Callable[[], Awaitable[None]],
                    record: Callable[[], Awaitable[None]]) -> None:
        """
        Store the file of C{sha256} with C{put} unless it is stored already,
        then C{record} what uses it; a file stored for a record that was
        then refused is deleted again.
        """
        async with self._lock(sha256):
            stored = False
            if not await self._store.has_content(sha256):
                await put()
                stored = True
            try:
                await record()
            except UploadRefused as e:
                if stored:
                    await self._files.delete(sha256)
                if e.reason == "quota":
                    raise _over_quota() from None
                if e.reason == "uploaded":
                    raise _cannot_overwrite() from None
                raise not_found("Unknown media ID") from None

    # ------------------------------------------------------------------
    # Downloads

    async def get_content(self, server_name: str, media_id: str, timeout_ms: int) -> LocalMedia | RemoteMedia:
        """
        An uploaded media to serve; a pending one is waited for, up to
        C{timeout_ms}. Media of another server is fetched from it the first
        time (see L{RemoteMediaFetcher.fetch} for its errors), then kept.

        @raise MatrixError: 404 M_NOT_FOUND (unknown, expired, quarantined),
            504 M_NOT_YET_UPLOADED.
        """
        wait_ms = min(max(timeout_ms, 0), MAX_WAIT_MS)
        if not self.is_local(server_name):
            return await self._remote_content(server_name, media_id, wait_ms)
        deadline = self._now() + wait_ms
        while True:
            media = await self._local(server_name, media_id)
            if media is None or media.quarantined or self._expired(media):
                raise not_found("Media not found")
            if media.sha256 is not None:
                self._accessed[media_id] = self._now()
                return media
            assert media.unused_expires_ts is not None
            wait_ms = min(deadline, media.unused_expires_ts) - self._now()
            if wait_ms <= 0:
                raise NotYetAvailable("M_NOT_YET_UPLOADED", "Content has not yet been uploaded")
            await self._wait_for_upload(media_id, wait_ms / 1000)

    async def open(self, sha256: str, first: int = 0, last: int | None = None) -> MediaReader:
        """Open stored content (an upload's or a thumbnail's) for reading."""
        try:
            return await self._files.open(sha256, first, last)
        except FileNotFoundError:
            log.error("the file of content {sha256} is missing from the media store", sha256=sha256)
            raise not_found("Media not found") from None

    async def thumbnail(self, server_name: str, media_id: str, width: int, height: int, method: str,
                        animated: bool, timeout_ms: int) -> ThumbnailAnswer:
        """
        The configured thumbnail size that best answers the request (spec:
        "Thumbnails"), made on first request and kept.

        @raise MatrixError: as L{get_content}; 400 M_UNKNOWN for content that
            is not an image this server thumbnails (or is broken), 413
            M_TOO_LARGE for an image over the pixel cap.
        """
        media = await self.get_content(server_name, media_id, timeout_ms)
        assert media.sha256 is not None and media.content_type is not None
        if essence(media.content_type) not in THUMBNAIL_SOURCE_TYPES:
            raise cannot_thumbnail()
        sha256 = media.sha256
        if media.image_size is not None:
            self._check_pixels(media.image_size)
            size = self._choose(media.image_size, width, height, method)
            stored = await self._store.get_thumbnail(sha256, size, animated)
            if stored is not None:
                return ThumbnailAnswer(stored.content_type, stored.length, stored.sha256, None)
        # Made whatever the client does, so the next request finds it.
        return await shielded(defer.ensureDeferred(
            self._make_thumbnail(sha256, media.image_size, width, height, method, animated)))

    async def _make_thumbnail(self, sha256: str, image_size: tuple[int, int] | None, width: int,
                              height: int, method: str, animated: bool) -> ThumbnailAnswer:
        try:
            async with self._files.local_copy(sha256) as path:
                if image_size is None:
                    image_size = await self._thumbnailer.image_size(path)
                    await self._store.set_image_size(sha256, *image_size)
                    self._check_pixels(image_size)
                size = self._choose(image_size, width, height, method)
                stored = await self._store.get_thumbnail(sha256, size, animated)
                if stored is not None:
                    return ThumbnailAnswer(stored.content_type, stored.length, stored.sha256, None)
                made = await self._thumbnailer.make(path, size, animated)
        except FileNotFoundError:
            log.error("the file of content {sha256} is missing from the media store", sha256=sha256)
            raise not_found("Media not found") from None
        kept = StoredThumbnail(made.sha256, made.content_type, len(made.data))
        await self._keep(made.sha256, lambda: self._files.store_bytes(made.sha256, made.data),
                         lambda: self._store.add_thumbnail(sha256, size, animated, kept, self._now()))
        return ThumbnailAnswer(made.content_type, len(made.data), made.sha256, made.data)

    def _choose(self, image_size: tuple[int, int], width: int, height: int, method: str) -> ThumbnailSize:
        return choose_thumbnail_size(self.limits.thumbnail_sizes, width, height, method, *image_size)

    def _check_pixels(self, image_size: tuple[int, int]) -> None:
        if image_size[0] * image_size[1] > self.limits.max_pixels:
            raise TooLarge("M_TOO_LARGE", "Content is too large to thumbnail")

    def is_local(self, server_name: str) -> bool:
        """Whether media of C{server_name} is this server's own."""
        return server_name == self._server_name

    async def _remote_content(self, origin: str, media_id: str, timeout_ms: int) -> RemoteMedia:
        if self._remote is None or not is_valid_media_id(media_id) or not is_valid_server_name(origin):
            raise not_found("Media not found")
        media = await self._store.get_remote_media(origin, media_id)
        if media is not None:
            if media.quarantined:
                raise not_found("Media not found")
            self._remote_accessed[(origin, media_id)] = self._now()
            return media
        return await self._fetches.run((origin, media_id),
                                       lambda: self._fetch_remote(origin, media_id, timeout_ms))

    async def _fetch_remote(self, origin: str, media_id: str, timeout_ms: int) -> RemoteMedia:
        assert self._remote is not None
        fetched = await self._remote.fetch(origin, media_id, timeout_ms)
        sha256, sniffed = await self._in_thread(_hash_and_sniff, fetched.data)
        content = NewContent(sha256, len(fetched.data),
                             checked_content_type(normalize_content_type(fetched.content_type), sniffed),
                             _remote_name(fetched.filename))
        await self._keep(sha256, lambda: self._files.store_bytes(sha256, fetched.data),
                         lambda: self._store.add_remote_media(origin, media_id, content, self._now()))
        return RemoteMedia(origin, media_id, sha256, content.content_type, content.upload_name, content.length)

    # ------------------------------------------------------------------
    # Retention (for the admin API)

    async def delete(self, media_id: str) -> bool:
        """
        Delete a media id; its file and thumbnails go with the last id that
        uses them.

        @return: whether there was such a media id.
        """
        self._accessed.pop(media_id, None)
        return await self._delete_files(await self._store.delete_media(media_id))

    async def uncache(self, origin: str, media_id: str) -> bool:
        """
        Forget a cached media of another server (as L{delete}); the next
        request for it fetches it again.

        @return: whether it was cached.
        """
        self._remote_accessed.pop((origin, media_id), None)
        return await self._delete_files(await self._store.delete_remote_media(origin, media_id))

    async def _delete_files(self, deleted: list[str] | None) -> bool:
        """Delete the files of the content rows just deleted, unless stored again meanwhile."""
        if deleted is None:
            return False
        for sha256 in deleted:
            async with self._lock(sha256):
                if not await self._store.has_content(sha256):
                    await self._files.delete(sha256)
        return True

    async def purge_accessed_before(self, before_ts: int, *, size_gt: int = 0, keep: Collection[str] = (),
                                    batch: int = 100) -> list[str]:
        """
        Delete every uploaded media last downloaded (or, never downloaded,
        uploaded) before C{before_ts} (ms) and larger than C{size_gt} bytes,
        but those in C{keep}, quarantined ones (kept for the admins) and
        protected ones, as Synapse's retention does.

        @return: the media ids deleted.
        """
        await self.flush()
        deleted: list[str] = []
        while True:
            media_ids = await self._store.media_accessed_before(before_ts, batch, size_gt, keep)
            for media_id in media_ids:
                if await self.delete(media_id):
                    deleted.append(media_id)
            if len(media_ids) < batch:
                return deleted

    async def purge_remote_accessed_before(self, before_ts: int, batch: int = 100) -> int:
        """
        Forget the cached media of other servers last downloaded (or, never
        downloaded, fetched) before C{before_ts} (ms), but quarantined ones:
        fetched again, they would be served again.

        @return: how many were forgotten.
        """
        await self.flush()
        count = 0
        while True:
            keys = await self._store.remote_media_accessed_before(before_ts, batch)
            for origin, media_id in keys:
                count += await self.uncache(origin, media_id)
            if len(keys) < batch:
                return count

    # ------------------------------------------------------------------
    # Maintenance

    def start(self) -> None:
        self._maintenance.start()

    async def stop(self) -> None:
        await self._maintenance.stop()

    async def flush(self) -> None:
        """Write the last-access times collected since the last flush."""
        batch, self._accessed = self._accessed, {}
        remote, self._remote_accessed = self._remote_accessed, {}
        await self._store.record_access(batch)
        await self._store.record_remote_access(remote)

    async def _maintain(self) -> None:
        try:
            await self.flush()
            await self._store.delete_expired_pending(self._now())
        except Exception:
            log.failure("media maintenance failed")

    # ------------------------------------------------------------------

    async def _local(self, server_name: str, media_id: str) -> LocalMedia | None:
        """This server's media id C{media_id}; C{None} for any other."""
        if server_name != self._server_name or not is_valid_media_id(media_id):
            return None
        return await self._store.get_media(media_id)

    def _expired(self, media: LocalMedia) -> bool:
        return (media.sha256 is None and media.unused_expires_ts is not None
                and media.unused_expires_ts <= self._now())

    async def _wait_for_upload(self, media_id: str, seconds: float) -> None:
        """Until C{media_id} is uploaded or C{seconds} have passed."""
        waiters = self._waiters.setdefault(media_id, set())
        waiter: defer.Deferred[None] = defer.Deferred()
        waiters.add(waiter)
        timer = self._clock.callLater(seconds, lambda: None if waiter.called else waiter.callback(None))
        try:
            await waiter
        finally:
            if timer.active():
                timer.cancel()
            waiters.discard(waiter)
            if not waiters and self._waiters.get(media_id) is waiters:
                del self._waiters[media_id]

    @asynccontextmanager
    async def _lock(self, sha256: str) -> AsyncIterator[None]:
        """Hold the lock of one content hash (see the module)."""
        lock = self._locks.setdefault(sha256, defer.DeferredLock())
        await lock.acquire()
        try:
            yield
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(sha256, None)

    async def _in_thread(self, fn: Callable[..., T], *args: object) -> T:
        return await deferToThreadPool(self._reactor, self._pool, fn, *args)

    def _now(self) -> int:
        return now_ms(self._clock)


def _new_media_id() -> str:
    return "".join(secrets.choice(_MEDIA_ID_ALPHABET) for _ in range(24))


def _hash_and_sniff(data: bytes) -> tuple[str, tuple[str, ...]]:
    return hashlib.sha256(data).hexdigest(), sniff_content_types(data[:SNIFF_BYTES])


def sniff_content_types(head: bytes) -> tuple[str, ...]:
    """
    The content types C{puremagic} finds in a file's first bytes, most
    likely first (CPU work: call it in a thread).
    """
    if not head:
        return ()
    try:
        return tuple(match.mime_type for match in puremagic.magic_string(head) if match.mime_type)
    except puremagic.PureError:
        return ()


def _remote_name(filename: str | None) -> str | None:
    """A remote media's file name, kept when it would be a valid upload's."""
    try:
        return check_upload_name(filename)
    except MatrixError:
        return None


def _too_large(limit: int) -> TooLarge:
    return TooLarge("M_TOO_LARGE", f"Cannot upload files larger than {limit} bytes")


def _over_quota() -> Forbidden:
    # The spec's answer for "the user has reached a quota for uploaded
    # content" (403 M_FORBIDDEN); Synapse's media_upload_limits answer 400
    # M_RESOURCE_LIMIT_EXCEEDED instead.
    return Forbidden("M_FORBIDDEN", "Your media quota would be exceeded by this upload")


def _cannot_overwrite() -> Conflict:
    return Conflict("M_CANNOT_OVERWRITE_MEDIA", "Media already uploaded")
