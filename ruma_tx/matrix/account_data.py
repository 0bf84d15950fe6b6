"""
Account data and tags (spec: "Client Config", "Room Tagging", "Ignoring
Users"): which types clients may set, and what ignored users means.
"""
from __future__ import annotations

from typing import Mapping

from ruma_tx.matrix.errors import BadRequest, NotAllowed, forbidden, invalid_param
from ruma_tx.matrix.identifiers import is_valid_room_id
from ruma_tx.matrix.types import JsonDict

#: Types the server manages: clients may read them but not set them
#: through the account data API (spec: "Server Behaviour", 405 M_BAD_JSON).
SERVER_MANAGED_TYPES = ("m.fully_read", "m.push_rules")

FULLY_READ = "m.fully_read"

#: Spec: "The name of a tag MUST NOT exceed 255 bytes."
MAX_TAG_BYTES = 255


def check_settable(data_type: str) -> None:
    """
    @raise MatrixError: 405 M_BAD_JSON for a type the server manages (the
        spec's status and the errcode of its example and of Synapse).
    """
    if data_type in SERVER_MANAGED_TYPES:
        hint = " Use /rooms/{roomId}/read_markers" if data_type == FULLY_READ else ""
        raise NotAllowed("M_BAD_JSON", f"Cannot set {data_type} through this API.{hint}")


def check_tag(tag: str, content: Mapping[str, object]) -> None:
    """
    @raise MatrixError: 400 M_INVALID_PARAM for a tag name over 255 bytes,
        400 M_BAD_JSON for an C{order} that is not a number.
    """
    if len(tag.encode("utf-8")) > MAX_TAG_BYTES:
        raise invalid_param(f"Tag names must not exceed {MAX_TAG_BYTES} bytes")
    order = content.get("order")
    if order is not None and (isinstance(order, bool) or not isinstance(order, (int, float))):
        raise BadRequest("M_BAD_JSON", "'order' must be a number")


def ignored_users_in(content: Mapping[str, object] | None) -> frozenset[str]:
    """
    The users an C{m.ignored_user_list} content ignores; a malformed one
    ignores nobody (as Synapse reads it).
    """
    ignored = (content or {}).get("ignored_users")
    if not isinstance(ignored, dict):
        return frozenset()
    return frozenset(user_id for user_id in ignored if isinstance(user_id, str))


def shown_to_ignorer(sender: str, state_key: str | None, ignored: frozenset[str]) -> bool:
    """
    Whether an event is shown to a user ignoring C{ignored}: the spec hides
    events from ignored senders except state events.
    """
    return state_key is not None or sender not in ignored


def account_data_event(data_type: str, content: JsonDict) -> JsonDict:
    return {"type": data_type, "content": content}


def check_self(requester_id: str, user_id: str) -> None:
    if requester_id != user_id:
        raise forbidden("Cannot access account data of other users.")


def check_room_id(room_id: str) -> None:
    if not is_valid_room_id(room_id):
        raise invalid_param(f"{room_id} is not a valid room ID.")


