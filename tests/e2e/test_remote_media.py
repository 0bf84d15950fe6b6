"""
Media of other servers in the media repository: fetched through a fake
federation client (the authenticated endpoint, the legacy fallback, a
Location), kept in a real database and byte store, shared by concurrent
requests, bounded by the largest upload, and thumbnailed here.
"""
import hashlib
import os
import uuid

import pytest
import pytest_twisted
from media_helpers import image_bytes
from twisted.internet import defer, reactor, task

from ruma_tx.matrix.errors import MatrixError
from ruma_tx.matrix.media import DEFAULT_THUMBNAIL_SIZES
from ruma_tx.matrix.multipart import media_multipart_head, media_multipart_tail, multipart_content_type
from ruma_tx.services.media import MediaLimits, MediaRepository
from ruma_tx.services.ports.federation import FederationError, FederationTooLarge, RemoteMatrixError
from ruma_tx.services.ports.outbound import OutboundResponse
from ruma_tx.services.remote_media import ENVELOPE_BYTES, RemoteMediaFetcher
from ruma_tx.services.thumbnails import Thumbnailer
from ruma_tx.storage.database import Database
from ruma_tx.storage.media import MediaStore
from ruma_tx.storage.media_files import LocalMediaFiles, content_path
from ruma_tx.storage.migrations import migrate

REMOTE = "remote.example"
MEDIA_ID = "RemoteMedia1"
MAX_BYTES = 100_000
DOWNLOAD = f"/_matrix/federation/v1/media/download/{MEDIA_ID}"
LEGACY = f"/_matrix/media/v3/download/{REMOTE}/{MEDIA_ID}"


def multipart(data: bytes, content_type: str = "image/png", filename: str = "cat.png") -> OutboundResponse:
    boundary = "b0undary"
    body = (media_multipart_head(boundary, content_type, f'inline; filename="{filename}"') + data
            + media_multipart_tail(boundary))
    return OutboundResponse(200, body, {"content-type": [multipart_content_type(boundary)]})


class FakeFederation:
    """Answers per path: an OutboundResponse, an exception, or a Deferred left waiting; records each request."""

    def __init__(self) -> None:
        self.answers: dict[str, object] = {}
        self.requests: list[tuple[str, str, dict, int]] = []

    async def get_bytes(self, destination, path, *, max_bytes, query=None, timeout_s=None):
        self.requests.append((destination, path, dict(query or {}), max_bytes))
        answer = self.answers.get(path, RemoteMatrixError(destination, 404, "M_NOT_FOUND", "unknown"))
        if isinstance(answer, defer.Deferred):
            answer = await answer
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeWeb:
    """The outbound client: one answer per URL."""

    def __init__(self) -> None:
        self.answers: dict[str, OutboundResponse] = {}
        self.fetched: list[tuple[str, int | None]] = []

    async def request(self, method, url, *, headers=None, body=None, timeout_s=None, max_bytes=None):
        self.fetched.append((url, max_bytes))
        return self.answers[url]


class Repository:
    """A media repository on a fresh database, fetching remote media through the fakes."""

    def __init__(self, database: Database, root) -> None:
        self.database = database
        self.root = root
        self.federation = FakeFederation()
        self.web = FakeWeb()
        self.media = self.make()

    def make(self) -> MediaRepository:
        pool = reactor.getThreadPool()
        clock = task.Clock()
        clock.advance(1_000_000)
        return MediaRepository(
            store=MediaStore(self.database), files=LocalMediaFiles(self.root, reactor, pool),
            thumbnailer=Thumbnailer(reactor, pool, 32_000_000), clock=clock, reactor=reactor, pool=pool,
            server_name="test.local",
            limits=MediaLimits(max_upload_size=MAX_BYTES, max_pending=5, unused_expiry_ms=86_400_000,
                               quota_bytes=None, thumbnail_sizes=DEFAULT_THUMBNAIL_SIZES,
                               max_pixels=32_000_000),
            remote=RemoteMediaFetcher(federation=self.federation, http=self.web, max_bytes=MAX_BYTES,
                                      reactor=reactor, pool=pool))

    def has_file(self, data: bytes) -> bool:
        return (self.root / "content" / content_path(hashlib.sha256(data).hexdigest())).is_file()

    async def read(self, sha256: str) -> bytes:
        reader = await self.media.open(sha256)
        try:
            return await reader.read(10 * MAX_BYTES)
        finally:
            await reader.close()

    async def error(self, server_name: str = REMOTE, media_id: str = MEDIA_ID) -> tuple[str, str]:
        """The error class (its status: NotFound 404, RemoteUnavailable 502...) and errcode."""
        with pytest.raises(MatrixError) as caught:
            await self.media.get_content(server_name, media_id, 0)
        return type(caught.value).__name__, caught.value.errcode


@pytest_twisted.async_yield_fixture
async def repo(pg_cluster, tmp_path):
    dsn = pg_cluster.create_database(f"ruma_remote_media_{uuid.uuid4().hex}")
    database = Database(dsn, 2, reactor)
    await database.open()
    await migrate(database, 0)
    yield Repository(database, tmp_path / "media")
    database.close()


@pytest_twisted.ensureDeferred
async def test_fetched_once_then_served_from_the_cache(repo):
    """The first request fetches over federation; later ones (even after a restart) are served from the store."""
    data = image_bytes()
    repo.federation.answers[DOWNLOAD] = multipart(data)
    media = await repo.media.get_content(REMOTE, MEDIA_ID, 5000)
    assert (media.content_type, media.upload_name, media.length) == ("image/png", "cat.png", len(data))
    assert await repo.read(media.sha256) == data and repo.has_file(data)
    assert repo.federation.requests == [(REMOTE, DOWNLOAD, {"timeout_ms": "5000"}, MAX_BYTES + ENVELOPE_BYTES)]
    repo.federation.answers.clear()
    assert (await repo.media.get_content(REMOTE, MEDIA_ID, 0)).sha256 == media.sha256
    assert (await repo.make().get_content(REMOTE, MEDIA_ID, 0)).sha256 == media.sha256
    assert len(repo.federation.requests) == 1


@pytest_twisted.ensureDeferred
async def test_concurrent_requests_share_one_fetch(repo):
    """Three clients asking at once for media not yet here cause one request to its server."""
    answer: defer.Deferred = defer.Deferred()
    repo.federation.answers[DOWNLOAD] = answer
    waiting = [defer.ensureDeferred(repo.media.get_content(REMOTE, MEDIA_ID, 0)) for _ in range(3)]
    while not repo.federation.requests:  # the first caller's fetch has started
        await task.deferLater(reactor, 0.01)
    waiting[0].cancel()  # a client hanging up does not stop the fetch for the others
    waiting[0].addErrback(lambda failure: failure.trap(defer.CancelledError))
    answer.callback(multipart(b"shared bytes", "text/plain", "a.txt"))
    results = await defer.DeferredList(waiting[1:], fireOnOneErrback=True)
    assert [media.length for _, media in results] == [12, 12]
    assert len(repo.federation.requests) == 1
    assert repo.has_file(b"shared bytes")


@pytest_twisted.ensureDeferred
async def test_larger_than_the_largest_upload_is_refused(repo):
    """Media over the size limit is 502 M_TOO_LARGE, whether the part or the client finds it too large."""
    data = os.urandom(MAX_BYTES + 1)
    repo.federation.answers[DOWNLOAD] = multipart(data)
    assert await repo.error() == ("RemoteUnavailable", "M_TOO_LARGE")
    assert not repo.has_file(data)
    repo.federation.answers[DOWNLOAD] = FederationTooLarge(REMOTE, "too long")
    assert await repo.error() == ("RemoteUnavailable", "M_TOO_LARGE")


@pytest_twisted.ensureDeferred
async def test_legacy_fallback_only_for_unrecognized(repo):
    """404 M_UNRECOGNIZED (a server before v1.11) falls back to the legacy download, with allow_remote=false."""
    repo.federation.answers[DOWNLOAD] = RemoteMatrixError(REMOTE, 404, "M_UNRECOGNIZED", "Unrecognized request")
    repo.federation.answers[LEGACY] = OutboundResponse(200, b"legacy bytes", {
        "content-type": ["text/plain"], "content-disposition": ["attachment; filename=\"old.txt\""]})
    media = await repo.media.get_content(REMOTE, MEDIA_ID, 0)
    assert (media.content_type, media.upload_name) == ("text/plain", "old.txt")
    assert await repo.read(media.sha256) == b"legacy bytes"
    assert [(path, query) for _, path, query, _ in repo.federation.requests] == [
        (DOWNLOAD, {"timeout_ms": "0"}),
        (LEGACY, {"timeout_ms": "0", "allow_redirect": "true", "allow_remote": "false"})]


@pytest_twisted.ensureDeferred
async def test_legacy_redirect_is_followed(repo):
    """A legacy download answering a redirect (allow_redirect=true) is fetched where it points."""
    url = "https://cdn.example.org/old"
    repo.federation.answers[DOWNLOAD] = RemoteMatrixError(REMOTE, 404, "M_UNRECOGNIZED", "Unrecognized request")
    repo.federation.answers[LEGACY] = OutboundResponse(307, b"", {"location": [url]})
    repo.web.answers[url] = OutboundResponse(200, b"redirected bytes", {
        "content-type": ["application/pdf"], "content-disposition": ["inline; filename*=utf-8''r%C3%A9sum%C3%A9.pdf"]})
    media = await repo.media.get_content(REMOTE, MEDIA_ID, 0)
    assert (media.content_type, media.upload_name) == ("application/pdf", "r\u00e9sum\u00e9.pdf")
    assert await repo.read(media.sha256) == b"redirected bytes"


@pytest_twisted.ensureDeferred
async def test_not_found_is_not_retried_on_the_legacy_path(repo):
    """A 404 M_NOT_FOUND from the media's server is 404 here, and the legacy path is not tried."""
    assert await repo.error() == ("NotFound", "M_NOT_FOUND")
    assert [path for _, path, _, _ in repo.federation.requests] == [DOWNLOAD]


@pytest.mark.parametrize("failure,expected", [
    (FederationError(REMOTE, "connection refused"), ("RemoteUnavailable", "M_UNKNOWN")),
    (RemoteMatrixError(REMOTE, 504, "M_NOT_YET_UPLOADED", "later"), ("NotYetAvailable", "M_NOT_YET_UPLOADED")),
    (RemoteMatrixError(REMOTE, 500, "M_UNKNOWN", "oops"), ("RemoteUnavailable", "M_UNKNOWN")),
    (OutboundResponse(200, b"{}", {"content-type": ["application/json"]}), ("RemoteUnavailable", "M_UNKNOWN")),
])
@pytest_twisted.ensureDeferred
async def test_remote_failures(repo, failure, expected):
    """An unreachable server, media not uploaded yet, a server error or a non-multipart answer, as clients see them."""
    repo.federation.answers[DOWNLOAD] = failure
    assert await repo.error() == expected


@pytest_twisted.ensureDeferred
async def test_location_is_fetched(repo):
    """A Location part is fetched (bounded by the largest upload) and described by its own headers."""
    url = "https://cdn.example.org/media/abc?sig=xyz"
    boundary = "b"
    body = (b"--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b\r\nLocation: " + url.encode()
            + b"\r\n\r\n\r\n--b--\r\n")
    repo.federation.answers[DOWNLOAD] = OutboundResponse(200, body, {
        "content-type": [multipart_content_type(boundary)]})
    repo.web.answers[url] = OutboundResponse(200, b"from the cdn", {"content-type": ["text/plain"]})
    media = await repo.media.get_content(REMOTE, MEDIA_ID, 0)
    assert await repo.read(media.sha256) == b"from the cdn"
    assert media.content_type == "text/plain"
    assert repo.web.fetched == [(url, MAX_BYTES)]


@pytest_twisted.ensureDeferred
async def test_content_type_is_checked_as_an_upload(repo):
    """A remote server's active content type is served as application/octet-stream; a bad file name is dropped."""
    repo.federation.answers[DOWNLOAD] = multipart(b"<html><script>alert(1)</script></html>", "text/html",
                                                  "x\x01.html")
    media = await repo.media.get_content(REMOTE, MEDIA_ID, 0)
    assert (media.content_type, media.upload_name) == ("application/octet-stream", None)


@pytest_twisted.ensureDeferred
async def test_thumbnails_are_made_here(repo):
    """A thumbnail of remote media is made from the fetched original, with no thumbnail request to its server."""
    repo.federation.answers[DOWNLOAD] = multipart(image_bytes((300, 200)))
    answer = await repo.media.thumbnail(REMOTE, MEDIA_ID, 32, 32, "crop", False, 0)
    assert answer.content_type in ("image/png", "image/jpeg") and answer.length > 0
    assert [path for _, path, _, _ in repo.federation.requests] == [DOWNLOAD]


@pytest_twisted.ensureDeferred
async def test_kept_file_survives_deleting_local_media_with_the_same_bytes(repo):
    """The file is shared: deleting a local media with the same bytes keeps what the remote media needs."""
    data = os.urandom(500)
    repo.federation.answers[DOWNLOAD] = multipart(data, "application/octet-stream", "blob")
    await repo.media.get_content(REMOTE, MEDIA_ID, 0)
    local = await repo.media.add_local_media("@alice:test.local", data, None, None)
    assert await repo.media.delete(local.rsplit("/", 1)[1])
    assert repo.has_file(data)
    assert await repo.read((await repo.media.get_content(REMOTE, MEDIA_ID, 0)).sha256) == data


@pytest.mark.parametrize("server_name,media_id", [(REMOTE, "bad/id"), ("not a server", MEDIA_ID)])
@pytest_twisted.ensureDeferred
async def test_invalid_names_are_not_fetched(repo, server_name, media_id):
    """An invalid media id or server name is 404 without any request."""
    assert await repo.error(server_name, media_id) == ("NotFound", "M_NOT_FOUND")
    assert repo.federation.requests == []
