"""
The rules of the admin API's room endpoints (Synapse's "Rooms" admin API):
how the room list may be ordered, what a room deletion asks for, and who
makes a user a room admin with which power level.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ruma_tx.matrix.errors import BadRequest, invalid_param
from ruma_tx.matrix.identifiers import InvalidIdentifier, is_valid_room_id, parse_user_id
from ruma_tx.matrix.power_levels import (
    CREATOR_DEFAULT_LEVEL,
    POWER_LEVELS,
    as_level,
    creators,
    event_content,
    event_power_level,
    user_power_level,
)
from ruma_tx.matrix.room_versions import RoomVersion
from ruma_tx.matrix.types import JsonDict, StateMap

#: The room list's orders (its C{order_by}), each with whether it runs
#: ascending when C{dir} is C{f}: text alphabetically, counts and room
#: versions largest first (as Synapse orders them).
ROOM_ORDERS: dict[str, bool] = {
    "name": True, "canonical_alias": True, "joined_members": False, "joined_local_members": False,
    "version": False, "creator": True, "encryption": True, "federatable": True, "public": True,
    "join_rules": True, "guest_access": True, "history_visibility": True, "state_events": False,
}

#: The older names of two orders, which Synapse still accepts.
ORDER_ALIASES = {"alphabetical": "name", "size": "joined_members"}


def room_order(order_by: str, backwards: bool) -> tuple[str, bool]:
    """
    C{(order, ascending)} of the room list for C{order_by} and C{dir}
    (C{b}: the reverse of C{f}).

    @raise BadRequest: M_INVALID_PARAM for an order the list does not know.
    """
    order = ORDER_ALIASES.get(order_by, order_by)
    if order not in ROOM_ORDERS:
        raise invalid_param(f"Unknown value for order_by: {order_by}")
    return order, ROOM_ORDERS[order] != backwards


def check_room_id(room_id: str) -> None:
    """@raise BadRequest: M_INVALID_PARAM when C{room_id} is not a room id."""
    if not is_valid_room_id(room_id):
        raise invalid_param(f"{room_id} is not a legal room ID")


def check_local_user(user_id: str, server_name: str) -> None:
    """@raise BadRequest: M_INVALID_PARAM unless C{user_id} is a user id of this server."""
    try:
        _, server = parse_user_id(user_id)
    except (InvalidIdentifier, TypeError):
        raise invalid_param(f"{user_id!r} is not a legal user ID") from None
    if server != server_name:
        raise invalid_param(f"{user_id} is not a user of this server")


@dataclass(frozen=True)
class RoomDeletion:
    """
    What an admin asks of a room deletion (the body of C{DELETE
    /v1|v2/rooms/{roomId}}).

    @ivar new_room_user_id: a local user who creates a new room, where the
        members are moved and told why (C{None}: members just leave).
    @ivar block: keep this server's users out of the room from now on.
    @ivar purge: remove the room from the database once its local members
        are out.
    @ivar force_purge: purge even if local users are still joined.
    """

    new_room_user_id: str | None = None
    #: Our wording, not Synapse's (its defaults are its own text).
    room_name: str = "Room closed by the server admins"
    message: str = "A room you were in was closed by the admins of this server for breaking its rules."
    block: bool = False
    purge: bool = True
    force_purge: bool = False


@dataclass(frozen=True)
class AdminGrant:
    """
    How a user becomes a room admin (Synapse's "Make Room Admin").

    @ivar sender: the joined local member who sends the new power levels.
    @ivar content: the new C{m.room.power_levels} content; C{None} when
        the user has that power already.
    """

    sender: str
    content: JsonDict | None


def room_admin_grant(state: StateMap, room_version: RoomVersion, joined_local: Iterable[str],
                     user_id: str) -> AdminGrant:
    """
    Give C{user_id} the highest power a local member has: the joined local
    member with the most power who may change the power levels sends them,
    with C{user_id} at its own level. A creator of a version 12 room (whose
    power has no number) grants the highest level in the room, at least 100.

    @param joined_local: the room's joined members of this server.
    @raise BadRequest: when no joined local member may change the power levels.
    """
    required = event_power_level("m.room.power_levels", True, state)
    levels = {member: user_power_level(member, state, room_version) for member in joined_local}
    able = [member for member, level in levels.items() if level >= required]
    if not able:
        # Its start is Synapse's wording, which admin tools look for.
        raise BadRequest("M_UNKNOWN", "No local admin user in room: no local member may change its power levels")
    sender = max(able, key=lambda member: (levels[member], member))
    content = dict(event_content(state.get(POWER_LEVELS)))
    users = content.get("users")
    users = dict(users) if isinstance(users, dict) else {}
    granted = levels[sender]
    if granted == float("inf"):
        granted = max([CREATOR_DEFAULT_LEVEL, *(level for value in users.values()
                                                if (level := as_level(value)) is not None)])
    if room_version.privileged_creators and user_id in creators(state, room_version):
        return AdminGrant(sender, None)   # a creator: more power than any level
    current = user_power_level(user_id, state, room_version)
    if current >= granted:
        return AdminGrant(sender, None)
    if state.get(POWER_LEVELS) is None and levels[sender] != float("inf"):
        # A first power levels event: the sender keeps the level it had by default.
        users.setdefault(sender, int(levels[sender]))
    users[user_id] = int(granted)
    content["users"] = users
    return AdminGrant(sender, content)
