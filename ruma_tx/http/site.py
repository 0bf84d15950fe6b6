"""
The HTTP surface: the request and site classes, and the root resource that
sets CORS headers and refuses over-large bodies before routing.
"""
from __future__ import annotations

import itertools
from io import BytesIO
from typing import Any, cast

from twisted.internet.interfaces import IPushProducer
from twisted.logger import LogLevel
from twisted.web import http, server
from twisted.web.resource import IResource, Resource

from ruma_tx.http.parsing import respond
from ruma_tx.http.uploads import UploadBodies, UploadSpool
from ruma_tx.logs import logger
from ruma_tx.services.metrics import UNROUTED, Metrics

log = logger(__name__)

CORS_HEADERS = {
    b"Access-Control-Allow-Origin": b"*",
    b"Access-Control-Allow-Methods": b"GET, HEAD, POST, PUT, DELETE, OPTIONS",
    b"Access-Control-Allow-Headers": b"X-Requested-With, Content-Type, Authorization, Date",
    b"Access-Control-Expose-Headers": b"Retry-After, X-Request-Id",
}

_request_numbers = itertools.count(1)


class MatrixRequest(server.Request):
    """
    A request that refuses to buffer a body larger than the site's limit and
    carries a short id that also appears in the log.
    """

    body_too_large = False
    #: The route template that served it (set by the router), for metrics.
    route: str | None = None
    #: Who made it (set by the router once the token is verified), for the log.
    user_id: str | None = None
    #: When it was taken in (by the site's reactor), for metrics.
    started: float = 0.0
    #: The body of a media upload, spooled to disk (see L{ruma_tx.http.uploads}).
    upload: UploadSpool | None = None
    _body_received = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_id = f"{next(_request_numbers):x}"
        self._body_size = 0

    def _site(self) -> MatrixSite:
        """The site this request came to (before L{process} sets C{self.site})."""
        site: MatrixSite = self.channel.site  # type: ignore[attr-defined]  # set by Site.buildProtocol
        return site

    def gotLength(self, length: int | None) -> None:
        uploads = self._site().uploads
        # The request line is known to the channel only until the body is
        # in (twisted hands it to the request after the body).
        method, uri = getattr(self.channel, "_command", b""), getattr(self.channel, "_path", b"")
        if uploads is not None and uploads.accepts(method, uri):
            self._spool_upload(uploads, length)
            return
        limit = self._site().max_body_bytes
        if length is not None and length > limit:
            self.body_too_large = True
            length = 0  # do not allocate a buffer for it
        super().gotLength(length)

    def _spool_upload(self, uploads: UploadBodies, length: int | None) -> None:
        """Receive this body into an upload spool, up to the upload size limit."""
        self.content = BytesIO()  # stays empty: the body goes to the spool
        if length is not None and length > uploads.max_bytes:
            self._refuse_upload()
            return
        transport = cast(IPushProducer, self.channel.transport)  # TCP and TLS transports are
        self.upload = uploads.open(pause=transport.pauseProducing, resume=transport.resumeProducing)
        self.notifyFinish().addBoth(self._upload_ended)

    def _upload_ended(self, result: object) -> None:
        """The request is over (answered, or its client gone): drop an unclaimed upload."""
        if self.upload is not None:
            self.upload.release_unclaimed()

    def _refuse_upload(self) -> None:
        """
        An upload over the size limit: store nothing, stop reading it, and
        answer 413 at once (the body is taken as ended), then close the
        connection, which still carries the rest of the body.
        """
        self.body_too_large = True
        self.channel.persistent = False
        self.setHeader(b"Connection", b"close")
        self._site().reactor.callLater(0, self._end_body)

    def _end_body(self) -> None:
        # Called outside the channel's body decoder, which must not be
        # running while the channel is told the body is complete.
        if not self._body_received and not self._disconnected:
            self.channel.allContentReceived()

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        self._body_received = True
        super().requestReceived(command, path, version)

    def handleContentChunk(self, data: bytes) -> None:
        if self.upload is not None:
            if not self.body_too_large and not self.upload.write(data):
                self._refuse_upload()
            return
        self._body_size += len(data)
        if self._body_size > self._site().max_body_bytes:
            self.body_too_large = True
        if not self.body_too_large:
            super().handleContentChunk(data)

    def process(self) -> None:
        self.started = self._site().reactor.seconds()
        in_flight = self._site().in_flight
        in_flight.add(self)
        self.notifyFinish().addBoth(lambda _: in_flight.discard(self))
        super().process()

    def client_ip(self) -> str:
        return getattr(self.getClientAddress(), "host", "unknown")


class MatrixSite(server.Site):
    """
    The site of a client listener: one log line per finished request at a
    configured level (twistd's access log is too costly to keep on), its
    metrics when given L{Metrics}, and a count of requests in flight so
    shutdown can wait for them.
    """

    requestFactory = MatrixRequest
    displayTracebacks = False
    noisy = False

    def __init__(self, resource: IResource, *, max_body_bytes: int,
                 request_log_level: LogLevel | None, uploads: UploadBodies | None = None,
                 metrics: Metrics | None = None) -> None:
        super().__init__(resource)
        self.max_body_bytes = max_body_bytes
        # The media upload paths, whose bodies are spooled to disk.
        self.uploads = uploads
        self._request_log_level = request_log_level
        self._metrics = metrics
        self.in_flight: set[MatrixRequest] = set()

    def log(self, request: http.Request) -> None:
        request = cast(MatrixRequest, request)  # the requestFactory's
        if self._metrics is not None:
            self._metrics.request_finished(request.route or UNROUTED, request.code,
                                           self.reactor.seconds() - request.started)
        if self._request_log_level is None:
            return
        # Only the path: the query string may hold an access token. The
        # fields are the structured record (JSON lines with ruma_tx.logs.json_observer).
        log.emit(
            self._request_log_level,
            "{request_id} {ip} {user_id} {method} {path} {code} {bytes} {duration_ms}ms",
            request_id=request.request_id,
            ip=request.client_ip(),
            user_id=request.user_id or "-",
            method=request.method.decode("ascii", "replace"),
            path=request.path.decode("ascii", "replace"),
            route=request.route,
            code=request.code,
            bytes=request.sentLength,
            duration_ms=round((self.reactor.seconds() - request.started) * 1000, 1),
        )


class MatrixRoot(Resource):
    """
    The root of a client listener: CORS headers on every response, OPTIONS
    answered for any path, over-large bodies refused before routing.
    """

    isLeaf = True

    def __init__(self, router: IResource) -> None:
        super().__init__()
        self._router = router

    def render(self, request: MatrixRequest) -> bytes:
        for name, value in CORS_HEADERS.items():
            request.setHeader(name, value)
        request.setHeader(b"X-Request-Id", request.request_id.encode("ascii"))
        if request.method == b"OPTIONS":
            return respond(request, 200, {})
        if request.body_too_large:
            return respond(
                request, 413, {"errcode": "M_TOO_LARGE", "error": "Request body too large"}
            )
        # Twisted has percent-decoded the path segments, so an encoded "/"
        # inside an id would split it: route on the path as sent, and let
        # the router decode each parameter once (as Synapse does).
        request.postpath = request.path.split(b"?", 1)[0][1:].split(b"/")
        return self._router.render(request)


