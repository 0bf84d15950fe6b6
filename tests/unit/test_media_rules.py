"""The content repository's pure rules: content types, dispositions, ranges, thumbnail sizes."""
import pytest

from ruma_tx.matrix.errors import BadRequest, RangeNotSatisfiable
from ruma_tx.matrix.media import (
    DEFAULT_THUMBNAIL_SIZES,
    ThumbnailSize,
    check_upload_name,
    checked_content_type,
    choose_thumbnail_size,
    content_disposition,
    is_valid_media_id,
    normalize_content_type,
    parse_byte_range,
    parse_thumbnail_request,
    thumbnail_dimensions,
)


def test_media_ids_are_limited_to_the_spec_alphabet():
    """Only A-Z, a-z, 0-9, _ and - make a media id: nothing that could walk a path."""
    assert is_valid_media_id("AbC_09-xyz")
    for bad in ("", "../etc", "a/b", "a.b", "é", "a" * 256, "%2e%2e"):
        assert not is_valid_media_id(bad), bad


def test_declared_content_types_are_normalised():
    """Types are lower-cased, parameters dropped but a text type's charset, and junk becomes octet-stream."""
    assert normalize_content_type(None) == "application/octet-stream"
    assert normalize_content_type("") == "application/octet-stream"
    assert normalize_content_type("IMAGE/PNG") == "image/png"
    assert normalize_content_type("image/jpg") == "image/jpeg"
    assert normalize_content_type("text/plain; charset=UTF-8; x=y") == "text/plain; charset=utf-8"
    assert normalize_content_type("application/json; charset=utf-8") == "application/json"
    assert normalize_content_type("not a type") == "application/octet-stream"
    assert normalize_content_type("text/html\r\nX-Injected: 1") == "application/octet-stream"


@pytest.mark.parametrize("declared, sniffed, served", [
    ("image/png", ["image/png"], "image/png"),
    ("image/apng", ["image/png"], "image/apng"),
    ("image/jpeg", [], "application/octet-stream"),            # encrypted bytes claimed as an image
    ("image/gif", ["image/png"], "application/octet-stream"),  # the bytes say otherwise
    ("text/html", [], "application/octet-stream"),
    ("image/svg+xml", ["image/svg+xml"], "application/octet-stream"),
    ("application/rss+xml", [], "application/octet-stream"),
    ("application/javascript", [], "application/octet-stream"),
    ("text/plain", ["text/html"], "application/octet-stream"),  # HTML in disguise
    ("text/plain; charset=utf-8", [], "text/plain; charset=utf-8"),
    ("application/pdf", ["application/pdf"], "application/pdf"),
    ("video/mp4", ["video/mp4"], "video/mp4"),
])
def test_the_served_type_is_never_active_nor_obviously_wrong(declared, sniffed, served):
    """Active types (declared or sniffed) and signed image types the bytes contradict become octet-stream."""
    assert checked_content_type(declared, sniffed) == served


def test_disposition_is_inline_only_for_the_spec_safe_list():
    """Inline for the spec's list (parameters ignored); attachment for everything else."""
    for inline in ("image/png", "image/jpeg", "text/plain; charset=utf-8", "video/mp4", "audio/ogg",
                   "application/json"):
        assert content_disposition(inline, None) == "inline", inline
    for attachment in ("image/svg+xml", "text/html", "application/pdf", "application/octet-stream",
                       "image/bmp", "application/zip"):
        assert content_disposition(attachment, None) == "attachment", attachment


def test_file_names_follow_rfc_6266():
    """Printable ASCII names are quoted strings (escaped); others are UTF-8 percent-encoded in filename*."""
    assert content_disposition("image/png", "cat.png") == 'inline; filename="cat.png"'
    assert content_disposition("text/plain", 'a "b" \\c.txt') == 'inline; filename="a \\"b\\" \\\\c.txt"'
    assert content_disposition("application/pdf", "naïve.pdf") == (
        "attachment; filename*=utf-8''na%C3%AFve.pdf")
    assert content_disposition("application/pdf", "a;b\tc") == "attachment; filename*=utf-8''a%3Bb%09c"


def test_upload_names_without_control_characters():
    """Empty names are none; control characters and very long names are 400 M_INVALID_PARAM."""
    assert check_upload_name(None) is None and check_upload_name("") is None
    assert check_upload_name("ok name.png") == "ok name.png"
    for bad in ("a\nb", "x" * 256, "tab\there"):
        with pytest.raises(BadRequest) as refused:
            check_upload_name(bad)
        assert refused.value.errcode == "M_INVALID_PARAM"


@pytest.mark.parametrize("header, expected", [
    (None, None),
    ("bytes=0-9", (0, 9)),
    ("bytes=10-", (10, 99)),
    ("bytes=-10", (90, 99)),
    ("bytes=-500", (0, 99)),
    ("bytes=50-5000", (50, 99)),
    ("bytes=0-0", (0, 0)),
    ("bytes=0-1,4-5", None),      # several ranges: the whole file
    ("bytes=9-3", None),          # invalid: ignored
    ("items=0-9", None),
    ("bytes=abc", None),
    ("bytes=-", None),
])
def test_one_range_is_served_and_the_rest_ignored(header, expected):
    """A single byte range is served (clamped to the file); anything else gets the whole file."""
    assert parse_byte_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0"])
def test_ranges_past_the_end_are_not_satisfiable(header):
    """A range starting at or after the end, or an empty suffix, is 416."""
    with pytest.raises(RangeNotSatisfiable) as refused:
        parse_byte_range(header, 100)
    assert refused.value.size == 100


def test_thumbnail_dimensions_never_upscale():
    """Scale fits the box keeping the aspect; crop fills it; neither makes an image larger."""
    assert thumbnail_dimensions(ThumbnailSize(320, 240, "scale"), 4000, 3000) == (320, 240)
    assert thumbnail_dimensions(ThumbnailSize(320, 240, "scale"), 3000, 4000) == (180, 240)
    assert thumbnail_dimensions(ThumbnailSize(96, 96, "crop"), 4000, 3000) == (96, 96)
    assert thumbnail_dimensions(ThumbnailSize(96, 96, "crop"), 20, 10) == (20, 10)
    assert thumbnail_dimensions(ThumbnailSize(800, 600, "scale"), 100, 50) == (100, 50)
    assert thumbnail_dimensions(ThumbnailSize(96, 96, "crop"), 200, 50) == (96, 50)


@pytest.mark.parametrize("width, height, method, source, chosen", [
    (32, 32, "crop", (4000, 3000), (32, 32, "crop")),
    (50, 50, "crop", (4000, 3000), (96, 96, "crop")),
    (100, 100, "crop", (4000, 3000), (320, 240, "scale")),   # no crop size is large enough
    (320, 240, "scale", (4000, 3000), (320, 240, "scale")),
    (300, 300, "scale", (4000, 3000), (320, 240, "scale")),  # fitted into 300x300: 300x225
    (500, 500, "scale", (4000, 3000), (640, 480, "scale")),
    (2000, 2000, "scale", (4000, 3000), (800, 600, "scale")),  # the largest there is
    (96, 96, "crop", (20, 10), (32, 32, "crop")),            # a tiny image: the smallest that keeps it whole
    (64, 64, "scale", (20, 10), (320, 240, "scale")),
])
def test_the_best_configured_size_answers(width, height, method, source, chosen):
    """The smallest configured size at least as large as asked (or as the image), same method first."""
    size = choose_thumbnail_size(DEFAULT_THUMBNAIL_SIZES, width, height, method, *source)
    assert (size.width, size.height, size.method) == chosen


def test_thumbnail_parameters_are_checked():
    """width and height are required positive integers; method is crop or scale (scale by default)."""
    assert parse_thumbnail_request("32", "24", None) == (32, 24, "scale")
    assert parse_thumbnail_request("32", "24", "crop") == (32, 24, "crop")
    for width, height, method, errcode in (
        (None, "1", None, "M_MISSING_PARAM"), ("1", None, None, "M_MISSING_PARAM"),
        ("0", "1", None, "M_INVALID_PARAM"), ("-1", "1", None, "M_INVALID_PARAM"),
        ("x", "1", None, "M_INVALID_PARAM"), ("1", "1", "stretch", "M_INVALID_PARAM"),
    ):
        with pytest.raises(BadRequest) as refused:
            parse_thumbnail_request(width, height, method)
        assert refused.value.errcode == errcode
