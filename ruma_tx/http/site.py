"""
The HTTP surface: the request and site classes, and the root resource that
sets CORS headers and refuses over-large bodies before routing.
"""
from __future__ import annotations

import itertools
from typing import Any, cast

from twisted.logger import LogLevel
from twisted.web import http, server
from twisted.web.resource import IResource, Resource

from ruma_tx.http.parsing import respond
from ruma_tx.logs import logger

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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_id = f"{next(_request_numbers):x}"
        self._body_size = 0

    def _site(self) -> MatrixSite:
        """The site this request came to (before L{process} sets C{self.site})."""
        site: MatrixSite = self.channel.site  # type: ignore[attr-defined]  # set by Site.buildProtocol
        return site

    def gotLength(self, length: int | None) -> None:
        limit = self._site().max_body_bytes
        if length is not None and length > limit:
            self.body_too_large = True
            length = 0  # do not allocate a buffer for it
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        self._body_size += len(data)
        if self._body_size > self._site().max_body_bytes:
            self.body_too_large = True
        if not self.body_too_large:
            super().handleContentChunk(data)

    def process(self) -> None:
        in_flight = self._site().in_flight
        in_flight.add(self)
        self.notifyFinish().addBoth(lambda _: in_flight.discard(self))
        super().process()

    def client_ip(self) -> str:
        return getattr(self.getClientAddress(), "host", "unknown")


class MatrixSite(server.Site):
    """
    The site of a client listener: one log line per finished request at a
    configured level (twistd's access log is too costly to keep on), and a
    count of requests in flight so shutdown can wait for them.
    """

    requestFactory = MatrixRequest
    displayTracebacks = False
    noisy = False

    def __init__(self, resource: IResource, *, max_body_bytes: int,
                 request_log_level: LogLevel | None) -> None:
        super().__init__(resource)
        self.max_body_bytes = max_body_bytes
        self._request_log_level = request_log_level
        self.in_flight: set[MatrixRequest] = set()

    def log(self, request: http.Request) -> None:
        if self._request_log_level is None:
            return
        request = cast(MatrixRequest, request)  # the requestFactory's
        # Only the path: the query string may hold an access token.
        log.emit(
            self._request_log_level,
            "{request_id} {ip} {method} {path} {code} {bytes}",
            request_id=request.request_id,
            ip=request.client_ip(),
            method=request.method.decode("ascii", "replace"),
            path=request.path.decode("ascii", "replace"),
            code=request.code,
            bytes=request.sentLength,
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


