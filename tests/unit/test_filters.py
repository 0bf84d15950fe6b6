"""
Tests for L{ruma_tx.matrix.filters}.
"""

import pytest

from ruma_tx.matrix.filters import (
    DEFAULT_TIMELINE_LIMIT,
    MAX_LIMIT,
    EventFilter,
    Filter,
    FilterError,
    RoomEventFilter,
    RoomFilter,
    apply_event_fields,
    filter_to_json,
    matches_type_pattern,
    parse_filter,
    parse_filter_text,
    parse_room_event_filter,
    parse_room_event_filter_text,
    room_event_filter_to_json,
)
from ruma_tx.matrix.property_paths import split_property_path

ROOM_A = "!aaa:test.local"
ROOM_B = "!bbb:test.local"
ALICE = "@alice:test.local"
BOB = "@bob:test.local"


def event(type_="m.room.message", sender=ALICE, room_id=ROOM_A, **content):
    """A client-format event with the given type, sender, room and content."""
    e = {"type": type_, "sender": sender, "content": content or {"body": "hi"}}
    if room_id is not None:
        e["room_id"] = room_id
    return e


# ------------------------------------------------------------- defaults


def test_empty_object_gives_defaults():
    """An empty filter parses to the default Filter, which filters nothing."""
    f = parse_filter({})
    assert f == Filter()
    assert f.event_fields is None
    assert f.event_format == "client"
    assert f.room == RoomFilter()
    assert f.room.include_leave is False
    assert f.room.timeline == RoomEventFilter()
    assert f.presence == EventFilter()


def test_default_filters_match_everything():
    """The default event filters let any event through, whatever its room."""
    f = parse_filter({})
    assert f.room.timeline.matches(event())
    assert f.room.timeline.matches(event("x.custom", BOB, ROOM_B))
    assert f.presence.matches({"type": "m.presence", "sender": BOB, "content": {}})
    assert f.room.matches_room(ROOM_B)


def test_default_timeline_limit_is_ten():
    """A filter without limit gets Synapse's default of 10 timeline events."""
    assert DEFAULT_TIMELINE_LIMIT == 10
    assert parse_filter({}).room.timeline.limit is None
    assert parse_filter({}).room.timeline.effective_limit() == 10


def test_effective_limit_caps_huge_limits():
    """A valid but huge limit is kept as posted but capped when applied."""
    f = parse_room_event_filter({"limit": 50000})
    assert f.limit == 50000
    assert f.effective_limit() == MAX_LIMIT


def test_effective_limit_uses_given_limit():
    """A limit below the maximum is used as is."""
    assert parse_room_event_filter({"limit": 3}).effective_limit(default=20) == 3


def test_unknown_keys_are_ignored():
    """Unknown keys at every level are ignored, as the spec allows."""
    f = parse_filter({
        "future": 1,
        "presence": {"whatever": []},
        "room": {"x": {}, "timeline": {"org.example.flag": True}},
    })
    assert f == Filter()


# ---------------------------------------------------------------- types


@pytest.mark.parametrize("pattern,event_type,expected", [
    ("m.room.message", "m.room.message", True),
    ("m.room.message", "m.room.member", False),
    ("m.room.*", "m.room.member", True),
    ("m.room.*", "m.room.", True),
    ("m.room.*", "m.call.invite", False),
    ("*", "anything.at.all", True),
    ("m.*.invite", "m.call.invite", True),
    ("m.*.invite", "m.call.hangup", False),
    ("*.message", "m.room.message", True),
    ("m.room.mes?age", "m.room.message", False),
    ("m.room.[m]essage", "m.room.message", False),
    ("m.room.message", "m.room.messageX", False),
])
def test_type_patterns(pattern, event_type, expected):
    """'*' matches any sequence of characters anywhere; other characters are literal."""
    assert matches_type_pattern(event_type, pattern) is expected


def test_non_string_type_never_matches():
    """An event whose type is not a string matches no pattern, not even '*'."""
    assert matches_type_pattern(None, "*") is False


def test_types_include_only_listed():
    """With types set, only events of a listed type (or wildcard match) pass."""
    f = parse_room_event_filter({"types": ["m.room.message", "m.call.*"]})
    assert f.matches(event("m.room.message"))
    assert f.matches(event("m.call.invite"))
    assert not f.matches(event("m.room.member"))


def test_empty_types_list_excludes_everything():
    """An empty types list (present, not absent) includes no event."""
    f = parse_room_event_filter({"types": []})
    assert f.types == ()
    assert not f.matches(event())


def test_not_types_excludes_with_wildcards():
    """not_types removes matching events, wildcards included."""
    f = parse_room_event_filter({"not_types": ["m.room.*"]})
    assert not f.matches(event("m.room.message"))
    assert f.matches(event("m.reaction"))


def test_not_types_wins_over_types():
    """A type that is both included and excluded is excluded."""
    f = parse_room_event_filter({"types": ["m.room.*"], "not_types": ["m.room.member"]})
    assert f.matches(event("m.room.message"))
    assert not f.matches(event("m.room.member"))


# -------------------------------------------------------------- senders


def test_senders_include_only_listed():
    """With senders set, only events from a listed sender pass."""
    f = parse_room_event_filter({"senders": [ALICE]})
    assert f.matches(event(sender=ALICE))
    assert not f.matches(event(sender=BOB))


def test_not_senders_excludes():
    """not_senders removes events from the listed senders."""
    f = parse_room_event_filter({"not_senders": [BOB]})
    assert f.matches(event(sender=ALICE))
    assert not f.matches(event(sender=BOB))


def test_not_senders_wins_over_senders():
    """A sender that is both included and excluded is excluded."""
    f = parse_room_event_filter({"senders": [ALICE, BOB], "not_senders": [BOB]})
    assert f.matches(event(sender=ALICE))
    assert not f.matches(event(sender=BOB))


def test_senders_filter_excludes_senderless_events():
    """Events without a sender (e.g. typing) never match a senders list."""
    f = parse_room_event_filter({"senders": [ALICE]})
    assert not f.matches({"type": "m.typing", "content": {"user_ids": [ALICE]}})


def test_presence_sender_from_content_user_id():
    """An event without sender falls back to content.user_id, as in Synapse."""
    f = parse_filter({"presence": {"not_senders": [BOB]}}).presence
    assert not f.matches({"type": "m.presence", "content": {"user_id": BOB}})
    assert f.matches({"type": "m.presence", "content": {"user_id": ALICE}})


def test_event_filter_types_and_senders_combined():
    """A plain EventFilter requires both the type and the sender to pass."""
    f = parse_filter({"account_data": {"types": ["m.direct"], "senders": [ALICE]}}).account_data
    assert f.matches({"type": "m.direct", "sender": ALICE})
    assert not f.matches({"type": "m.direct", "sender": BOB})
    assert not f.matches({"type": "m.push_rules", "sender": ALICE})


# ---------------------------------------------------------------- rooms


def test_rooms_include_only_listed():
    """With rooms set, only events in a listed room pass."""
    f = parse_room_event_filter({"rooms": [ROOM_A]})
    assert f.matches(event(room_id=ROOM_A))
    assert not f.matches(event(room_id=ROOM_B))
    assert f.matches_room(ROOM_A)
    assert not f.matches_room(ROOM_B)


def test_not_rooms_wins_over_rooms():
    """A room that is both included and excluded is excluded."""
    f = parse_room_event_filter({"rooms": [ROOM_A, ROOM_B], "not_rooms": [ROOM_B]})
    assert f.matches_room(ROOM_A)
    assert not f.matches_room(ROOM_B)


def test_room_id_argument_used_for_events_without_room_id():
    """The room_id argument decides the room for events that carry none."""
    f = parse_room_event_filter({"not_rooms": [ROOM_B]})
    assert f.matches(event(room_id=None), room_id=ROOM_A)
    assert not f.matches(event(room_id=None), room_id=ROOM_B)


def test_unknown_room_never_matches_rooms_list():
    """An event with no known room does not match a rooms list."""
    f = parse_room_event_filter({"rooms": [ROOM_A]})
    assert not f.matches(event(room_id=None))


def test_room_filter_rooms_and_not_rooms():
    """The room-level rooms/not_rooms decide which rooms /sync includes."""
    f = parse_filter({"room": {"rooms": [ROOM_A, ROOM_B], "not_rooms": [ROOM_A]}}).room
    assert not f.matches_room(ROOM_A)
    assert f.matches_room(ROOM_B)
    assert not f.matches_room("!other:test.local")


def test_domainless_room_ids_accepted():
    """Room version 12 room IDs (no server name) are valid in rooms lists."""
    room = "!" + "A" * 43
    assert parse_room_event_filter({"rooms": [room]}).matches_room(room)


# ---------------------------------------------------------- contains_url


def test_contains_url_true():
    """contains_url true keeps only events whose content has a url key."""
    f = parse_room_event_filter({"contains_url": True})
    assert f.matches(event(url="mxc://test.local/abc", body="pic"))
    assert not f.matches(event(body="text"))


def test_contains_url_false():
    """contains_url false keeps only events whose content has no url key."""
    f = parse_room_event_filter({"contains_url": False})
    assert not f.matches(event(url="mxc://test.local/abc", body="pic"))
    assert f.matches(event(body="text"))


def test_contains_url_absent_ignores_url():
    """Without contains_url, the url key is not considered."""
    f = parse_room_event_filter({})
    assert f.contains_url is None
    assert f.matches(event(url="mxc://test.local/abc"))
    assert f.matches(event(body="text"))


def test_contains_url_with_non_object_content():
    """An event whose content is not an object has no url."""
    f = parse_room_event_filter({"contains_url": True})
    assert not f.matches({"type": "x", "sender": ALICE, "room_id": ROOM_A, "content": "s"})


# -------------------------------------------------------------- flags


def test_lazy_load_flags_parsed():
    """lazy_load_members, include_redundant_members and unread_thread_notifications are read."""
    f = parse_filter({"room": {"state": {
        "lazy_load_members": True,
        "include_redundant_members": True,
        "unread_thread_notifications": True,
    }}})
    assert f.room.state.lazy_load_members is True
    assert f.room.state.include_redundant_members is True
    assert f.room.state.unread_thread_notifications is True
    assert f.room.timeline.lazy_load_members is False


def test_lazy_load_defaults_false():
    """Without the flags, lazy-loading and its options are off."""
    f = parse_room_event_filter({})
    assert (f.lazy_load_members, f.include_redundant_members,
            f.unread_thread_notifications) == (False, False, False)


def test_include_leave_parsed():
    """room.include_leave true is read; it defaults to false."""
    assert parse_filter({"room": {"include_leave": True}}).room.include_leave is True
    assert parse_filter({"room": {}}).room.include_leave is False


def test_sections_parsed_separately():
    """Each room section gets its own filter with its own limit and types."""
    f = parse_filter({"room": {
        "timeline": {"limit": 5},
        "state": {"types": ["m.room.name"]},
        "ephemeral": {"not_types": ["m.typing"]},
        "account_data": {"types": ["m.tag"]},
    }}).room
    assert f.timeline.limit == 5
    assert f.state.types == ("m.room.name",)
    assert f.ephemeral.not_types == ("m.typing",)
    assert f.account_data.types == ("m.tag",)


def test_event_format_federation():
    """event_format 'federation' is accepted."""
    assert parse_filter({"event_format": "federation"}).event_format == "federation"


def test_filters_are_hashable_values():
    """Parsed filters are frozen values: equal input gives equal, hashable filters."""
    a = parse_filter({"room": {"timeline": {"types": ["m.room.message"]}}})
    b = parse_filter({"room": {"timeline": {"types": ["m.room.message"]}}})
    assert a == b and hash(a) == hash(b)


# -------------------------------------------------------------- invalid


@pytest.mark.parametrize("bad", [[], "{}", 5, None, True])
def test_non_object_filter_refused(bad):
    """A filter that is not a JSON object is refused."""
    with pytest.raises(FilterError):
        parse_filter(bad)
    with pytest.raises(FilterError):
        parse_room_event_filter(bad)


@pytest.mark.parametrize("body", [
    {"room": []},
    {"room": {"timeline": "all"}},
    {"room": {"state": None}},
    {"presence": 1},
    {"account_data": []},
])
def test_non_object_sections_refused(body):
    """Sub-filters that are not objects are refused."""
    with pytest.raises(FilterError):
        parse_filter(body)


@pytest.mark.parametrize("key", ["types", "not_types", "senders", "not_senders",
                                 "rooms", "not_rooms"])
def test_list_fields_must_be_lists(key):
    """Each list field given a string instead of a list is refused."""
    with pytest.raises(FilterError, match=key):
        parse_room_event_filter({key: "m.room.message"})


@pytest.mark.parametrize("key,value", [
    ("types", ["m.room.message", 5]),
    ("not_types", [None]),
    ("senders", [["@a:b"]]),
    ("not_senders", [{}]),
    ("rooms", [1]),
    ("not_rooms", [True]),
])
def test_list_items_must_be_strings(key, value):
    """A list holding a non-string item is refused."""
    with pytest.raises(FilterError, match=key):
        parse_room_event_filter({key: value})


@pytest.mark.parametrize("key,value", [
    ("senders", ["alice"]),
    ("not_senders", ["@alice"]),
    ("rooms", ["#alias:test.local"]),
    ("not_rooms", ["room"]),
])
def test_ids_must_be_well_formed(key, value):
    """Senders must be user IDs and rooms room IDs (as Synapse checks)."""
    with pytest.raises(FilterError, match=key):
        parse_room_event_filter({key: value})


@pytest.mark.parametrize("limit", ["5", -1, 0, 1.5, 5.0, True, None, 2**53, [5]])
def test_invalid_limits_refused(limit):
    """A limit that is not an integer greater than 0 (or is absurdly large) is refused."""
    with pytest.raises(FilterError, match="limit"):
        parse_room_event_filter({"limit": limit})


@pytest.mark.parametrize("limit", [1, 10, 1000, 2**53 - 1])
def test_valid_limits_kept(limit):
    """A positive integer limit is kept as given."""
    assert parse_room_event_filter({"limit": limit}).limit == limit


def test_invalid_limit_in_nested_section_names_path():
    """The error for a bad nested limit names the full path."""
    with pytest.raises(FilterError, match=r"room\.timeline\.limit"):
        parse_filter({"room": {"timeline": {"limit": "5"}}})


def test_presence_limit_validated():
    """Limits in the presence filter are validated too."""
    with pytest.raises(FilterError, match=r"presence\.limit"):
        parse_filter({"presence": {"limit": -1}})


@pytest.mark.parametrize("fmt", ["xml", "", None, 1, "Client"])
def test_invalid_event_format_refused(fmt):
    """An event_format other than 'client' or 'federation' is refused."""
    with pytest.raises(FilterError, match="event_format"):
        parse_filter({"event_format": fmt})


@pytest.mark.parametrize("key", ["contains_url", "lazy_load_members",
                                 "include_redundant_members", "unread_thread_notifications"])
@pytest.mark.parametrize("value", ["true", 1, None])
def test_flags_must_be_booleans(key, value):
    """Boolean fields given a non-boolean are refused."""
    with pytest.raises(FilterError, match=key):
        parse_room_event_filter({key: value})


def test_include_leave_must_be_boolean():
    """room.include_leave given a string is refused."""
    with pytest.raises(FilterError, match="include_leave"):
        parse_filter({"room": {"include_leave": "yes"}})


@pytest.mark.parametrize("value", ["content", ["content", 1]])
def test_event_fields_must_be_list_of_strings(value):
    """event_fields must be a list of strings."""
    with pytest.raises(FilterError, match="event_fields"):
        parse_filter({"event_fields": value})


def test_room_level_rooms_validated():
    """room.rooms with a non-room-ID item is refused."""
    with pytest.raises(FilterError, match=r"room\.rooms"):
        parse_filter({"room": {"rooms": ["nope"]}})


def test_error_is_a_value_error():
    """FilterError is a ValueError whose message names the field."""
    with pytest.raises(ValueError) as info:
        parse_room_event_filter({"types": "x"})
    assert "types must be a list" in str(info.value)


# ------------------------------------------------------------- text input


def test_parse_filter_text():
    """Inline filter JSON text parses like the decoded object."""
    assert parse_filter_text('{"room": {"include_leave": true}}').room.include_leave


def test_parse_room_event_filter_text():
    """A /messages filter parameter parses as a RoomEventFilter."""
    assert parse_room_event_filter_text('{"lazy_load_members": true}').lazy_load_members


@pytest.mark.parametrize("text", ["{", "", "{'a': 1}", '{"limit": NaN}', "[1]"])
def test_bad_filter_text_refused(text):
    """Filter text that is not a JSON object is refused with FilterError."""
    with pytest.raises(FilterError):
        parse_room_event_filter_text(text)


# ---------------------------------------------------------- round trip


def test_filter_to_json_of_default_is_empty():
    """The default filter serialises to an empty object."""
    assert filter_to_json(Filter()) == {}


def test_filter_to_json_round_trips():
    """Serialising a parsed filter gives back the posted JSON (known keys)."""
    posted = {
        "event_fields": ["type", "content.body"],
        "event_format": "federation",
        "presence": {"types": ["m.presence"], "not_senders": [ALICE]},
        "account_data": {"limit": 3},
        "room": {
            "rooms": [ROOM_A],
            "not_rooms": [ROOM_B],
            "include_leave": True,
            "state": {"types": ["m.room.*"], "lazy_load_members": True},
            "timeline": {"limit": 10, "senders": [BOB], "contains_url": False,
                         "include_redundant_members": True},
            "ephemeral": {"types": ["m.receipt", "m.typing"]},
            "account_data": {"unread_thread_notifications": True, "not_types": ["x"]},
        },
    }
    assert filter_to_json(parse_filter(posted)) == posted
    assert parse_filter(filter_to_json(parse_filter(posted))) == parse_filter(posted)


def test_room_event_filter_to_json_keeps_empty_include_list():
    """An empty include list survives serialisation (it excludes everything)."""
    assert room_event_filter_to_json(parse_room_event_filter({"rooms": []})) == {"rooms": []}


# --------------------------------------------------------- event_fields


@pytest.mark.parametrize("path,parts", [
    ("type", ["type"]),
    ("content.body", ["content", "body"]),
    (r"content.m\.relates_to", ["content", "m.relates_to"]),
    (r"content.m\.relates_to.rel_type", ["content", "m.relates_to", "rel_type"]),
    (r"content.m\\foo", ["content", "m\\foo"]),
    (r"content.a\\.b", ["content", "a\\", "b"]),
    (r"content.a\x", ["content", "a\\x"]),
    ("a..b", ["a", "", "b"]),
])
def test_split_property_path(path, parts):
    """Dots separate names; '\\.' is a dot, '\\\\' a backslash, other escapes are literal."""
    assert split_property_path(path) == parts


def test_apply_event_fields_top_level():
    """Only the listed top-level fields are kept."""
    e = event()
    assert apply_event_fields(e, ("type", "sender")) == {"type": e["type"], "sender": ALICE}


def test_apply_event_fields_nested():
    """A dotted path keeps only that nested field, inside its parent object."""
    e = event(body="hello", msgtype="m.text")
    assert apply_event_fields(e, ("content.body",)) == {"content": {"body": "hello"}}


def test_apply_event_fields_escaped_dot():
    """An escaped dot selects a property whose name contains a dot."""
    e = {"type": "m.room.message",
         "content": {"m.relates_to": {"rel_type": "m.thread", "event_id": "$x"}, "m": 1}}
    assert apply_event_fields(e, (r"content.m\.relates_to.rel_type",)) == {
        "content": {"m.relates_to": {"rel_type": "m.thread"}}
    }


def test_apply_event_fields_escaped_backslash():
    """An escaped backslash selects a property whose name has a backslash."""
    e = {"content": {"m\\foo": 1, "m": {"foo": 2}}}
    assert apply_event_fields(e, (r"content.m\\foo",)) == {"content": {"m\\foo": 1}}


def test_apply_event_fields_missing_paths_skipped():
    """Paths absent from the event add nothing, not even empty parents."""
    e = event()
    assert apply_event_fields(e, ("content.nope", "unsigned.age", "nope")) == {}


def test_apply_event_fields_path_through_non_object():
    """A path through a non-object value is skipped."""
    e = {"type": "x", "content": {"body": "s"}}
    assert apply_event_fields(e, ("type.length", "content.body.x")) == {}


def test_apply_event_fields_merges_siblings():
    """Several paths under one parent are merged into one object."""
    e = event(body="b", msgtype="m.text", extra=1)
    out = apply_event_fields(e, ("content.body", "content.msgtype", "type"))
    assert out == {"type": "m.room.message", "content": {"body": "b", "msgtype": "m.text"}}


def test_apply_event_fields_whole_and_part():
    """A whole object and a part of it give the whole object, in either order."""
    e = event(body="b", msgtype="m.text")
    assert apply_event_fields(e, ("content", "content.body"))["content"] == e["content"]
    assert apply_event_fields(e, ("content.body", "content"))["content"] == e["content"]


def test_apply_event_fields_does_not_alias_or_modify_event():
    """The result is a copy: changing it leaves the event unchanged."""
    e = event(body="b")
    out = apply_event_fields(e, ("content", "content.body"))
    out["content"]["body"] = "changed"
    assert e["content"]["body"] == "b"


@pytest.mark.parametrize("fields", [None, ()])
def test_apply_event_fields_empty_keeps_all(fields):
    """No fields (absent or empty list) keeps the whole event, as Synapse does."""
    e = event()
    out = apply_event_fields(e, fields)
    assert out == e and out is not e


def test_event_fields_parsed_from_filter():
    """event_fields is read from the filter as a tuple of paths."""
    f = parse_filter({"event_fields": ["type", r"content.m\.relates_to"]})
    assert f.event_fields == ("type", r"content.m\.relates_to")
