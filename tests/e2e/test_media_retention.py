"""
The media repository's retention and quarantine operations (which the admin
API uses) and its hook for server-fetched media (URL previews), run in
this process against a real database and a local byte store.
"""
import hashlib
import os
import uuid

import pytest
import pytest_twisted
from media_helpers import image_bytes
from twisted.internet import reactor, task

from ruma_tx.matrix.errors import MatrixError
from ruma_tx.matrix.media import DEFAULT_THUMBNAIL_SIZES
from ruma_tx.services.media import MediaLimits, MediaRepository
from ruma_tx.services.thumbnails import Thumbnailer
from ruma_tx.storage.admin_media import AdminMediaStore
from ruma_tx.storage.database import Database
from ruma_tx.storage.media import MediaStore
from ruma_tx.storage.media_files import LocalMediaFiles, content_path
from ruma_tx.storage.migrations import migrate

USER = "@alice:test.local"


class Repository:
    """A media repository on a fresh database, with a clock the test moves."""

    def __init__(self, database: Database, root, clock: task.Clock):
        self.database = database
        self.root = root
        self.clock = clock
        pool = reactor.getThreadPool()
        self.media = MediaRepository(
            store=MediaStore(database), files=LocalMediaFiles(root, reactor, pool),
            thumbnailer=Thumbnailer(reactor, pool, 32_000_000), clock=clock, reactor=reactor, pool=pool,
            server_name="test.local",
            limits=MediaLimits(max_upload_size=10_000_000, max_pending=5, unused_expiry_ms=86_400_000,
                               quota_bytes=None, thumbnail_sizes=DEFAULT_THUMBNAIL_SIZES,
                               max_pixels=32_000_000))

    def has_file(self, data: bytes) -> bool:
        return (self.root / "content" / content_path(hashlib.sha256(data).hexdigest())).is_file()

    async def is_served(self, uri: str) -> bool:
        try:
            await self.media.get_content("test.local", uri.rsplit("/", 1)[1], 0)
        except MatrixError as e:
            assert (e.errcode, type(e).__name__) == ("M_NOT_FOUND", "NotFound")
            return False
        return True


@pytest.fixture
def repository(pg_cluster, tmp_path):
    dsn = pg_cluster.create_database(f"ruma_media_{uuid.uuid4().hex}")
    database = Database(dsn, 2, reactor)
    clock = task.Clock()
    clock.advance(1_000_000)
    yield Repository(database, tmp_path / "media", clock)
    database.close()


async def opened(repository: Repository) -> Repository:
    await repository.database.open()
    await migrate(repository.database, 0)
    return repository


@pytest_twisted.ensureDeferred
async def test_quarantined_media_is_not_served(repository):
    """A quarantined id is 404 from then on; another id with the same bytes is not affected."""
    repo = await opened(repository)
    data = os.urandom(1000)
    first = await repo.media.add_local_media(USER, data, "application/octet-stream", None)
    second = await repo.media.add_local_media(USER, data, "application/octet-stream", None)
    admin_store = AdminMediaStore(repo.database)
    assert await admin_store.quarantine([first.rsplit("/", 1)[1]], [], "@admin:test.local", 0) == 1
    assert not await repo.is_served(first)
    assert await repo.is_served(second)
    assert repo.has_file(data)  # kept for the admins
    assert await admin_store.quarantine(["NoSuchMedia"], [], "@admin:test.local", 0) == 0


@pytest_twisted.ensureDeferred
async def test_a_file_goes_with_the_last_media_id_using_it(repository):
    """Deleting one of two ids sharing a file keeps the file; deleting the last removes it and its thumbnails."""
    repo = await opened(repository)
    data = image_bytes()
    first = await repo.media.add_local_media(USER, data, "image/png", "a.png")
    second = await repo.media.add_local_media(USER, data, "image/png", "b.png")
    answer = await repo.media.thumbnail("test.local", second.rsplit("/", 1)[1], 32, 32, "crop", False, 0)
    thumbnail_file = repo.root / "content" / content_path(answer.sha256)
    assert thumbnail_file.is_file()
    assert await repo.media.delete(first.rsplit("/", 1)[1])
    assert not await repo.is_served(first)
    assert await repo.is_served(second) and repo.has_file(data) and thumbnail_file.is_file()
    assert await repo.media.delete(second.rsplit("/", 1)[1])
    assert not repo.has_file(data) and not thumbnail_file.is_file()
    assert not await repo.media.delete(second.rsplit("/", 1)[1])
    again = await repo.media.add_local_media(USER, data, "image/png", "c.png")
    assert await repo.is_served(again) and repo.has_file(data)


@pytest_twisted.ensureDeferred
async def test_purge_deletes_media_not_downloaded_since(repository):
    """Media last downloaded (or, never downloaded, uploaded) before the cut-off is purged; the rest stays."""
    repo = await opened(repository)
    old_data, kept_data, new_data = os.urandom(100), os.urandom(100), os.urandom(100)
    old = await repo.media.add_local_media(USER, old_data, None, None)
    kept = await repo.media.add_local_media(USER, kept_data, None, None)
    repo.clock.advance(1000)
    cut_off_ms = int(repo.clock.seconds() * 1000)
    repo.clock.advance(1000)
    new = await repo.media.add_local_media(USER, new_data, None, None)
    assert await repo.is_served(kept)  # a download now: its last access is after the cut-off
    assert await repo.media.purge_accessed_before(cut_off_ms) == [old.rsplit("/", 1)[1]]
    assert not await repo.is_served(old) and not repo.has_file(old_data)
    assert await repo.is_served(kept) and await repo.is_served(new)


@pytest_twisted.ensureDeferred
async def test_server_fetched_media_is_checked_like_an_upload(repository):
    """Bytes stored by the server itself (a preview's image) get the same content-type checks."""
    repo = await opened(repository)
    page = await repo.media.add_local_media(USER, b"<html><script></script></html>", "text/html", "x.html")
    media = await repo.media.get_content("test.local", page.rsplit("/", 1)[1], 0)
    assert (media.content_type, media.upload_name, media.user_id) == ("application/octet-stream", "x.html", USER)
    picture = await repo.media.add_local_media(USER, image_bytes(), "image/png", None)
    assert (await repo.media.get_content("test.local", picture.rsplit("/", 1)[1], 0)).content_type == "image/png"

