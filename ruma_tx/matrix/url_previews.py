"""
URL previews' rules (spec: C{GET /_matrix/client/v1/media/preview_url}):
which URLs the server fetches, which answers it previews, and how.

Only C{http} and C{https} URLs are fetched, and none that the server's URL
blocklist matches (Synapse's C{url_preview_url_blacklist}, same format). The
address ranges a fetch may reach are the outbound client's business.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from fnmatch import fnmatchcase
from urllib.parse import SplitResult, urlsplit

from ruma_tx.matrix.errors import Forbidden, invalid_param
from ruma_tx.matrix.media import essence, is_active_type

#: Answers that send the fetch elsewhere (their C{Location}).
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


@dataclass(frozen=True)
class UrlPattern:
    """
    An entry of the URL blocklist: a URL whose every named part matches is
    never previewed. A part's pattern is a glob (C{*}, C{?}, C{[...]}), or
    a regular expression matched at the start when it begins with C{^}.
    The parts are those C{urllib.parse.urlsplit} gives (C{hostname} is in
    lower case; C{port} is compared as text).
    """

    scheme: str | None = None
    netloc: str | None = None
    hostname: str | None = None
    port: str | None = None
    username: str | None = None
    password: str | None = None
    path: str | None = None
    query: str | None = None
    fragment: str | None = None

    def parts(self) -> dict[str, str]:
        """The parts this entry names, with their patterns."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def matches(self, url: SplitResult) -> bool:
        for part, pattern in self.parts().items():
            value = getattr(url, part)
            if value is None:
                return False
            text = str(value)
            if not (re.match(pattern, text) if pattern.startswith("^") else fnmatchcase(text, pattern)):
                return False
        return True


def check_preview_url(url: str, blocklist: tuple[UrlPattern, ...]) -> None:
    """
    Refuse a URL the server does not fetch.

    @raise MatrixError: 400 M_INVALID_PARAM for anything but an absolute
        http(s) URL; 403 M_FORBIDDEN for one the blocklist matches.
    """
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        raise invalid_param("url is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid_param("Only absolute http and https URLs can be previewed")
    if any(pattern.matches(parts) for pattern in blocklist):
        raise Forbidden("M_FORBIDDEN", "URL blocked by the server's URL preview blocklist")


def is_html(content_type: str | None) -> bool:
    return content_type is not None and essence(content_type) in HTML_TYPES


def is_previewable_image(content_type: str | None) -> bool:
    """An image that is shown as a picture (not one that could carry scripts, as SVG)."""
    return (content_type is not None and essence(content_type).startswith("image/")
            and not is_active_type(content_type))
