"""
Fetching media of other servers (spec: Server-Server API, "Content
Repository"): the authenticated C{/_matrix/federation/v1/media/download},
falling back to the deprecated C{/_matrix/media/v3/download} only when the
server answers 404 M_UNRECOGNIZED (it predates v1.11), as the spec and
Synapse do. The media repository keeps what is fetched.

A C{Location} the server answers with (a part of the multipart answer, or
a legacy redirect) is fetched once with the server's outbound client,
which never reaches a blocked address range.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar
from urllib.parse import urlsplit

from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from ruma_tx.logs import logger
from ruma_tx.matrix.errors import MatrixError, NotYetAvailable, RemoteUnavailable, not_found
from ruma_tx.matrix.multipart import (
    InvalidMultipart,
    MediaPart,
    disposition_filename,
    parse_media_multipart,
)
from ruma_tx.services.ports.federation import (
    FederationDenied,
    FederationDownloads,
    FederationError,
    FederationTooLarge,
    RemoteMatrixError,
)
from ruma_tx.services.ports.outbound import OutboundError, OutboundHttp, OutboundResponse, OutboundTooLarge

log = logger(__name__)
T = TypeVar("T")

#: What a multipart answer may hold besides the media (boundaries, headers, metadata).
ENVELOPE_BYTES = 64 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class FetchedMedia:
    """
    Media as another server sent it (its content type and name are checked
    by the repository, as an upload's are).
    """

    data: bytes
    content_type: str | None
    filename: str | None


class RemoteMediaFetcher:
    """
    @param federation: signed requests to other servers.
    @param http: for a C{Location} the media is at.
    @param max_bytes: the largest media fetched (the largest upload).
    @param reactor: with C{pool}, parses answers off the reactor thread.
    """

    def __init__(self, *, federation: FederationDownloads, http: OutboundHttp, max_bytes: int,
                 reactor: IReactorFromThreads, pool: ThreadPool) -> None:
        self._federation = federation
        self._http = http
        self._max_bytes = max_bytes
        self._reactor = reactor
        self._pool = pool

    async def fetch(self, origin: str, media_id: str, timeout_ms: int) -> FetchedMedia:
        """
        The media C{mxc://origin/media_id}.

        @param media_id: a valid media id (safe in a path).
        @param timeout_ms: how long the server may wait for media not yet
            uploaded.
        @raise MatrixError: 404 M_NOT_FOUND (unknown there, or a server this
            one may not contact), 504 M_NOT_YET_UPLOADED, 502 (M_TOO_LARGE
            over the size limit, M_UNKNOWN for no usable answer).
        """
        query = {"timeout_ms": str(timeout_ms)}
        try:
            answer = await self._get(origin, f"/_matrix/federation/v1/media/download/{media_id}", query)
        except RemoteMatrixError as e:
            if (e.code, e.errcode) != (404, "M_UNRECOGNIZED"):
                raise _remote_error(e) from None
            return await self._fetch_legacy(origin, media_id, query)
        try:
            part = await self._in_thread(parse_media_multipart, answer.header("content-type"), answer.body)
        except InvalidMultipart as e:
            log.info("media {origin}/{media_id}: unusable answer: {why}", origin=origin, media_id=media_id, why=e)
            raise RemoteUnavailable("M_UNKNOWN", "The media's server gave an unusable answer") from None
        if part.location is not None:
            return await self._fetch_location(part.location, part)
        assert part.data is not None
        return self._fetched(part.data, part.content_type, part.filename)

    async def _fetch_legacy(self, origin: str, media_id: str, query: dict[str, str]) -> FetchedMedia:
        """From a server older than v1.11; C{allow_remote=false}, so it does not fetch from others."""
        query = {**query, "allow_redirect": "true", "allow_remote": "false"}
        try:
            answer = await self._get(origin, f"/_matrix/media/v3/download/{origin}/{media_id}", query)
        except RemoteMatrixError as e:
            raise _remote_error(e) from None
        if answer.code < 300:
            return self._answered(answer)
        location = answer.header("location")
        if answer.code not in _REDIRECTS or not location:
            raise RemoteUnavailable("M_UNKNOWN", f"The media's server answered {answer.code}")
        return await self._fetch_location(location, None)

    async def _get(self, origin: str, path: str, query: dict[str, str]) -> OutboundResponse:
        try:
            answer = await self._federation.get_bytes(origin, path, query=query,
                                                      max_bytes=self._max_bytes + ENVELOPE_BYTES)
        except FederationDenied:
            # Unknown to this server's clients; Synapse answers 403 with no
            # errcode the spec lists for a download.
            raise not_found("Media of that server cannot be fetched") from None
        except FederationTooLarge:
            raise _too_large(self._max_bytes) from None
        except RemoteMatrixError:
            raise
        except FederationError as e:
            log.info("media of {origin}: {why}", origin=origin, why=e.reason)
            raise RemoteUnavailable("M_UNKNOWN", "The media's server could not be reached") from None
        if not 200 <= answer.code < 400:
            raise RemoteUnavailable("M_UNKNOWN", f"The media's server answered {answer.code}")
        return answer

    async def _fetch_location(self, url: str, part: MediaPart | None) -> FetchedMedia:
        """The media at the URL a server pointed to (not kept: it may expire)."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise RemoteUnavailable("M_UNKNOWN", "The media's server pointed to an unusable URL")
        try:
            answer = await self._http.request("GET", url, max_bytes=self._max_bytes)
        except OutboundTooLarge:
            raise _too_large(self._max_bytes) from None
        except OutboundError as e:
            log.info("media at {url}: {why}", url=url, why=e.reason)
            raise RemoteUnavailable("M_UNKNOWN", "The media could not be fetched from where its server "
                                                 "pointed") from None
        if answer.code != 200:
            raise RemoteUnavailable("M_UNKNOWN", f"Where the media's server pointed answered {answer.code}")
        fetched = self._answered(answer)
        if part is None:
            return fetched
        # The URL SHOULD describe the media; the part may have.
        return FetchedMedia(fetched.data, fetched.content_type or part.content_type,
                            fetched.filename or part.filename)

    def _answered(self, answer: OutboundResponse) -> FetchedMedia:
        """The media that is a whole response's body."""
        return self._fetched(answer.body, answer.header("content-type"),
                             disposition_filename(answer.header("content-disposition")))

    def _fetched(self, data: bytes, content_type: str | None, filename: str | None) -> FetchedMedia:
        if len(data) > self._max_bytes:
            raise _too_large(self._max_bytes)
        return FetchedMedia(data, content_type, filename)

    async def _in_thread(self, fn: Callable[..., T], *args: object) -> T:
        return await deferToThreadPool(self._reactor, self._pool, fn, *args)


def _remote_error(e: RemoteMatrixError) -> MatrixError:
    """What a client is told of the error the media's server answered."""
    if e.code == 404:
        return not_found("Media not found")
    if e.code == 504 and e.errcode == "M_NOT_YET_UPLOADED":
        return NotYetAvailable("M_NOT_YET_UPLOADED", "Content has not yet been uploaded")
    if e.errcode == "M_TOO_LARGE":
        return RemoteUnavailable("M_TOO_LARGE", "The media's server says it is too large")
    return RemoteUnavailable("M_UNKNOWN", f"The media's server answered {e.code}")


def _too_large(limit: int) -> RemoteUnavailable:
    return RemoteUnavailable("M_TOO_LARGE", f"The media is larger than {limit} bytes")
