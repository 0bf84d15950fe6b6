"""
The EDUs this server sends other servers (Server-Server API: "Typing
Notifications", "Receipts", "Presence", "Device Management", "Send-to-device
messaging"), as C{(edu_type, content)} pairs.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from ruma_tx.matrix.federation_sending import server_of
from ruma_tx.matrix.types import JsonDict

TYPING = "m.typing"
RECEIPT = "m.receipt"
PRESENCE = "m.presence"
DEVICE_LIST_UPDATE = "m.device_list_update"
SIGNING_KEY_UPDATE = "m.signing_key_update"
DIRECT_TO_DEVICE = "m.direct_to_device"


def typing_content(room_id: str, user_id: str, typing: bool) -> JsonDict:
    return {"room_id": room_id, "user_id": user_id, "typing": typing}


def receipt_content(room_id: str, receipt_type: str, user_id: str, event_id: str, ts: int,
                    thread_id: str | None = None) -> JsonDict:
    data: JsonDict = {"ts": ts}
    if thread_id is not None:
        data["thread_id"] = thread_id
    return {room_id: {receipt_type: {user_id: {"event_ids": [event_id], "data": data}}}}


def device_list_update_content(user_id: str, device_id: str, stream_id: int, prev_ids: Sequence[int], *,
                               deleted: bool = False, keys: JsonDict | None = None,
                               display_name: str | None = None) -> JsonDict:
    """
    One change of a user's device list. C{stream_id} increases with each
    change of the user's devices; C{prev_ids} are the ids of the changes
    this one follows (empty for the first the destination hears of), which
    lets it notice a missed update and resync with C{/user/devices}.
    """
    content: JsonDict = {"user_id": user_id, "device_id": device_id, "stream_id": stream_id,
                         "prev_id": list(prev_ids)}
    if deleted:
        content["deleted"] = True
    if keys is not None:
        content["keys"] = keys
    if display_name is not None:
        content["device_display_name"] = display_name
    return content


def signing_key_update_content(user_id: str, *, master_key: JsonDict | None = None,
                               self_signing_key: JsonDict | None = None) -> JsonDict:
    content: JsonDict = {"user_id": user_id}
    if master_key is not None:
        content["master_key"] = master_key
    if self_signing_key is not None:
        content["self_signing_key"] = self_signing_key
    return content


def direct_to_device_by_server(sender: str, event_type: str, message_id: str,
                               messages: Mapping[str, Mapping[str, JsonDict]], our_server: str
                               ) -> dict[str, JsonDict]:
    """
    The C{m.direct_to_device} content for each other server among the
    recipients of C{messages} (C{{user_id: {device_id or "*": content}}}).
    """
    by_server: dict[str, dict[str, Mapping[str, JsonDict]]] = {}
    for user_id, by_device in messages.items():
        server = server_of(user_id)
        if server and server != our_server:
            by_server.setdefault(server, {})[user_id] = by_device
    return {server: {"sender": sender, "type": event_type, "message_id": message_id,
                     "messages": {user_id: dict(by_device) for user_id, by_device in users.items()}}
            for server, users in by_server.items()}
