"""
The one place where a domain error becomes an HTTP status code, and any
failure becomes a Matrix JSON error body.
"""
from __future__ import annotations

from typing import Iterable

from twisted.python.failure import Failure

from ruma_tx.http.parsing import respond
from ruma_tx.http.site import MatrixRequest
from ruma_tx.logs import logger
from ruma_tx.matrix.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    MatrixError,
    NotAllowed,
    NotFound,
    NotYetAvailable,
    RangeNotSatisfiable,
    RateLimited,
    RemoteUnavailable,
    TooLarge,
    Unauthorized,
    Unavailable,
)

log = logger(__name__)

#: The status of each kind of refusal (the first matching class wins).
STATUS_CODES: tuple[tuple[type[MatrixError], int], ...] = (
    (BadRequest, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (NotAllowed, 405),
    (Conflict, 409),
    (TooLarge, 413),
    (RangeNotSatisfiable, 416),
    (RateLimited, 429),
    (RemoteUnavailable, 502),
    (Unavailable, 503),
    (NotYetAvailable, 504),
)


def status_code(error: MatrixError) -> int:
    """The HTTP status of a domain error."""
    for kind, code in STATUS_CODES:
        if isinstance(error, kind):
            return code
    return 500


class Unrecognized(MatrixError):
    """
    No endpoint here: 404 for an unknown path, 405 for a known path and another method.

    @ivar allow: for a 405, the methods the path does serve, sent as the
        C{Allow} header (RFC 9110 section 15.5.6 requires it); OPTIONS is
        always among them, as the CORS preflight answers it on every path.
    """

    def __init__(self, code: int = 404, message: str = "Unrecognized request",
                 allow: Iterable[str] = ()) -> None:
        super().__init__("M_UNRECOGNIZED", message)
        self.code = code
        self.allow = sorted({*allow, "OPTIONS"}) if code == 405 else []


def render_error(request: MatrixRequest, failure: Failure) -> bytes:
    """
    Render any failure as Matrix JSON: a L{MatrixError} with its status
    (and C{Retry-After} when it says when to retry), anything else as a
    logged 500 with the request id.
    """
    error = failure.value
    if isinstance(error, Unrecognized):
        if error.allow:
            request.setHeader(b"Allow", ", ".join(error.allow).encode("ascii"))
        return respond(request, error.code, error.to_json())
    if isinstance(error, MatrixError):
        retry_after_ms = getattr(error, "retry_after_ms", None)
        if retry_after_ms is not None:
            request.setHeader(b"Retry-After", str((retry_after_ms + 999) // 1000).encode("ascii"))
        if isinstance(error, Unavailable):
            log.warn("{request_id}: unavailable: {why}", request_id=request.request_id, why=error)
        return respond(request, status_code(error), error.to_json())
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
