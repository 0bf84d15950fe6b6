"""
Send-to-device messaging (spec: "Send-to-Device messaging"): the send
endpoint; the messages reach devices through /sync.
"""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.to_device import ToDeviceMessages


class ToDeviceApi:
    """
    @param messages: the L{ruma_tx.services.to_device.ToDeviceMessages}.
    """

    def __init__(self, messages: ToDeviceMessages) -> None:
        self._messages = messages

    # Not rate limited: Synapse limits only m.room_key_request messages, and
    # encrypted rooms send key shares in bursts.
    @endpoint("PUT", "/sendToDevice/<event_type>/<txn_id>", guest=True)
    async def send(self, request: MatrixRequest, requester: Requester, event_type: str,
                   txn_id: str) -> JsonDict:
        body = read_json_object(request)
        messages = get_field(body, "messages", dict)
        await self._messages.send(requester.user_id, requester.device_id, event_type, txn_id,
                                  messages)
        return {}
