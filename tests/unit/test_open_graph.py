"""
L{ruma_tx.matrix.open_graph} (a page's Open Graph data, with the fallbacks
Synapse uses, from bounded input in its declared encoding) and
L{ruma_tx.matrix.url_previews} (which URLs are fetched, which answers are
previewed).
"""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from ruma_tx.matrix.errors import BadRequest, Forbidden
from ruma_tx.matrix.open_graph import (
    DESCRIPTION_LENGTH,
    MAX_HTML_BYTES,
    MAX_TAGS,
    decode_html,
    html_encoding,
    page_open_graph,
    parse_open_graph,
)
from ruma_tx.matrix.url_previews import UrlPattern, check_preview_url, is_html, is_previewable_image

PAGE = "https://example.org/blog/post.html"


def og(html: str, url: str = PAGE) -> dict[str, str]:
    return parse_open_graph(html, url)


def test_open_graph_tags_are_read_and_the_image_made_absolute():
    """og: tags come out as they are, og:image resolved against the page's URL."""
    html = """<html><head>
      <meta property="og:title" content="Matrix Blog Post">
      <meta property="og:description" content="A really cool post">
      <meta property="og:image" content="/img/cover.png">
      <meta property="og:image:width" content="48">
      <meta property="og:site_name" content="Matrix.org">
      <title>Not this title</title></head><body><p>Nor this text</p></body></html>"""
    assert og(html) == {
        "og:title": "Matrix Blog Post", "og:description": "A really cool post",
        "og:image": "https://example.org/img/cover.png", "og:image:width": "48",
        "og:site_name": "Matrix.org",
    }


def test_the_first_of_repeated_tags_wins():
    """A page may list several og:image; the first is the main one (ogp.me)."""
    html = ('<meta property="og:image" content="https://a.example/1.png">'
            '<meta property="og:image" content="https://a.example/2.png">')
    assert og(html)["og:image"] == "https://a.example/1.png"


def test_without_open_graph_the_title_description_and_image_come_from_the_page():
    """<title>, <meta name=description> and the largest <img> stand in for the og: tags."""
    html = """<html><head><title>  A   page
      title </title><meta name="Description" content="What the page says it is"></head>
      <body><h1>Heading</h1><img src="spacer.gif" width="1" height="1">
      <img src="small.png" width="20" height="20"><img src="big.png" width="300" height="200"></body></html>"""
    assert og(html) == {"og:title": "A page title", "og:description": "What the page says it is",
                        "og:image": "https://example.org/blog/big.png"}


def test_twitter_cards_fill_in_before_the_page():
    """Twitter card tags are used where og: tags are missing, never over them."""
    html = """<meta name="twitter:title" content="Tweet title"><meta name="twitter:image" content="t.png">
      <meta property="og:description" content="OG description">
      <meta name="twitter:description" content="Tweet description"><title>Page</title>"""
    assert og(html) == {"og:title": "Tweet title", "og:description": "OG description",
                        "og:image": "https://example.org/blog/t.png"}


def test_more_fallbacks_heading_itemprop_first_image_and_icon():
    """No <title>: the first <h1>; itemprop=image before any <img>; any <img>; else the icon."""
    assert og("<body><h1>The <b>heading</b></h1><img src='a.png'></body>") == {
        "og:title": "The heading", "og:description": "The heading",
        "og:image": "https://example.org/blog/a.png"}
    assert og("<meta itemprop='image' content='/item.png'><img src='a.png'>")["og:image"] == (
        "https://example.org/item.png")
    assert og("<link rel='shortcut icon' href='/favicon.ico'>")["og:image"] == "https://example.org/favicon.ico"


def test_description_from_the_body_skips_scripts_navigation_and_is_cut_at_a_word():
    """The body text (not scripts, styles, navigation or footers) is summarised to the length limit."""
    html = ("<body><nav>Menu Home About</nav><script>var x = 'code';</script><style>p {}</style>"
            "<p>First paragraph.</p><p>Second   paragraph.</p><footer>Copyright</footer></body>")
    assert og(html)["og:description"] == "First paragraph.\n\nSecond paragraph."
    long = og("<p>" + "word " * 400 + "</p>")["og:description"]
    assert len(long) <= DESCRIPTION_LENGTH and long.endswith("word…")


def test_base_href_and_unsafe_image_urls():
    """<base href> moves relative URLs; a data: or javascript: image is dropped."""
    assert og("<base href='https://cdn.example.net/x/'><meta property='og:image' content='i.png'>")[
        "og:image"] == "https://cdn.example.net/x/i.png"
    assert "og:image" not in og("<meta property='og:image' content='data:image/png;base64,AAAA'>")
    assert "og:image" not in og("<img src='javascript:alert(1)'>")
    assert "og:image" not in og("<img src='http://[::1'>")
    assert "og:image" not in og("<base href='http://[bad/'><img src='a.png'>")


def test_values_and_tags_are_bounded():
    """Over-long values or names are dropped, and at most MAX_TAGS og: tags are kept."""
    tags = "".join(f"<meta property='og:k{i}' content='v'>" for i in range(MAX_TAGS + 20))
    assert len(og(tags)) == MAX_TAGS
    assert og(f"<meta property='og:title' content='{'x' * 5000}'>") == {}
    assert og(f"<meta property='og:{'k' * 100}' content='v'>") == {}


def test_empty_and_broken_pages_give_an_empty_preview():
    """Nothing to read is an empty preview, never an error."""
    assert og("") == {}
    assert og("<html><head><title></title></head><body></body></html>") == {}
    # Stray "<" are text, as browsers read them.
    assert og("<<<>>><meta property=og:title content=Unquoted><p>unclosed") == {
        "og:title": "Unquoted", "og:description": "<<<>>>\n\nunclosed"}


@pytest.mark.parametrize("body, content_type, expected", [
    (b"\xef\xbb\xbf<meta charset=latin-1>", "text/html; charset=latin-1", "utf-8-sig"),
    (b"<meta charset=latin-1>", 'text/html; charset="Shift_JIS"', "shift_jis"),
    (b"<html><head><meta charset='iso-8859-1'>", "text/html", "iso8859-1"),
    (b'<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">', None, "cp1251"),
    (b"<meta charset=utf-16>", None, None),        # not ASCII-compatible: ignored
    (b"<meta charset=utf-7>", None, None),         # forbidden by the HTML standard
    (b"<meta charset=base64>", None, None),        # not a text encoding
    (b"<meta charset=no-such-thing>", "text/html; charset=nope", None),
    (b" " * 2000 + b"<meta charset=latin-1>", None, None),  # past the prescan
])
def test_declared_encoding(body, content_type, expected):
    """A byte order mark, then the header's charset, then a <meta> early in the page."""
    assert html_encoding(body, content_type) == expected


def test_pages_decode_in_their_encoding_with_fallbacks():
    """Declared encodings are used; undeclared pages are UTF-8 if they decode so, else Windows-1252."""
    latin = "<title>Caf\u00e9</title>".encode("latin-1")
    assert decode_html(b"<meta charset=iso-8859-1>" + latin, None).endswith("Caf\u00e9</title>")
    snowman = "<title>Caf\u00e9 \u2603</title>"
    assert decode_html(snowman.encode(), "text/html") == snowman
    assert decode_html(latin, "text/html") == "<title>Caf\u00e9</title>"
    assert decode_html(b"<title>\x93quoted\x94</title>", None) == "<title>\u201cquoted\u201d</title>"
    assert page_open_graph(latin, "text/html; charset=latin-1", PAGE) == {"og:title": "Caf\u00e9"}


def test_only_the_start_of_a_huge_page_is_read():
    """Past MAX_HTML_BYTES nothing is read, and a character cut at the limit is no error."""
    body = b"<title>Start</title>" + "\u00e9".encode() * MAX_HTML_BYTES + b"<meta property='og:image' content='x'>"
    text = decode_html(body, "text/html; charset=utf-8")
    assert len(text.encode()) <= MAX_HTML_BYTES and "\ufffd" not in text
    preview = page_open_graph(body, "text/html; charset=utf-8", PAGE)
    assert preview["og:title"] == "Start" and "og:image" not in preview


def test_preview_urls_must_be_http_and_not_blocklisted():
    """Only absolute http(s) URLs are fetched (400 otherwise), none a blocklist entry matches (403)."""
    for url in ("ftp://example.org/", "example.org/page", "https:///nohost", "http://example.org:99999/",
                "javascript:alert(1)", "file:///etc/passwd"):
        with pytest.raises(BadRequest):
            check_preview_url(url, ())
    blocklist = (UrlPattern(hostname="*.internal.example.org"),
                 UrlPattern(scheme="http", path="^/admin"), UrlPattern(port="8080"))
    for url in ("https://wiki.internal.example.org/x", "http://example.org/admin/users",
                "https://example.org:8080/"):
        with pytest.raises(Forbidden):
            check_preview_url(url, blocklist)
    for url in ("https://example.org/admin/users", "https://internal.example.org.evil.net/",
                "https://example.org/"):
        check_preview_url(url, blocklist)


def test_a_pattern_matches_only_when_every_part_does():
    """An entry names parts; all must match, and a part the URL lacks never matches."""
    pattern = UrlPattern(scheme="https", netloc="example.org")
    assert pattern.matches(urlsplit("https://example.org/x"))
    assert not pattern.matches(urlsplit("http://example.org/x"))
    assert not UrlPattern(port="80").matches(urlsplit("http://example.org/"))


def test_previewable_content_types():
    """HTML pages and images are previewed; SVG (which may carry scripts) is not an image to show."""
    assert is_html("text/html; charset=utf-8") and is_html("application/xhtml+xml")
    assert not is_html("text/plain") and not is_html(None)
    assert is_previewable_image("image/png") and is_previewable_image("IMAGE/JPEG")
    assert not is_previewable_image("image/svg+xml") and not is_previewable_image("text/html")
