"""
The key endpoints (spec: server-server-api.md "Retrieving server keys"):
our own keys, and other servers' keys relayed as a notary.
"""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, query_int, read_json_object
from ruma_tx.http.routing import KEY_V2, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import bad_json, invalid_param
from ruma_tx.matrix.federation_auth import is_json_int
from ruma_tx.matrix.identifiers import is_valid_server_name
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.key_server import KeyServer


class FederationKeysApi:
    """
    @param keys: the L{ruma_tx.services.key_server.KeyServer}.
    """

    def __init__(self, keys: KeyServer) -> None:
        self._keys = keys

    # Key requests are unsigned: a server fetching our keys cannot yet verify anything.
    @endpoint("GET", "/server", auth="none", prefixes=KEY_V2)
    async def own_keys(self, request: MatrixRequest, origin: None) -> JsonDict:
        return self._keys.own_keys()

    @endpoint("POST", "/query", auth="none", prefixes=KEY_V2)
    async def query(self, request: MatrixRequest, origin: None) -> JsonDict:
        wanted = get_field(read_json_object(request), "server_keys", dict)
        criteria: dict[str, dict[str, int | None]] = {}
        for server_name, keys in wanted.items():
            if not is_valid_server_name(server_name) or not isinstance(keys, dict):
                raise bad_json("server_keys must map server names to objects")
            criteria[server_name] = {}
            for key_id, criterion in keys.items():
                minimum = criterion.get("minimum_valid_until_ts") if isinstance(criterion, dict) else None
                if not isinstance(criterion, dict) or not (minimum is None or is_json_int(minimum)):
                    raise bad_json("minimum_valid_until_ts must be an integer")
                criteria[server_name][key_id] = minimum
        return await self._keys.query(criteria)

    @endpoint("GET", "/query/<server_name>", auth="none", prefixes=KEY_V2)
    async def query_one(self, request: MatrixRequest, origin: None, server_name: str) -> JsonDict:
        if not is_valid_server_name(server_name):
            raise invalid_param("Not a server name")
        return await self._keys.query({server_name: {"": query_int(request, "minimum_valid_until_ts")}})
