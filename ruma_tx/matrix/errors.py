"""
The one error type of the client API, and its JSON rendering.

Every refusal is raised as a L{MatrixError}; the HTTP layer renders it as
C{{"errcode": ..., "error": ...}} with its status code. Nothing else catches it.
"""
from __future__ import annotations


class MatrixError(Exception):
    """
    A Matrix error response.

    @ivar code: the HTTP status code.
    @ivar errcode: the Matrix error code, e.g. C{M_FORBIDDEN}.
    @ivar message: a human-readable explanation.
    @ivar fields: extra members of the JSON body (e.g. C{soft_logout}).
    @ivar headers: extra HTTP response headers.
    """

    def __init__(self, code: int, errcode: str | None, message: str, headers=None, **fields):
        super().__init__(f"{code} {errcode}: {message}")
        self.code = code
        self.errcode = errcode
        self.message = message
        self.fields = fields
        self.headers = headers or {}

    def to_json(self) -> dict:
        body = {"errcode": self.errcode, "error": self.message} if self.errcode else {}
        body.update(self.fields)
        return body


def bad_json(message: str) -> MatrixError:
    return MatrixError(400, "M_BAD_JSON", message)


def missing_param(message: str) -> MatrixError:
    return MatrixError(400, "M_MISSING_PARAM", message)


def invalid_param(message: str) -> MatrixError:
    return MatrixError(400, "M_INVALID_PARAM", message)


def forbidden(message: str) -> MatrixError:
    return MatrixError(403, "M_FORBIDDEN", message)


def not_found(message: str) -> MatrixError:
    return MatrixError(404, "M_NOT_FOUND", message)


def unrecognized(code: int = 404, message: str = "Unrecognized request") -> MatrixError:
    return MatrixError(code, "M_UNRECOGNIZED", message)


def limit_exceeded(retry_after_s: float) -> MatrixError:
    """A 429 with both the JSON C{retry_after_ms} and a C{Retry-After} header."""
    retry_after_ms = max(1, int(retry_after_s * 1000 + 0.999))
    return MatrixError(
        429,
        "M_LIMIT_EXCEEDED",
        "Too many requests",
        headers={"Retry-After": str((retry_after_ms + 999) // 1000)},
        retry_after_ms=retry_after_ms,
    )


def database_unavailable() -> MatrixError:
    return MatrixError(503, "M_UNKNOWN", "The database is unavailable; try again shortly")
