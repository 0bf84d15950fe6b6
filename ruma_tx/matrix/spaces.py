"""
Spaces, room summaries and mutual rooms as pure rules (spec:
client-server-api "Spaces" and C{GET /rooms/{roomId}/hierarchy}, "Room
Summaries" and C{GET /room_summary/{roomIdOrAlias}}, "Mutual Rooms"): a
space's children in the spec's order, the summary of a room, who may
preview a room, and the request parameters and tokens.
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import AbstractSet, Any, Iterable, Mapping

from ruma_tx.matrix.directory import ListedRoom, directory_entry
from ruma_tx.matrix.errors import invalid_param
from ruma_tx.matrix.types import JsonDict

SPACE = "m.space"
SPACE_CHILD = "m.space.child"

#: The rooms of one hierarchy page: the default and the most (Synapse's).
MAX_HIERARCHY_PAGE = 50

#: The rooms of one mutual rooms page (Synapse's).
MUTUAL_ROOMS_PAGE = 100

#: The only algorithm the spec lets a summary name (C{encryption} enum).
MEGOLM = "m.megolm.v1.aes-sha2"

#: The state a summary is made of (all with state key "").
SUMMARY_STATE_TYPES = (
    "m.room.create", "m.room.name", "m.room.topic", "m.room.canonical_alias", "m.room.avatar",
    "m.room.join_rules", "m.room.history_visibility", "m.room.guest_access", "m.room.encryption",
)

#: A valid C{order}: at most 50 characters from space to tilde (spec).
_ORDER = re.compile(r"[\x20-\x7e]{0,50}")

#: Join rules that let anyone see the room before joining (spec: "knockable" rooms too).
_OPEN_RULES = ("public", "knock", "knock_restricted")
_RESTRICTED_RULES = ("restricted", "knock_restricted")


@dataclass(frozen=True)
class RoomSummaryState:
    """
    What a room's summary is made of, as stored.

    @ivar state: C{type -> content} of its L{SUMMARY_STATE_TYPES} events.
    """

    room_id: str
    room_version: str
    joined_members: int
    state: Mapping[str, JsonDict]

    @property
    def room_type(self) -> str | None:
        room_type = self.state.get("m.room.create", {}).get("type")
        return room_type if isinstance(room_type, str) else None

    @property
    def join_rule(self) -> str | None:
        rule = self.state.get("m.room.join_rules", {}).get("join_rule")
        return rule if isinstance(rule, str) else None

    @property
    def world_readable(self) -> bool:
        visibility = self.state.get("m.room.history_visibility", {})
        return visibility.get("history_visibility") == "world_readable"

    @property
    def allowed_room_ids(self) -> list[str]:
        """The rooms whose members may join a restricted room (spec: restricted rooms)."""
        if self.join_rule not in _RESTRICTED_RULES:
            return []
        allow = self.state.get("m.room.join_rules", {}).get("allow")
        if not isinstance(allow, list):
            return []
        return list(dict.fromkeys(
            entry["room_id"] for entry in allow
            if isinstance(entry, dict) and entry.get("type") == "m.room_membership"
            and isinstance(entry.get("room_id"), str) and entry["room_id"].startswith("!")))


@dataclass(frozen=True)
class SpaceChild:
    """A space's C{m.space.child} event: C{room_id} is its state key."""

    room_id: str
    content: JsonDict
    sender: str
    origin_server_ts: int

    @property
    def suggested(self) -> bool:
        return self.content.get("suggested") is True

    def stripped(self) -> JsonDict:
        """As C{children_state} shows it: a stripped state event with its timestamp."""
        return {"type": SPACE_CHILD, "state_key": self.room_id, "content": self.content,
                "sender": self.sender, "origin_server_ts": self.origin_server_ts}


def has_valid_via(content: Mapping[str, Any]) -> bool:
    """
    Whether a child event links its room: a non-empty C{via} of strings
    (spec: a child is removed by omitting C{via}; as Synapse, a C{via} with
    anything but strings is ignored too).
    """
    via = content.get("via")
    return isinstance(via, list) and bool(via) and all(isinstance(server, str) for server in via)


def ordered_children(children: Iterable[SpaceChild], *, suggested_only: bool = False) -> list[SpaceChild]:
    """
    A space's valid children in the spec's order ("Ordering of children
    within a space"): those with a valid C{order} by it (code points), then
    the others; ties by the child event's timestamp, then by room id.
    """
    def key(child: SpaceChild) -> tuple[bool, str, int, str]:
        order = child.content.get("order")
        if not isinstance(order, str) or _ORDER.fullmatch(order) is None:
            return (True, "", child.origin_server_ts, child.room_id)
        return (False, order, child.origin_server_ts, child.room_id)

    return sorted((child for child in children if has_valid_via(child.content)
                   and (child.suggested or not suggested_only)), key=key)


def summary_entry(room: RoomSummaryState) -> JsonDict:
    """
    A room's C{RoomSummary}: the directory's fields (C{PublishedRoomsChunk})
    with C{room_version}, C{encryption} and C{allowed_room_ids} (spec v1.15).
    """
    entry = directory_entry(ListedRoom(room.room_id, room.joined_members, room.state))
    entry["room_version"] = room.room_version
    if room.state.get("m.room.encryption", {}).get("algorithm") == MEGOLM:
        entry["encryption"] = MEGOLM
    allowed = room.allowed_room_ids
    if allowed:
        entry["allowed_room_ids"] = allowed
    return entry


def may_preview(room: RoomSummaryState, membership: str | None, joined_rooms: AbstractSet[str]) -> bool:
    """
    Whether a user may see a room's summary (spec, C{GET /hierarchy}'s
    C{rooms}): they are joined or invited; it is world-readable; or they
    could join or knock: the join rule is public, knock or
    knock_restricted, or restricted with a room they are joined to in
    C{allow}. A banned user can neither join nor knock, so only a
    world-readable room stays visible to them.

    @param membership: the user's membership in the room, if any.
    @param joined_rooms: the rooms the user is joined to.
    """
    if membership in ("join", "invite") or room.world_readable:
        return True
    if membership == "ban":
        return False
    if room.join_rule in _OPEN_RULES:
        return True
    return not joined_rooms.isdisjoint(room.allowed_room_ids)


def parse_positive(value: str | None, name: str, *, minimum: int) -> int | None:
    """
    A query parameter that must be an integer of at least C{minimum}.

    @raise BadRequest: M_INVALID_PARAM for anything else.
    """
    if value is None:
        return None
    if not re.fullmatch(r"[0-9]{1,15}", value) or int(value) < minimum:
        raise invalid_param(f"'{name}' must be an integer of at least {minimum}")
    return int(value)


def encode_mutual_rooms_token(last_room_id: str) -> str:
    """A mutual rooms token: the last room id of the page (rooms come sorted)."""
    return base64.urlsafe_b64encode(last_room_id.encode("utf-8")).decode("ascii").rstrip("=")


def decode_mutual_rooms_token(token: str) -> str:
    """
    @return: the room id the next page starts after.
    @raise BadRequest: M_INVALID_PARAM for a token we did not issue.
    """
    try:
        room_id = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise invalid_param("Invalid 'from' token") from None
    if not room_id.startswith("!"):
        raise invalid_param("Invalid 'from' token")
    return room_id
