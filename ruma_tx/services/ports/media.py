"""
Ports of the media repository: the records it keeps in the database
(C{MediaStore}, implemented by C{ruma_tx.storage.media}) and the byte store
that holds the files (C{MediaFiles}: local disk or S3, in
C{ruma_tx.storage.media_files}).

Files are content-addressed: one file per distinct content (its sha256),
shared by every media id and thumbnail with those bytes, and deleted when
the last of them goes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncContextManager, Collection, Mapping, Protocol

from ruma_tx.matrix.media import ThumbnailSize


#: How much of an upload's start is kept for sniffing its content type.
SNIFF_BYTES = 8192


@dataclass(frozen=True)
class SpooledUpload:
    """
    An upload's body, received whole into a temporary file.

    @ivar path: the temporary file; its owner deletes it after the request
        (a store that keeps it moves it away first).
    @ivar sha256: the hex SHA-256 of the bytes.
    @ivar sniffed: the content types a sniffer found in the first
        L{SNIFF_BYTES} (most likely first; none when it recognised nothing).
    """

    path: str
    sha256: str
    length: int
    sniffed: tuple[str, ...]


@dataclass(frozen=True)
class LocalMedia:
    """
    A media id of this server.

    @ivar sha256: the content's hash; C{None} while the id is pending (made
        by C{/create}, not yet uploaded).
    @ivar unused_expires_ts: when a pending id expires.
    @ivar image_size: the image's displayed size, once known (learnt when
        it is first thumbnailed).
    """

    media_id: str
    user_id: str
    created_ts: int
    sha256: str | None
    content_type: str | None
    upload_name: str | None
    length: int | None
    unused_expires_ts: int | None
    quarantined: bool
    image_size: tuple[int, int] | None = None


@dataclass(frozen=True)
class RemoteMedia:
    """
    A media id of another server, fetched and kept here.

    @ivar image_size: as L{LocalMedia}'s.
    @ivar quarantined: an admin quarantined it: it is served as 404.
    """

    origin: str
    media_id: str
    sha256: str
    content_type: str
    upload_name: str | None
    length: int
    image_size: tuple[int, int] | None = None
    quarantined: bool = False


@dataclass(frozen=True)
class NewContent:
    """What an upload stores: its bytes' hash and size, and how to serve them."""

    sha256: str
    length: int
    content_type: str
    upload_name: str | None


@dataclass(frozen=True)
class StoredThumbnail:
    """A generated thumbnail: a file of the byte store, by its hash."""

    sha256: str
    content_type: str
    length: int


class UploadRefused(Exception):
    """
    The database refused to record an upload.

    @ivar reason: C{"quota"} (the user's total would pass their quota) or
        C{"uploaded"} (the pending id already has content).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MediaStore(Protocol):
    async def create_pending(self, media_id: str, user_id: str, now_ms: int, expires_ts: int,
                             max_pending: int) -> int | None:
        """
        Record a pending id, unless the user already has C{max_pending}
        unexpired ones.

        @return: C{None} when recorded, else when the earliest of the
            user's pending ids expires.
        """
        ...

    async def get_media(self, media_id: str) -> LocalMedia | None: ...

    async def uploaded_bytes(self, user_id: str) -> int:
        """The total size of a user's uploads (each counted, however shared their files are)."""
        ...

    async def has_content(self, sha256: str) -> bool: ...

    async def add_media(self, media_id: str, user_id: str, content: NewContent, now_ms: int,
                        quota: int | None) -> None:
        """
        Record a new media id with its content, in one transaction.

        @raise UploadRefused: C{"quota"}.
        """
        ...

    async def fill_pending(self, media_id: str, content: NewContent, now_ms: int, quota: int | None) -> None:
        """
        Give a pending id its content, in one transaction.

        @raise UploadRefused: C{"quota"}, or C{"uploaded"} when it has
            content already.
        """
        ...

    async def set_image_size(self, sha256: str, width: int, height: int) -> None: ...

    async def get_thumbnail(self, source_sha256: str, size: ThumbnailSize,
                            animated: bool) -> StoredThumbnail | None: ...

    async def add_thumbnail(self, source_sha256: str, size: ThumbnailSize, animated: bool,
                            thumbnail: StoredThumbnail, now_ms: int) -> None:
        """Record a generated thumbnail and its file's content row (if new)."""
        ...

    async def record_access(self, last_access: Mapping[str, int]) -> None:
        """Set the last access time of each media id (one statement)."""
        ...

    async def record_remote_access(self, last_access: Mapping[tuple[str, str], int]) -> None:
        """Set the last access time of each cached remote media, by C{(origin, media_id)}."""
        ...

    async def delete_expired_pending(self, now_ms: int) -> int: ...

    async def delete_media(self, media_id: str) -> list[str] | None:
        """
        Delete a media id, and the content rows (with their thumbnails'
        rows) that no media id, local or remote, uses any more.

        @return: the hashes of the content rows deleted, whose files may
            go; C{None} when there was no such media id.
        """
        ...

    async def delete_remote_media(self, origin: str, media_id: str) -> list[str] | None:
        """As L{delete_media}, for a cached remote media."""
        ...

    async def media_accessed_before(self, before_ts: int, limit: int, size_gt: int = 0,
                                    keep: Collection[str] = ()) -> list[str]:
        """
        Uploaded media ids last downloaded (or, never downloaded, uploaded)
        before C{before_ts}, larger than C{size_gt} bytes; never those in
        C{keep}, quarantined or protected ones.
        """
        ...

    async def remote_media_accessed_before(self, before_ts: int, limit: int) -> list[tuple[str, str]]:
        """
        C{(origin, media_id)} of cached remote media last downloaded (or,
        never, fetched) before C{before_ts}; never quarantined ones.
        """
        ...

    async def get_remote_media(self, origin: str, media_id: str) -> RemoteMedia | None: ...

    async def add_remote_media(self, origin: str, media_id: str, content: NewContent, now_ms: int) -> None:
        """Record fetched media and its content row (if new); nothing when it is recorded already."""
        ...


class MediaReader(Protocol):
    """An open file of the byte store, read in order."""

    async def read(self, size: int) -> bytes:
        """Up to C{size} bytes; C{b""} at the end."""
        ...

    async def close(self) -> None: ...


class MediaFiles(Protocol):
    """
    The byte store, keyed by content hash. Every call does its I/O off the
    reactor thread.
    """

    async def store_file(self, sha256: str, path: str) -> None:
        """Store the file at C{path} (which the store may move away) as C{sha256}."""
        ...

    async def store_bytes(self, sha256: str, data: bytes) -> None: ...

    async def open(self, sha256: str, first: int = 0, last: int | None = None) -> MediaReader:
        """
        Open a stored file, from byte C{first} to byte C{last} (included;
        C{None}: to the end).

        @raise FileNotFoundError: when there is no such file.
        """
        ...

    def local_copy(self, sha256: str) -> AsyncContextManager[str]:
        """The path of a local file with these bytes, while the context lasts."""
        ...

    async def delete(self, sha256: str) -> None:
        """Delete a stored file (nothing when there is none)."""
        ...
