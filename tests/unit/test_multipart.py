"""
The multipart/mixed bodies of the federation media endpoints
(L{ruma_tx.matrix.multipart}): what this server sends reads back, and the
forms other servers send are read, or refused with L{InvalidMultipart}.
"""
from __future__ import annotations

import pytest

from ruma_tx.matrix.multipart import (
    MAX_METADATA,
    InvalidMultipart,
    disposition_filename,
    media_multipart_head,
    media_multipart_tail,
    multipart_content_type,
    parse_media_multipart,
)

BOUNDARY = "6e0d4a9c1b2f"


def built(data: bytes, content_type: str = "image/png",
          disposition: str = 'inline; filename="cat.png"') -> tuple[str, bytes]:
    head = media_multipart_head(BOUNDARY, content_type, disposition)
    return multipart_content_type(BOUNDARY), head + data + media_multipart_tail(BOUNDARY)


def test_built_body_reads_back():
    """The media, its type and its file name come back from what this server sends."""
    content_type, body = built(b"\x89PNG bytes")
    part = parse_media_multipart(content_type, body)
    assert (part.metadata, part.data, part.location) == ({}, b"\x89PNG bytes", None)
    assert (part.content_type, part.filename) == ("image/png", "cat.png")


def test_built_body_is_what_the_spec_describes():
    """Two parts, CRLF lines: the JSON metadata first, then the media with its headers."""
    _, body = built(b"abc")
    assert body == (b"--6e0d4a9c1b2f\r\nContent-Type: application/json\r\n\r\n{}\r\n"
                    b"--6e0d4a9c1b2f\r\nContent-Type: image/png\r\n"
                    b"Content-Disposition: inline; filename=\"cat.png\"\r\n\r\nabc\r\n--6e0d4a9c1b2f--\r\n")


def test_media_that_contains_a_delimiter_is_not_cut_short():
    """Bytes that look like the boundary inside the media stay part of it."""
    data = b"before\r\n--" + BOUNDARY.encode() + b"\r\nafter"
    content_type, body = built(data)
    assert parse_media_multipart(content_type, body).data == data


def test_empty_media():
    """A zero-byte file is read as empty bytes."""
    content_type, body = built(b"")
    assert parse_media_multipart(content_type, body).data == b""


def test_location_part():
    """A second part with a Location header gives the URL and no bytes."""
    body = (b"--b\r\nContent-Type: application/json\r\n\r\n{\"x\": 1}\r\n"
            b"--b\r\nLocation: https://cdn.example.org/abc?sig=1\r\n\r\n\r\n--b--\r\n")
    part = parse_media_multipart('multipart/mixed; boundary="b"', body)
    assert (part.metadata, part.data, part.location) == ({"x": 1}, None, "https://cdn.example.org/abc?sig=1")


def test_lenient_forms():
    """A preamble, bare LF line ends, padding after a delimiter and an epilogue are accepted."""
    body = (b"preamble\n--b  \nContent-Type: application/json\n\n{}\n"
            b"--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename*=utf-8''na%C3%AFve.txt\n\n"
            b"hello\n--b--\nepilogue")
    part = parse_media_multipart("Multipart/Mixed; boundary=b", body)
    assert (part.data, part.content_type, part.filename) == (b"hello", "text/plain", "na\u00efve.txt")


def test_part_without_headers():
    """A media part with no headers at all has no type and no name."""
    body = b"--b\r\n\r\n{}\r\n--b\r\n\r\nraw\r\n--b--\r\n"
    part = parse_media_multipart("multipart/mixed; boundary=b", body)
    assert (part.data, part.content_type, part.filename) == (b"raw", None, None)


@pytest.mark.parametrize("content_type,body", [
    (None, b"--b\r\n\r\n{}\r\n--b\r\n\r\nx\r\n--b--\r\n"),
    ("multipart/mixed", b"--b\r\n\r\n{}\r\n--b\r\n\r\nx\r\n--b--\r\n"),
    ("application/json", b"{}"),
    ("multipart/mixed; boundary=b", b"no delimiter at all"),
    ("multipart/mixed; boundary=b", b"--b\r\n\r\n{}\r\n--b--\r\n"),
    ("multipart/mixed; boundary=b", b"--b\r\n\r\n{}\r\n--b\r\n\r\nx\r\n--b\r\n"),
    ("multipart/mixed; boundary=b", b"--b\r\n\r\n[]\r\n--b\r\n\r\nx\r\n--b--\r\n"),
    ("multipart/mixed; boundary=b", b"--b\r\n\r\nnot json\r\n--b\r\n\r\nx\r\n--b--\r\n"),
    ("multipart/mixed; boundary=b", b"--b\r\nContent-Type: application/json{}\r\n--b\r\n\r\nx\r\n--b--\r\n"),
    ("multipart/mixed; boundary=b",
     b"--b\r\n\r\n{\"a\": \"" + b"x" * MAX_METADATA + b"\"}\r\n--b\r\n\r\nx\r\n--b--\r\n"),
    ("multipart/mixed; boundary=b", b"--b\r\nX: " + b"y" * 20_000 + b"\r\n\r\n{}\r\n--b\r\n\r\nx\r\n--b--\r\n"),
])
def test_refused(content_type, body):
    """No boundary, fewer than two parts, no closing delimiter, metadata that is not a small JSON
    object, or a part with no end to its (bounded) headers is refused."""
    with pytest.raises(InvalidMultipart):
        parse_media_multipart(content_type, body)


@pytest.mark.parametrize("header,name", [
    ('attachment; filename="report.pdf"', "report.pdf"),
    ("inline; filename*=utf-8''%E2%9C%93.png", "\u2713.png"),
    ("inline", None),
    (None, None),
    ("", None),
])
def test_disposition_filename(header, name):
    """The file name of a Content-Disposition, in its plain or RFC 5987 form."""
    assert disposition_filename(header) == name
