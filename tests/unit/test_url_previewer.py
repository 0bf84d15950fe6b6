"""
L{ruma_tx.services.url_previews.UrlPreviewer} with a fake outbound client
and a L{Clock}: redirects (bounded, each checked), the time budget, the
page's image stored as media, errors as Matrix errors, and the cache.
"""
from __future__ import annotations

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock

from ruma_tx.matrix.errors import BadRequest, Forbidden, RemoteUnavailable, TooLarge
from ruma_tx.matrix.url_previews import UrlPattern
from ruma_tx.services.ports.outbound import OutboundBlocked, OutboundError, OutboundResponse, OutboundTooLarge
from ruma_tx.services.url_previews import CACHE_TTL_S, MAX_REDIRECTS, PreviewSettings, UrlPreviewer

USER = "@alice:example.org"
HTML = "text/html; charset=utf-8"
PAGE = (b"<html><head><title>Hello</title><meta property='og:image' content='/cover.png'>"
        b"<meta property='og:image:alt' content='A cover'><meta property='og:image:url' content='x'></head>"
        b"<body><p>Body text</p></body></html>")


class ThreadlessClock(Clock):
    """A clock that runs "thread" work at once (for deferToThreadPool)."""

    def callFromThread(self, f, *args, **kwargs):  # noqa: N802
        f(*args, **kwargs)


class InlinePool:
    def callInThreadWithCallback(self, on_result, f, *args, **kwargs):  # noqa: N802
        try:
            result = f(*args, **kwargs)
        except Exception as e:  # handed back as the thread pool would
            on_result(False, e)
        else:
            on_result(True, result)


class FakeWeb:
    """Answers per URL: (code, content type, body, headers), an exception, or a Deferred left waiting."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.answers: dict[str, object] = {}
        self.fetched: list[tuple[str, float]] = []
        self.takes_s = 0.0

    async def request(self, method, url, *, headers=None, body=None, timeout_s=None, max_bytes=None):
        self.fetched.append((url, timeout_s))
        self.clock.advance(self.takes_s)
        answer = self.answers.get(url, (404, "text/plain", b"not found", {}))
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, defer.Deferred):
            answer = await answer
        code, content_type, data, extra = answer
        return OutboundResponse(code, data, {"content-type": [content_type],
                                             **{k: [v] for k, v in extra.items()}})


class Media:
    def __init__(self) -> None:
        self.stored: list[tuple[str, bytes, str]] = []
        self.refuse: Exception | None = None

    async def store(self, user_id, data, content_type, filename):
        if self.refuse is not None:
            raise self.refuse
        self.stored.append((user_id, data, content_type))
        return f"mxc://example.org/m{len(self.stored)}"

    async def size(self, data):
        if data == b"broken":
            raise BadRequest("M_UNKNOWN", "not an image")
        return (64, 32)


def make(*, blocklist=(), timeout_s=10.0):
    clock = ThreadlessClock()
    clock.advance(1_700_000_000)
    web, media = FakeWeb(clock), Media()
    previewer = UrlPreviewer(http=web, store_image=media.store, image_size=media.size, clock=clock,
                             reactor=clock, pool=InlinePool(),
                             settings=PreviewSettings(max_bytes=1000, timeout_s=timeout_s,
                                                      url_blocklist=blocklist))
    return previewer, web, media, clock


def preview(previewer, url) -> defer.Deferred:
    return defer.ensureDeferred(previewer.preview(USER, url))


def result_of(d):
    """The result of a Deferred that has fired (its failure raised)."""
    results = []
    d.addBoth(results.append)
    assert results, "not finished"
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


def test_a_page_is_previewed_with_its_image_stored_as_media():
    """The page's title and text, and its image fetched, stored and named by an mxc URI with its size."""
    previewer, web, media, _ = make()
    web.answers["https://site.example/post"] = (200, HTML, PAGE, {})
    web.answers["https://site.example/cover.png"] = (200, "image/png", b"PNGDATA", {})
    assert result_of(preview(previewer, "https://site.example/post")) == {
        "og:title": "Hello", "og:description": "Body text", "og:image": "mxc://example.org/m1",
        "og:image:type": "image/png", "matrix:image:size": 7, "og:image:width": 64, "og:image:height": 32,
        "og:image:alt": "A cover",
    }
    assert media.stored == [(USER, b"PNGDATA", "image/png")]


def test_an_image_url_is_previewed_as_the_image():
    """A URL answering an image is the preview's image itself."""
    previewer, web, media, _ = make()
    web.answers["https://site.example/a.gif"] = (200, "image/gif", b"broken", {})
    assert result_of(preview(previewer, "https://site.example/a.gif")) == {
        "og:image": "mxc://example.org/m1", "og:image:type": "image/gif", "matrix:image:size": 6}


def test_an_image_that_cannot_be_had_leaves_the_page_preview_without_one():
    """A missing, blocked, non-image or refused image drops og:image (and what the page said of it)."""
    for answer, refuse in [((404, "text/plain", b"", {}), None), (OutboundBlocked("blocked"), None),
                           ((200, "image/svg+xml", b"<svg/>", {}), None),
                           ((200, "image/png", b"PNG", {}), TooLarge("M_TOO_LARGE", "too large"))]:
        previewer, web, media, _ = make()
        media.refuse = refuse
        web.answers["https://site.example/post"] = (200, HTML, PAGE, {})
        web.answers["https://site.example/cover.png"] = answer
        assert result_of(preview(previewer, "https://site.example/post")) == {
            "og:title": "Hello", "og:description": "Body text"}, answer


def test_redirects_are_followed_and_each_one_checked():
    """Relative redirects are followed (the image resolved against the last URL); a blocklisted hop is 403."""
    previewer, web, _, _ = make(blocklist=(UrlPattern(hostname="intranet.example"),))
    web.answers["https://short.example/x"] = (301, "text/plain", b"", {"location": "/y"})
    web.answers["https://short.example/y"] = (302, "text/plain", b"", {"location": "https://site.example/dir/"})
    web.answers["https://site.example/dir/"] = (200, HTML, b"<meta property=og:image content=i.png>", {})
    web.answers["https://site.example/dir/i.png"] = (200, "image/png", b"P", {})
    assert result_of(preview(previewer, "https://short.example/x"))["og:image"] == "mxc://example.org/m1"
    web.answers["https://short.example/in"] = (307, "text/plain", b"", {"location": "http://intranet.example/"})
    with pytest.raises(Forbidden):
        result_of(preview(previewer, "https://short.example/in"))
    for target in ("ftp://site.example/", "http://[::1"):
        web.answers["https://short.example/bad"] = (302, "text/plain", b"", {"location": target})
        with pytest.raises(RemoteUnavailable):
            result_of(preview(previewer, "https://short.example/bad"))
    assert "http://intranet.example/" not in [url for url, _ in web.fetched]


def test_redirects_are_bounded():
    """A redirect loop ends after MAX_REDIRECTS with 502."""
    previewer, web, _, _ = make()
    web.answers["https://loop.example/"] = (302, "text/plain", b"", {"location": "/"})
    with pytest.raises(RemoteUnavailable, match="redirects"):
        result_of(preview(previewer, "https://loop.example/"))
    assert len(web.fetched) == MAX_REDIRECTS + 1


def test_one_time_budget_covers_every_redirect():
    """Each hop gets what is left of the fetch's time; none is left: 502 without another request."""
    previewer, web, _, _ = make(timeout_s=10.0)
    web.takes_s = 4.0
    web.answers["https://slow.example/"] = (302, "text/plain", b"", {"location": "/next"})
    web.answers["https://slow.example/next"] = (302, "text/plain", b"", {"location": "/last"})
    web.answers["https://slow.example/last"] = (302, "text/plain", b"", {"location": "/never"})
    with pytest.raises(RemoteUnavailable, match="in time"):
        result_of(preview(previewer, "https://slow.example/"))
    assert [timeout for _, timeout in web.fetched] == [10.0, 6.0, 2.0]


@pytest.mark.parametrize("answer, error, errcode", [
    (OutboundBlocked("the host is in a blocked address range"), Forbidden, "M_FORBIDDEN"),
    (OutboundTooLarge("answer larger than 1000 bytes"), RemoteUnavailable, "M_TOO_LARGE"),
    (OutboundError("no answer in time"), RemoteUnavailable, "M_UNKNOWN"),
    ((500, "text/html", b"oops", {}), RemoteUnavailable, "M_UNKNOWN"),
    ((200, "application/pdf", b"%PDF", {}), RemoteUnavailable, "M_UNKNOWN"),
])
def test_failures_are_matrix_errors(answer, error, errcode):
    """A blocked address is 403 M_FORBIDDEN; too large 502 M_TOO_LARGE; anything else unusable 502."""
    previewer, web, _, _ = make()
    web.answers["https://site.example/"] = answer
    with pytest.raises(error) as caught:
        result_of(preview(previewer, "https://site.example/"))
    assert caught.value.errcode == errcode


def test_bad_and_blocklisted_urls_are_refused_before_any_fetch():
    """A URL that is not http(s) is 400, a blocklisted one 403, and nothing is fetched."""
    previewer, web, _, _ = make(blocklist=(UrlPattern(path="/private/*"),))
    with pytest.raises(BadRequest):
        result_of(preview(previewer, "gopher://site.example/"))
    with pytest.raises(Forbidden):
        result_of(preview(previewer, "https://site.example/private/page"))
    assert web.fetched == []


def test_previews_are_cached_for_an_hour_and_made_once_when_asked_together():
    """Concurrent requests share one fetch; later ones use the cache until it is an hour old."""
    previewer, web, _, clock = make()
    answer: defer.Deferred = defer.Deferred()
    web.answers["https://site.example/"] = answer
    first, second = preview(previewer, "https://site.example/"), preview(previewer, "https://site.example/")
    answer.callback((200, HTML, b"<title>Once</title>", {}))
    assert result_of(first) == result_of(second) == {"og:title": "Once"}
    web.answers["https://site.example/"] = (200, HTML, b"<title>Twice</title>", {})
    clock.advance(CACHE_TTL_S - 1)
    assert result_of(preview(previewer, "https://site.example/")) == {"og:title": "Once"}
    clock.advance(2)
    assert result_of(preview(previewer, "https://site.example/")) == {"og:title": "Twice"}
    assert len(web.fetched) == 2


def test_failures_are_not_cached():
    """A page that failed is fetched again on the next request."""
    previewer, web, _, _ = make()
    web.answers["https://site.example/"] = OutboundError("connection refused")
    with pytest.raises(RemoteUnavailable):
        result_of(preview(previewer, "https://site.example/"))
    web.answers["https://site.example/"] = (200, HTML, b"<title>Up again</title>", {})
    assert result_of(preview(previewer, "https://site.example/")) == {"og:title": "Up again"}
