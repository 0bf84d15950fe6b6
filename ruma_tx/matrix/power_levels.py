"""
Power levels: who has which level, and what each action requires
(spec: C{m.room.power_levels} in the client-server API, the
authorisation rules of room versions 1 to 12, and rooms/v1.md "accept
values as strings" and "as floats", which hold until v10).

All functions are pure. A I{state map} maps C{(type, state_key)} to the event
(a PDU dict) currently holding that key. A room version may be given as a
L{RoomVersion} or as its identifier string.
"""
from __future__ import annotations

import math
import re
from typing import Iterable

from ruma_tx.matrix.room_versions import RoomVersion, as_room_version
from ruma_tx.matrix.types import JsonDict, StateMap

CREATE = ("m.room.create", "")
POWER_LEVELS = ("m.room.power_levels", "")

#: The level a creator has when there is no C{m.room.power_levels} event
#: (room versions 1 to 11).
CREATOR_DEFAULT_LEVEL = 100

#: The defaults of the named levels when the power levels event (or the
#: property) is missing.
ACTION_DEFAULTS: dict[str, int] = {"invite": 0, "kick": 50, "ban": 50, "redact": 50}

#: C{state_default} and C{events_default} when missing.
STATE_DEFAULT = 50
EVENTS_DEFAULT = 0

#: The default of each C{notifications} key when missing (only C{room} is
#: specified).
NOTIFICATION_DEFAULTS: dict[str, int] = {"room": 50}

#: rooms/v1.md: "a single base 10 integer ... optionally prefixed with a
#: single - or + ... with any number of leading or trailing whitespace".
_INTEGER_STRING = re.compile(r"\s*[+-]?[0-9]+\s*", re.ASCII)

#: The canonical JSON integer range, which power levels must respect.
MIN_LEVEL = -(2**53) + 1
MAX_LEVEL = 2**53 - 1


def is_level(value: object) -> bool:
    """
    @param value: A value from a power levels event's content.
    @return: Whether it is a JSON integer in the canonical JSON range (Python
        booleans, strings and floats are not).
    """
    return type(value) is int and MIN_LEVEL <= value <= MAX_LEVEL


def as_level(value: object) -> int | None:
    """
    A level as room versions before 10 read it (the auth rules of v10+
    accept nothing but integers, which read the same).

    @param value: A value from a power levels event's content.
    @return: An integer as is; a string holding a base-10 integer (optional
        sign, leading zeroes and surrounding whitespace) as that integer; a
        finite float truncated (v1-5 allow floats); else L{None}.
    """
    if type(value) is int:
        return value
    if isinstance(value, str) and _INTEGER_STRING.fullmatch(value):
        return int(value)
    if type(value) is float and math.isfinite(value):
        return int(value)
    return None


def _level(value: object, default: int) -> int:
    """
    @param value: A level read from a power levels event, or L{None}.
    @param default: What to use when it is missing or not a level.
    @return: The level (L{as_level}); anything else falls back to
        C{default} rather than crash.
    """
    level = as_level(value)
    return default if level is None else level


def event_content(event: JsonDict | None) -> JsonDict:
    """
    @param event: An event or L{None}.
    @return: Its content if it is an object, else an empty dict.
    """
    if event is None:
        return {}
    content = event.get("content")
    return content if isinstance(content, dict) else {}


def _power_levels_content(state: StateMap) -> JsonDict | None:
    """
    @param state: A state map.
    @return: The content of the current C{m.room.power_levels} event, or
        L{None} when the room has none.
    """
    event = state.get(POWER_LEVELS)
    if event is None:
        return None
    return event_content(event)


def creators(state: StateMap, room_version: RoomVersion | str) -> frozenset[str]:
    """
    The room's creators.

    @param state: A state map holding the C{m.room.create} event.
    @param room_version: The room version.
    @return: v12: the create event's C{sender} plus the valid strings of
        C{content.additional_creators}; v11: the C{sender}; v10: the
        C{content.creator}. Empty if there is no create event.
    """
    version = as_room_version(room_version)
    create = state.get(CREATE)
    if create is None:
        return frozenset()
    content = event_content(create)
    if not version.implicit_room_creator:
        creator = content.get("creator")
        return frozenset([creator]) if isinstance(creator, str) else frozenset()
    result = {create.get("sender")}
    if version.privileged_creators:
        additional = content.get("additional_creators")
        if isinstance(additional, list):
            result.update(u for u in additional if isinstance(u, str))
    return frozenset(u for u in result if isinstance(u, str))


def user_power_level(
    user_id: str, state: StateMap, room_version: RoomVersion | str
) -> int | float:
    """
    A user's current power level.

    @param user_id: The user.
    @param state: A state map.
    @param room_version: The room version.
    @return: C{float("inf")} for a creator of a v12 room; otherwise the
        user's entry in the power levels' C{users}, or C{users_default}
        (default 0). Without a power levels event: 100 for the creator
        (v10: C{content.creator}, v11: the create event's C{sender}), 0 for
        everyone else.
    """
    version = as_room_version(room_version)
    if version.privileged_creators and user_id in creators(state, version):
        return float("inf")
    content = _power_levels_content(state)
    if content is None:
        if user_id in creators(state, version):
            return CREATOR_DEFAULT_LEVEL
        return 0
    users_default = _level(content.get("users_default"), 0)
    users = content.get("users")
    if isinstance(users, dict) and user_id in users:
        return _level(users[user_id], users_default)
    return users_default


def event_power_level(event_type: str, is_state: bool, state: StateMap) -> int:
    """
    The level required to send an event (the spec's I{required power level}).

    @param event_type: The event's type.
    @param is_state: Whether it is a state event (has a C{state_key}).
    @param state: A state map.
    @return: C{events[event_type]} if set, else C{state_default} (default 50)
        for state events or C{events_default} (default 0) for others. The
        defaults also hold when there is no power levels event.
    """
    content = _power_levels_content(state) or {}
    events = content.get("events")
    if isinstance(events, dict):
        level = as_level(events.get(event_type))
        if level is not None:
            return level
    if is_state:
        return _level(content.get("state_default"), STATE_DEFAULT)
    return _level(content.get("events_default"), EVENTS_DEFAULT)


def power_level_for(action: str, state: StateMap) -> int:
    """
    The level a named action requires.

    @param action: C{"invite"} (default 0), C{"kick"}, C{"ban"} or
        C{"redact"} (default 50 each).
    @param state: A state map.
    @return: The level from the power levels event, or the default.
    @raise ValueError: For another action name.
    """
    if action not in ACTION_DEFAULTS:
        raise ValueError(f"Unknown power level action {action!r}")
    content = _power_levels_content(state) or {}
    return _level(content.get(action), ACTION_DEFAULTS[action])


def notification_power_level(key: str, state: StateMap) -> int:
    """
    The level required to trigger a notification type (push rule condition
    C{sender_notification_permission}).

    @param key: The C{notifications} key, e.g. C{"room"} (default 50).
    @param state: A state map.
    @return: The level, or 50 for an unknown key without a value (as
        Synapse does).
    """
    content = _power_levels_content(state) or {}
    notifications = content.get("notifications")
    default = NOTIFICATION_DEFAULTS.get(key, 50)
    if isinstance(notifications, dict):
        return _level(notifications.get(key), default)
    return default


def default_power_levels_content(
    creator: str,
    room_version: RoomVersion | str,
    preset: str | None,
    *,
    invitees: Iterable[str] = (),
) -> JsonDict:
    """
    The content of the C{m.room.power_levels} event that C{createRoom} sends
    before applying C{power_level_content_override}.

    The event levels follow Synapse. The spec requires that in room version
    12 C{m.room.tombstone} be explicitly higher than C{state_default}, so it
    is 150 there (as Synapse does) and 100 before. C{invite} is 0 for the
    private presets and 50 otherwise, as Synapse does.

    @param creator: The creating user.
    @param room_version: The room version.
    @param preset: C{"private_chat"}, C{"trusted_private_chat"},
        C{"public_chat"} or L{None}.
    @param invitees: The users invited by C{createRoom}. With
        C{trusted_private_chat} they get the creator's level (100) in room
        versions before 12; in v12 they are additional creators instead and
        may not be listed.
    @return: A fresh dict.
    """
    version = as_room_version(room_version)
    users: dict[str, int] = {}
    if not version.privileged_creators:
        users[creator] = CREATOR_DEFAULT_LEVEL
        if preset == "trusted_private_chat":
            for invitee in invitees:
                users[invitee] = CREATOR_DEFAULT_LEVEL
    private = preset in ("private_chat", "trusted_private_chat")
    return {
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": 150 if version.privileged_creators else 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0 if private else 50,
        "notifications": {"room": 50},
    }
