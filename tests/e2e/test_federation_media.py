"""
Federated media between two ruma_tx daemons on loopback: a user of B
downloads (and thumbnails) what a user of A uploaded, B fetching it once
over the authenticated federation endpoint; A's federation endpoints
answer the spec's multipart/mixed, to signed requests only, for its own
media only.
"""
from __future__ import annotations

import pytest
import pytest_twisted
from media_helpers import CSP, download, image_bytes, media_path, opened, stored_copies, thumbnail, upload
from test_federation_transport import federation_http, signed_as  # noqa: F401 (a fixture)

from ruma_tx.matrix.multipart import parse_media_multipart


@pytest.fixture(scope="module")
def pair(start_federating):
    """Two federating daemons, A and B."""
    return start_federating(), start_federating()


async def federation_get(http, origin, server, path):
    """A GET to C{server}'s federation listener, signed by C{origin} (unsigned without one)."""
    headers = {}
    if origin is not None:
        headers["Authorization"] = [signed_as(origin, server.server_name, "GET", path)]
    response = await http.request("GET", server.federation_url + path, headers=headers)
    return response.code, response.headers.getRawHeaders("content-type", [None])[0], await response.content()


async def uploaded(make_client, server, data, content_type, filename):
    client = make_client(server)
    user = await client.register()
    return await upload(client, user["access_token"], data, content_type, filename)


@pytest_twisted.ensureDeferred
async def test_remote_media_is_downloaded_and_kept(pair, make_client):
    """A user of B downloads A's media, with A's type and name and the safe headers; B keeps one copy."""
    a, b = pair
    data = image_bytes((120, 80))
    uri = await uploaded(make_client, a, data, "image/png", "cat.png")
    reader = make_client(b)
    token = (await reader.register())["access_token"]
    for _ in range(2):
        response = await download(reader, token, uri)
        assert response.code == 200, response
        assert response.raw == data
        assert response.headers["content-type"] == "image/png"
        assert response.headers["content-disposition"] == 'inline; filename="cat.png"'
        assert response.headers["content-security-policy"] == CSP
    assert len(stored_copies(b, data)) == 1


@pytest_twisted.ensureDeferred
async def test_remote_thumbnail_is_made_locally(pair, make_client):
    """A thumbnail of A's image is served by B at the size asked for."""
    a, b = pair
    uri = await uploaded(make_client, a, image_bytes((300, 200)), "image/png", None)
    reader = make_client(b)
    token = (await reader.register())["access_token"]
    response = await thumbnail(reader, token, uri, width=32, height=32, method="crop")
    assert response.code == 200, response
    assert opened(response.raw).size == (32, 32)


@pytest_twisted.ensureDeferred
async def test_unknown_remote_media_is_not_found(pair, make_client):
    """Media A does not have is 404 M_NOT_FOUND for B's users."""
    a, b = pair
    reader = make_client(b)
    token = (await reader.register())["access_token"]
    response = await download(reader, token, f"mxc://{a.server_name}/NoSuchMediaHere")
    assert (response.code, response.json["errcode"]) == (404, "M_NOT_FOUND")


@pytest_twisted.ensureDeferred
async def test_federation_download_is_multipart(pair, make_client, federation_http):  # noqa: F811
    """A signed federation download answers two parts: {} then the bytes with their headers."""
    a, b = pair
    uri = await uploaded(make_client, a, b"hello, federation", "text/plain", "note.txt")
    path = f"/_matrix/federation/v1/media/download/{media_path(uri)[1]}"
    code, content_type, body = await federation_get(federation_http, b, a, path)
    assert code == 200 and content_type.startswith("multipart/mixed; boundary=")
    part = parse_media_multipart(content_type, body)
    assert (part.metadata, part.data, part.content_type, part.filename) == (
        {}, b"hello, federation", "text/plain", "note.txt")


@pytest_twisted.ensureDeferred
async def test_federation_thumbnail_is_multipart(pair, make_client, federation_http):  # noqa: F811
    """A signed federation thumbnail request answers {} then an image."""
    a, b = pair
    uri = await uploaded(make_client, a, image_bytes((300, 200)), "image/png", None)
    path = f"/_matrix/federation/v1/media/thumbnail/{media_path(uri)[1]}?width=32&height=32&method=crop"
    code, content_type, body = await federation_get(federation_http, b, a, path)
    assert code == 200
    part = parse_media_multipart(content_type, body)
    assert part.content_type in ("image/png", "image/jpeg")
    assert opened(part.data).size == (32, 32)


@pytest_twisted.ensureDeferred
async def test_federation_media_needs_a_signature(pair, make_client, federation_http):  # noqa: F811
    """An unsigned federation download is refused with 401."""
    a, _ = pair
    uri = await uploaded(make_client, a, b"secret", "text/plain", None)
    code, _, _ = await federation_get(federation_http, None, a,
                                      f"/_matrix/federation/v1/media/download/{media_path(uri)[1]}")
    assert code == 401


@pytest_twisted.ensureDeferred
async def test_only_own_media_is_served_over_federation(pair, make_client, federation_http):  # noqa: F811
    """B does not serve its copy of A's media to other servers, nor media it does not have."""
    a, b = pair
    uri = await uploaded(make_client, a, b"only A serves this", "text/plain", None)
    reader = make_client(b)
    token = (await reader.register())["access_token"]
    assert (await download(reader, token, uri)).code == 200  # B has it now
    media_id = media_path(uri)[1]
    for server in (b, a):
        code, _, body = await federation_get(federation_http, a if server is b else b, server,
                                             "/_matrix/federation/v1/media/download/NoSuchMediaHere")
        assert code == 404
    code, _, _ = await federation_get(federation_http, a, b, f"/_matrix/federation/v1/media/download/{media_id}")
    assert code == 404


@pytest_twisted.ensureDeferred
async def test_legacy_download_honours_allow_remote(pair, start_federating, make_client):
    """Where the legacy download is served, allow_remote=false does not fetch another server's media."""
    a, _ = pair
    uri = await uploaded(make_client, a, b"legacy readers", "text/plain", None)
    server_name, media_id = media_path(uri)
    c = make_client(start_federating(extra_config="[media]\nlegacy_unauthenticated = true\n"))
    path = f"/_matrix/media/v3/download/{server_name}/{media_id}"
    refused = await c.request("GET", path, query={"allow_remote": "false"})
    assert (refused.code, refused.json["errcode"]) == (404, "M_NOT_FOUND")
    served = await c.request("GET", path)
    assert (served.code, served.raw) == (200, b"legacy readers")
