"""
End-to-end encryption keys for other servers (server-server spec:
"End-to-End Encryption" C{/user/keys/query} and C{/user/keys/claim},
"Device Management" C{/user/devices/{userId}}). Served by the
"federation" listener only; every request is signed by its origin server
(C{auth="server"}).
"""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, read_json_object
from ruma_tx.http.routing import FEDERATION_V1, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import bad_json
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.cross_signing import KeyQueries
from ruma_tx.services.keys import DeviceKeys


class FederationKeysApi:
    """
    @param queries: the L{ruma_tx.services.cross_signing.KeyQueries}.
    @param keys: the L{ruma_tx.services.keys.DeviceKeys}.
    """

    def __init__(self, *, queries: KeyQueries, keys: DeviceKeys) -> None:
        self._queries = queries
        self._keys = keys

    @endpoint("POST", "/user/keys/query", auth="server", prefixes=FEDERATION_V1)
    async def query(self, request: MatrixRequest, origin: str) -> JsonDict:
        wanted = get_field(read_json_object(request), "device_keys", dict)
        for device_ids in wanted.values():
            if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
                raise bad_json("'device_keys' must map user ids to lists of device ids")
        return await self._queries.query_for_server(wanted)

    @endpoint("POST", "/user/keys/claim", auth="server", prefixes=FEDERATION_V1)
    async def claim(self, request: MatrixRequest, origin: str) -> JsonDict:
        return await self._keys.claim_for_server(get_field(read_json_object(request), "one_time_keys", dict))

    @endpoint("GET", "/user/devices/<user_id>", auth="server", prefixes=FEDERATION_V1)
    async def user_devices(self, request: MatrixRequest, origin: str, user_id: str) -> JsonDict:
        return await self._queries.user_devices(user_id)
