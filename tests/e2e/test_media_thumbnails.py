"""
Thumbnails through the real daemon: the configured sizes, crop and scale,
EXIF orientation, animation, and images that are broken or too large.
"""
import io
import struct
import zlib

import pytest
import pytest_twisted
from media_helpers import animated_gif, image_bytes, opened, stored_files, thumbnail, upload
from PIL import Image


@pytest.fixture(scope="module")
def server(start_homeserver):
    """A daemon of its own, so the files its thumbnails add can be counted."""
    return start_homeserver("[rate_limits]\nenabled = false\n")


@pytest.fixture
def media_client(server, make_client):
    return make_client(server)


def noisy_jpeg(size=(1000, 750), **options) -> bytes:
    """A JPEG of random pixels (large, and broken wherever it is cut)."""
    image = Image.frombytes("RGB", size, bytes((i * 7919) % 251 for i in range(size[0] * size[1] * 3)))
    out = io.BytesIO()
    image.save(out, "JPEG", **options)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims C{width} x C{height} pixels (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
            + chunk(b"IEND", b""))


@pytest_twisted.ensureDeferred
async def test_requests_get_the_best_configured_size(media_client):
    """Crop gives exactly the configured box; scale keeps the aspect; each request gets the best configured size."""
    token = (await media_client.register())["access_token"]
    uri = await upload(media_client, token, noisy_jpeg(), "image/jpeg", "photo.jpg")
    for query, size in (
        ({"width": 32, "height": 32, "method": "crop"}, (32, 32)),
        ({"width": 90, "height": 60, "method": "crop"}, (96, 96)),
        ({"width": 320, "height": 240, "method": "scale"}, (320, 240)),
        ({"width": 300, "height": 300}, (320, 240)),
        ({"width": 500, "height": 400, "method": "scale"}, (640, 480)),
        ({"width": 5000, "height": 5000, "method": "scale"}, (800, 600)),
    ):
        response = await thumbnail(media_client, token, uri, **query)
        assert response.code == 200, (query, response)
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["content-disposition"] == 'inline; filename="thumbnail.jpg"'
        assert response.headers["x-content-type-options"] == "nosniff"
        image = opened(response.raw)
        assert (image.format, image.size) == ("JPEG", size), query


@pytest_twisted.ensureDeferred
async def test_a_thumbnail_is_made_once_and_kept(media_client, server):
    """The second request for a size reads the kept thumbnail: same bytes, no new file."""
    token = (await media_client.register())["access_token"]
    uri = await upload(media_client, token, noisy_jpeg((640, 640)), "image/jpeg")
    first = await thumbnail(media_client, token, uri, width=96, height=96, method="crop")
    files = stored_files(server)
    second = await thumbnail(media_client, token, uri, width=96, height=96, method="crop")
    assert second.code == 200 and second.raw == first.raw
    assert stored_files(server) == files


@pytest_twisted.ensureDeferred
async def test_small_images_are_never_upscaled(media_client):
    """An image smaller than the request keeps its size; a PNG gives a PNG."""
    token = (await media_client.register())["access_token"]
    uri = await upload(media_client, token, image_bytes((20, 10)), "image/png")
    response = await thumbnail(media_client, token, uri, width=96, height=96, method="crop")
    assert response.headers["content-type"] == "image/png"
    assert opened(response.raw).size == (20, 10)


@pytest_twisted.ensureDeferred
async def test_an_exif_rotated_photo_comes_out_upright(media_client):
    """A landscape-stored JPEG whose EXIF says "rotate 90 degrees" gives a portrait, upright thumbnail."""
    token = (await media_client.register())["access_token"]
    stored = Image.new("RGB", (400, 200), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 200, 200))  # left half red: on top once rotated
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = io.BytesIO()
    stored.save(out, "JPEG", exif=exif.tobytes(), quality=95)
    uri = await upload(media_client, token, out.getvalue(), "image/jpeg")
    response = await thumbnail(media_client, token, uri, width=320, height=240, method="scale")
    image = opened(response.raw).convert("RGB")
    assert image.size == (120, 240)
    top, bottom = image.getpixel((60, 20)), image.getpixel((60, 220))
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


@pytest_twisted.ensureDeferred
async def test_animated_thumbnails_only_when_asked(media_client):
    """An animated GIF gives an animated WebP with animated=true, and a still image otherwise."""
    token = (await media_client.register())["access_token"]
    uri = await upload(media_client, token, animated_gif(), "image/gif")
    moving = await thumbnail(media_client, token, uri, width=96, height=96, method="crop", animated=True)
    assert moving.headers["content-type"] == "image/webp"
    image = opened(moving.raw)
    assert (image.format, image.size, image.n_frames) == ("WEBP", (96, 96), 4)
    for query in ({"animated": False}, {}):
        still = await thumbnail(media_client, token, uri, width=96, height=96, method="crop", **query)
        assert still.headers["content-type"] == "image/png"
        assert getattr(opened(still.raw), "n_frames", 1) == 1
    photo = await upload(media_client, token, noisy_jpeg((300, 200)), "image/jpeg")
    plain = await thumbnail(media_client, token, photo, width=32, height=32, method="crop", animated=True)
    assert plain.headers["content-type"] == "image/jpeg"


@pytest_twisted.ensureDeferred
async def test_decompression_bombs_are_refused_before_decoding(media_client):
    """A small PNG claiming 40 Mpx (over the 32 Mpx cap) or 2.5 Gpx is 413 M_TOO_LARGE, and the server lives on."""
    token = (await media_client.register())["access_token"]
    for width, height in ((8000, 5000), (50_000, 50_000)):
        uri = await upload(media_client, token, png_claiming(width, height), "image/png")
        response = await thumbnail(media_client, token, uri, width=32, height=32, method="crop")
        assert (response.code, response.json["errcode"]) == (413, "M_TOO_LARGE"), (width, height)
    fine = await upload(media_client, token, image_bytes(), "image/png")
    assert (await thumbnail(media_client, token, fine, width=32, height=32)).code == 200


@pytest_twisted.ensureDeferred
async def test_broken_and_non_image_files_are_400(media_client):
    """A truncated JPEG, text and a PDF cannot be thumbnailed: 400 M_UNKNOWN, never a 500."""
    token = (await media_client.register())["access_token"]
    whole = noisy_jpeg((800, 600))
    for data, content_type in ((whole[: len(whole) // 2], "image/jpeg"), (b"hello", "text/plain"),
                               (b"%PDF-1.4\n%%EOF\n", "application/pdf")):
        uri = await upload(media_client, token, data, content_type)
        response = await thumbnail(media_client, token, uri, width=32, height=32)
        assert (response.code, response.json["errcode"]) == (400, "M_UNKNOWN"), content_type


@pytest_twisted.ensureDeferred
async def test_thumbnail_parameters_are_checked(media_client):
    """Missing or bad width, height or method are 400; an unknown media id is 404."""
    token = (await media_client.register())["access_token"]
    uri = await upload(media_client, token, image_bytes(), "image/png")
    missing = await thumbnail(media_client, token, uri, width=32)
    assert (missing.code, missing.json["errcode"]) == (400, "M_MISSING_PARAM")
    bad = await thumbnail(media_client, token, uri, width=32, height=32, method="stretch")
    assert (bad.code, bad.json["errcode"]) == (400, "M_INVALID_PARAM")
    unknown = await thumbnail(media_client, token, "mxc://test.local/NoSuchMedia", width=32, height=32)
    assert (unknown.code, unknown.json["errcode"]) == (404, "M_NOT_FOUND")
