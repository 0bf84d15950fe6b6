"""
Transactions received from other servers (spec: server-server-api.md
"Transactions", "Typing Notifications", "Receipts", "Presence",
"Send-to-device messaging", "Device Management"), parsed into records.

A transaction carries at most 50 PDUs and 100 EDUs. An EDU is about users
of the server that sent it: one naming another server's user is dropped,
as is a malformed one (the spec asks for no error about EDUs; Synapse
drops them too), so one bad EDU never refuses the rest.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping

from ruma_tx.matrix.device_lists import is_stream_id
from ruma_tx.matrix.errors import bad_json
from ruma_tx.matrix.federation_auth import is_json_int
from ruma_tx.matrix.identifiers import InvalidIdentifier, parse_user_id
from ruma_tx.matrix.types import JsonDict

MAX_PDUS = 50
MAX_EDUS = 100


@dataclass(frozen=True)
class Transaction:
    origin: str
    origin_server_ts: int
    pdus: list[JsonDict]
    edus: list[JsonDict]


def parse_transaction(body: JsonDict, origin: str) -> Transaction:
    """
    @param origin: the server that signed the request.
    @raise BadRequest: 400 M_BAD_JSON for a body that is not a transaction
        of C{origin}, or one over the limits.
    """
    if body.get("origin") != origin:
        raise bad_json("The transaction's origin is not the server that sent it")
    origin_server_ts = body.get("origin_server_ts")
    if not is_json_int(origin_server_ts):
        raise bad_json("origin_server_ts must be an integer")
    pdus, edus = body.get("pdus"), body.get("edus", [])
    if not isinstance(pdus, list) or not isinstance(edus, list):
        raise bad_json("pdus and edus must be lists")
    if len(pdus) > MAX_PDUS or len(edus) > MAX_EDUS:
        raise bad_json(f"A transaction holds at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs")
    return Transaction(origin, origin_server_ts,
                       [pdu for pdu in pdus if isinstance(pdu, dict)],
                       [edu for edu in edus if isinstance(edu, dict)])


@dataclass(frozen=True)
class Typing:
    room_id: str
    user_id: str
    typing: bool


@dataclass(frozen=True)
class ReceiptUpdate:
    room_id: str
    user_id: str
    receipt_type: str
    event_ids: tuple[str, ...]
    thread_id: str | None


@dataclass(frozen=True)
class PresenceUpdate:
    user_id: str
    presence: str
    status_msg: str | None


@dataclass(frozen=True)
class DirectToDevice:
    """
    @ivar message_id: unique per origin; a repeat delivers nothing again.
    @ivar messages: C{user_id -> device_id or "*" -> content}.
    """

    sender: str
    event_type: str
    message_id: str
    messages: Mapping[str, object]


@dataclass(frozen=True)
class DeviceListUpdate:
    """
    A remote user's device changed: C{prev_id} lists the updates it follows
    (of that user), so a gap shows when one of them was never received.
    """

    user_id: str
    device_id: str
    stream_id: int
    prev_id: tuple[int, ...]
    deleted: bool
    keys: JsonDict | None
    display_name: str | None = None


@dataclass(frozen=True)
class SigningKeyUpdate:
    user_id: str
    master_key: JsonDict | None
    self_signing_key: JsonDict | None


Edu = Typing | ReceiptUpdate | PresenceUpdate | DirectToDevice | DeviceListUpdate | SigningKeyUpdate


def _from(user_id: object, origin: str) -> bool:
    """Whether C{user_id} is a user of C{origin}."""
    if not isinstance(user_id, str):
        return False
    try:
        return parse_user_id(user_id)[1] == origin
    except InvalidIdentifier:
        return False


def parse_edus(edus: list[JsonDict], origin: str) -> Iterator[Edu]:
    """The well-formed updates about C{origin}'s users, in order; the rest is dropped."""
    for edu in edus:
        content = edu.get("content")
        if not isinstance(content, dict):
            continue
        parse = _PARSERS.get(edu.get("edu_type"))  # type: ignore[arg-type]
        if parse is not None:
            yield from parse(content, origin)


def _typing(content: JsonDict, origin: str) -> Iterator[Edu]:
    room_id, user_id, typing = content.get("room_id"), content.get("user_id"), content.get("typing")
    if isinstance(room_id, str) and _from(user_id, origin) and isinstance(typing, bool):
        yield Typing(room_id, user_id, typing)  # type: ignore[arg-type]  # _from checked it


def _receipts(content: JsonDict, origin: str) -> Iterator[Edu]:
    for room_id, by_type in content.items():
        if not isinstance(by_type, dict):
            continue
        for receipt_type, by_user in by_type.items():
            if not isinstance(by_user, dict):
                continue
            for user_id, receipt in by_user.items():
                if not _from(user_id, origin) or not isinstance(receipt, dict):
                    continue
                event_ids = receipt.get("event_ids")
                data = receipt.get("data")
                thread_id = data.get("thread_id") if isinstance(data, dict) else None
                if isinstance(event_ids, list) and event_ids \
                        and all(isinstance(e, str) for e in event_ids) \
                        and (thread_id is None or isinstance(thread_id, str)):
                    yield ReceiptUpdate(room_id, user_id, receipt_type, tuple(event_ids), thread_id)


def _presence(content: JsonDict, origin: str) -> Iterator[Edu]:
    updates = content.get("push")
    for update in updates if isinstance(updates, list) else ():
        if not isinstance(update, dict) or not _from(update.get("user_id"), origin):
            continue
        presence, status_msg = update.get("presence"), update.get("status_msg")
        if isinstance(presence, str) and (status_msg is None or isinstance(status_msg, str)):
            yield PresenceUpdate(update["user_id"], presence, status_msg)


def _direct_to_device(content: JsonDict, origin: str) -> Iterator[Edu]:
    sender, event_type = content.get("sender"), content.get("type")
    message_id, messages = content.get("message_id"), content.get("messages")
    if _from(sender, origin) and isinstance(event_type, str) and isinstance(message_id, str) \
            and isinstance(messages, dict):
        yield DirectToDevice(sender, event_type, message_id, messages)  # type: ignore[arg-type]


def _device_list_update(content: JsonDict, origin: str) -> Iterator[Edu]:
    user_id, device_id, stream_id = content.get("user_id"), content.get("device_id"), content.get("stream_id")
    prev_id = content.get("prev_id", [])
    keys = content.get("keys")
    if _from(user_id, origin) and isinstance(device_id, str) and is_stream_id(stream_id) \
            and isinstance(prev_id, list) and all(is_stream_id(p) for p in prev_id) \
            and (keys is None or isinstance(keys, dict)):
        name = content.get("device_display_name")
        yield DeviceListUpdate(user_id, device_id, stream_id, tuple(prev_id),  # type: ignore[arg-type]
                               content.get("deleted") is True, keys, name if isinstance(name, str) else None)


def _signing_key_update(content: JsonDict, origin: str) -> Iterator[Edu]:
    user_id = content.get("user_id")
    master, self_signing = content.get("master_key"), content.get("self_signing_key")
    if _from(user_id, origin) and (master is None or isinstance(master, dict)) \
            and (self_signing is None or isinstance(self_signing, dict)):
        yield SigningKeyUpdate(user_id, master, self_signing)  # type: ignore[arg-type]


_PARSERS = {
    "m.typing": _typing,
    "m.receipt": _receipts,
    "m.presence": _presence,
    "m.direct_to_device": _direct_to_device,
    "m.device_list_update": _device_list_update,
    "m.signing_key_update": _signing_key_update,
}
