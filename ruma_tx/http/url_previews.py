"""
URL previews: C{GET /_matrix/client/v1/media/preview_url} and the
deprecated C{GET /_matrix/media/v3/preview_url} (both need an access
token; guests may not call them, as in Synapse).

Served only when C{[media] url_preview_enabled} is on. Off, the endpoints
do not exist (404 M_UNRECOGNIZED, the spec's answer for an endpoint a
server does not implement, and Synapse's when previews are disabled).
"""
from __future__ import annotations

from ruma_tx.http.media import MEDIA_PREFIXES
from ruma_tx.http.parsing import query_arg, query_int
from ruma_tx.http.routing import CLIENT_V1, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import missing_param
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.url_previews import UrlPreviewer


class UrlPreviewApi:
    def __init__(self, previewer: UrlPreviewer) -> None:
        self._previewer = previewer

    @endpoint("GET", "/media/preview_url", prefixes=CLIENT_V1)
    @endpoint("GET", "/preview_url", prefixes=MEDIA_PREFIXES)
    async def preview_url(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        url = query_arg(request, "url")
        if not url:
            raise missing_param("Missing url query parameter")
        # Checked, then not needed: only the current preview is kept, and
        # the spec lets a server answer a newer one than C{ts} asks for.
        query_int(request, "ts")
        return await self._previewer.preview(requester.user_id, url)
