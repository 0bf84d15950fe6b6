"""
Thumbnails with Pillow, made in a dedicated, bounded thread pool (never on
the reactor thread, and never more images at once than the pool has
threads).

Only PNG, JPEG, GIF and WebP are ever decoded (C{Image.open(formats=...)}),
and an image's size is checked from its header before any pixel is
decoded, so a small file that unpacks into gigabytes (a "decompression
bomb") is refused with 413 M_TOO_LARGE, as the spec says of images too large
to thumbnail. A file that is not such an image, or is broken or truncated,
is 400 M_UNKNOWN (the spec's example error for "Cannot generate thumbnails
for the requested content"); neither is ever a 500.
"""
from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from typing import IO, Callable, TypeVar

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from ruma_tx.matrix.errors import BadRequest, TooLarge
from ruma_tx.matrix.media import ThumbnailSize, thumbnail_dimensions

T = TypeVar("T")

#: The only formats decoded.
SOURCE_FORMATS = ("PNG", "JPEG", "GIF", "WEBP")
#: EXIF orientations that swap width and height (rotations by 90 degrees).
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION = 0x0112
#: An animated thumbnail decodes every frame: frames x pixels may be at most
#: this many times the pixel cap, and at most this many frames are kept.
ANIMATION_BUDGET = 4
MAX_FRAMES = 300
JPEG_QUALITY = 80


@dataclass(frozen=True)
class Thumbnail:
    """A generated thumbnail: its encoded bytes and their hash."""

    data: bytes
    content_type: str
    sha256: str


def cannot_thumbnail() -> BadRequest:
    return BadRequest("M_UNKNOWN", "Cannot generate thumbnails for the requested content")


def _too_large() -> TooLarge:
    return TooLarge("M_TOO_LARGE", "Content is too large to thumbnail")


def _open(path: str | IO[bytes], max_pixels: int) -> Image.Image:
    """Open an image (its header only) of an allowed format and size."""
    try:
        image = Image.open(path, formats=SOURCE_FORMATS)
    except Image.DecompressionBombError:
        raise _too_large() from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise cannot_thumbnail() from None
    if image.width * image.height > max_pixels:
        image.close()
        raise _too_large()
    return image


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a malformed EXIF block is not worth refusing the image for
        return 1
    return value if isinstance(value, int) else 1


def displayed_size(image: Image.Image) -> tuple[int, int]:
    """The image's size as shown, its EXIF orientation applied."""
    width, height = image.size
    return (height, width) if _orientation(image) in _SWAPPING_ORIENTATIONS else (width, height)


def read_image_size(path: str | IO[bytes], max_pixels: int) -> tuple[int, int]:
    """The displayed size of the image at C{path} (its header only is read)."""
    with _open(path, max_pixels) as image:
        return displayed_size(image)


def make_thumbnail(path: str, size: ThumbnailSize, animated: bool, max_pixels: int) -> Thumbnail:
    """
    The thumbnail of the image at C{path} for a configured C{size}:
    animated (WebP) when asked and the image is animated, else a still
    image, JPEG for a JPEG and PNG for the others, upright.
    """
    with _open(path, max_pixels) as image:
        width, height = displayed_size(image)
        target = thumbnail_dimensions(size, width, height)
        try:
            frames = getattr(image, "n_frames", 1) if animated else 1
            if frames > 1 and frames * image.width * image.height <= max_pixels * ANIMATION_BUDGET:
                data, content_type = _animated(image, size.method, target)
            else:
                data, content_type = _still(image, size.method, target, (width, height))
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
            raise cannot_thumbnail() from None
    return Thumbnail(data, content_type, hashlib.sha256(data).hexdigest())


def _fit(image: Image.Image, method: str, target: tuple[int, int]) -> Image.Image:
    """Resize an upright image to C{target}: scaled to it, or scaled to cover it and cut to it."""
    if image.size == target:
        return image
    if method == "scale":
        return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    width, height = image.size
    factor = max(target[0] / width, target[1] / height)
    covering = (max(target[0], round(width * factor)), max(target[1], round(height * factor)))
    if covering != image.size:
        image = image.resize(covering, Image.Resampling.LANCZOS, reducing_gap=3.0)
    left = (covering[0] - target[0]) // 2
    top = (covering[1] - target[1]) // 2
    return image.crop((left, top, left + target[0], top + target[1]))


def _still(image: Image.Image, method: str, target: tuple[int, int],
           displayed: tuple[int, int]) -> tuple[bytes, str]:
    is_jpeg = image.format == "JPEG"
    if is_jpeg:
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still covers
        # what is needed: a 4000x3000 photo then decodes as 1000x750.
        factor = max(target[0] / displayed[0], target[1] / displayed[1])
        needed = (math.ceil(image.width * factor), math.ceil(image.height * factor))
        image.draft("RGB", needed)
    image.seek(0)
    image.load()
    upright = ImageOps.exif_transpose(image)
    if is_jpeg:
        upright = upright.convert("RGB") if upright.mode not in ("RGB", "L") else upright
    elif upright.mode not in ("RGB", "RGBA", "L", "LA"):
        upright = upright.convert("RGBA")
    thumbnail = _fit(upright, method, target)
    out = io.BytesIO()
    if is_jpeg:
        thumbnail.save(out, "JPEG", quality=JPEG_QUALITY)
        return out.getvalue(), "image/jpeg"
    thumbnail.save(out, "PNG")
    return out.getvalue(), "image/png"


def _animated(image: Image.Image, method: str, target: tuple[int, int]) -> tuple[bytes, str]:
    frames: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(image):
        frames.append(_fit(frame.convert("RGBA"), method, target))
        durations.append(int(frame.info.get("duration", 100)) or 100)
        if len(frames) >= MAX_FRAMES:
            break
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], duration=durations,
                   loop=int(image.info.get("loop", 0)), quality=JPEG_QUALITY)
    return out.getvalue(), "image/webp"


class Thumbnailer:
    """
    Runs the image work in its own thread pool, whose size bounds how many
    images are decoded at once.

    @param max_pixels: the largest image (width x height) decoded.
    """

    def __init__(self, reactor: IReactorFromThreads, pool: ThreadPool, max_pixels: int) -> None:
        self._reactor = reactor
        self._pool = pool
        self._max_pixels = max_pixels

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await deferToThreadPool(self._reactor, self._pool, fn, *args)

    async def image_size(self, path: str) -> tuple[int, int]:
        """
        @raise MatrixError: 413 M_TOO_LARGE, 400 M_UNKNOWN (see the module).
        """
        return await self._run(read_image_size, path, self._max_pixels)

    async def image_size_of(self, data: bytes) -> tuple[int, int]:
        """
        The displayed size of an image held in memory (a URL preview's).

        @raise MatrixError: as L{image_size}.
        """
        return await self._run(read_image_size, io.BytesIO(data), self._max_pixels)

    async def make(self, path: str, size: ThumbnailSize, animated: bool) -> Thumbnail:
        """
        @raise MatrixError: 413 M_TOO_LARGE, 400 M_UNKNOWN (see the module).
        """
        return await self._run(make_thumbnail, path, size, animated, self._max_pixels)
