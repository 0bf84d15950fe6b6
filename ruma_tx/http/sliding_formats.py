"""
The two wire formats of simplified sliding sync, read into one request and
written from one response (L{ruma_tx.matrix.sliding_sync}):

 - the stable C{POST /v4/sync} (MSC4186 as merged): C{pos}, C{timeout} and
   C{set_presence} in the body, C{range}, C{required_state} as
   C{{include, exclude, lazy_members}}, C{is_invited}, C{stripped_state},
   C{expanded_timeline}, C{membership} and C{lists} per room;
 - the unstable C{org.matrix.simplified_msc3575} path that Synapse and
   today's clients speak: C{pos}, C{timeout} and C{set_presence} in the
   query, C{ranges}, C{required_state} as C{[type, state_key]} pairs with
   C{*}, C{$LAZY} and C{$ME}, C{is_invite}, C{invite_state},
   C{unstable_expanded_timeline}, and per-room unread counts.
"""
from __future__ import annotations

from typing import Any, Callable

from ruma_tx.http.parsing import get_field
from ruma_tx.matrix.errors import bad_json, invalid_param, missing_param
from ruma_tx.matrix.sliding_sync import (
    MAX_LISTS,
    MAX_SUBSCRIPTIONS,
    MAX_TIMELINE_LIMIT,
    ExtensionScope,
    Extensions,
    ListConfig,
    ListFilters,
    RequiredState,
    RoomConfig,
    StateElement,
    ToDeviceExtension,
)
from ruma_tx.matrix.types import JsonDict

#: Longest C{conn_id} accepted (MSC4186 sets none; it is stored per connection).
MAX_CONN_ID = 255

#: A format's reader of C{required_state}: C{(value, user_id) -> RequiredState}.
RequiredStateReader = Callable[[object, str], RequiredState]


def _me(state_key: str | None, user_id: str) -> str | None:
    return user_id if state_key == "$ME" else state_key


def unstable_required_state(value: object, user_id: str) -> RequiredState:
    """C{[[type, state_key], ...]}: C{*} for any, C{$ME} for the user, C{[m.room.member, $LAZY]} lazy."""
    if not isinstance(value, list):
        raise bad_json("'required_state' must be a list of [type, state_key] pairs")
    include: set[StateElement] = set()
    lazy = False
    for pair in value:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise bad_json("'required_state' must be a list of [type, state_key] pairs")
        event_type, state_key = pair
        if event_type == "m.room.member" and state_key == "$LAZY":
            lazy = True
            continue
        include.add((None if event_type == "*" else event_type,
                     None if state_key == "*" else _me(state_key, user_id)))
    # As Synapse: ["*", "*"] is the whole state, members included, $LAZY or not.
    return RequiredState(frozenset(include), frozenset(), lazy and (None, None) not in include)


def stable_required_state(value: object, user_id: str) -> RequiredState:
    """C{{include: [{type?, state_key?}], exclude: [...], lazy_members}} (absent keys match anything)."""
    if not isinstance(value, dict):
        raise bad_json("'required_state' must be an object")

    def elements(name: str) -> frozenset[StateElement]:
        found: set[StateElement] = set()
        for element in get_field(value, name, list, []):
            if not isinstance(element, dict):
                raise bad_json(f"'required_state.{name}' must hold objects")
            event_type = get_field(element, "type", str, None)
            found.add((event_type, _me(get_field(element, "state_key", str, None), user_id)))
        return frozenset(found)

    return RequiredState(elements("include"), elements("exclude"), get_field(value, "lazy_members", bool, False))


def room_config(body: object, user_id: str, read_state: RequiredStateReader, where: str) -> RoomConfig:
    if not isinstance(body, dict):
        raise bad_json(f"{where} must be an object")
    limit = get_field(body, "timeline_limit", int)
    if limit < 0:
        raise invalid_param(f"{where}: 'timeline_limit' must not be negative")
    if "required_state" not in body:
        raise missing_param(f"{where}: missing 'required_state'")
    return RoomConfig(min(limit, MAX_TIMELINE_LIMIT), (read_state(body["required_state"], user_id),))


def _strings(body: JsonDict, name: str, nullable: bool = False) -> tuple[Any, ...] | None:
    value = get_field(body, name, list, None)
    if value is None:
        return None
    if not all(isinstance(v, str) or (nullable and v is None) for v in value):
        raise bad_json(f"'{name}' must be a list of strings")
    return tuple(value)


def list_filters(body: object, invited_key: str) -> ListFilters:
    if body is None:
        return ListFilters()
    if not isinstance(body, dict):
        raise bad_json("'filters' must be an object")
    return ListFilters(
        is_dm=get_field(body, "is_dm", bool, None),
        is_encrypted=get_field(body, "is_encrypted", bool, None),
        is_invited=get_field(body, invited_key, bool, None),
        spaces=_strings(body, "spaces"),
        room_types=_strings(body, "room_types", nullable=True),
        not_room_types=_strings(body, "not_room_types", nullable=True) or (),
        tags=_strings(body, "tags"),
        not_tags=_strings(body, "not_tags") or (),
    )


def _range(value: object) -> tuple[int, int]:
    if not (isinstance(value, list) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)) or value[0] > value[1]:
        raise invalid_param("A list range must be [first, last] with 0 <= first <= last")
    return value[0], value[1]


def unstable_ranges(body: JsonDict) -> tuple[tuple[int, int], ...] | None:
    ranges = get_field(body, "ranges", list, None)
    return None if ranges is None else tuple(_range(r) for r in ranges)


def stable_range(body: JsonDict) -> tuple[tuple[int, int], ...] | None:
    value = body.get("range")
    return None if value is None else (_range(value),)


def lists(body: JsonDict, user_id: str, read_state: RequiredStateReader,
          read_ranges: Callable[[JsonDict], tuple[tuple[int, int], ...] | None],
          invited_key: str) -> dict[str, ListConfig]:
    found = get_field(body, "lists", dict, {})
    if len(found) > MAX_LISTS:
        raise invalid_param(f"At most {MAX_LISTS} lists")
    configs = {}
    for name, config in found.items():
        where = f"list {name!r}"
        configs[name] = ListConfig(room_config(config, user_id, read_state, where), read_ranges(config),
                                   list_filters(config.get("filters"), invited_key))
    return configs


def subscriptions(body: JsonDict, user_id: str, read_state: RequiredStateReader) -> dict[str, RoomConfig]:
    found = get_field(body, "room_subscriptions", dict, {})
    if len(found) > MAX_SUBSCRIPTIONS:
        raise invalid_param(f"At most {MAX_SUBSCRIPTIONS} room subscriptions")
    return {room_id: room_config(config, user_id, read_state, f"subscription {room_id!r}")
            for room_id, config in found.items()}


def extensions(body: JsonDict) -> Extensions:
    """The enabled extensions (the same shapes on both paths; Synapse's defaults)."""
    found = get_field(body, "extensions", dict, {})

    def enabled(name: str) -> JsonDict | None:
        config = found.get(name)
        if config is None:
            return None
        if not isinstance(config, dict):
            raise bad_json(f"'extensions.{name}' must be an object")
        return config if get_field(config, "enabled", bool, False) else None

    def scope(name: str) -> ExtensionScope | None:
        config = enabled(name)
        if config is None:
            return None
        # Absent: all lists and subscriptions; an empty list: none (as Synapse).
        lists, rooms = _strings(config, "lists"), _strings(config, "rooms")
        return ExtensionScope(("*",) if lists is None else lists, ("*",) if rooms is None else rooms)

    to_device = enabled("to_device")
    limit = 100 if to_device is None else get_field(to_device, "limit", int, 100)
    if limit < 1:
        raise invalid_param("'extensions.to_device.limit' must be positive")
    return Extensions(
        to_device=None if to_device is None else ToDeviceExtension(get_field(to_device, "since", str, None), limit),
        e2ee=enabled("e2ee") is not None,
        account_data=scope("account_data"),
        receipts=scope("receipts"),
        typing=scope("typing"),
    )


def conn_id(body: JsonDict) -> str:
    value = get_field(body, "conn_id", str, "")
    if len(value) > MAX_CONN_ID:
        raise invalid_param(f"'conn_id' is longer than {MAX_CONN_ID} characters")
    return value


# -- responses ------------------------------------------------------------------

#: Per format, how the engine's room fields are named (C{None}: not sent).
UNSTABLE_ROOM_FIELDS: dict[str, str | None] = {
    "stripped_state": "invite_state", "expanded_timeline": "unstable_expanded_timeline",
    "membership": None, "lists": None,
}
STABLE_ROOM_FIELDS: dict[str, str | None] = {"notification_count": None, "highlight_count": None}


def shown_rooms(rooms: dict[str, JsonDict], names: dict[str, str | None], keep_nulls: bool) -> JsonDict:
    """The rooms in a format's field names (C{null} for a removed name: stable only)."""
    shown: JsonDict = {}
    for room_id, room in rooms.items():
        fields: JsonDict = {}
        for key, value in room.items():
            name = names.get(key, key)
            if name is not None and (value is not None or keep_nulls):
                fields[name] = value
        shown[room_id] = fields
    return shown
