"""GET /.well-known/matrix/support (spec: "Server Discovery", v1.10)."""
from __future__ import annotations

from ruma_tx.http.routing import NO_PREFIX, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import not_found
from ruma_tx.matrix.types import JsonDict


class SupportApi:
    """
    @param support: the body to serve (built from C{[well_known]}), or
        C{None}: the spec's 404 "No server support information available".
    """

    def __init__(self, support: JsonDict | None) -> None:
        self._support = support

    @endpoint("GET", "/.well-known/matrix/support", auth="none", prefixes=NO_PREFIX)
    async def support(self, request: MatrixRequest, requester: None) -> JsonDict:
        if self._support is None:
            raise not_found("No server support information available")
        return self._support
