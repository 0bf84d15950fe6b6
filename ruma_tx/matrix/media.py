"""
The content repository's rules (spec: "Content repository"): media ids,
the content type a file is served as, its C{Content-Disposition}, byte
ranges, and which configured thumbnail size answers a request.

No I/O here: what the bytes look like (sniffed by a library) and the image's
size are given to these functions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Collection, Iterable
from urllib.parse import quote

from ruma_tx.matrix.errors import BadRequest, RangeNotSatisfiable, invalid_param
from ruma_tx.matrix.identifiers import is_valid_server_name

OCTET_STREAM = "application/octet-stream"

#: The spec's media-id alphabet (URL-safe base64), with a sane length cap.
_MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")

#: Types a file may be served C{inline} as (spec: "Serving inline content").
INLINE_TYPES = frozenset({
    "text/css", "text/plain", "text/csv", "application/json", "application/ld+json",
    "image/jpeg", "image/gif", "image/png", "image/apng", "image/webp", "image/avif",
    "video/mp4", "video/webm", "video/ogg", "video/quicktime",
    "audio/mp4", "audio/webm", "audio/aac", "audio/mpeg", "audio/ogg", "audio/wave", "audio/wav",
    "audio/x-wav", "audio/x-pn-wav", "audio/flac", "audio/x-flac",
})

#: Types a browser would run or render as a document (scripts, HTML, SVG and
#: other XML that may carry scripts). A file of such a type is stored and
#: served as application/octet-stream, so that even a browser that ignored
#: the sandboxing CSP and nosniff would only offer to save it.
ACTIVE_TYPES = frozenset({
    "text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml",
    "text/xsl", "application/xslt+xml", "text/javascript", "application/javascript",
    "application/x-javascript", "application/ecmascript", "text/ecmascript", "text/jscript",
    "application/x-shockwave-flash", "multipart/x-mixed-replace", "text/cache-manifest",
})

#: Image types that always start with a signature a sniffer recognises: a
#: file claiming one of them whose bytes say otherwise (an encrypted
#: attachment claimed as image/png, say) is "obviously wrong" (the spec's
#: words) and is served as application/octet-stream.
SIGNED_TYPES = frozenset({"image/png", "image/apng", "image/jpeg", "image/gif", "image/webp"})

#: The formats thumbnails are made from (the only ones ever decoded).
THUMBNAIL_SOURCE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})

_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_MIME = re.compile(rf"{_TOKEN}/{_TOKEN}")
_CHARSET = re.compile(r"""\s*charset\s*=\s*"?([A-Za-z0-9._:+-]{1,40})"?\s*""", re.IGNORECASE)
#: Same type, other names (what sniffers and clients call them).
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}

#: Characters of a file name that go unquoted in C{filename="..."}.
_PLAIN_FILENAME = re.compile(r"[\x20-\x7e]+")


def is_valid_media_id(media_id: str) -> bool:
    """Whether C{media_id} is made of the spec's characters (so it is safe in any path)."""
    return _MEDIA_ID.fullmatch(media_id) is not None


def mxc_uri(server_name: str, media_id: str) -> str:
    return f"mxc://{server_name}/{media_id}"


def parse_mxc_uri(uri: object) -> tuple[str, str] | None:
    """C{(server_name, media_id)} of a well-formed C{mxc://} URI; C{None} for anything else."""
    if not isinstance(uri, str) or not uri.startswith("mxc://"):
        return None
    server_name, _, media_id = uri[len("mxc://"):].partition("/")
    if not is_valid_server_name(server_name) or not is_valid_media_id(media_id):
        return None
    return server_name, media_id


#: Where an event's content refers to media (its file, its thumbnail; an
#: m.room.avatar's image is its C{url}): what Synapse counts as a room's
#: media. Members' avatars are left out, as Synapse does: they are their
#: owners' profile pictures, not what was posted in the room.
CONTENT_MEDIA_PATHS = (("url",), ("info", "thumbnail_url"))


def essence(content_type: str) -> str:
    """The C{type/subtype} of a content type, lower case, without parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def normalize_content_type(header: str | None) -> str:
    """
    The content type an upload declares, as stored: C{type/subtype} in lower
    case (the spec's default, application/octet-stream, when absent or not
    a media type), keeping only a C{charset} parameter of a C{text/} type.
    """
    if not header:
        return OCTET_STREAM
    main, _, parameters = header.partition(";")
    main = main.strip().lower()
    if not _MIME.fullmatch(main):
        return OCTET_STREAM
    main = _ALIASES.get(main, main)
    if main.startswith("text/"):
        for parameter in parameters.split(";"):
            charset = _CHARSET.fullmatch(parameter)
            if charset:
                return f"{main}; charset={charset.group(1).lower()}"
    return main


def is_active_type(content_type: str) -> bool:
    """Whether a browser could run or render this type as a document (see L{ACTIVE_TYPES})."""
    main = essence(content_type)
    return main in ACTIVE_TYPES or main.endswith("+xml")


def checked_content_type(declared: str, sniffed: Collection[str]) -> str:
    """
    The content type to store and serve a file as: the declared one, unless
    it is active, or the bytes are active, or it is a signed image type the
    bytes do not match; then application/octet-stream.

    @param declared: the upload's type, as L{normalize_content_type} made it.
    @param sniffed: the types a sniffer found in the file's first bytes
        (most likely first; empty when it recognised nothing).
    """
    found = {_ALIASES.get(essence(t), essence(t)) for t in sniffed}
    if is_active_type(declared) or any(is_active_type(t) for t in found):
        return OCTET_STREAM
    main = essence(declared)
    if main in SIGNED_TYPES:
        # An APNG is a PNG to a sniffer.
        expected = "image/png" if main == "image/apng" else main
        if expected not in found:
            return OCTET_STREAM
    return declared


def content_disposition(content_type: str, filename: str | None) -> str:
    """
    The C{Content-Disposition} to serve a file with: C{inline} only for the
    spec's safe types, C{attachment} otherwise, with its file name encoded
    as RFC 6266 says (a quoted string when it is printable ASCII, else
    C{filename*=utf-8''} and the percent-encoded UTF-8 bytes).
    """
    kind = "inline" if essence(content_type) in INLINE_TYPES else "attachment"
    if not filename:
        return kind
    if _PLAIN_FILENAME.fullmatch(filename):
        quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
        return f'{kind}; filename="{quoted}"'
    # RFC 5987 attr-chars stay as they are; everything else is %-encoded.
    encoded = quote(filename.encode("utf-8"), safe="!#$&+-.^_`|~")
    return f"{kind}; filename*=utf-8''{encoded}"


def check_upload_name(filename: str | None) -> str | None:
    """
    The file name to store for an upload: none for an empty one.

    @raise BadRequest: M_INVALID_PARAM for a name with control characters
        or longer than 255 characters.
    """
    if not filename:
        return None
    if len(filename) > 255 or any(ord(c) < 32 or ord(c) == 127 for c in filename):
        raise invalid_param("filename must be at most 255 characters, without control characters")
    return filename


def parse_byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """
    The one byte range to serve of a file of C{size} bytes, from a C{Range}
    header: C{(first, last)}, both included, or C{None} to serve the whole
    file.

    A header that is not C{bytes=...}, is malformed, or asks for several
    ranges is answered with the whole file (RFC 9110 lets a server ignore
    C{Range}; one part is all clients ask of media in practice).

    @raise RangeNotSatisfiable: when the range starts past the end.
    """
    if header is None:
        return None
    unit, _, ranges = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in ranges:
        return None
    first_text, dash, last_text = ranges.strip().partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not dash or not (first_text.isdigit() or first_text == "") or not (
            last_text.isdigit() or last_text == ""):
        return None
    if first_text == "":
        if last_text == "":
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # not a valid range-spec: ignored
    if first >= size:
        raise RangeNotSatisfiable(size)
    return first, min(int(last_text), size - 1) if last_text else size - 1


# --------------------------------------------------------------------------
# Thumbnails


@dataclass(frozen=True)
class ThumbnailSize:
    """
    One configured thumbnail size.

    @ivar method: C{"crop"} (exactly this size, cut to its aspect) or
        C{"scale"} (fitted inside this size, the image's aspect kept).
    """

    width: int
    height: int
    method: str


#: The sizes the spec suggests (and Synapse generates by default).
DEFAULT_THUMBNAIL_SIZES = (
    ThumbnailSize(32, 32, "crop"),
    ThumbnailSize(96, 96, "crop"),
    ThumbnailSize(320, 240, "scale"),
    ThumbnailSize(640, 480, "scale"),
    ThumbnailSize(800, 600, "scale"),
)

METHODS = ("crop", "scale")


def thumbnail_dimensions(size: ThumbnailSize, source_width: int, source_height: int) -> tuple[int, int]:
    """
    The dimensions of the thumbnail C{size} makes of an image, never larger
    than the image (the spec forbids upscaling).
    """
    if size.method == "crop":
        # Scaled to cover the box, then cut to it.
        factor = min(1.0, max(size.width / source_width, size.height / source_height))
        return (min(size.width, max(1, round(source_width * factor))),
                min(size.height, max(1, round(source_height * factor))))
    factor = min(1.0, size.width / source_width, size.height / source_height)
    return max(1, round(source_width * factor)), max(1, round(source_height * factor))


def choose_thumbnail_size(sizes: Iterable[ThumbnailSize], width: int, height: int, method: str,
                          source_width: int, source_height: int) -> ThumbnailSize:
    """
    The configured size that answers a request for a C{width} x C{height}
    thumbnail by C{method}: the smallest one at least as large as what was
    asked (or as the image allows), preferring the method asked for; when
    none is large enough, the largest (as Synapse does, the spec's "not
    smaller than requested" is met when the configuration allows).
    """
    wanted = thumbnail_dimensions(ThumbnailSize(width, height, method), source_width, source_height)
    options = [(size, thumbnail_dimensions(size, source_width, source_height)) for size in sizes]
    if not options:
        raise ValueError("no thumbnail sizes configured")

    def area(option: tuple[ThumbnailSize, tuple[int, int]]) -> int:
        return option[1][0] * option[1][1]

    covering = [o for o in options if o[1][0] >= wanted[0] and o[1][1] >= wanted[1]]
    same_method = [o for o in covering if o[0].method == method]
    if same_method or covering:
        return min(same_method or covering, key=area)[0]
    return max(options, key=lambda o: (area(o), o[0].method == method))[0]


def parse_thumbnail_request(width: str | None, height: str | None, method: str | None) -> tuple[int, int, str]:
    """
    @raise BadRequest: M_MISSING_PARAM without a width or height,
        M_INVALID_PARAM for one that is not a positive integer or an
        unknown method.
    """
    values = []
    for name, text in (("width", width), ("height", height)):
        if text is None:
            raise BadRequest("M_MISSING_PARAM", f"Missing query parameter: {name}")
        if not text.isdigit() or not 0 < int(text) <= 100_000:
            raise invalid_param(f"{name} must be a positive integer")
        values.append(int(text))
    method = method or "scale"
    if method not in METHODS:
        raise invalid_param("method must be crop or scale")
    return values[0], values[1], method
