"""
The content repository through the real daemon: uploads (direct and
asynchronous), downloads with their safe-serving headers and ranges, size
limits, quotas, deduplication, and the legacy unauthenticated endpoints.
"""
import hashlib
import os
import time

import pytest
import pytest_twisted
from media_helpers import (
    CSP,
    MEDIA_V1,
    UPLOAD,
    chunked,
    download,
    image_bytes,
    media_path,
    raw_request,
    stored_copies,
    stored_files,
    temporary_files,
    upload,
)
from polling import within_deadline
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

#: The limits of the "limited" daemon.
MAX_UPLOAD = 200_000
QUOTA = 300_000


@pytest.fixture(scope="module")
def limited(start_homeserver):
    """A daemon with small media limits, a quota, short-lived pending ids and the legacy endpoints on."""
    return start_homeserver(
        "[rate_limits]\nenabled = false\n"
        f"[media]\nmax_upload_size = {MAX_UPLOAD}\nmax_bytes_per_user = {QUOTA}\n"
        "max_pending_uploads = 2\nunused_expiration_ms = 1500\nlegacy_unauthenticated = true\n")


@pytest.fixture
def limited_client(limited, make_client):
    return make_client(limited)


async def settle() -> None:
    """Give the daemon a moment to finish with a connection the test dropped."""
    await deferLater(reactor, 0.5, lambda: None)


@pytest_twisted.ensureDeferred
async def test_upload_then_download_gives_the_same_bytes_with_safe_headers(client):
    """An uploaded PNG downloads byte for byte, inline, with its file name and the sandboxing headers."""
    user = await client.register()
    data = image_bytes()
    uri = await upload(client, user["access_token"], data, "image/png", "cat.png")
    assert uri.startswith("mxc://test.local/")
    response = await download(client, user["access_token"], uri)
    assert response.code == 200 and response.raw == data
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"] == 'inline; filename="cat.png"'
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    renamed = await download(client, user["access_token"], uri, file_name="other.png")
    assert renamed.raw == data
    assert renamed.headers["content-disposition"] == 'inline; filename="other.png"'


@pytest_twisted.ensureDeferred
async def test_any_user_downloads_and_guests_read_but_do_not_upload(client):
    """Media is readable by any user and by guests; guests may not upload; no token is 401."""
    alice, bob = await client.register(), await client.register()
    guest = await client.register_guest()
    uri = await upload(client, alice["access_token"], b"shared notes", "text/plain")
    for token in (bob["access_token"], guest["access_token"]):
        assert (await download(client, token, uri)).raw == b"shared notes"
    anonymous = await download(client, None, uri)
    assert (anonymous.code, anonymous.json["errcode"]) == (401, "M_MISSING_TOKEN")
    refused = await client.request("POST", UPLOAD, b"x", token=guest["access_token"],
                                   headers={"Content-Type": "text/plain"})
    assert (refused.code, refused.json["errcode"]) == (403, "M_GUEST_ACCESS_FORBIDDEN")
    no_token = await client.request("POST", UPLOAD, b"x", headers={"Content-Type": "text/plain"})
    assert (no_token.code, no_token.json["errcode"]) == (401, "M_MISSING_TOKEN")


@pytest_twisted.ensureDeferred
async def test_only_safe_types_are_inline_and_active_content_is_never_served_as_such(client):
    """
    Safe types are inline; others are attachments; HTML, SVG and scripts,
    whether declared or found in the bytes, and bytes that contradict a
    declared image type, are served as application/octet-stream.
    """
    token = (await client.register())["access_token"]
    cases = [
        (b"just text", "text/plain", "text/plain", "inline"),
        (b"%PDF-1.4\n%%EOF\n", "application/pdf", "application/pdf", "attachment"),
        (b"<html><script>alert(1)</script></html>", "text/html", "application/octet-stream", "attachment"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/svg+xml",
         "application/octet-stream", "attachment"),
        (b"alert(document.cookie)", "application/javascript", "application/octet-stream", "attachment"),
        (b"<html><body onload=alert(1)></body></html>", "text/plain", "application/octet-stream", "attachment"),
        (os.urandom(2048), "image/png", "application/octet-stream", "attachment"),
        (image_bytes(fmt="JPEG"), "image/jpeg", "image/jpeg", "inline"),
        (b"PK\x03\x04 not much of a zip", "application/zip", "application/zip", "attachment"),
    ]
    for data, declared, served, disposition in cases:
        uri = await upload(client, token, data, declared)
        response = await download(client, token, uri)
        assert response.raw == data
        assert (response.headers["content-type"], response.headers["content-disposition"]) == (
            served, disposition), declared


@pytest_twisted.ensureDeferred
async def test_file_names_are_encoded_as_rfc_6266_says(client):
    """A non-ASCII file name comes back as filename*=utf-8'' with its UTF-8 percent-encoded; quotes are escaped."""
    token = (await client.register())["access_token"]
    uri = await upload(client, token, b"%PDF-1.4\n", "application/pdf", "résumé 📄.pdf")
    response = await download(client, token, uri)
    assert response.headers["content-disposition"] == (
        "attachment; filename*=utf-8''r%C3%A9sum%C3%A9%20%F0%9F%93%84.pdf")
    quoted = await upload(client, token, b"hi", "text/plain", 'say "hi".txt')
    response = await download(client, token, quoted)
    assert response.headers["content-disposition"] == 'inline; filename="say \\"hi\\".txt"'


@pytest_twisted.ensureDeferred
async def test_ranges_are_honoured(client):
    """One range gives 206 with its bytes; a range past the end is 416; several ranges give the whole file."""
    token = (await client.register())["access_token"]
    data = os.urandom(1000)
    uri = await upload(client, token, data)
    for header, first, last in (("bytes=10-19", 10, 19), ("bytes=-5", 995, 999), ("bytes=990-", 990, 999),
                                ("bytes=900-5000", 900, 999)):
        part = await download(client, token, uri, headers={"Range": header})
        assert part.code == 206, header
        assert part.raw == data[first:last + 1]
        assert part.headers["content-range"] == f"bytes {first}-{last}/1000"
    past = await download(client, token, uri, headers={"Range": "bytes=5000-"})
    assert (past.code, past.json["errcode"], past.headers["content-range"]) == (416, "M_UNKNOWN", "bytes */1000")
    several = await download(client, token, uri, headers={"Range": "bytes=0-1,5-6"})
    assert (several.code, several.raw) == (200, data)


@pytest_twisted.ensureDeferred
async def test_an_empty_file_is_media_too(client):
    """An empty upload downloads as an empty body; any range of it is 416."""
    token = (await client.register())["access_token"]
    uri = await upload(client, token, b"", "text/plain", "empty.txt")
    # openapi-core takes an empty body for a missing one: not validated.
    response = await download(client, token, uri, validate=False)
    assert (response.code, response.raw, response.headers["content-type"]) == (200, b"", "text/plain")
    ranged = await download(client, token, uri, headers={"Range": "bytes=0-"})
    assert (ranged.code, ranged.headers["content-range"]) == (416, "bytes */0")


@pytest_twisted.ensureDeferred
async def test_a_large_file_streams_whole(client):
    """An 8 MB upload (spooled to disk, streamed back in chunks) downloads intact."""
    token = (await client.register())["access_token"]
    data = os.urandom(8 * 1024 * 1024)
    uri = await upload(client, token, data, "video/mp4", "clip.mp4")
    response = await download(client, token, uri)
    assert response.code == 200 and hashlib.sha256(response.raw).digest() == hashlib.sha256(data).digest()
    assert response.headers["content-disposition"] == 'inline; filename="clip.mp4"'


@pytest_twisted.ensureDeferred
async def test_identical_uploads_are_stored_once(client, homeserver):
    """Two uploads of the same bytes get two media ids that share one file on disk."""
    token = (await client.register())["access_token"]
    data = os.urandom(50_000)
    first = await upload(client, token, data, "application/zip", "a.zip")
    second = await upload(client, token, data, "application/zip", "b.zip")
    assert first != second
    assert len(stored_copies(homeserver, data)) == 1
    assert (await download(client, token, first)).headers["content-disposition"].endswith('"a.zip"')
    assert (await download(client, token, second)).raw == data


@pytest_twisted.ensureDeferred
async def test_config_gives_the_upload_limit(client, limited_client):
    """GET /media/config (and the legacy /media/v3/config) give m.upload.size."""
    for each, limit in ((client, 50 * 1024 * 1024), (limited_client, MAX_UPLOAD)):
        token = (await each.register())["access_token"]
        for path in (f"{MEDIA_V1}/config", "/_matrix/media/v3/config"):
            response = await each.request("GET", path, token=token)
            assert response.code == 200 and response.json == {"m.upload.size": limit}


@pytest_twisted.ensureDeferred
async def test_an_upload_over_the_limit_is_413_and_stores_nothing(limited_client, limited):
    """Over max_upload_size, with a Content-Length or streamed without one: 413 M_TOO_LARGE, nothing kept."""
    token = (await limited_client.register())["access_token"]
    before = stored_files(limited)
    declared = await limited_client.request("POST", UPLOAD, os.urandom(MAX_UPLOAD + 1), token=token,
                                            headers={"Content-Type": "application/octet-stream"})
    assert (declared.code, declared.json["errcode"]) == (413, "M_TOO_LARGE")
    head = (f"POST {UPLOAD} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
    answer = await within_deadline(raw_request(limited.port, head, chunked(os.urandom(3 * MAX_UPLOAD))))
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large", answer[:200]
    assert b'"M_TOO_LARGE"' in rest
    await settle()
    assert stored_files(limited) == before and temporary_files(limited) == []
    fits = await upload(limited_client, token, os.urandom(MAX_UPLOAD), "application/octet-stream")
    assert fits.startswith("mxc://")


@pytest_twisted.ensureDeferred
async def test_a_streamed_upload_within_the_limit_is_stored(client):
    """A chunked upload (no Content-Length) under the limit is stored whole."""
    token = (await client.register())["access_token"]
    data = os.urandom(300_000)
    head = (f"POST {UPLOAD}?filename=streamed.bin HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    answer = await within_deadline(raw_request(client.server.port, head, chunked(data)))
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    uri = answer.split(b'"content_uri":"', 1)[1].split(b'"', 1)[0].decode()
    assert (await download(client, token, uri)).raw == data


@pytest_twisted.ensureDeferred
async def test_a_truncated_upload_stores_nothing(limited_client, limited):
    """A client that hangs up half-way through its body leaves no file behind, temporary or stored."""
    token = (await limited_client.register())["access_token"]
    before = stored_files(limited)
    head = (f"POST {UPLOAD} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {MAX_UPLOAD}\r\n\r\n")
    await within_deadline(raw_request(limited.port, head, [os.urandom(MAX_UPLOAD // 2)], hang_up=True))
    await settle()
    assert stored_files(limited) == before and temporary_files(limited) == []


@pytest_twisted.ensureDeferred
async def test_the_quota_refuses_uploads_past_it(limited_client, limited):
    """Past max_bytes_per_user an upload is 403 M_FORBIDDEN (the spec's code) and stores nothing; others may upload."""
    alice, bob = await limited_client.register(), await limited_client.register()
    await upload(limited_client, alice["access_token"], os.urandom(QUOTA // 2))
    await upload(limited_client, alice["access_token"], os.urandom(QUOTA // 2))
    before = stored_files(limited)
    refused = await limited_client.request("POST", UPLOAD, os.urandom(1000), token=alice["access_token"],
                                           headers={"Content-Type": "application/octet-stream"})
    assert (refused.code, refused.json["errcode"]) == (403, "M_FORBIDDEN")
    assert stored_files(limited) == before
    await upload(limited_client, bob["access_token"], os.urandom(1000))


@pytest_twisted.ensureDeferred
async def test_asynchronous_upload(client):
    """
    /create reserves an id; only its creator may upload to it, once (409
    after); the content then downloads like any other.
    """
    alice, bob = await client.register(), await client.register()
    created = await client.request("POST", "/_matrix/media/v1/create", token=alice["access_token"])
    assert created.code == 200
    uri, expires_at = created.json["content_uri"], created.json["unused_expires_at"]
    assert expires_at > time.time() * 1000 + 23 * 3600 * 1000  # Synapse's 24 hours
    server_name, media_id = media_path(uri)
    path = f"{UPLOAD}/{server_name}/{media_id}"
    headers = {"Content-Type": "text/plain"}
    stranger = await client.request("PUT", path, b"bob's", token=bob["access_token"], headers=headers)
    assert (stranger.code, stranger.json["errcode"]) == (403, "M_FORBIDDEN")
    done = await client.request("PUT", path, b"alice's", token=alice["access_token"], headers=headers,
                                query={"filename": "note.txt"})
    assert (done.code, done.json) == (200, {})
    response = await download(client, bob["access_token"], uri)
    assert response.raw == b"alice's"
    assert response.headers["content-disposition"] == 'inline; filename="note.txt"'
    again = await client.request("PUT", path, b"again", token=alice["access_token"], headers=headers)
    assert (again.code, again.json["errcode"]) == (409, "M_CANNOT_OVERWRITE_MEDIA")
    unknown = await client.request("PUT", f"{UPLOAD}/{server_name}/NoSuchMediaId", b"x",
                                   token=alice["access_token"], headers=headers)
    assert (unknown.code, unknown.json["errcode"]) == (404, "M_NOT_FOUND")


@pytest_twisted.ensureDeferred
async def test_a_download_of_a_pending_id_waits_for_its_upload(client):
    """A download of a created id answers 504 M_NOT_YET_UPLOADED after timeout_ms, or the content once uploaded."""
    token = (await client.register())["access_token"]
    uri = (await client.request("POST", "/_matrix/media/v1/create", token=token)).json["content_uri"]
    early = await download(client, token, uri, query={"timeout_ms": "200"})
    assert (early.code, early.json["errcode"]) == (504, "M_NOT_YET_UPLOADED")
    waiting = defer.ensureDeferred(download(client, token, uri, query={"timeout_ms": "60000"}))
    await deferLater(reactor, 0.5, lambda: None)
    assert not waiting.called
    server_name, media_id = media_path(uri)
    put = await client.request("PUT", f"{UPLOAD}/{server_name}/{media_id}", b"worth the wait", token=token,
                               headers={"Content-Type": "text/plain"})
    assert put.code == 200
    arrived = await within_deadline(waiting)
    assert (arrived.code, arrived.raw) == (200, b"worth the wait")


@pytest_twisted.ensureDeferred
async def test_pending_ids_are_capped_and_expire(limited_client):
    """Past max_pending_uploads /create is 429 M_LIMIT_EXCEEDED; an unused id expires, and is then 404."""
    token = (await limited_client.register())["access_token"]
    created = [await limited_client.request("POST", "/_matrix/media/v1/create", token=token) for _ in range(2)]
    assert [c.code for c in created] == [200, 200]
    capped = await limited_client.request("POST", "/_matrix/media/v1/create", token=token)
    assert (capped.code, capped.json["errcode"]) == (429, "M_LIMIT_EXCEEDED")
    assert 0 < capped.json["retry_after_ms"] <= 1500
    await deferLater(reactor, 1.6, lambda: None)  # past unused_expiration_ms
    server_name, media_id = media_path(created[0].json["content_uri"])
    late = await limited_client.request("PUT", f"{UPLOAD}/{server_name}/{media_id}", b"late", token=token,
                                        headers={"Content-Type": "text/plain"})
    assert (late.code, late.json["errcode"]) == (404, "M_NOT_FOUND")
    gone = await download(limited_client, token, created[1].json["content_uri"])
    assert (gone.code, gone.json["errcode"]) == (404, "M_NOT_FOUND")
    assert (await limited_client.request("POST", "/_matrix/media/v1/create", token=token)).code == 200


@pytest_twisted.ensureDeferred
async def test_unknown_remote_and_malformed_media_are_404(client):
    """An unknown id, another server's media (this daemon does not federate) and a malformed id are 404 M_NOT_FOUND."""
    token = (await client.register())["access_token"]
    uri = await upload(client, token, b"here")
    _, media_id = media_path(uri)
    for server_name, wanted in (("test.local", "NoSuchMedia"), ("elsewhere.example", media_id),
                                ("test.local", "bad.id")):
        response = await client.request("GET", f"{MEDIA_V1}/download/{server_name}/{wanted}", token=token)
        assert (response.code, response.json["errcode"]) == (404, "M_NOT_FOUND"), (server_name, wanted)


@pytest_twisted.ensureDeferred
async def test_legacy_unauthenticated_endpoints_are_frozen_by_default(client, limited_client):
    """/_matrix/media/v3/download and /thumbnail serve nothing by default, and everything when configured."""
    for each, served in ((client, False), (limited_client, True)):
        token = (await each.register())["access_token"]
        data = image_bytes()
        server_name, media_id = media_path(await upload(each, token, data, "image/png"))
        legacy = await each.request("GET", f"/_matrix/media/v3/download/{server_name}/{media_id}")
        thumb = await each.request("GET", f"/_matrix/media/v3/thumbnail/{server_name}/{media_id}",
                                   query={"width": "32", "height": "32"})
        if served:
            assert (legacy.code, legacy.raw) == (200, data)
            assert thumb.code == 200 and thumb.headers["content-type"] == "image/png"
        else:
            assert (legacy.code, legacy.json["errcode"]) == (404, "M_NOT_FOUND")
            assert (thumb.code, thumb.json["errcode"]) == (404, "M_NOT_FOUND")
