"""
The authorisation rule for C{m.room.power_levels} events, in every room
version (spec: rooms/v1.md rule 10, v6 rule 9 with C{notifications}, v10
rule 10 with integers only, v12 with privileged creators).

Split from L{ruma_tx.matrix.auth_rules}, which calls it.
"""
from __future__ import annotations

from typing import Any

from ruma_tx.matrix.identifiers import is_valid_user_id
from ruma_tx.matrix.power_levels import POWER_LEVELS, as_level, creators, event_content, is_level
from ruma_tx.matrix.room_versions import RoomVersion
from ruma_tx.matrix.types import JsonDict, StateMap

#: The named levels of a power levels event.
NAMED_LEVELS = (
    "users_default", "events_default", "state_default", "ban", "redact", "kick", "invite",
)


def power_levels_violation(
    event: JsonDict, state: StateMap, version: RoomVersion, sender_level: int | float,
) -> str | None:
    """
    Rule "if type is m.room.power_levels".

    @param state: The room state before the event.
    @param sender_level: The sender's current level.
    @return: Why the event is rejected (a message for C{AuthError}): the
        content is malformed, lists a v12 creator, or changes something
        beyond the sender's level; L{None} if it is allowed.
    """
    content = event_content(event)
    level_maps = ("events", "notifications") if version.notifications_power_levels else ("events",)
    if version.integer_power_levels:
        for name in NAMED_LEVELS:
            if name in content and not is_level(content[name]):
                return f"Power level {name!r} must be an integer"
        for name in ("events", "notifications"):
            if name in content:
                value = content[name]
                if not isinstance(value, dict) or not all(is_level(v) for v in value.values()):
                    return f"{name!r} must be an object whose values are integers"
    valid_level = is_level if version.integer_power_levels else _is_legacy_level
    users = content.get("users", {})
    if not isinstance(users, dict):
        return "'users' must be an object"
    for user_id, level in users.items():
        if not is_valid_user_id(user_id):
            return f"{user_id!r} in 'users' is not a valid user ID"
        if not valid_level(level):
            return f"The power level of {user_id} must be an integer"
    if version.privileged_creators:
        listed = sorted(creators(state, version) & users.keys())
        if listed:
            return f"Room creators cannot be given a power level: {', '.join(listed)}"

    previous = state.get(POWER_LEVELS)
    if previous is None:
        return None
    old = event_content(previous)

    for name in NAMED_LEVELS:
        old_value, new_value = old.get(name), content.get(name)
        if old_value == new_value and (name in old) == (name in content):
            continue
        if name in old and _gt(old_value, sender_level):
            return f"You cannot change {name!r}: it is above your level"
        if name in content and _gt(new_value, sender_level):
            return f"You cannot set {name!r} above your own level"

    for name in level_maps:
        old_map = _object_or_empty(old.get(name))
        new_map = _object_or_empty(content.get(name))
        for key in old_map.keys() | new_map.keys():
            if key in old_map and key in new_map and old_map[key] == new_map[key]:
                continue
            if key in old_map and _gt(old_map[key], sender_level):
                return f"You cannot change the level of {name}.{key}: it is above yours"
            if key in new_map and _gt(new_map[key], sender_level):
                return f"You cannot set the level of {name}.{key} above your own"

    old_users = _object_or_empty(old.get("users"))
    sender = event["sender"]
    for user_id in old_users.keys() | users.keys():
        if user_id in old_users and user_id in users and old_users[user_id] == users[user_id]:
            continue
        if user_id != sender and user_id in old_users and _ge(old_users[user_id], sender_level):
            return f"You cannot change the level of {user_id}: it is not below yours"
        if user_id in users and _gt(users[user_id], sender_level):
            return f"You cannot give {user_id} a level above your own"
    return None


def _is_legacy_level(value: object) -> bool:
    """@return: Whether a v1-9 rule accepts the value: L{as_level} reads it."""
    return as_level(value) is not None


def _object_or_empty(value: object) -> dict[Any, Any]:
    """@return: C{value} if it is a JSON object (a dict), else C{{}}."""
    return value if isinstance(value, dict) else {}


def _gt(value: object, level: int | float) -> bool:
    """
    @return: Whether a stored level is greater than C{level}; a value that
        is not a level (L{as_level}) counts as greater, so it can only be
        changed by an infinite level.
    """
    parsed = as_level(value)
    if parsed is not None:
        return parsed > level
    return level != float("inf")


def _ge(value: object, level: int | float) -> bool:
    """@return: Whether a stored level is at least C{level} (see L{_gt})."""
    parsed = as_level(value)
    if parsed is not None:
        return parsed >= level
    return level != float("inf")
