"""
The HTTP surface: the request and site classes, JSON in and out, and the
single place that turns exceptions into Matrix JSON errors.
"""
from __future__ import annotations

import itertools
import json
from typing import Any

from twisted.logger import LogLevel
from twisted.web import server
from twisted.web.resource import Resource

from ruma_tx.logs import logger
from ruma_tx.matrix.errors import MatrixError, bad_json, missing_param
from ruma_tx.storage.database import DatabaseUnavailable

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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.request_id = f"{next(_request_numbers):x}"
        self._body_size = 0

    def gotLength(self, length):
        limit = self.channel.site.max_body_bytes
        if length is not None and length > limit:
            self.body_too_large = True
            length = 0  # do not allocate a buffer for it
        super().gotLength(length)

    def handleContentChunk(self, data):
        self._body_size += len(data)
        if self._body_size > self.channel.site.max_body_bytes:
            self.body_too_large = True
        if not self.body_too_large:
            super().handleContentChunk(data)

    def process(self):
        in_flight = self.channel.site.in_flight
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

    def __init__(self, resource, *, max_body_bytes: int, request_log_level: LogLevel | None):
        super().__init__(resource)
        self.max_body_bytes = max_body_bytes
        self._request_log_level = request_log_level
        self.in_flight: set[MatrixRequest] = set()

    def log(self, request):
        if self._request_log_level is None:
            return
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


def respond(request, code: int, body: Any) -> bytes:
    """Set the status and JSON content type; return the encoded body."""
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", b"application/json")
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def render_error(request, failure) -> bytes:
    """
    Render any failure as Matrix JSON: a L{MatrixError} as itself, a lost
    database as 503, anything else as 500 with the request id, logged.
    """
    error = failure.value
    if isinstance(error, MatrixError):
        for name, value in error.headers.items():
            request.setHeader(name.encode("ascii"), value.encode("ascii"))
        return respond(request, error.code, error.to_json())
    if isinstance(error, DatabaseUnavailable):
        log.warn("{request_id}: database unavailable: {why}", request_id=request.request_id, why=error)
        return respond(
            request, 503, {"errcode": "M_UNKNOWN", "error": "The database is unavailable; try again shortly"}
        )
    log.failure(
        "{request_id}: unexpected error in {method} {path}",
        failure,
        request_id=request.request_id,
        method=request.method.decode("ascii", "replace"),
        path=request.path.decode("ascii", "replace"),
    )
    return respond(
        request,
        500,
        {"errcode": "M_UNKNOWN", "error": f"Internal server error (request {request.request_id})"},
    )


class MatrixRoot(Resource):
    """
    The root of a client listener: CORS headers on every response, OPTIONS
    answered for any path, over-large bodies refused before routing.
    """

    isLeaf = True

    def __init__(self, router: Resource):
        super().__init__()
        self._router = router

    def render(self, request):
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


def read_json_object(request, allow_empty: bool = False) -> dict:
    """
    Parse the request body as a JSON object.

    @param allow_empty: read an empty body as C{{}} (clients send none to
        join or leave; Synapse accepts that).
    @raise MatrixError: 400 M_NOT_JSON if it is not JSON or not an object.
    """
    raw = request.content.read() if request.content is not None else b""
    if allow_empty and not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MatrixError(400, "M_NOT_JSON", "Content not JSON.") from None
    if not isinstance(body, dict):
        raise MatrixError(400, "M_NOT_JSON", "Content must be a JSON object.")
    return body


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


_MISSING = object()


def get_field(body: dict, name: str, kind, default=_MISSING):
    """
    Return C{body[name]} checked to be of type C{kind} (a type or tuple).

    @raise MatrixError: M_MISSING_PARAM when absent without a default,
        M_BAD_JSON when of the wrong type.
    """
    if name not in body or (body[name] is None and default is not _MISSING):
        if default is _MISSING:
            raise missing_param(f"Missing parameter: {name}")
        return default
    value = body[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise bad_json(f"Parameter {name!r} has the wrong type")
    if not isinstance(value, kinds):
        raise bad_json(f"Parameter {name!r} has the wrong type")
    return value


def query_arg(request, name: str, default: str | None = None) -> str | None:
    """Return one query-string argument, decoded as UTF-8."""
    values = request.args.get(name.encode("ascii"))
    if not values:
        return default
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise MatrixError(400, "M_INVALID_PARAM", f"Query parameter {name!r} is not UTF-8") from None


def query_bool(request, name: str, default: bool = False) -> bool:
    value = query_arg(request, name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise MatrixError(400, "M_INVALID_PARAM", f"Query parameter {name!r} must be true or false")
    return value == "true"

