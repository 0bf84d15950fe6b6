"""
Room upgrades as pure rules (spec: client-server-api "Room Upgrades", POST
/rooms/{roomId}/upgrade): the request, the replacement room's create
content, copied state, bans and power levels, the old room's restricted
power levels, how the canonical alias moves, and what of each user's
settings (push rules, C{m.direct}) follows them to the new room.

Where the spec leaves the details to the server, these follow Synapse
(C{RoomCreationHandler.clone_existing_room} and friends).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import AbstractSet, Any, Mapping

from ruma_tx.matrix.errors import BadRequest, bad_json, invalid_param, missing_param
from ruma_tx.matrix.identifiers import InvalidIdentifier, parse_user_id
from ruma_tx.matrix.power_levels import (
    CREATE,
    CREATOR_DEFAULT_LEVEL,
    POWER_LEVELS,
    default_power_levels_content,
    event_content,
    event_power_level,
    is_level,
    user_power_level,
)
from ruma_tx.matrix.room_versions import ROOM_VERSIONS, RoomVersion
from ruma_tx.matrix.types import JsonDict, StateMap

TOMBSTONE = "m.room.tombstone"
SPACE_CHILD = "m.space.child"
SPACE = "m.space"

#: The state copied to the new room, in the order it is sent: the spec's
#: recommended list (power levels apart: see L{upgraded_power_levels}),
#: the rules first so that the room is never briefly more open than the
#: old one. As Synapse, pinned events (they name the old room's events)
#: and C{m.space.parent} claims are not copied.
COPIED_STATE_TYPES = (
    "m.room.join_rules", "m.room.history_visibility", "m.room.guest_access", "m.room.encryption",
    "m.room.server_acl", "m.room.name", "m.room.topic", "m.room.avatar",
)

#: The body of the tombstone (Synapse's words).
TOMBSTONE_BODY = "This room has been replaced"


@dataclass(frozen=True)
class UpgradeRequest:
    """
    A parsed C{POST /upgrade} body.

    @ivar additional_creators: the new room's other creators (empty when
        the new version has no additional creators: the field is ignored).
    """

    new_version: RoomVersion
    additional_creators: tuple[str, ...] = ()


def parse_upgrade_request(body: Mapping[str, Any]) -> UpgradeRequest:
    """
    @raise BadRequest: M_MISSING_PARAM without C{new_version}, M_BAD_JSON
        for a field of the wrong type, M_UNSUPPORTED_ROOM_VERSION for a
        version this server does not have, M_INVALID_PARAM for an
        additional creator that is not a user id.
    """
    if "new_version" not in body:
        raise missing_param("Missing parameter: new_version")
    identifier = body["new_version"]
    if not isinstance(identifier, str):
        raise bad_json("'new_version' must be a string")
    version = ROOM_VERSIONS.get(identifier)
    if version is None:
        raise BadRequest("M_UNSUPPORTED_ROOM_VERSION", f"Room version {identifier!r} is not supported")
    additional = body.get("additional_creators")
    if additional is None:
        additional = []
    if not isinstance(additional, list):
        raise bad_json("'additional_creators' must be a list of user ids")
    for user_id in additional:
        try:
            parse_user_id(user_id)
        except (InvalidIdentifier, TypeError, AttributeError):
            raise invalid_param(f"Invalid user id in 'additional_creators': {user_id!r}") from None
    if not version.privileged_creators:
        additional = []  # spec: ignored by versions without additional creators
    return UpgradeRequest(version, tuple(dict.fromkeys(additional)))


def may_replace(user_id: str, state: StateMap, room_version: RoomVersion) -> bool:
    """
    Whether the user may upgrade the room: they are joined and may send
    its C{m.room.tombstone} (spec, "Server behaviour" 1).

    @param state: the room's state, with at least its create, power levels
        and the user's member event.
    """
    member = state.get(("m.room.member", user_id))
    if member is None or event_content(member).get("membership") != "join":
        return False
    return user_power_level(user_id, state, room_version) >= event_power_level(TOMBSTONE, True, state)


def upgraded_create_content(old_create: JsonDict, *, upgrader: str, old_room_id: str,
                            last_event_id: str | None, request: UpgradeRequest) -> JsonDict:
    """
    The new room's C{m.room.create} content: its version, C{predecessor},
    the old room's C{type} (spec v1.4) and, as Synapse, C{m.federate: false}
    when the old room had it.

    C{predecessor.event_id} is deprecated, but the spec asks to set it
    "where possible": the last event of the old room known when the new
    room is made (the tombstone comes after it).

    @param old_create: the old room's C{m.room.create} content.
    @param last_event_id: the old room's last event, if known.
    @param request: its C{additional_creators} are listed (the upgrader,
        the new room's creator, is not listed again).
    """
    predecessor: JsonDict = {"room_id": old_room_id}
    if last_event_id is not None:
        predecessor["event_id"] = last_event_id
    version = request.new_version
    content: JsonDict = {"room_version": version.identifier, "predecessor": predecessor}
    if not version.implicit_room_creator:
        content["creator"] = upgrader
    others = [user_id for user_id in request.additional_creators if user_id != upgrader]
    if version.privileged_creators and others:
        content["additional_creators"] = others
    room_type = old_create.get("type")
    if isinstance(room_type, str):
        content["type"] = room_type
    if old_create.get("m.federate") is False:
        content["m.federate"] = False
    return content


def copied_state(old_state: Mapping[tuple[str, str], JsonDict], *, is_space: bool
                 ) -> list[tuple[str, str, JsonDict]]:
    """
    The old room's state the new room starts with: L{COPIED_STATE_TYPES}
    and, for a space, its children (as Synapse; a child whose content was
    emptied has left the space and is not copied).

    @param old_state: C{(type, state_key) -> content} of the old room.
    @return: C{(type, state_key, content)} in the order to send them.
    """
    copied = [(event_type, "", copy.deepcopy(dict(old_state[(event_type, "")])))
              for event_type in COPIED_STATE_TYPES if (event_type, "") in old_state]
    if is_space:
        copied += [(SPACE_CHILD, state_key, copy.deepcopy(dict(content)))
                   for (event_type, state_key), content in sorted(old_state.items())
                   if event_type == SPACE_CHILD and content]
    return copied


@dataclass(frozen=True)
class UpgradedPowerLevels:
    """
    @ivar initial: the new room's first power levels, in which the upgrader
        may send every copied event (raised if needed, as Synapse).
    @ivar final: the levels the new room ends with: the old room's, with
        the upgrader back at their own level.
    """

    initial: JsonDict
    final: JsonDict


def upgraded_power_levels(old_content: JsonDict | None, *, upgrader: str, old_level: int | float,
                          unlimited_old_creators: frozenset[str], request: UpgradeRequest
                          ) -> UpgradedPowerLevels:
    """
    The new room's power levels: the old room's, so that everyone keeps
    their level.

    In a version with privileged creators (12), the new room's creators
    (the upgrader and C{additional_creators}) have unlimited power and may
    not be listed. Otherwise the upgrader keeps their level, raised while
    the state is copied to the highest level a copied event or a ban
    needs (as Synapse). The old room's creators with unlimited power (a
    version 12 room upgraded to an older version) get that level, at
    least 100, rather than fall to C{users_default}.

    @param old_content: the old room's power levels content (C{None}: it
        has none, and the new room gets the defaults of C{createRoom}).
    @param old_level: the upgrader's level in the old room.
    @param unlimited_old_creators: the old room's creators if they had
        unlimited power there (version 12), else nothing.
    """
    version = request.new_version
    if old_content is None:
        base = default_power_levels_content(upgrader, version, None)
    else:
        base = copy.deepcopy(dict(old_content))
    users = base.get("users")
    users = dict(users) if isinstance(users, dict) else {}
    if version.privileged_creators:
        for creator in (upgrader, *request.additional_creators):
            users.pop(creator, None)
        final = {**base, "users": users}
        return UpgradedPowerLevels(initial=final, final=copy.deepcopy(final))
    events = base.get("events")
    needed = max(_level(base, "state_default", 50), _level(base, "ban", 50),
                 max((level for level in events.values() if is_level(level)), default=0)
                 if isinstance(events, dict) else 0)
    unlimited = max(CREATOR_DEFAULT_LEVEL, needed)
    for creator in unlimited_old_creators:
        users[creator] = unlimited
    own = unlimited if old_level == float("inf") else int(old_level)
    final = {**base, "users": {**users, upgrader: own}}
    initial = {**base, "users": {**users, upgrader: max(own, needed)}}
    return UpgradedPowerLevels(initial=initial, final=final)


def restored_power_levels(current: JsonDict, upgrader: str, levels: UpgradedPowerLevels) -> JsonDict | None:
    """
    The new room's power levels with the upgrader back at their own level,
    or C{None} when they are there already (or, as a creator, unlisted).
    Only their entry changes, so nothing set meanwhile is undone.

    @param current: the new room's current power levels content.
    """
    final_users = levels.final.get("users", {})
    if upgrader not in final_users:
        return None
    users = current.get("users")
    users = dict(users) if isinstance(users, dict) else {}
    if users.get(upgrader) == final_users[upgrader]:
        return None
    return {**copy.deepcopy(dict(current)), "users": {**users, upgrader: final_users[upgrader]}}


def copied_bans(bans: Mapping[str, JsonDict], *, upgrader: str, create_content: JsonDict,
                power_levels: JsonDict, room_version: RoomVersion) -> list[tuple[str, JsonDict]]:
    """
    The bans of the old room the new one starts with (as Synapse: sent by
    the upgrader, with the old ban's content). A ban the new room's auth
    rules would refuse (of a user at the upgrader's level or above, e.g. a
    new creator) is left out rather than failing the upgrade.

    @param bans: C{user_id -> content} of the old room's ban events.
    @param power_levels: the new room's initial power levels content.
    @return: C{(user_id, content)}, by user id.
    """
    state: dict[tuple[str, str], JsonDict] = {CREATE: {"sender": upgrader, "content": create_content},
                                              POWER_LEVELS: {"content": power_levels}}
    own = user_power_level(upgrader, state, room_version)
    return [(user_id, copy.deepcopy(dict(content))) for user_id, content in sorted(bans.items())
            if user_id != upgrader and user_power_level(user_id, state, room_version) < own]


def restricted_power_levels(content: JsonDict) -> JsonDict | None:
    """
    The old room's power levels once it is replaced: sending events and
    inviting need the greater of 50 and C{users_default + 1} (spec, as
    Synapse); C{None} when they already do.
    """
    level = max(50, _level(content, "users_default", 0) + 1)
    restricted = copy.deepcopy(dict(content))
    changed = False
    for key in ("events_default", "invite"):
        if _level(content, key, 0) < level:
            restricted[key] = level
            changed = True
    return restricted if changed else None


def moved_canonical_alias(content: JsonDict, server_name: str) -> tuple[JsonDict, JsonDict]:
    """
    Split the old room's C{m.room.canonical_alias} content between the two
    rooms: this server's aliases move with the directory entries (spec,
    "Moves any local aliases"), other servers' stay (as Synapse).

    @return: C{(new room's content, old room's content)}.
    """
    suffix = ":" + server_name
    moved: JsonDict = {}
    kept = copy.deepcopy(dict(content))
    alias = content.get("alias")
    if isinstance(alias, str) and alias.endswith(suffix):
        moved["alias"] = alias
        kept.pop("alias", None)
    alt_aliases = content.get("alt_aliases")
    if isinstance(alt_aliases, list):
        local = [a for a in alt_aliases if isinstance(a, str) and a.endswith(suffix)]
        if local:
            moved["alt_aliases"] = local
        remaining = [a for a in alt_aliases if a not in local]
        if remaining:
            kept["alt_aliases"] = remaining
        else:
            kept.pop("alt_aliases", None)
    return moved, kept


def aliases_in(content: JsonDict) -> list[str]:
    """The aliases a canonical alias content names: C{alias}, then C{alt_aliases}."""
    alias = content.get("alias")
    alt_aliases = content.get("alt_aliases")
    named = [alias] if isinstance(alias, str) else []
    if isinstance(alt_aliases, list):
        named += [a for a in alt_aliases if isinstance(a, str)]
    return list(dict.fromkeys(named))


def only_aliases(content: JsonDict, kept: AbstractSet[str]) -> JsonDict:
    """A canonical alias content naming only the aliases in C{kept} (empty if none)."""
    result: JsonDict = {}
    if content.get("alias") in kept:
        result["alias"] = content["alias"]
    alt_aliases = [a for a in aliases_in({"alt_aliases": content.get("alt_aliases")}) if a in kept]
    if alt_aliases:
        result["alt_aliases"] = alt_aliases
    return result


def tombstone_content(replacement_room: str) -> JsonDict:
    return {"body": TOMBSTONE_BODY, "replacement_room": replacement_room}


def carried_push_rules(ruleset: JsonDict, old_room_id: str, new_room_id: str
                       ) -> list[tuple[str, str, JsonDict]]:
    """
    The push rules a user gets for the new room: a copy of each enabled
    rule of theirs about the old room (as Synapse, which copies rather than
    moves them, so the old room keeps its settings too): the room rule,
    and override and underride rules with a C{room_id} condition on it.

    The copy's id names the new room: a room rule's is the room id; for
    other kinds the old room id in the rule id is replaced, or the new
    room id appended (Synapse names them by the new room id alone, so two
    such rules would collide).

    @param ruleset: the user's merged ruleset (C{GET /pushrules/}).
    @return: C{(kind, rule_id, body)} to C{PUT}.
    """
    rules = ruleset.get("global", ruleset)
    carried: list[tuple[str, str, JsonDict]] = []
    for kind in ("override", "room", "underride"):
        for rule in rules.get(kind, []):
            if rule.get("default") or not rule.get("enabled", True):
                continue
            rule_id = rule["rule_id"]
            actions = copy.deepcopy(rule.get("actions", []))
            if kind == "room":
                if rule_id == old_room_id:
                    carried.append((kind, new_room_id, {"actions": actions}))
                continue
            conditions = rule.get("conditions", [])
            if not any(_names_room(c, old_room_id) for c in conditions):
                continue
            new_conditions = [{**c, "pattern": new_room_id} if _names_room(c, old_room_id) else copy.deepcopy(c)
                              for c in conditions]
            new_id = (rule_id.replace(old_room_id, new_room_id) if old_room_id in rule_id
                      else f"{rule_id}-{new_room_id}")
            carried.append((kind, new_id, {"actions": actions, "conditions": new_conditions}))
    return carried


def _names_room(condition: object, room_id: str) -> bool:
    return (isinstance(condition, dict) and condition.get("key") == "room_id"
            and condition.get("pattern") == room_id)


def carried_direct(content: JsonDict, old_room_id: str, new_room_id: str) -> JsonDict | None:
    """
    A user's C{m.direct} with the new room listed beside the old one (as
    Synapse), or C{None} when it does not list the old room (or lists both).
    """
    changed = copy.deepcopy(dict(content))
    for user_id, rooms in content.items():
        if isinstance(rooms, list) and old_room_id in rooms and new_room_id not in rooms:
            changed[user_id] = [*rooms, new_room_id]
            return changed
    return None


def _level(content: Mapping[str, Any], key: str, default: int) -> int:
    value = content.get(key, default)
    return value if is_level(value) else default
