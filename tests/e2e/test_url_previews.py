"""
URL previews through the real daemon, of pages served by a small web site
in the test process: Open Graph data with the page's image stored as
downloadable media, images previewed as themselves, redirects, the cache;
and what is refused: blocked addresses (also behind a redirect), the URL
blocklist, answers too large or too slow, and the endpoint itself when
previews are off (the default).
"""
from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.web import resource, server

from conftest import free_port
from media_helpers import download, image_bytes

PREVIEW = "/_matrix/client/v1/media/preview_url"
LEGACY_PREVIEW = "/_matrix/media/v3/preview_url"
MAX_BYTES = 64 * 1024
COVER = image_bytes(size=(64, 48))
PAGE = b"""<!doctype html><html><head>
<meta charset="utf-8"><title>Not the og:title</title>
<meta property="og:title" content="Caf\xc3\xa9 news">
<meta property="og:description" content="What happened at the caf\xc3\xa9">
<meta property="og:image" content="/cover.png">
</head><body><p>Text</p></body></html>"""
PLAIN = (b"<html><head><title>A plain page</title><meta name='description' content='Plain words'></head>"
         b"<body><img src='cover.png' width='64' height='48'></body></html>")

PREVIEW_CONFIG = f"""
[outbound]
ip_range_allowlist = ["127.0.0.1/32"]
[media]
url_preview_enabled = true
url_preview_max_bytes = {MAX_BYTES}
url_preview_timeout_s = 2.0
url_preview_url_blocklist = [{{ path = "/private/*" }}]
[rate_limits]
enabled = false
"""


class _Site(resource.Resource):
    """The web site previews are made of; it records each request as (address reached, path)."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str]] = []

    def render_GET(self, request):  # noqa: N802
        path = request.path.decode()
        self.requests.append((request.getHost().host, path))
        if path in ("/page", "/private/page"):
            request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
            return PAGE
        if path == "/plain":
            request.setHeader(b"Content-Type", b"text/html")
            return PLAIN
        if path == "/cover.png":
            request.setHeader(b"Content-Type", b"image/png")
            return COVER
        if path == "/old":
            request.redirect(b"/page")
            return b""
        if path == "/to-blocked":
            request.redirect(f"http://127.0.0.2:{request.getHost().port}/page".encode())
            return b""
        if path == "/big-streamed":  # no Content-Length: cut while streaming
            request.setHeader(b"Content-Type", b"text/html")
            for _ in range(4 * MAX_BYTES // 1024):
                request.write(b"<p>" + b"x" * 1017 + b"</p>")
            request.finish()
            return server.NOT_DONE_YET
        if path == "/big-declared":
            request.setHeader(b"Content-Type", b"text/html")
            return b"x" * (2 * MAX_BYTES)
        if path == "/slow":
            return server.NOT_DONE_YET  # never answers
        request.setResponseCode(404)
        return b"not here"


@pytest.fixture(scope="module")
def site():
    """The site, on 127.0.0.1 (allowlisted) and on 127.0.0.2 (blocked), same port."""
    web = _Site()
    first = reactor.listenTCP(0, server.Site(web), interface="127.0.0.1")
    second = reactor.listenTCP(first.getHost().port, server.Site(web), interface="127.0.0.2")
    web.base = f"http://127.0.0.1:{first.getHost().port}"
    web.blocked_base = f"http://127.0.0.2:{first.getHost().port}"
    yield web
    first.stopListening()
    second.stopListening()


@pytest.fixture(scope="module")
def preview_server(start_homeserver):
    return start_homeserver(PREVIEW_CONFIG)


@pytest.fixture
def preview_client(preview_server, make_client):
    return make_client(preview_server)


async def preview(client, token, url, path=PREVIEW, **query):
    return await client.request("GET", path, token=token, query={"url": url, **query})


@pytest.mark.parametrize("path", [PREVIEW, LEGACY_PREVIEW])
@pytest_twisted.ensureDeferred
async def test_previews_are_absent_by_default(client, site, path):
    """With the default config neither preview endpoint exists (404 M_UNRECOGNIZED) and nothing is fetched."""
    user = await client.register()
    before = len(site.requests)
    response = await preview(client, user["access_token"], site.base + "/page", path=path)
    assert (response.code, response.json["errcode"]) == (404, "M_UNRECOGNIZED"), response
    assert len(site.requests) == before


@pytest_twisted.ensureDeferred
async def test_a_page_preview_has_its_open_graph_data_and_its_image_as_media(preview_client, site):
    """Title and description from og: tags; og:image is an mxc URI whose download is the page's image."""
    user = await preview_client.register()
    response = await preview(preview_client, user["access_token"], site.base + "/page")
    assert response.code == 200, response
    og = response.json
    assert og["og:image"].startswith("mxc://test.local/")
    assert {key: value for key, value in og.items() if key != "og:image"} == {
        "og:title": "Caf\u00e9 news", "og:description": "What happened at the caf\u00e9",
        "og:image:type": "image/png", "og:image:width": 64, "og:image:height": 48,
        "matrix:image:size": len(COVER),
    }
    image = await download(preview_client, user["access_token"], og["og:image"])
    assert (image.code, image.raw, image.headers["content-type"]) == (200, COVER, "image/png")


@pytest_twisted.ensureDeferred
async def test_a_page_without_open_graph_is_previewed_from_its_title_description_and_images(preview_client, site):
    """<title>, <meta name=description> and the page's <img> stand in for og: tags."""
    user = await preview_client.register()
    response = await preview(preview_client, user["access_token"], site.base + "/plain")
    assert response.code == 200, response
    assert (response.json["og:title"], response.json["og:description"]) == ("A plain page", "Plain words")
    assert response.json["og:image"].startswith("mxc://")


@pytest_twisted.ensureDeferred
async def test_an_image_is_previewed_as_itself_also_on_the_legacy_endpoint(preview_client, site):
    """An image URL's preview is the image, stored as media; the deprecated endpoint answers the same way."""
    user = await preview_client.register()
    response = await preview(preview_client, user["access_token"], site.base + "/cover.png?v=1",
                             path=LEGACY_PREVIEW, ts="1510610716656")
    assert response.code == 200, response
    assert {k: v for k, v in response.json.items() if k != "og:image"} == {
        "og:image:type": "image/png", "og:image:width": 64, "og:image:height": 48,
        "matrix:image:size": len(COVER)}
    image = await download(preview_client, user["access_token"], response.json["og:image"])
    assert image.raw == COVER


@pytest_twisted.ensureDeferred
async def test_redirects_are_followed_and_previews_cached(preview_client, site):
    """A redirected URL previews its target; asking again is answered without fetching again."""
    user = await preview_client.register()
    url = site.base + "/old?cached=1"
    first = await preview(preview_client, user["access_token"], url)
    assert first.json["og:title"] == "Caf\u00e9 news", first
    fetched = len(site.requests)
    second = await preview(preview_client, user["access_token"], url)
    assert second.json == first.json
    assert len(site.requests) == fetched


@pytest_twisted.ensureDeferred
async def test_blocked_addresses_are_never_reached(preview_client, site):
    """An address in the default blocklist is 403 M_FORBIDDEN, directly or as a redirect's target."""
    user = await preview_client.register()
    for url in (site.blocked_base + "/page", site.base + "/to-blocked"):
        response = await preview(preview_client, user["access_token"], url)
        assert (response.code, response.json["errcode"], response.json["error"]) == (
            403, "M_FORBIDDEN", "IP address blocked"), response
    assert [host for host, _ in site.requests if host == "127.0.0.2"] == []


@pytest_twisted.ensureDeferred
async def test_the_url_blocklist_refuses_before_fetching(preview_client, site):
    """A URL the configured URL blocklist matches is 403 M_FORBIDDEN and never fetched."""
    user = await preview_client.register()
    response = await preview(preview_client, user["access_token"], site.base + "/private/page")
    assert (response.code, response.json["errcode"]) == (403, "M_FORBIDDEN"), response
    assert "/private/page" not in [path for _, path in site.requests]


@pytest.mark.parametrize("path", ["/big-streamed", "/big-declared"])
@pytest_twisted.ensureDeferred
async def test_answers_over_the_size_limit_are_refused(preview_client, site, path):
    """A page larger than url_preview_max_bytes is 502 M_TOO_LARGE, with or without a Content-Length."""
    user = await preview_client.register()
    response = await preview(preview_client, user["access_token"], site.base + path)
    assert (response.code, response.json["errcode"]) == (502, "M_TOO_LARGE"), response


@pytest_twisted.ensureDeferred
async def test_slow_missing_and_unreachable_pages_are_bad_gateways(preview_client, site):
    """A page that never answers (past the timeout), a 404 and a closed port are 502, not a hang or a 500."""
    user = await preview_client.register()
    for url in (site.base + "/slow", site.base + "/missing", f"http://127.0.0.1:{free_port()}/"):
        response = await preview(preview_client, user["access_token"], url)
        assert (response.code, response.json["errcode"]) == (502, "M_UNKNOWN"), (url, response)


@pytest_twisted.ensureDeferred
async def test_bad_requests_are_clear_errors(preview_client):
    """No url, a URL that is not http(s), a bad ts or no token: 400 or 401 with the spec's errcodes."""
    user = await preview_client.register()
    token = user["access_token"]
    missing = await preview_client.request("GET", PREVIEW, token=token)
    assert (missing.code, missing.json["errcode"]) == (400, "M_MISSING_PARAM")
    for url in ("ftp://example.org/file", "file:///etc/passwd", "not a url"):
        response = await preview(preview_client, token, url)
        assert (response.code, response.json["errcode"]) == (400, "M_INVALID_PARAM"), (url, response)
    bad_ts = await preview(preview_client, token, "https://example.org/", ts="yesterday")
    assert (bad_ts.code, bad_ts.json["errcode"]) == (400, "M_INVALID_PARAM")
    anonymous = await preview_client.request("GET", PREVIEW, query={"url": "https://example.org/"})
    assert (anonymous.code, anonymous.json["errcode"]) == (401, "M_MISSING_TOKEN")
