"""
URL previews (spec: C{GET /_matrix/client/v1/media/preview_url}): the
server fetches a page, reads its Open Graph data and stores its image as
local media, so that the preview names the image by an C{mxc://} URI and
clients never fetch from the page's site themselves.

Every fetch goes through the outbound client, which never connects to a
blocked address range, and is bounded in size and time. Redirects are
followed by hand, a bounded number of times, each new URL checked again
(against the URL blocklist here, against the ranges by the client).

A preview is kept in memory for an hour per URL (as Synapse's in-memory
cache), and identical previews in flight are made once. Older versions are
not kept: a request for a point in time (C{ts}) gets the current preview,
which the spec allows ("may return a newer version").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar
from urllib.parse import urljoin

from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from ruma_tx.logs import logger
from ruma_tx.matrix.errors import (
    BadRequest,
    Forbidden,
    MatrixError,
    RemoteUnavailable,
    TooLarge,
)
from ruma_tx.matrix.media import essence, normalize_content_type
from ruma_tx.matrix.open_graph import page_open_graph
from ruma_tx.matrix.types import JsonDict
from ruma_tx.matrix.url_previews import (
    REDIRECT_CODES,
    UrlPattern,
    check_preview_url,
    is_html,
    is_previewable_image,
)
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.clock import Clock
from ruma_tx.services.concurrency import SingleFlight
from ruma_tx.services.ports.outbound import (
    OutboundBlocked,
    OutboundError,
    OutboundHttp,
    OutboundTooLarge,
)

log = logger(__name__)
T = TypeVar("T")

#: URLs whose preview is kept, and for how long.
CACHE_SIZE = 1000
CACHE_TTL_S = 3600.0
#: Redirects followed from one URL (browsers follow about 20).
MAX_REDIRECTS = 5
_ACCEPT = "text/html, application/xhtml+xml, image/*;q=0.9, */*;q=0.1"

#: Stores an image's bytes as local media of a user: C{(user_id, data,
#: content_type, filename)} to its C{mxc://} URI.
StoreImage = Callable[[str, bytes, str, str | None], Awaitable[str]]
#: An image's displayed width and height; raises L{MatrixError} for bytes
#: it cannot read as an image.
ImageSize = Callable[[bytes], Awaitable[tuple[int, int]]]


@dataclass(frozen=True)
class PreviewSettings:
    """
    @ivar max_bytes: the largest page or image fetched.
    @ivar timeout_s: the longest one fetch (with its redirects) may take.
    @ivar url_blocklist: URLs never fetched.
    """

    max_bytes: int
    timeout_s: float
    url_blocklist: tuple[UrlPattern, ...] = ()


@dataclass(frozen=True)
class _Fetched:
    """An answer to preview; C{url} is where it came from, after redirects."""

    url: str
    content_type: str | None
    body: bytes


class UrlPreviewer:
    """
    @param http: the outbound client.
    @param store_image: keeps a fetched image as local media.
    @param reactor: with C{pool}, parses pages off the reactor thread.
    """

    def __init__(self, *, http: OutboundHttp, store_image: StoreImage, image_size: ImageSize, clock: Clock,
                 reactor: IReactorFromThreads, pool: ThreadPool, settings: PreviewSettings) -> None:
        self._http = http
        self._store_image = store_image
        self._image_size = image_size
        self._clock = clock
        self._reactor = reactor
        self._pool = pool
        self._settings = settings
        # Per URL: when its preview goes stale, and the preview. Nothing else
        # invalidates an entry: a page that changes is seen an hour later.
        self._cache: LRUCache[str, tuple[float, JsonDict]] = LRUCache(CACHE_SIZE)
        self._making = SingleFlight()

    async def preview(self, user_id: str, url: str) -> JsonDict:
        """
        The Open Graph data of C{url} (of the image itself, for an image),
        its image stored as local media of C{user_id} (the first to ask).

        @raise MatrixError: 400 M_INVALID_PARAM for a URL that is not
            http(s); 403 M_FORBIDDEN for a blocked URL or address; 502
            (M_TOO_LARGE for an answer over the size limit, M_UNKNOWN
            otherwise) when the URL gives no answer to preview.
        """
        check_preview_url(url, self._settings.url_blocklist)
        cached = self._cache.get(url)
        if cached is not None and cached[0] > self._clock.seconds():
            return cached[1]
        return await self._making.run(url, lambda: self._make(user_id, url))

    async def _make(self, user_id: str, url: str) -> JsonDict:
        page = await self._fetch(url)
        if is_previewable_image(page.content_type):
            og = await self._image(user_id, page)
        elif is_html(page.content_type):
            og = dict(await self._in_thread(page_open_graph, page.body, page.content_type, page.url))
            await self._add_image(user_id, og)
        else:
            kind = essence(page.content_type or "none")
            raise RemoteUnavailable("M_UNKNOWN", f"Cannot preview content of type {kind}")
        self._cache[url] = (self._clock.seconds() + CACHE_TTL_S, og)
        return og

    async def _add_image(self, user_id: str, og: JsonDict) -> None:
        """
        Replace the page's C{og:image} URL (and what the page says of that
        image) with the image fetched and stored; a page whose image cannot
        be had is previewed without one (as Synapse does).
        """
        described = {key: og.pop(key) for key in list(og) if key.startswith("og:image")}
        image_url = described.get("og:image")
        if image_url is None:
            return
        try:
            og.update(await self._image(user_id, await self._fetch(image_url)))
        except MatrixError as e:
            log.info("previewing without its image {image_url}: {why}", image_url=image_url, why=e)
            return
        if "og:image:alt" in described:
            og["og:image:alt"] = described["og:image:alt"]

    async def _image(self, user_id: str, image: _Fetched) -> JsonDict:
        """Store an image; its preview fields (the spec's C{matrix:image:size} among them)."""
        if not is_previewable_image(image.content_type):
            raise RemoteUnavailable("M_UNKNOWN", "Not an image")
        content_type = normalize_content_type(image.content_type)
        try:
            uri = await self._store_image(user_id, image.body, content_type, None)
        except TooLarge:
            raise RemoteUnavailable("M_TOO_LARGE", "The image is larger than the largest upload") from None
        fields: JsonDict = {"og:image": uri, "og:image:type": content_type, "matrix:image:size": len(image.body)}
        try:
            fields["og:image:width"], fields["og:image:height"] = await self._image_size(image.body)
        except MatrixError:
            pass  # a format thumbnails are not made of, or broken: its size is unknown
        return fields

    async def _fetch(self, url: str) -> _Fetched:
        """
        The answer at C{url}, following redirects, within the size and time
        limits; only a 2xx answer is returned.
        """
        deadline = self._clock.seconds() + self._settings.timeout_s
        for _ in range(MAX_REDIRECTS + 1):
            try:
                check_preview_url(url, self._settings.url_blocklist)
            except BadRequest:
                raise RemoteUnavailable("M_UNKNOWN", "Redirected to a URL that cannot be previewed") from None
            remaining = deadline - self._clock.seconds()
            if remaining <= 0:
                raise RemoteUnavailable("M_UNKNOWN", "Could not fetch the URL: no answer in time")
            try:
                response = await self._http.request("GET", url, headers={"Accept": _ACCEPT}, timeout_s=remaining,
                                                    max_bytes=self._settings.max_bytes)
            except OutboundBlocked:
                # Synapse's words; it answers 502 for a host name that
                # resolves only to blocked addresses, 403 is the truth.
                raise Forbidden("M_FORBIDDEN", "IP address blocked") from None
            except OutboundTooLarge:
                raise RemoteUnavailable(
                    "M_TOO_LARGE", f"The content is larger than {self._settings.max_bytes} bytes") from None
            except OutboundError as e:
                raise RemoteUnavailable("M_UNKNOWN", f"Could not fetch the URL: {e.reason}") from None
            location = response.header("location")
            if response.code in REDIRECT_CODES and location:
                url = _redirect_target(url, location)
                continue
            if not 200 <= response.code < 300:
                raise RemoteUnavailable("M_UNKNOWN", f"The URL answered with status {response.code}")
            return _Fetched(url, response.header("content-type"), response.body)
        raise RemoteUnavailable("M_UNKNOWN", f"More than {MAX_REDIRECTS} redirects")

    async def _in_thread(self, fn: Callable[..., T], *args: object) -> T:
        return await deferToThreadPool(self._reactor, self._pool, fn, *args)


def _redirect_target(url: str, location: str) -> str:
    try:
        return urljoin(url, location)
    except ValueError:  # e.g. "http://[not-an-address"
        raise RemoteUnavailable("M_UNKNOWN", "Redirected to a URL that cannot be previewed") from None
