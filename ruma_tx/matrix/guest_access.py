"""
Guest access (spec: client-server API, module "Guest Access"): whether a
room admits guests, and which events take that away from guests already in.
"""
from __future__ import annotations

from typing import Any

from ruma_tx.matrix.errors import forbidden
from ruma_tx.matrix.types import JsonDict

GUEST_ACCESS = "m.room.guest_access"

#: The only C{guest_access} value that lets guests join.
CAN_JOIN = "can_join"

#: The memberships a guest loses when a room stops admitting guests: a
#: joined guest leaves and an invited one is uninvited (as Synapse's
#: C{kick_guest_users}; the spec says "those users").
GUEST_MEMBERSHIPS_REVOKED = ("join", "invite")


def admits_guests(guest_access_content: Any) -> bool:
    """
    Whether a room whose C{m.room.guest_access} has this content lets
    guests join (spec: "present on the room, and has the guest_access
    value can_join"). C{None} (no such event) admits none.
    """
    return isinstance(guest_access_content, dict) and guest_access_content.get("guest_access") == CAN_JOIN


def check_guest_join(guest_access_content: Any) -> None:
    """
    A guest may join only a room that admits guests. This is not one of the
    room version auth rules (the spec leaves it to the server); as Synapse,
    it is checked when the guest's join is created.

    @param guest_access_content: the content of the room's current
        C{m.room.guest_access}, or C{None} without one.
    @raise MatrixError: 403 M_FORBIDDEN when the room does not admit guests.
    """
    if not admits_guests(guest_access_content):
        raise forbidden("Guest access is not allowed in this room")


def closes_room_to_guests(pdu: JsonDict) -> bool:
    """
    Whether storing this event leaves its room not admitting guests: it is
    the room's C{m.room.guest_access} state and its value is not
    C{can_join}. Then the server MUST set its guests' membership to
    C{leave} (spec, "Server behaviour").
    """
    return (pdu.get("type") == GUEST_ACCESS and pdu.get("state_key") == ""
            and not admits_guests(pdu.get("content")))
