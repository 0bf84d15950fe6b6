"""The admin API's server-wide endpoints (Synapse's "Server Version")."""
from __future__ import annotations

from ruma_tx.http.routing import SYNAPSE_ADMIN, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict


class ServerAdminApi:
    """@param version: this software's version, as C{server_version}."""

    def __init__(self, version: str) -> None:
        self._version = version

    # No token needed, as Synapse: the admin UIs show it on their login page.
    @endpoint("GET", "/v1/server_version", auth="none", prefixes=SYNAPSE_ADMIN)
    async def server_version(self, request: MatrixRequest, requester: None) -> JsonDict:
        return {"server_version": f"ruma_tx {self._version}"}
