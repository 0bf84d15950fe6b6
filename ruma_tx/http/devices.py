"""
The device management endpoints (spec: "Device Management"): list, read,
rename and delete the requester's devices.
"""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.http.uia import bound_request
from ruma_tx.matrix.errors import bad_json
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.devices import DeviceManager
from ruma_tx.services.guard import Requester


class DeviceApi:
    """
    @param device_manager: the L{ruma_tx.services.devices.DeviceManager}.
    """

    def __init__(self, device_manager: DeviceManager) -> None:
        self._devices = device_manager

    @endpoint("GET", "/devices", guest=True)
    async def list_devices(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return {"devices": await self._devices.list_devices(requester)}

    @endpoint("GET", "/devices/<device_id>", guest=True)
    async def get_device(self, request: MatrixRequest, requester: Requester, device_id: str) -> JsonDict:
        return await self._devices.get_device(requester, device_id)

    @endpoint("PUT", "/devices/<device_id>", guest=True)
    async def update_device(self, request: MatrixRequest, requester: Requester, device_id: str) -> JsonDict:
        body = read_json_object(request)
        display_name = get_field(body, "display_name", str, default=None)
        await self._devices.update_device(requester, device_id, display_name)
        return {}

    @endpoint("DELETE", "/devices/<device_id>")
    async def delete_device(self, request: MatrixRequest, requester: Requester, device_id: str) -> JsonDict:
        body = _read_optional_json_object(request)
        await self._devices.delete_devices(requester, body, [device_id],
                                           request=bound_request(request, body))
        return {}

    @endpoint("POST", "/delete_devices")
    async def delete_devices(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        body = _read_optional_json_object(request)
        device_ids = get_field(body, "devices", list)
        if not all(isinstance(device_id, str) for device_id in device_ids):
            raise bad_json("'devices' must be a list of strings")
        await self._devices.delete_devices(requester, body, device_ids,
                                           request=bound_request(request, body))
        return {}


def _read_optional_json_object(request: MatrixRequest) -> JsonDict:
    """
    The body as a JSON object, an empty body counting as C{{}}: the spec
    requires a body on these requests, but Synapse accepts none from older
    clients (they start the UIA this way), and so do we.
    """
    content = request.content
    if content is None:
        return {}
    if not content.read():
        return {}
    content.seek(0)
    return read_json_object(request)
