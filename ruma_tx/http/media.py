"""
The content repository's endpoints (spec: "Content repository"): uploads
under C{/_matrix/media}, and downloads, thumbnails and the configuration
under C{/_matrix/client/v1/media}, where they need an access token.

The deprecated unauthenticated C{/_matrix/media/v3/download} and
C{/thumbnail} serve nothing by default (404 M_NOT_FOUND): the spec asks
servers to "freeze" them, and Synapse's default (C{enable_authenticated_media})
serves no media uploaded since there. C{[media] legacy_unauthenticated}
serves every media there again.

Downloads stream from the byte store in chunks read off the reactor
thread, at the pace the client reads (the transport pauses us), and honour
one C{Range}; every media response carries the sandboxing headers.
"""
from __future__ import annotations

import re
from typing import cast

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer, ITCPTransport
from zope.interface import implementer

from ruma_tx.http.parsing import query_arg, query_bool
from ruma_tx.http.routing import CLIENT_V1, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.http.uploads import UploadSpool
from ruma_tx.logs import logger
from ruma_tx.matrix.errors import BadRequest, RangeNotSatisfiable, invalid_param, not_found
from ruma_tx.matrix.media import (
    OCTET_STREAM,
    content_disposition,
    parse_byte_range,
    parse_thumbnail_request,
)
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.media import MediaRepository
from ruma_tx.services.ports.media import MediaReader

log = logger(__name__)

#: Uploads and the legacy endpoints (r0: older clients).
MEDIA_PREFIXES = ("/_matrix/media/v3", "/_matrix/media/r0")
CREATE_PREFIXES = ("/_matrix/media/v1",)
_UPLOAD_PATH = re.compile(rb"/_matrix/media/(?:v3|r0)/upload(/[^/]+/[^/]+)?")

#: The spec's recommended policy (plus media-src, as Synapse sends), and the
#: headers that keep a browser from sniffing or embedding media elsewhere.
SECURITY_HEADERS = {
    b"Content-Security-Policy": (b"sandbox; default-src 'none'; script-src 'none'; plugin-types "
                                 b"application/pdf; style-src 'unsafe-inline'; media-src 'self'; "
                                 b"object-src 'self';"),
    b"X-Content-Type-Options": b"nosniff",
    b"Cross-Origin-Resource-Policy": b"cross-origin",
}
#: Bytes read from the store at a time.
CHUNK = 256 * 1024
DEFAULT_TIMEOUT_MS = 20_000
THUMBNAIL_NAMES = {"image/jpeg": "thumbnail.jpg", "image/png": "thumbnail.png", "image/webp": "thumbnail.webp"}


def is_upload_request(method: bytes, path: bytes) -> bool:
    """Whether a request's body is a media upload (for the site, before the body arrives)."""
    match = _UPLOAD_PATH.fullmatch(path)
    if match is None:
        return False
    return method == (b"PUT" if match.group(1) else b"POST")


class MediaApi:
    """
    @param media: the L{ruma_tx.services.media.MediaRepository}.
    @param legacy_unauthenticated: whether the deprecated unauthenticated
        download and thumbnail endpoints serve media.
    """

    def __init__(self, media: MediaRepository, *, legacy_unauthenticated: bool) -> None:
        self._media = media
        self._legacy = legacy_unauthenticated

    # Guests may not upload (as in Synapse); they may read media. Nor may
    # suspended accounts: media is only uploaded to be shared (Synapse's
    # documented list leaves uploads out; the spec leaves it to servers).
    @endpoint("POST", "/upload", prefixes=MEDIA_PREFIXES, suspended=False)
    async def upload(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        spool = _spool(request)
        upload = await spool.claim()
        try:
            uri = await self._media.upload(requester.user_id, upload, _content_type(request),
                                           query_arg(request, "filename"))
        finally:
            spool.release()
        return {"content_uri": uri}

    @endpoint("PUT", "/upload/<server_name>/<media_id>", prefixes=MEDIA_PREFIXES, suspended=False)
    async def upload_to(self, request: MatrixRequest, requester: Requester, server_name: str,
                        media_id: str) -> JsonDict:
        spool = _spool(request)
        upload = await spool.claim()
        try:
            await self._media.upload_to(requester.user_id, server_name, media_id, upload,
                                        _content_type(request), query_arg(request, "filename"))
        finally:
            spool.release()
        return {}

    @endpoint("POST", "/create", prefixes=CREATE_PREFIXES, suspended=False)
    async def create(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        uri, expires_at = await self._media.create(requester.user_id)
        return {"content_uri": uri, "unused_expires_at": expires_at}

    @endpoint("GET", "/media/config", prefixes=CLIENT_V1)
    @endpoint("GET", "/config", prefixes=MEDIA_PREFIXES)
    async def config(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return {"m.upload.size": self._media.limits.max_upload_size}

    @endpoint("GET", "/media/download/<server_name>/<media_id>", prefixes=CLIENT_V1, guest=True)
    @endpoint("GET", "/media/download/<server_name>/<media_id>/<file_name>", prefixes=CLIENT_V1, guest=True)
    async def download(self, request: MatrixRequest, requester: Requester, server_name: str, media_id: str,
                       file_name: str | None = None) -> bytes:
        media = await self._media.get_content(server_name, media_id, download_timeout_ms(request))
        assert media.sha256 is not None and media.length is not None
        content_type = media.content_type or OCTET_STREAM
        _media_headers(request, content_type, file_name or media.upload_name)
        return await self._send(request, media.sha256, media.length)

    @endpoint("GET", "/download/<server_name>/<media_id>", prefixes=MEDIA_PREFIXES, auth="none")
    @endpoint("GET", "/download/<server_name>/<media_id>/<file_name>", prefixes=MEDIA_PREFIXES, auth="none")
    async def legacy_download(self, request: MatrixRequest, requester: None, server_name: str,
                              media_id: str, file_name: str | None = None) -> bytes:
        self._check_legacy(request, server_name)
        return await self.download(request, requester, server_name, media_id, file_name)  # type: ignore[arg-type]

    @endpoint("GET", "/media/thumbnail/<server_name>/<media_id>", prefixes=CLIENT_V1, guest=True)
    async def thumbnail(self, request: MatrixRequest, requester: Requester, server_name: str,
                        media_id: str) -> bytes:
        width, height, method = parse_thumbnail_request(
            query_arg(request, "width"), query_arg(request, "height"), query_arg(request, "method"))
        answer = await self._media.thumbnail(server_name, media_id, width, height, method,
                                             query_bool(request, "animated"), download_timeout_ms(request))
        _media_headers(request, answer.content_type, THUMBNAIL_NAMES.get(answer.content_type))
        if answer.data is None:
            return await self._send(request, answer.sha256, answer.length)
        request.setHeader(b"Content-Length", str(len(answer.data)).encode("ascii"))
        return answer.data

    @endpoint("GET", "/thumbnail/<server_name>/<media_id>", prefixes=MEDIA_PREFIXES, auth="none")
    async def legacy_thumbnail(self, request: MatrixRequest, requester: None, server_name: str,
                               media_id: str) -> bytes:
        self._check_legacy(request, server_name)
        return await self.thumbnail(request, requester, server_name, media_id)  # type: ignore[arg-type]

    def _check_legacy(self, request: MatrixRequest, server_name: str) -> None:
        if not self._legacy:
            raise not_found("Not found: media is served by the authenticated /_matrix/client/v1/media "
                            "endpoints")
        # A server falling back to these endpoints asks us not to fetch
        # from others (no loops between servers).
        if not query_bool(request, "allow_remote", True) and not self._media.is_local(server_name):
            raise not_found("Remote media is not fetched for allow_remote=false")

    async def _send(self, request: MatrixRequest, sha256: str, length: int) -> bytes:
        """Stream stored content (or its one requested range) as the response body."""
        request.setHeader(b"Accept-Ranges", b"bytes")
        try:
            byte_range = parse_byte_range(_header(request, b"range"), length)
        except RangeNotSatisfiable:
            request.setHeader(b"Content-Range", f"bytes */{length}".encode("ascii"))
            raise
        first, last = byte_range if byte_range is not None else (0, length - 1)
        if byte_range is not None:
            request.setResponseCode(206)
            request.setHeader(b"Content-Range", f"bytes {first}-{last}/{length}".encode("ascii"))
        request.setHeader(b"Content-Length", str(last - first + 1).encode("ascii"))
        if length == 0:
            return b""
        reader = await self._media.open(sha256, first, last)
        try:
            await stream_media(request, reader, last - first + 1)
        finally:
            await reader.close()
        return b""


@implementer(IPushProducer)
class _Pacer:
    """Told by the transport when its buffer is full (pause) and drained (resume)."""

    def __init__(self) -> None:
        self._paused: defer.Deferred[None] | None = None

    def pauseProducing(self) -> None:  # noqa: N802
        if self._paused is None:
            self._paused = defer.Deferred()

    def resumeProducing(self) -> None:  # noqa: N802
        paused, self._paused = self._paused, None
        if paused is not None:
            paused.callback(None)

    def stopProducing(self) -> None:  # noqa: N802
        self.resumeProducing()  # the handler is cancelled as the connection goes

    def writable(self) -> defer.Deferred[None]:
        return self._paused if self._paused is not None else defer.succeed(None)


async def stream_media(request: MatrixRequest, reader: MediaReader, length: int) -> None:
    """
    Write C{length} bytes from C{reader}, reading the next chunk while the
    last one is sent, and never faster than the client reads.
    """
    pacer = _Pacer()
    request.registerProducer(pacer, True)
    remaining = length
    reading = defer.ensureDeferred(reader.read(min(CHUNK, remaining)))
    try:
        while remaining > 0:
            chunk = await reading
            if not chunk:
                raise OSError(f"the stored file ended {remaining} bytes early")
            remaining -= len(chunk)
            if remaining > 0:
                reading = defer.ensureDeferred(reader.read(min(CHUNK, remaining)))
            request.write(chunk)
            await pacer.writable()
    except defer.CancelledError:
        raise
    except Exception:
        # The status and headers are sent: the client can only be told by
        # the connection breaking before the announced length.
        log.failure("{request_id}: reading a media file failed", request_id=request.request_id)
        transport = request.channel.transport if request.channel is not None else None
        if transport is not None:
            cast(ITCPTransport, transport).abortConnection()
    finally:
        request.unregisterProducer()
        if not reading.called:  # a read ahead still running: let it end before the file closes
            reading.addErrback(lambda _: b"")
            await reading


def _media_headers(request: MatrixRequest, content_type: str, filename: str | None) -> None:
    request.setHeader(b"Content-Type", content_type.encode("utf-8"))
    request.setHeader(b"Content-Disposition", content_disposition(content_type, filename).encode("ascii"))
    for name, value in SECURITY_HEADERS.items():
        request.setHeader(name, value)


def _spool(request: MatrixRequest) -> UploadSpool:
    if request.upload is None:  # the site spools every upload path's body
        raise BadRequest("M_UNKNOWN", "No upload body")
    return request.upload


def _content_type(request: MatrixRequest) -> str | None:
    return _header(request, b"content-type")


def _header(request: MatrixRequest, name: bytes) -> str | None:
    value = request.getHeader(name)
    return value.decode("latin-1") if value is not None else None


def download_timeout_ms(request: MatrixRequest) -> int:
    text = query_arg(request, "timeout_ms")
    if text is None:
        return DEFAULT_TIMEOUT_MS
    if not text.isdigit():
        raise invalid_param("timeout_ms must be a non-negative integer")
    return int(text)
