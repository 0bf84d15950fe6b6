"""
Send-to-device messaging (spec: "Send-to-Device messaging"): validating
a request's messages and expanding them per recipient device.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping

from ruma_tx.matrix.device_lists import digest
from ruma_tx.matrix.errors import bad_json, invalid_param
from ruma_tx.matrix.identifiers import InvalidIdentifier, parse_user_id
from ruma_tx.matrix.types import JsonDict

#: The device id that addresses every device of a user.
ALL_DEVICES = "*"


@dataclass(frozen=True)
class Outgoing:
    """
    One entry of a send request for a local user.

    @ivar device_id: C{None} for every device of the user.
    @ivar content_json: the content, already encoded.
    """

    user_id: str
    device_id: str | None
    content_json: str


def outgoing_messages(messages: Mapping[str, object], server_name: str) -> list[Outgoing]:
    """
    The local deliveries a C{messages} field asks for.

    As Synapse, C{"*"} means every device only when it is the user's one
    key (otherwise it names a device like any other key), so each device
    gets at most one message per request, as the spec says clients send.
    Users of other servers are not in the list: their messages go to
    their servers (see L{has_remote_recipients}).

    @raise MatrixError: 400 M_INVALID_PARAM for a key that is not a user
        id (as Synapse), M_BAD_JSON for a value that is not an object.
    """
    outgoing: list[Outgoing] = []
    for user_id, by_device in messages.items():
        try:
            _, server = parse_user_id(user_id)
        except InvalidIdentifier:
            raise invalid_param(f"Invalid user ID: {user_id!r}") from None
        if not isinstance(by_device, dict):
            raise bad_json(f"The messages for {user_id} must be an object")
        for device_id, content in by_device.items():
            if not isinstance(content, dict):
                raise bad_json(f"The message for {user_id} {device_id} must be an object")
        if server != server_name:
            continue  # sent on to its server, as an m.direct_to_device EDU
        if list(by_device) == [ALL_DEVICES]:
            outgoing.append(Outgoing(user_id, None, _encode(by_device[ALL_DEVICES])))
        else:
            outgoing.extend(Outgoing(user_id, device_id, _encode(content))
                            for device_id, content in by_device.items())
    return outgoing


def has_remote_recipients(messages: Mapping[str, object], server_name: str) -> bool:
    """Whether C{messages} (already checked by L{outgoing_messages}) address another server's user."""
    return any(parse_user_id(user_id)[1] != server_name for user_id in messages)


def remote_message_id(sender: str, sender_device: str, event_type: str, txn_id: str) -> str:
    """
    The C{message_id} of the EDUs a send request makes: the same for a
    retry of the request, so the receiving server delivers it once.
    """
    return digest([sender, sender_device, event_type, txn_id])


def _encode(content: JsonDict) -> str:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"))
