"""
The C{multipart/mixed} bodies of the federation media endpoints (spec:
Server-Server API, "Content Repository"): exactly two parts, a JSON
object of metadata (today always C{{}}), then the media's bytes, or a
C{Location} header saying where to get them.

Built in two pieces around the bytes, so a server can stream the file
between them; parsed from a body received whole (and bounded) by a small
parser: the standard library reads each part's headers, and the bytes
are found by searching for the delimiters, never scanned in Python.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser

from ruma_tx.matrix.types import JsonDict

#: The longest header block of a part that is parsed.
MAX_PART_HEADERS = 16 * 1024
#: The largest metadata part accepted.
MAX_METADATA = 64 * 1024


class InvalidMultipart(ValueError):
    """A body that is not the two-part C{multipart/mixed} the spec describes."""


@dataclass(frozen=True)
class MediaPart:
    """
    The media of a federation download, as the remote server answered.

    @ivar metadata: the first part's JSON object.
    @ivar data: the media's bytes; C{None} when C{location} is given.
    @ivar location: the URL to fetch the media from instead.
    @ivar content_type: the second part's C{Content-Type} header, if any.
    @ivar filename: the file name of its C{Content-Disposition}, if any.
    """

    metadata: JsonDict
    data: bytes | None
    location: str | None
    content_type: str | None
    filename: str | None


def multipart_content_type(boundary: str) -> str:
    """The C{Content-Type} of a response built with C{boundary}."""
    return f"multipart/mixed; boundary={boundary}"


def media_multipart_head(boundary: str, content_type: str, disposition: str) -> bytes:
    """
    Everything of a media response before the media's bytes: the empty
    metadata part, and the headers of the part that follows.

    @param content_type: as stored (checked, without line breaks).
    @param disposition: from L{ruma_tx.matrix.media.content_disposition}.
    """
    return (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n"
            f"--{boundary}\r\nContent-Type: {content_type}\r\nContent-Disposition: {disposition}\r\n\r\n"
            ).encode("utf-8")


def media_multipart_tail(boundary: str) -> bytes:
    """Everything of a media response after the media's bytes."""
    return f"\r\n--{boundary}--\r\n".encode("ascii")


def parse_media_multipart(content_type: str | None, body: bytes) -> MediaPart:
    """
    Read a federation media response.

    The media part ends at the last delimiter of the body (the closing
    one), so bytes that happen to look like a delimiter inside the media
    cannot cut it short. Lines may end with CRLF, as RFC 2046 says, or
    with a bare LF.

    @param content_type: the response's C{Content-Type} header.
    @raise InvalidMultipart: for anything else than two parts, the first
        a JSON object.
    """
    headers = _headers(f"Content-Type: {content_type or ''}".encode("latin-1", "replace"))
    boundary = headers.get_param("boundary")
    if headers.get_content_type() != "multipart/mixed" or not isinstance(boundary, str) or not boundary:
        raise InvalidMultipart(f"not multipart/mixed with a boundary: {content_type!r}")
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    first = 0 if body.startswith(delimiter) else body.find(b"\n" + delimiter) + 1
    if first == 0 and not body.startswith(delimiter):  # found nowhere (find gave -1)
        raise InvalidMultipart("no delimiter")
    metadata_start = _after_line(body, first + len(delimiter))
    metadata_end = body.find(b"\n" + delimiter, metadata_start)
    closing = body.rfind(b"\n" + delimiter)
    if metadata_end < 0 or closing <= metadata_end:
        raise InvalidMultipart("fewer than two parts")
    if not body.startswith(b"--", closing + 1 + len(delimiter)):
        raise InvalidMultipart("no closing delimiter")
    media_start = _after_line(body, metadata_end + 1 + len(delimiter))
    # The metadata part's Content-Type (application/json) is not checked: its JSON is.
    _, metadata = _part(body, metadata_start, metadata_end, MAX_METADATA)
    media_headers, data = _part(body, media_start, closing, None)
    try:
        parsed = json.loads(metadata)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidMultipart("the first part is not JSON") from None
    if not isinstance(parsed, dict):
        raise InvalidMultipart("the first part is not a JSON object")
    location = media_headers.get("Location")
    return MediaPart(
        metadata=parsed,
        data=None if location else data,
        location=str(location) if location else None,
        content_type=str(media_headers["Content-Type"]) if "Content-Type" in media_headers else None,
        filename=_filename(media_headers),
    )


def disposition_filename(disposition: str | None) -> str | None:
    """The file name of a C{Content-Disposition} header (RFC 6266/2231 forms), if any."""
    if not disposition:
        return None
    return _filename(_headers(f"Content-Disposition: {disposition}".encode("latin-1", "replace")))


def _filename(headers: Message) -> str | None:
    try:
        name = headers.get_filename()
    except (ValueError, LookupError):  # a malformed or unknown-charset encoded name
        return None
    return name or None


def _after_line(body: bytes, position: int) -> int:
    """Where the line that C{position} is on ends (after its LF): a delimiter line's transport padding."""
    end = body.find(b"\n", position)
    if end < 0:
        raise InvalidMultipart("a delimiter line does not end")
    return end + 1


def _part(body: bytes, start: int, end: int, max_body: int | None) -> tuple[Message, bytes]:
    """The headers and body of the part between C{start} and the LF of the next delimiter at C{end}."""
    if end > start and body[end - 1:end] == b"\r":
        end -= 1
    if body.startswith(b"\r\n", start) or body.startswith(b"\n", start):
        separator, blank = start, 2 if body.startswith(b"\r\n", start) else 1
    else:
        crlf, lf = body.find(b"\r\n\r\n", start, end), body.find(b"\n\n", start, end)
        candidates = [(i, n) for i, n in ((crlf, 4), (lf, 2)) if i >= 0]
        if not candidates:
            raise InvalidMultipart("a part has no blank line after its headers")
        separator, blank = min(candidates)
    if separator - start > MAX_PART_HEADERS:
        raise InvalidMultipart("a part's headers are too long")
    content_start = separator + blank
    if max_body is not None and end - content_start > max_body:
        raise InvalidMultipart("the metadata part is too large")
    return _headers(body[start:separator]), body[content_start:end]


def _headers(block: bytes) -> Message:
    return BytesHeaderParser().parsebytes(block)
