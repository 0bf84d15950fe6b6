"""
Uploading and claiming end-to-end encryption keys (spec: "Key management
API": C{POST /keys/upload}, C{POST /keys/claim}). Both are on the spec's
guest allow-list. C{/keys/query}, C{/keys/changes} and cross-signing live
in another module.
"""
from __future__ import annotations

from ruma_tx.http.parsing import federation_timeout_ms, get_field, read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.keys import DeviceKeys


class KeysApi:
    """
    @param keys: the L{ruma_tx.services.keys.DeviceKeys}.
    """

    def __init__(self, keys: DeviceKeys) -> None:
        self._keys = keys

    @endpoint("POST", "/keys/upload", guest=True)
    async def upload(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        body = read_json_object(request)
        return await self._keys.upload(
            requester,
            device_keys=get_field(body, "device_keys", dict, default=None),
            one_time_keys=get_field(body, "one_time_keys", dict, default={}),
            fallback_keys=get_field(body, "fallback_keys", dict, default={}),
        )

    @endpoint("POST", "/keys/claim", guest=True)
    async def claim(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        body = read_json_object(request)
        return await self._keys.claim(requester, get_field(body, "one_time_keys", dict),
                                      timeout_ms=federation_timeout_ms(body))
