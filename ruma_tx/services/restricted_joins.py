"""
Joins of restricted rooms (spec: client-server-api "Restricted rooms",
server-server-api "Restricted rooms"): a user who is not invited may join
through membership of one of the rooms the join rules allow, when a member
of the resident server with the power to invite vouches for them in
C{join_authorised_via_users_server}. This server vouches for its own users
joining its rooms and for other servers' users joining through it.
"""
from __future__ import annotations

from ruma_tx.matrix.errors import BadRequest, forbidden, not_found
from ruma_tx.matrix.power_levels import power_level_for, user_power_level
from ruma_tx.matrix.room_versions import ROOM_VERSIONS
from ruma_tx.services.ports.events import Events

_JOIN_RULES = ("m.room.join_rules", "")
_POWER_LEVELS = ("m.room.power_levels", "")
_CREATE = ("m.room.create", "")


class RestrictedJoins:
    """
    @param events: the rooms this server is in, and who is in them.
    """

    def __init__(self, *, events: Events, server_name: str) -> None:
        self._events = events
        self._suffix = ":" + server_name

    async def authoriser(self, user_id: str, room_id: str) -> str | None:
        """
        A member of this server who may vouch for C{user_id}'s join of
        C{room_id}, or C{None} when the join needs no voucher (the room is
        not restricted, or the user is invited or joined already).

        @raise Forbidden: 403 M_FORBIDDEN: the user is in none of the
            allowed rooms this server is in.
        @raise BadRequest: 400 M_UNABLE_TO_AUTHORISE_JOIN: this server is in
            none of the allowed rooms, so it cannot tell; 400
            M_UNABLE_TO_GRANT_JOIN: the user qualifies but no member of
            this server may invite (another resident may).
        """
        own_key = ("m.room.member", user_id)
        # Only what decides whether a voucher is needed: a join into a big
        # room must not read all its members.
        state = await self._events.get_state(room_id, [_JOIN_RULES, own_key])
        join_rules = state.get(_JOIN_RULES)
        content = join_rules.content if join_rules is not None else {}
        if content.get("join_rule") not in ("restricted", "knock_restricted"):
            return None
        current = state.get(own_key)
        if current is not None and current.content.get("membership") in ("join", "invite"):
            return None
        allowed_rooms = _allowed_rooms(content.get("allow"))
        memberships = await self._events.get_rooms_for_user(user_id)
        if not any(room in memberships and memberships[room][0] == "join" for room in allowed_rooms):
            if not await self._in_any(allowed_rooms):
                raise BadRequest("M_UNABLE_TO_AUTHORISE_JOIN",
                                 "This server is in none of the rooms whose members may join")
            raise forbidden(f"{user_id} is in none of the rooms whose members may join")
        authoriser = await self._member_who_may_invite(room_id)
        if authoriser is None:
            raise BadRequest("M_UNABLE_TO_GRANT_JOIN", "No user of this server may invite to the room")
        return authoriser

    async def _in_any(self, room_ids: list[str]) -> bool:
        for room_id in room_ids:
            members = await self._events.get_members(room_id, ("join",))
            if any(member.endswith(self._suffix) for member in members):
                return True
        return False

    async def _member_who_may_invite(self, room_id: str) -> str | None:
        head = await self._events.get_room_head(room_id)
        if head is None:
            raise not_found("Unknown room")
        version = ROOM_VERSIONS[head.room_version]
        state = await self._events.get_state(room_id, [_POWER_LEVELS, _CREATE])
        auth_state = {key: {**e.pdu, "event_id": e.event_id} for key, e in state.items()}
        needed = power_level_for("invite", auth_state)
        members = await self._events.get_members(room_id, ("join",))
        for member in sorted(m for m in members if m.endswith(self._suffix)):
            if user_power_level(member, auth_state, version) >= needed:
                return member
        return None


def _allowed_rooms(allow: object) -> list[str]:
    """The rooms of the join rules' C{allow} conditions (those of another type, or malformed, allow nothing)."""
    rooms = set()
    for entry in allow if isinstance(allow, list) else ():
        if isinstance(entry, dict) and entry.get("type") == "m.room_membership" \
                and isinstance(entry.get("room_id"), str):
            rooms.add(entry["room_id"])
    return sorted(rooms)
