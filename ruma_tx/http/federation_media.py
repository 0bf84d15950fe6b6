"""
The federation media endpoints (spec: Server-Server API, "Content
Repository"): other servers download this server's media, and thumbnails
of it, as C{multipart/mixed} answers, an empty JSON metadata part then
the bytes. Only this server's own media is served: what it keeps of other
servers' is theirs to serve (404 M_NOT_FOUND), and quarantined, deleted
or expired media is not found, as for clients.
"""
from __future__ import annotations

import secrets

from ruma_tx.http.media import THUMBNAIL_NAMES, download_timeout_ms, stream_media
from ruma_tx.http.parsing import query_arg, query_bool
from ruma_tx.http.routing import FEDERATION_V1, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.media import OCTET_STREAM, content_disposition, parse_thumbnail_request
from ruma_tx.matrix.multipart import media_multipart_head, media_multipart_tail, multipart_content_type
from ruma_tx.services.media import MediaRepository


class FederationMediaApi:
    """
    @param media: the L{ruma_tx.services.media.MediaRepository}.
    @param server_name: this server's name (whose media is served).
    """

    def __init__(self, media: MediaRepository, server_name: str) -> None:
        self._media = media
        self._server_name = server_name

    @endpoint("GET", "/media/download/<media_id>", auth="server", prefixes=FEDERATION_V1)
    async def download(self, request: MatrixRequest, origin: str, media_id: str) -> bytes:
        media = await self._media.get_content(self._server_name, media_id, download_timeout_ms(request))
        assert media.sha256 is not None and media.length is not None
        content_type = media.content_type or OCTET_STREAM
        return await self._send(request, content_type, content_disposition(content_type, media.upload_name),
                                media.sha256, media.length, None)

    @endpoint("GET", "/media/thumbnail/<media_id>", auth="server", prefixes=FEDERATION_V1)
    async def thumbnail(self, request: MatrixRequest, origin: str, media_id: str) -> bytes:
        width, height, method = parse_thumbnail_request(
            query_arg(request, "width"), query_arg(request, "height"), query_arg(request, "method"))
        answer = await self._media.thumbnail(self._server_name, media_id, width, height, method,
                                             query_bool(request, "animated"), download_timeout_ms(request))
        disposition = content_disposition(answer.content_type, THUMBNAIL_NAMES.get(answer.content_type))
        return await self._send(request, answer.content_type, disposition, answer.sha256, answer.length,
                                answer.data)

    async def _send(self, request: MatrixRequest, content_type: str, disposition: str, sha256: str,
                    length: int, data: bytes | None) -> bytes:
        """
        The multipart answer around the media: C{data}, or the stored file
        of C{sha256}, streamed.
        """
        boundary = secrets.token_hex(16)
        head = media_multipart_head(boundary, content_type, disposition)
        tail = media_multipart_tail(boundary)
        request.setHeader(b"Content-Type", multipart_content_type(boundary).encode("ascii"))
        request.setHeader(b"Content-Length", str(len(head) + length + len(tail)).encode("ascii"))
        if data is not None:
            return head + data + tail
        request.write(head)
        if length > 0:
            reader = await self._media.open(sha256)
            try:
                await stream_media(request, reader, length)
            finally:
                await reader.close()
        return tail
