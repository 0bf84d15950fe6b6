"""
The one domain error hierarchy: why the homeserver refuses a request, in
Matrix terms (an errcode such as C{M_FORBIDDEN} and a message), with no
HTTP in it.

Each subclass is a kind of refusal; C{ruma_tx.http.errors} is the only
place that turns a kind into a status code. Raise these from any layer;
catch them only to decide something (never to render them).
"""
from __future__ import annotations

from typing import Any


class MatrixError(Exception):
    """
    A refusal the client is told about.

    @ivar errcode: the Matrix error code, e.g. C{M_FORBIDDEN}, or C{None}
        for a body with no errcode (a user-interactive auth challenge).
    @ivar message: a human-readable explanation.
    @ivar fields: extra members of the error body (e.g. C{soft_logout}).
    """

    #: The errcode when none is given.
    default_errcode: str = "M_UNKNOWN"

    def __init__(self, errcode: str | None, message: str, **fields: Any) -> None:
        super().__init__(f"{errcode}: {message}")
        self.errcode = errcode
        self.message = message
        self.fields = fields

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"errcode": self.errcode, "error": self.message} if self.errcode else {}
        body.update(self.fields)
        return body


class BadRequest(MatrixError):
    """The request itself is wrong: malformed, missing or invalid input."""


class Unauthorized(MatrixError):
    """
    Who is asking is not established: no or a bad access token, or
    user-interactive authentication still has stages to complete.
    """


class Forbidden(MatrixError):
    """The requester is known and not allowed to do this."""


class NotFound(MatrixError):
    """What the request names does not exist (or is hidden from the requester)."""


class NotAllowed(MatrixError):
    """The resource exists but refuses this operation (e.g. server-managed account data)."""


class Conflict(MatrixError):
    """The request collides with what exists (an alias already taken)."""


class TooLarge(MatrixError):
    """The request or what it would create is over a size limit."""


class RateLimited(MatrixError):
    """
    Too many requests: try again after C{retry_after_ms}.

    @ivar retry_after_ms: when to try again, in milliseconds.
    """

    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_ms = max(1, int(retry_after_s * 1000 + 0.999))
        super().__init__("M_LIMIT_EXCEEDED", "Too many requests", retry_after_ms=self.retry_after_ms)


class Unavailable(MatrixError):
    """
    The server cannot answer right now (its database is unreachable): a
    retry after C{retry_after_ms} may succeed.
    """

    def __init__(self, message: str = "The database is unavailable; try again shortly",
                 retry_after_ms: int = 2000) -> None:
        self.retry_after_ms = retry_after_ms
        super().__init__("M_UNKNOWN", message, retry_after_ms=retry_after_ms)


class RemoteUnavailable(MatrixError):
    """
    Another host would have to answer (a homeserver, a page to preview),
    and gives no usable answer.
    """


class NotYetAvailable(MatrixError):
    """What the request names exists but has no content yet (media created, not yet uploaded)."""


class RangeNotSatisfiable(MatrixError):
    """
    A byte range that starts past the end of the content.

    @ivar size: the content's size in bytes (for C{Content-Range: bytes */size}).
    """

    def __init__(self, size: int) -> None:
        super().__init__("M_UNKNOWN", "The requested range is not satisfiable")
        self.size = size


def bad_json(message: str) -> BadRequest:
    return BadRequest("M_BAD_JSON", message)


def not_json(message: str) -> BadRequest:
    return BadRequest("M_NOT_JSON", message)


def missing_param(message: str) -> BadRequest:
    return BadRequest("M_MISSING_PARAM", message)


def invalid_param(message: str) -> BadRequest:
    return BadRequest("M_INVALID_PARAM", message)


def forbidden(message: str) -> Forbidden:
    return Forbidden("M_FORBIDDEN", message)


def not_found(message: str) -> NotFound:
    return NotFound("M_NOT_FOUND", message)


def unknown_token(message: str = "Unknown access token", soft_logout: bool = False) -> Unauthorized:
    fields = {"soft_logout": True} if soft_logout else {}
    return Unauthorized("M_UNKNOWN_TOKEN", message, **fields)


def missing_token(message: str = "Missing access token") -> Unauthorized:
    return Unauthorized("M_MISSING_TOKEN", message)
