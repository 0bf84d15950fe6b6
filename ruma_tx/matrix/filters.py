"""
Matrix event filters as pure values (spec: client-server API, "Filtering";
OpenAPI definitions C{event_filter.yaml}, C{room_event_filter.yaml} and
C{sync_filter.yaml}).

A filter arrives as JSON: uploaded with C{POST /user/{userId}/filter}, or
inline in C{/sync?filter=}, C{/messages?filter=} and C{/context?filter=}.
L{parse_filter} and L{parse_room_event_filter} validate it strictly and turn
it into frozen dataclasses whose C{matches} methods decide, event by event,
what a response includes.

Round trip: C{GET /user/{userId}/filter/{filterId}} should return the JSON
exactly as it was posted (what Synapse does), so store the posted object
after L{parse_filter} accepted it; unknown keys, which the spec lets clients
send for forward compatibility, then survive. L{filter_to_json} rebuilds the
JSON of a parsed filter (only known keys, only fields that were set) for
callers that hold nothing else; C{parse_filter(filter_to_json(f)) == f}.

All functions are pure.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, overload

from cachetools import LRUCache, cached

from ruma_tx.matrix.identifiers import is_valid_room_id, is_valid_user_id
from ruma_tx.matrix.property_paths import split_property_path
from ruma_tx.matrix.types import JsonDict

#: Synapse's default number of timeline events per room in /sync.
DEFAULT_TIMELINE_LIMIT = 10

#: The largest limit a server should honour (Synapse caps pagination limits
#: at 1000, synapse/streams/config.py); see L{EventFilter.effective_limit}.
MAX_LIMIT = 1000

#: Limits above this are refused outright: JSON integers beyond it are not
#: portable (canonical JSON's range).
_MAX_SAFE_INTEGER = 2**53 - 1

EVENT_FORMATS = ("client", "federation")


class FilterError(ValueError):
    """
    A filter is not valid. The message is a human explanation naming the
    offending field; the API layer returns it as a 400 (C{M_BAD_JSON} for
    an uploaded filter, C{M_INVALID_PARAM} for a C{filter} query parameter).
    """


# --------------------------------------------------------------- matching


@cached(LRUCache(maxsize=1024))  # a pure function: nothing to invalidate
def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    """
    @param pattern: An event type pattern in which C{*} matches any sequence
        of characters (including none); every other character is literal.
    @return: The compiled pattern, to be used with C{fullmatch}.
    """
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def matches_type_pattern(event_type: object, pattern: str) -> bool:
    """
    @param event_type: An event's C{type} (anything; non-strings never match).
    @param pattern: A C{types}/C{not_types} entry, where C{*} is a wildcard
        for any sequence of characters, anywhere in the pattern (spec);
        Synapse only honours a trailing C{*}, which this also covers.
    @return: Whether the type matches the pattern.
    """
    if not isinstance(event_type, str):
        return False
    if "*" not in pattern:
        return event_type == pattern
    return _wildcard_regex(pattern).fullmatch(event_type) is not None


def _allowed(value: object, include: tuple[str, ...] | None, exclude: tuple[str, ...],
             match: Callable[[object, str], bool]) -> bool:
    """
    @return: Whether C{value} passes an include/exclude pair: an exclude
        match always wins, and an absent (L{None}) include list allows all.
    """
    if any(match(value, entry) for entry in exclude):
        return False
    if include is None:
        return True
    return any(match(value, entry) for entry in include)


def _equal(value: object, entry: str) -> bool:
    return value == entry


def _content(event: JsonDict) -> JsonDict:
    """
    @return: The event's C{content} if it is an object, else C{{}} (account
        data may carry non-object content).
    """
    content = event.get("content")
    return content if isinstance(content, dict) else {}


def _sender(event: JsonDict) -> object:
    """
    @return: The event's C{sender}; failing that (as Synapse does, for old
        presence events) C{content.user_id}; L{None} if neither exists.
        Events without a sender (typing, receipts, account data) therefore
        never match a C{senders} list.
    """
    sender = event.get("sender")
    if not sender:
        sender = _content(event).get("user_id")
    return sender


# ------------------------------------------------------------ the filters


@dataclass(frozen=True)
class EventFilter:
    """
    Which events of one kind to include (spec C{EventFilter}). The default
    instance includes everything.

    @ivar limit: The most events to return, greater than 0, or L{None} for
        the server's default (see L{effective_limit}).
    @ivar types: Event type patterns to include (C{*} is a wildcard), or
        L{None} for all types.
    @ivar not_types: Event type patterns to exclude; they win over C{types}.
    @ivar senders: User IDs to include, or L{None} for all senders.
    @ivar not_senders: User IDs to exclude; they win over C{senders}.
    """

    limit: int | None = None
    types: tuple[str, ...] | None = None
    not_types: tuple[str, ...] = ()
    senders: tuple[str, ...] | None = None
    not_senders: tuple[str, ...] = ()

    def matches(self, event: JsonDict) -> bool:
        """
        @param event: An event in client format (C{type}, C{sender},
            C{content}, ...), or an EDU / account data event shaped alike.
        @return: Whether the filter lets the event through (its C{limit} is
            not considered here).
        """
        return (
            _allowed(event.get("type"), self.types, self.not_types, matches_type_pattern)
            and _allowed(_sender(event), self.senders, self.not_senders, _equal)
        )

    def effective_limit(self, default: int = DEFAULT_TIMELINE_LIMIT,
                        maximum: int = MAX_LIMIT) -> int:
        """
        @param default: The limit when the filter sets none.
        @param maximum: The most the server will return (the spec asks
            servers to impose one).
        @return: C{min(limit or default, maximum)}.
        """
        return min(self.limit if self.limit is not None else default, maximum)


@dataclass(frozen=True)
class RoomEventFilter(EventFilter):
    """
    An L{EventFilter} for room events (spec C{RoomEventFilter}), also used
    alone by C{/messages?filter=} and C{/context?filter=}.

    @ivar rooms: Room IDs to include, or L{None} for all rooms.
    @ivar not_rooms: Room IDs to exclude; they win over C{rooms}.
    @ivar contains_url: L{True}: only events whose content has a C{url} key;
        L{False}: only events without one; L{None}: C{url} not considered.
    @ivar lazy_load_members: Lazy-load membership events (spec "Lazy-loading
        room members"); Synapse reads it from the C{room.state} filter in
        /sync and from the given filter in /messages and /context.
    @ivar include_redundant_members: With lazy loading, also resend
        membership events the client has already been sent.
    @ivar unread_thread_notifications: Per-thread notification counts in
        /sync.
    """

    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    contains_url: bool | None = None
    lazy_load_members: bool = False
    include_redundant_members: bool = False
    unread_thread_notifications: bool = False

    def matches_room(self, room_id: str | None) -> bool:
        """
        @param room_id: A room ID, or L{None} if unknown (which never matches
            a C{rooms} list, as in Synapse).
        @return: Whether C{rooms}/C{not_rooms} allow the room.
        """
        return _allowed(room_id, self.rooms, self.not_rooms, _equal)

    def matches(self, event: JsonDict, room_id: str | None = None) -> bool:
        """
        @param event: A client-format event.
        @param room_id: The event's room, for events that do not carry
            C{room_id} (e.g. /sync's timeline format); defaults to the
            event's C{room_id}.
        @return: Whether the filter lets the event through (its C{limit} is
            not considered here).
        """
        if room_id is None:
            room_id = event.get("room_id")
        if not self.matches_room(room_id):
            return False
        if not EventFilter.matches(self, event):
            return False
        if self.contains_url is not None:
            # Spec: "events with a `url` key in their content".
            if ("url" in _content(event)) != self.contains_url:
                return False
        return True


@dataclass(frozen=True)
class RoomFilter:
    """
    What /sync includes for rooms (spec C{RoomFilter}).

    @ivar rooms: Room IDs to include, or L{None} for all rooms; applied
        before the per-section filters.
    @ivar not_rooms: Room IDs to exclude; they win over C{rooms}.
    @ivar include_leave: Whether rooms the user has left are included.
    @ivar timeline: The filter for timeline events.
    @ivar state: The filter for state events.
    @ivar ephemeral: The filter for ephemeral events (typing, receipts).
    @ivar account_data: The filter for per-room account data.
    """

    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    include_leave: bool = False
    timeline: RoomEventFilter = field(default_factory=RoomEventFilter)
    state: RoomEventFilter = field(default_factory=RoomEventFilter)
    ephemeral: RoomEventFilter = field(default_factory=RoomEventFilter)
    account_data: RoomEventFilter = field(default_factory=RoomEventFilter)

    def matches_room(self, room_id: str | None) -> bool:
        """
        @param room_id: A room ID.
        @return: Whether the room-level C{rooms}/C{not_rooms} allow it.
        """
        return _allowed(room_id, self.rooms, self.not_rooms, _equal)


@dataclass(frozen=True)
class Filter:
    """
    A whole filter, as uploaded to C{POST /user/{userId}/filter} or given
    inline to /sync (spec C{Filter}). The default instance filters nothing.

    @ivar event_fields: Dot-separated paths of the event fields to keep (see
        L{apply_event_fields}), or L{None} for all fields.
    @ivar event_format: C{"client"} or C{"federation"}.
    @ivar presence: The filter for presence events.
    @ivar account_data: The filter for global account data.
    @ivar room: The filter for room data.
    """

    event_fields: tuple[str, ...] | None = None
    event_format: str = "client"
    presence: EventFilter = field(default_factory=EventFilter)
    account_data: EventFilter = field(default_factory=EventFilter)
    room: RoomFilter = field(default_factory=RoomFilter)


# ---------------------------------------------------------------- parsing


def _describe(value: object) -> str:
    """@return: A short JSON rendering of a bad value for error messages."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _object(value: object, where: str) -> JsonDict:
    if not isinstance(value, dict):
        raise FilterError(f"{where} must be a JSON object, got {_describe(value)}")
    return value


@overload
def _bool(obj: JsonDict, key: str, where: str, default: bool) -> bool: ...


@overload
def _bool(obj: JsonDict, key: str, where: str, default: None) -> bool | None: ...


def _bool(obj: JsonDict, key: str, where: str, default: bool | None) -> bool | None:
    if key not in obj:
        return default
    value = obj[key]
    if not isinstance(value, bool):
        raise FilterError(f"{_path(where, key)} must be true or false, got {_describe(value)}")
    return value


def _strings(obj: JsonDict, key: str, where: str,
             check: Callable[[object], bool] | None = None,
             what: str = "a string") -> tuple[str, ...] | None:
    """
    @return: The list at C{obj[key]} as a tuple, or L{None} if absent.
    @raise FilterError: If it is not a list of strings (each passing
        C{check}, if given).
    """
    if key not in obj:
        return None
    value = obj[key]
    name = _path(where, key)
    if not isinstance(value, list):
        raise FilterError(f"{name} must be a list, got {_describe(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or (check is not None and not check(item)):
            raise FilterError(f"{name}[{i}] must be {what}, got {_describe(item)}")
    return tuple(value)


def _limit(obj: JsonDict, where: str) -> int | None:
    if "limit" not in obj:
        return None
    value = obj["limit"]
    if (not isinstance(value, int) or isinstance(value, bool)
            or not 0 < value <= _MAX_SAFE_INTEGER):
        raise FilterError(
            f"{_path(where, 'limit')} must be an integer greater than 0, got {_describe(value)}"
        )
    return value


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _event_filter_fields(obj: JsonDict, where: str) -> dict[str, Any]:
    return {
        "limit": _limit(obj, where),
        "types": _strings(obj, "types", where),
        "not_types": _strings(obj, "not_types", where) or (),
        "senders": _strings(obj, "senders", where, is_valid_user_id, "a user ID"),
        "not_senders": _strings(obj, "not_senders", where, is_valid_user_id, "a user ID") or (),
    }


def _parse_event_filter(obj: object, where: str) -> EventFilter:
    return EventFilter(**_event_filter_fields(_object(obj, where or "filter"), where))


def _parse_room_event_filter(obj: object, where: str) -> RoomEventFilter:
    obj = _object(obj, where or "filter")
    return RoomEventFilter(
        **_event_filter_fields(obj, where),
        rooms=_strings(obj, "rooms", where, is_valid_room_id, "a room ID"),
        not_rooms=_strings(obj, "not_rooms", where, is_valid_room_id, "a room ID") or (),
        contains_url=_bool(obj, "contains_url", where, None),
        lazy_load_members=_bool(obj, "lazy_load_members", where, False),
        include_redundant_members=_bool(obj, "include_redundant_members", where, False),
        unread_thread_notifications=_bool(obj, "unread_thread_notifications", where, False),
    )


def _parse_room_filter(obj: object) -> RoomFilter:
    obj = _object(obj, "room")
    sections = {
        name: _parse_room_event_filter(obj[name], f"room.{name}")
        for name in ("timeline", "state", "ephemeral", "account_data")
        if name in obj
    }
    return RoomFilter(
        rooms=_strings(obj, "rooms", "room", is_valid_room_id, "a room ID"),
        not_rooms=_strings(obj, "not_rooms", "room", is_valid_room_id, "a room ID") or (),
        include_leave=_bool(obj, "include_leave", "room", False),
        **sections,
    )


def parse_filter(obj: object) -> Filter:
    """
    Validate and parse a whole filter (the body of C{POST
    /user/{userId}/filter}, or /sync's inline C{filter}).

    Unknown keys are ignored, as the spec allows for forward compatibility;
    known keys must have the documented types. C{{}} gives L{Filter()}.

    @param obj: The decoded JSON.
    @return: The filter.
    @raise FilterError: If it is not an object, or a known key has the wrong
        type: a list that is not a list of strings, a sender that is not a
        user ID, a room that is not a room ID, a flag that is not a boolean,
        a C{limit} that is not an integer greater than 0, an
        C{event_format} other than C{client}/C{federation}.
    """
    obj = _object(obj, "filter")
    event_format = obj.get("event_format", "client")
    if event_format not in EVENT_FORMATS:
        raise FilterError(
            f"event_format must be 'client' or 'federation', got {_describe(event_format)}"
        )
    kwargs: dict[str, Any] = {
        "event_fields": _strings(obj, "event_fields", ""),
        "event_format": event_format,
    }
    if "presence" in obj:
        kwargs["presence"] = _parse_event_filter(obj["presence"], "presence")
    if "account_data" in obj:
        kwargs["account_data"] = _parse_event_filter(obj["account_data"], "account_data")
    if "room" in obj:
        kwargs["room"] = _parse_room_filter(obj["room"])
    return Filter(**kwargs)


def parse_room_event_filter(obj: object) -> RoomEventFilter:
    """
    Validate and parse a lone C{RoomEventFilter}, as given to
    C{/rooms/{roomId}/messages?filter=} and C{/context?filter=}.

    @param obj: The decoded JSON.
    @return: The filter; C{{}} gives L{RoomEventFilter()}.
    @raise FilterError: As for L{parse_filter}.
    """
    return _parse_room_event_filter(obj, "")


def _loads(text: str) -> object:
    def refuse(constant: str) -> object:
        raise FilterError(f"filter is not valid JSON: {constant} is not allowed")

    if not isinstance(text, str):
        raise FilterError("filter must be a JSON string")
    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as e:
        raise FilterError(f"filter is not valid JSON: {e.msg}") from None


def parse_filter_text(text: str) -> Filter:
    """
    Parse an inline filter given as JSON text (e.g. /sync's C{filter}
    parameter when it starts with C{{}).

    @raise FilterError: If the text is not JSON, or as for L{parse_filter}.
    """
    return parse_filter(_loads(text))


def parse_room_event_filter_text(text: str) -> RoomEventFilter:
    """
    Parse the JSON text of a C{filter} query parameter of /messages or
    /context.

    @raise FilterError: If the text is not JSON, or as for
        L{parse_room_event_filter}.
    """
    return parse_room_event_filter(_loads(text))


# ----------------------------------------------------------- serialising


def _event_filter_json(f: EventFilter) -> JsonDict:
    out: dict[str, Any] = {}
    if f.limit is not None:
        out["limit"] = f.limit
    if f.types is not None:
        out["types"] = list(f.types)
    if f.not_types:
        out["not_types"] = list(f.not_types)
    if f.senders is not None:
        out["senders"] = list(f.senders)
    if f.not_senders:
        out["not_senders"] = list(f.not_senders)
    return out


def _room_event_filter_json(f: RoomEventFilter) -> JsonDict:
    out = _event_filter_json(f)
    if f.rooms is not None:
        out["rooms"] = list(f.rooms)
    if f.not_rooms:
        out["not_rooms"] = list(f.not_rooms)
    if f.contains_url is not None:
        out["contains_url"] = f.contains_url
    for flag in ("lazy_load_members", "include_redundant_members",
                 "unread_thread_notifications"):
        if getattr(f, flag):
            out[flag] = True
    return out


def room_event_filter_to_json(f: RoomEventFilter) -> JsonDict:
    """
    @return: The JSON of a L{RoomEventFilter}: only the fields that differ
        from their defaults.
    """
    return _room_event_filter_json(f)


def filter_to_json(f: Filter) -> JsonDict:
    """
    Rebuild the JSON of a parsed filter: known keys only, and only those
    whose value differs from the default, so C{filter_to_json(Filter())}
    is C{{}} and C{parse_filter(filter_to_json(f)) == f}.

    Prefer returning the stored posted JSON from C{GET
    /user/{userId}/filter/{filterId}}; this is for callers that only have
    the parsed L{Filter}.
    """
    out: dict[str, Any] = {}
    if f.event_fields is not None:
        out["event_fields"] = list(f.event_fields)
    if f.event_format != "client":
        out["event_format"] = f.event_format
    for name in ("presence", "account_data"):
        section = _event_filter_json(getattr(f, name))
        if section:
            out[name] = section
    room: dict[str, Any] = {}
    if f.room.rooms is not None:
        room["rooms"] = list(f.room.rooms)
    if f.room.not_rooms:
        room["not_rooms"] = list(f.room.not_rooms)
    if f.room.include_leave:
        room["include_leave"] = True
    for name in ("timeline", "state", "ephemeral", "account_data"):
        section = _room_event_filter_json(getattr(f.room, name))
        if section:
            room[name] = section
    if room:
        out["room"] = room
    return out


# ---------------------------------------------------------- event_fields


def _copy_path(src: JsonDict, dst: JsonDict, path: list[str]) -> None:
    """
    Copy the value at C{path} in C{src} to the same place in C{dst},
    creating intermediate objects only if the value exists.
    """
    *parents, leaf = path
    node: object = src
    for name in parents:
        if not isinstance(node, dict) or name not in node:
            return
        node = node[name]
    if not isinstance(node, dict) or leaf not in node:
        return
    out = dst
    for name in parents:
        child = out.get(name)
        if not isinstance(child, dict):
            child = out[name] = {}
        out = child
    out[leaf] = copy.deepcopy(node[leaf])


def apply_event_fields(event: JsonDict, fields: tuple[str, ...] | None) -> JsonDict:
    """
    Keep only the listed fields of an event (the filter's C{event_fields}).

    Paths that do not exist in the event are skipped, and intermediate
    objects are only created for values that exist. Like Synapse, an empty
    (or absent) list keeps the whole event: the spec allows a server to
    include more fields than were requested.

    @param event: A client-format event; not modified.
    @param fields: Dot-separated property paths, see L{split_property_path}.
    @return: A new dict with only those fields (a copy of the event if
        C{fields} is empty or L{None}).
    """
    if not fields:
        return copy.deepcopy(event)
    out: JsonDict = {}
    for path in fields:
        _copy_path(event, out, split_property_path(path))
    return out
