"""
Request parsing and JSON responses: the only code that reads bodies and
query strings, so every malformed input gets the same clear 400.
"""
from __future__ import annotations

import json
import re
from typing import Any, NoReturn, TypeVar, overload

import orjson
from twisted.web.server import Request

from ruma_tx.matrix.errors import bad_json, invalid_param, missing_param, not_json
from ruma_tx.matrix.sync import StoredJson, stored_fragment
from ruma_tx.matrix.types import JsonDict

T = TypeVar("T")
D = TypeVar("D")


def respond(request: Request, code: int, body: Any) -> bytes:
    """Set the status and JSON content type; return the encoded body."""
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", b"application/json")
    try:
        # orjson writes compact UTF-8 JSON, ~8 times faster than json for a big /sync.
        return orjson.dumps(body, default=stored_fragment)
    except orjson.JSONEncodeError:
        # What orjson refuses and json writes: integers past 64 bits that a
        # client stored in its account data, say.
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"),
                          default=_stored_json).encode("utf-8")


def _stored_json(value: object) -> object:
    """For json: an event's stored JSON, parsed back (the rare response orjson refuses)."""
    if isinstance(value, StoredJson):
        return json.loads(value.json)
    raise TypeError(f"{type(value).__name__} is not JSON")


def read_json_object(request: Request, allow_empty: bool = False) -> JsonDict:
    """
    Parse the request body as a JSON object.

    @param allow_empty: read an empty body as C{{}} (clients send none to
        join or leave; Synapse accepts that).
    @raise BadRequest: M_NOT_JSON if it is not JSON, M_BAD_JSON if it is
        JSON but not an object.
    """
    raw = request.content.read() if request.content is not None else b""
    if allow_empty and not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise not_json("Content not JSON.") from None
    if not isinstance(body, dict):
        # Well-formed JSON of the wrong shape is M_BAD_JSON; M_NOT_JSON is
        # for bytes that are not JSON at all (spec: "Common error codes").
        raise bad_json("The request body must be a JSON object.")
    return body


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


_MISSING = object()

#: A query-string integer: optional minus sign, at most 15 digits.
_INTEGER = re.compile(r"-?[0-9]{1,15}")


@overload
def get_field(body: JsonDict, name: str, kind: type[T]) -> T: ...
@overload
def get_field(body: JsonDict, name: str, kind: type[T], default: D) -> T | D: ...
@overload
def get_field(body: JsonDict, name: str, kind: tuple[type, ...], default: object = ...) -> Any: ...


def get_field(body: JsonDict, name: str, kind: type | tuple[type, ...], default: object = _MISSING) -> Any:
    """
    Return C{body[name]} checked to be of type C{kind} (a type or tuple).

    @raise BadRequest: M_MISSING_PARAM when absent without a default,
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


@overload
def query_arg(request: Request, name: str) -> str | None: ...
@overload
def query_arg(request: Request, name: str, default: str) -> str: ...


def query_arg(request: Request, name: str, default: str | None = None) -> str | None:
    """Return one query-string argument, decoded as UTF-8."""
    values = request.args.get(name.encode("ascii"))
    if not values:
        return default
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_param(f"Query parameter {name!r} is not UTF-8") from None


def query_int(request: Request, name: str) -> int | None:
    """
    One query-string argument as an integer, or C{None} when absent.

    @raise BadRequest: M_INVALID_PARAM when it is not a (decimal) integer.
    """
    value = query_arg(request, name)
    if value is None:
        return None
    if _INTEGER.fullmatch(value) is None:
        raise invalid_param(f"Query parameter {name!r} must be an integer")
    return int(value)


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    value = query_arg(request, name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise invalid_param(f"Query parameter {name!r} must be true or false")
    return value == "true"


def federation_timeout_ms(body: JsonDict) -> int | None:
    """
    The C{timeout} of C{/keys/query} and C{/keys/claim}: how long to wait
    for other servers, in milliseconds (C{None}: the default; a negative
    one waits for none).

    @raise MatrixError: 400 M_BAD_JSON when it is not an integer.
    """
    timeout = get_field(body, "timeout", int, None)
    return None if timeout is None else max(0, timeout)
