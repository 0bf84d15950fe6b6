"""
Typing notifications, receipts and read markers (spec: "Typing
Notifications", "Receipts", "Read and unread markers").
"""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.ephemeral import ReceiptKeeper, TypingTracker
from ruma_tx.services.guard import Requester


class EphemeralApi:
    """
    @param typing: the L{ruma_tx.services.ephemeral.TypingTracker}.
    @param receipts: the L{ruma_tx.services.ephemeral.ReceiptKeeper}.
    """

    def __init__(self, *, typing: TypingTracker, receipts: ReceiptKeeper) -> None:
        self._typing = typing
        self._receipts = receipts

    @endpoint("PUT", "/rooms/<room_id>/typing/<user_id>")
    async def set_typing(self, request: MatrixRequest, requester: Requester, room_id: str,
                         user_id: str) -> JsonDict:
        body = read_json_object(request)
        typing = get_field(body, "typing", bool)
        timeout = get_field(body, "timeout", int, None)
        await self._typing.set_typing(requester.user_id, room_id, user_id, typing, timeout)
        return {}

    @endpoint("POST", "/rooms/<room_id>/receipt/<receipt_type>/<event_id>")
    async def send_receipt(self, request: MatrixRequest, requester: Requester, room_id: str,
                           receipt_type: str, event_id: str) -> JsonDict:
        body = _object_or_empty(request)
        await self._receipts.send_receipt(requester.user_id, room_id, receipt_type, event_id,
                                          body.get("thread_id"))
        return {}

    @endpoint("POST", "/rooms/<room_id>/read_markers")
    async def set_read_markers(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        body = read_json_object(request)
        await self._receipts.set_read_markers(
            requester.user_id, room_id,
            fully_read=get_field(body, "m.fully_read", str, None),
            read=get_field(body, "m.read", str, None),
            read_private=get_field(body, "m.read.private", str, None),
        )
        return {}


def _object_or_empty(request: MatrixRequest) -> JsonDict:
    """
    The JSON object body, or C{{}} when there is no body at all: the spec
    requires one, but clients written before threads sent none (Synapse
    accepts an empty body here).
    """
    content = request.content
    if content is not None:
        if content.read(1) == b"":
            return {}
        content.seek(0)
    return read_json_object(request)
