"""The admin API's server-wide endpoints (Synapse's "Server Version")."""
from __future__ import annotations

from ruma_tx.http.routing import SYNAPSE_ADMIN, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester


class ServerAdminApi:
    """@param version: this software's version, as C{server_version}."""

    def __init__(self, version: str) -> None:
        self._version = version

    @endpoint("GET", "/v1/server_version", prefixes=SYNAPSE_ADMIN, admin=True)
    async def server_version(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return {"server_version": f"ruma_tx {self._version}"}
