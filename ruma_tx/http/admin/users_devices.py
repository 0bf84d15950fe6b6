"""
The admin API's devices of a user (Synapse's "User devices"): listing,
showing, renaming and deleting them; deleting revokes their tokens.
"""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, read_json_object
from ruma_tx.http.routing import SYNAPSE_ADMIN, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import bad_json
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.admin_users import UserAdmin
from ruma_tx.services.guard import Requester


class UserDevicesAdminApi:
    """@param users: the L{ruma_tx.services.admin_users.UserAdmin}."""

    def __init__(self, users: UserAdmin) -> None:
        self._users = users

    @endpoint("GET", "/v2/users/<user_id>/devices", prefixes=SYNAPSE_ADMIN, admin=True)
    async def list_devices(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        return await self._users.devices(user_id)

    @endpoint("GET", "/v2/users/<user_id>/devices/<device_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def get_device(self, request: MatrixRequest, requester: Requester, user_id: str,
                         device_id: str) -> JsonDict:
        return await self._users.device(user_id, device_id)

    @endpoint("PUT", "/v2/users/<user_id>/devices/<device_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def rename_device(self, request: MatrixRequest, requester: Requester, user_id: str,
                            device_id: str) -> JsonDict:
        body = read_json_object(request, allow_empty=True)
        await self._users.rename_device(user_id, device_id, get_field(body, "display_name", str, None))
        return {}

    @endpoint("DELETE", "/v2/users/<user_id>/devices/<device_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def delete_device(self, request: MatrixRequest, requester: Requester, user_id: str,
                            device_id: str) -> JsonDict:
        await self._users.delete_devices(user_id, [device_id])
        return {}

    @endpoint("POST", "/v2/users/<user_id>/delete_devices", prefixes=SYNAPSE_ADMIN, admin=True)
    async def delete_devices(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        devices = get_field(read_json_object(request), "devices", list)
        if not all(isinstance(device_id, str) for device_id in devices):
            raise bad_json("'devices' must be a list of device ids (strings)")
        await self._users.delete_devices(user_id, devices)
        return {}
