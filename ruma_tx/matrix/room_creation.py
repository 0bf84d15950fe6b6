"""
Creating rooms (spec: POST /createRoom): parsing and validating the request,
and the state each preset sets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, TypeVar

from ruma_tx.matrix.errors import BadRequest, bad_json, invalid_param
from ruma_tx.matrix.identifiers import InvalidIdentifier, parse_user_id
from ruma_tx.matrix.membership import member_content
from ruma_tx.matrix.power_levels import default_power_levels_content
from ruma_tx.matrix.room_versions import (
    DEFAULT_ROOM_VERSION,
    ROOM_VERSIONS,
    RoomVersion,
)
from ruma_tx.matrix.types import JsonDict

_T = TypeVar("_T")

PRESETS = ("private_chat", "public_chat", "trusted_private_chat")


#: The state each preset sets (spec: POST /createRoom, "preset").
PRESET_STATE: dict[str, dict[str, str]] = {
    "private_chat": {"join_rule": "invite", "history_visibility": "shared", "guest_access": "can_join"},
    "trusted_private_chat": {"join_rule": "invite", "history_visibility": "shared", "guest_access": "can_join"},
    "public_chat": {"join_rule": "public", "history_visibility": "shared", "guest_access": "forbidden"},
}


@dataclass(frozen=True)
class RoomRequest:
    """A parsed, validated createRoom body."""

    room_version: str
    preset: str
    visibility: str = "private"
    room_alias_name: str | None = None
    name: str | None = None
    topic: str | None = None
    invite: tuple[str, ...] = ()
    is_direct: bool = False
    creation_content: JsonDict = field(default_factory=dict)
    initial_state: tuple[tuple[str, str, JsonDict], ...] = ()
    power_level_content_override: JsonDict | None = None


def parse_room_request(body: Mapping[str, Any]) -> RoomRequest:
    """
    Validate a createRoom body.

    @raise MatrixError: 400 with the spec's errcodes.
    """

    def optional(name: str, kind: type[_T]) -> _T | None:
        value = body.get(name)
        if value is not None and not isinstance(value, kind):
            raise bad_json(f"{name!r} has the wrong type")
        return value

    room_version = optional("room_version", str) or DEFAULT_ROOM_VERSION.identifier
    if room_version not in ROOM_VERSIONS:
        raise BadRequest("M_UNSUPPORTED_ROOM_VERSION", f"Room version {room_version!r} is not supported")
    visibility = optional("visibility", str) or "private"
    if visibility not in ("public", "private"):
        raise invalid_param("'visibility' must be 'public' or 'private'")
    preset = optional("preset", str) or ("public_chat" if visibility == "public" else "private_chat")
    if preset not in PRESETS:
        raise invalid_param(f"Unknown preset {preset!r}")
    invites = optional("invite", list) or []
    for user_id in invites:
        try:
            parse_user_id(user_id)
        except (InvalidIdentifier, TypeError):
            raise invalid_param(f"Invalid user id in 'invite': {user_id!r}") from None
    initial_state: list[tuple[str, str, JsonDict]] = []
    for entry in optional("initial_state", list) or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str) \
                or not isinstance(entry.get("content"), dict) \
                or not isinstance(entry.get("state_key", ""), str):
            raise bad_json("Each 'initial_state' entry needs a string 'type' and an object 'content'")
        initial_state.append((entry["type"], entry.get("state_key", ""), entry["content"]))
    alias_name = optional("room_alias_name", str)
    if alias_name is not None and (not alias_name or ":" in alias_name or "#" in alias_name):
        raise BadRequest("M_INVALID_PARAM", "'room_alias_name' must be a plain localpart")
    is_direct = optional("is_direct", bool) or False
    return RoomRequest(
        room_version=room_version, preset=preset, visibility=visibility,
        room_alias_name=alias_name, name=optional("name", str), topic=optional("topic", str),
        invite=tuple(dict.fromkeys(invites)), is_direct=is_direct,
        creation_content=optional("creation_content", dict) or {},
        initial_state=tuple(initial_state),
        power_level_content_override=optional("power_level_content_override", dict),
    )


def create_content(creator: str, room_version: RoomVersion, request: RoomRequest) -> JsonDict:
    """The content of the new room's C{m.room.create} event."""
    content = dict(request.creation_content)
    content["room_version"] = room_version.identifier
    if not room_version.implicit_room_creator:
        content["creator"] = creator
    else:
        content.pop("creator", None)
    if room_version.privileged_creators and request.preset == "trusted_private_chat":
        # v12: trusted invitees become creators (spec: createRoom presets).
        extra = [u for u in content.get("additional_creators", []) + list(request.invite) if u != creator]
        if extra:
            content["additional_creators"] = list(dict.fromkeys(extra))
    return content


def initial_state(creator: str, room_version: RoomVersion, request: RoomRequest, alias: str | None,
                  displayname: str | None, avatar_url: str | None) -> list[tuple[str, str, JsonDict]]:
    """
    The state events that follow C{m.room.create}, in the order the spec
    gives (POST /createRoom): the creator's join, power levels, the
    canonical alias, the preset's rules (unless C{initial_state} sets them),
    C{initial_state}, name, topic, then the invites.

    @return: C{(type, state_key, content)} of each.
    """
    events: list[tuple[str, str, JsonDict]] = [
        ("m.room.member", creator,
         member_content("join", displayname=displayname, avatar_url=avatar_url)),
    ]
    trusted = request.invite if request.preset == "trusted_private_chat" else ()
    power_levels = default_power_levels_content(creator, room_version, request.preset, invitees=trusted)
    if request.power_level_content_override:
        power_levels.update(request.power_level_content_override)
    events.append(("m.room.power_levels", "", power_levels))
    if alias is not None:
        events.append(("m.room.canonical_alias", "", {"alias": alias}))
    preset = PRESET_STATE[request.preset]
    explicit = {(event_type, state_key) for event_type, state_key, _ in request.initial_state}
    for event_type, content in (
        ("m.room.join_rules", {"join_rule": preset["join_rule"]}),
        ("m.room.history_visibility", {"history_visibility": preset["history_visibility"]}),
        ("m.room.guest_access", {"guest_access": preset["guest_access"]}),
    ):
        if (event_type, "") not in explicit:
            events.append((event_type, "", content))
    events += [(event_type, state_key, content) for event_type, state_key, content in request.initial_state]
    if request.name is not None:
        events.append(("m.room.name", "", {"name": request.name}))
    if request.topic is not None:
        events.append(("m.room.topic", "", {
            "topic": request.topic,
            "m.topic": {"m.text": [{"body": request.topic, "mimetype": "text/plain"}]},
        }))
    for invitee in request.invite:
        invite: JsonDict = {"membership": "invite"}
        if request.is_direct:
            invite["is_direct"] = True
        events.append(("m.room.member", invitee, invite))
    return events
