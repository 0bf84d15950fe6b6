"""
A web page's Open Graph data (U{https://ogp.me/}) for URL previews (spec:
C{GET /_matrix/client/v1/media/preview_url}), read from its HTML with the
standard library's C{html.parser}.

A page without Open Graph tags still gets a preview from what it has, in
the order Synapse uses: Twitter card tags, then C{<title>} (or the first
C{<h1>}), C{<meta name="description">} (or the start of the body text), and
C{<meta itemprop="image">}, the largest C{<img>} (or the first one), or the
page's icon.

Only the first L{MAX_HTML_BYTES} of a page are read, and every value is
bounded (L{MAX_VALUE_LENGTH}), so a huge or hostile page costs little.
"""
from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

#: The bytes of a page that are parsed: its head and the start of its body.
MAX_HTML_BYTES = 1024 * 1024
#: Where a C{<meta charset>} must appear (as the HTML standard's prescan).
CHARSET_PRESCAN_BYTES = 1024
#: Open Graph tags kept from one page; values or names longer than these
#: are dropped (as Synapse prunes them).
MAX_TAGS = 50
MAX_KEY_LENGTH = 50
MAX_VALUE_LENGTH = 1000
#: The length of a description made from the body text.
DESCRIPTION_LENGTH = 500
#: Characters parsed at a time (a page with the main tags is read no further).
_FEED_CHARS = 64 * 1024
#: Images smaller than this (width and height) are no page's picture.
MIN_IMAGE_SIDE = 10

#: Elements whose text is not the page's content (scripts, navigation, media).
_NOT_CONTENT = frozenset({
    "head", "title", "script", "style", "noscript", "template", "svg", "math", "iframe", "video", "audio",
    "canvas", "picture", "object", "select", "textarea", "header", "nav", "aside", "footer",
})
#: Elements that start a new paragraph of text.
_BLOCKS = frozenset({
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
    "main", "blockquote", "pre", "table", "tr", "td", "th", "dd", "dt", "figcaption",
})
_VOID = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr",
})
#: Twitter card tags used where the Open Graph one is missing.
_TWITTER_FALLBACKS = {"twitter:title": "og:title", "twitter:description": "og:description",
                      "twitter:image": "og:image"}
_SPACES = re.compile(r"\s+")
#: ASCII-compatible codecs that are no page's encoding (the HTML standard
#: forbids UTF-7; the escape codecs are Python's).
_REFUSED_ENCODINGS = frozenset({"utf-7", "unicode-escape", "raw-unicode-escape"})


def content_type_charset(value: str | None) -> str | None:
    """The C{charset} parameter of a content type (a header, or a C{<meta>}'s content)."""
    for parameter in (value or "").split(";")[1:]:
        name, _, charset = parameter.partition("=")
        if name.strip().lower() == "charset":
            return charset.strip().strip("\"'") or None
    return None


def html_encoding(body: bytes, content_type: str | None) -> str | None:
    """
    The encoding a page declares, in the HTML standard's order: a byte
    order mark, the C{Content-Type} header's charset, a C{<meta>} in the
    first L{CHARSET_PRESCAN_BYTES}; C{None} when it declares none (or
    only encodings Python does not know).
    """
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            return encoding
    header = _ascii_compatible(content_type_charset(content_type))
    if header is not None:
        return header
    finder = _CharsetFinder()
    # Latin-1 maps each byte to one character: any ASCII-compatible
    # encoding's markup reads the same.
    finder.feed(body[:CHARSET_PRESCAN_BYTES].decode("latin-1"))
    return _ascii_compatible(finder.charset)


def decode_html(body: bytes, content_type: str | None) -> str:
    """
    The text of (the first L{MAX_HTML_BYTES} of) a page: in its declared
    encoding, else UTF-8 if it decodes as such, else Windows-1252 (the
    HTML standard's fallback); bytes that do not decode are replaced.
    """
    head = body[:MAX_HTML_BYTES]
    declared = html_encoding(head, content_type)
    if declared is not None:
        return _decode_prefix(head, declared, "replace")
    try:
        return _decode_prefix(head, "utf-8", "strict")
    except UnicodeDecodeError:
        return head.decode("cp1252", "replace")


def _decode_prefix(data: bytes, encoding: str, errors: str) -> str:
    """Decode C{data}, which may end in the middle of a character (it was cut)."""
    return codecs.getincrementaldecoder(encoding)(errors).decode(data, final=False)


def _ascii_compatible(name: str | None) -> str | None:
    """
    Python's name for an encoding, if it is a text encoding in which ASCII
    markup is itself (a page cannot declare UTF-16 in its own markup).
    """
    if not name:
        return None
    try:
        encoding = codecs.lookup(name).name
        if encoding in _REFUSED_ENCODINGS or "<meta charset>".encode(encoding) != b"<meta charset>":
            return None
        # Refuses codecs that are not text encodings (base64...).
        codecs.getincrementaldecoder(encoding)("replace").decode(b"<", final=False)
    except (LookupError, UnicodeError, ValueError, TypeError):
        return None
    return encoding


class _CharsetFinder(HTMLParser):
    """Finds C{<meta charset>} or C{<meta http-equiv="content-type" content="...; charset=...">}."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.charset: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "meta" or self.charset is not None:
            return
        values = {name: value or "" for name, value in attrs}
        if values.get("charset"):
            self.charset = values["charset"].strip()
        elif values.get("http-equiv", "").strip().lower() == "content-type":
            self.charset = content_type_charset(values.get("content"))


def page_open_graph(body: bytes, content_type: str | None, page_url: str) -> dict[str, str]:
    """The Open Graph data of an HTML page's bytes (see L{decode_html}, L{parse_open_graph})."""
    return parse_open_graph(decode_html(body, content_type), page_url)


def parse_open_graph(html: str, page_url: str) -> dict[str, str]:
    """
    The Open Graph data of a page: its C{og:} tags, completed from the rest
    of the page (see the module). C{og:image} is made absolute (against
    C{<base href>} and C{page_url}) and kept only as an C{http(s)} URL.
    """
    parser = _OpenGraphParser()
    for start in range(0, len(html), _FEED_CHARS):
        parser.feed(html[start:start + _FEED_CHARS])
        if {"og:title", "og:description", "og:image"} <= parser.tags.keys():
            break  # the rest of the page has nothing to add
    parser.close()
    og = dict(parser.tags)
    for twitter, key in _TWITTER_FALLBACKS.items():
        if key not in og and twitter in parser.twitter:
            og[key] = parser.twitter[twitter]
    title = parser.title or parser.heading
    if "og:title" not in og and title:
        og["og:title"] = title
    if "og:description" not in og:
        description = parser.description or _summary(parser.paragraphs)
        if description:
            og["og:description"] = description
    if "og:image" not in og:
        image = parser.itemprop_image or parser.largest_image or parser.first_image or parser.icon
        if image:
            og["og:image"] = image
    if "og:image" in og:
        image_url = _absolute_http_url(og["og:image"], parser.base_href, page_url)
        if image_url is not None:
            og["og:image"] = image_url
        else:
            del og["og:image"]
    return {key: value for key, value in og.items()
            if len(key) <= MAX_KEY_LENGTH and 0 < len(value) <= MAX_VALUE_LENGTH}


def _absolute_http_url(url: str, base_href: str | None, page_url: str) -> str | None:
    """C{url} made absolute, if it is then an http(s) URL (not data:, javascript:, or broken)."""
    try:
        base = urljoin(page_url, base_href) if base_href else page_url
        absolute = urljoin(base, url.strip())
        return absolute if urlsplit(absolute).scheme in ("http", "https") else None
    except ValueError:  # e.g. "http://[not-an-address"
        return None


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _summary(paragraphs: list[str]) -> str | None:
    """The first paragraphs of the body text, cut at a word boundary to L{DESCRIPTION_LENGTH}."""
    text = "\n\n".join(paragraphs).strip()
    if len(text) <= DESCRIPTION_LENGTH:
        return text or None
    cut = text[:DESCRIPTION_LENGTH - 1]
    if not text[DESCRIPTION_LENGTH - 1].isspace() and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + "…"


def _dimension(value: str | None) -> float:
    try:
        return float(value or "")
    except ValueError:
        return 0.0


class _OpenGraphParser(HTMLParser):
    """
    Collects what L{parse_open_graph} needs in one pass, keeping only the
    first of each and bounded amounts of text.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: dict[str, str] = {}
        self.twitter: dict[str, str] = {}
        self.title: str | None = None
        self.heading: str | None = None
        self.description: str | None = None
        self.itemprop_image: str | None = None
        self.first_image: str | None = None
        self.largest_image: str | None = None
        self.icon: str | None = None
        self.base_href: str | None = None
        self.paragraphs: list[str] = []
        self._largest_area = 0.0
        self._text_length = 0
        self._line: list[str] = []
        # The element whose text is being read as the title or heading.
        self._reading: str | None = None
        self._read: list[str] = []
        # Open elements whose text is not content, per tag.
        self._hidden: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value for name, value in attrs if value is not None}
        if tag == "meta":
            self._meta(values)
        elif tag == "img":
            self._image(values)
        elif tag == "link" and self.icon is None and "icon" in values.get("rel", "").lower().split():
            self.icon = values.get("href", "").strip() or None
        elif tag == "base" and self.base_href is None:
            self.base_href = values.get("href", "").strip() or None
        elif (tag == "title" and self.title is None) or (tag == "h1" and self.heading is None):
            self._reading, self._read = tag, []
        if tag in _BLOCKS:
            self._end_line()
        if tag in _NOT_CONTENT:
            self._hidden[tag] = self._hidden.get(tag, 0) + 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == self._reading:
            text = _clean("".join(self._read))[:MAX_VALUE_LENGTH] or None
            if tag == "title":
                self.title = text
            else:
                self.heading = text
            self._reading = None
        if self._hidden.get(tag):
            self._hidden[tag] -= 1
        if tag in _BLOCKS:
            self._end_line()

    def handle_data(self, data: str) -> None:
        if self._reading is not None and sum(map(len, self._read)) < MAX_VALUE_LENGTH:
            self._read.append(data[:MAX_VALUE_LENGTH])
        if self._text_length < 2 * DESCRIPTION_LENGTH and not any(self._hidden.values()):
            self._line.append(data[:2 * DESCRIPTION_LENGTH])
            self._text_length += len(data)

    def close(self) -> None:
        super().close()
        self._end_line()

    def _end_line(self) -> None:
        line = _clean("".join(self._line))
        self._line = []
        if line:
            self.paragraphs.append(line)

    def _meta(self, values: dict[str, str]) -> None:
        content = values.get("content", "").strip()
        if not content:
            return
        key = (values.get("property") or values.get("name") or "").strip().lower()
        if key.startswith("og:"):
            if len(self.tags) < MAX_TAGS:
                self.tags.setdefault(key, content)
        elif key in _TWITTER_FALLBACKS:
            self.twitter.setdefault(key, content)
        elif key == "description" and self.description is None:
            self.description = content
        if values.get("itemprop", "").strip().lower() == "image" and self.itemprop_image is None:
            self.itemprop_image = content

    def _image(self, values: dict[str, str]) -> None:
        src = values.get("src", "").strip()
        if not src:
            return
        if self.first_image is None:
            self.first_image = src
        width, height = _dimension(values.get("width")), _dimension(values.get("height"))
        if width > MIN_IMAGE_SIDE and height > MIN_IMAGE_SIDE and width * height > self._largest_area:
            self.largest_image, self._largest_area = src, width * height
