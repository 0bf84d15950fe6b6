"""
The two wire formats of simplified sliding sync
(L{ruma_tx.http.sliding_formats}): the unstable
C{org.matrix.simplified_msc3575} one today's clients speak (Synapse's
shapes) and the stable C{/v4/sync} of MSC4186, read into one request and
written from one response. Bad input is a 400 with a Matrix error code.
"""
from __future__ import annotations

import pytest

from ruma_tx.http import sliding_formats as formats
from ruma_tx.matrix.errors import BadRequest
from ruma_tx.matrix.sliding_sync import (
    MAX_LISTS,
    MAX_SUBSCRIPTIONS,
    MAX_TIMELINE_LIMIT,
    ExtensionScope,
    ListFilters,
    RequiredState,
    window,
)

ME = "@me:hs"
MEMBER = "m.room.member"
ROOMS = [f"!{i}:hs" for i in range(30)]


def errcode(fn, *args) -> str:
    with pytest.raises(BadRequest) as caught:
        fn(*args)
    return caught.value.errcode


def unstable_lists(body: dict) -> dict:
    return formats.lists(body, ME, formats.unstable_required_state, formats.unstable_ranges, "is_invite")


def stable_lists(body: dict) -> dict:
    return formats.lists(body, ME, formats.stable_required_state, formats.stable_range, "is_invited")


def a_list(**fields) -> dict:
    return {"timeline_limit": 1, "required_state": {"include": []}, **fields}


def an_unstable_list(**fields) -> dict:
    return {"timeline_limit": 1, "required_state": [], **fields}


# -- required_state -------------------------------------------------------------


def test_unstable_required_state_pairs_with_wildcards():
    """C{*} matches any type or state key; each pair adds to what is returned."""
    read = formats.unstable_required_state([["m.room.create", ""], [MEMBER, "*"], ["*", "topic"]], ME)
    assert read.matches("m.room.create", "") and not read.matches("m.room.create", "x")
    assert read.matches(MEMBER, "@anyone:hs")
    assert read.matches("org.example", "topic") and not read.matches("org.example", "")
    assert not read.lazy_members


def test_unstable_lazy_and_me():
    """C{[m.room.member, $LAZY]} turns on lazy members (matching no event itself); C{$ME} is the user."""
    read = formats.unstable_required_state([[MEMBER, "$LAZY"], [MEMBER, "$ME"]], ME)
    assert read.lazy_members
    assert read.matches(MEMBER, ME)
    assert not read.matches(MEMBER, "$LAZY") and not read.matches(MEMBER, "@bob:hs")


@pytest.mark.parametrize("value", [{"include": []}, [["m.room.create"]], [["m.room.create", "", "x"]],
                                   [["m.room.create", None]], ["m.room.create"]])
def test_malformed_unstable_required_state_is_m_bad_json(value):
    assert errcode(formats.unstable_required_state, value, ME) == "M_BAD_JSON"


def test_stable_required_state_include_exclude_and_lazy_members():
    """MSC4186: an empty element matches everything; exclude wins; C{lazy_members} defaults to false."""
    read = formats.stable_required_state({
        "include": [{}], "exclude": [{"type": "m.room.create", "state_key": ""}]}, ME)
    assert read.matches("m.room.topic", "") and read.matches(MEMBER, "@bob:hs")
    assert not read.matches("m.room.create", "")
    assert not read.lazy_members
    typed = formats.stable_required_state({"include": [{"type": MEMBER, "state_key": "$ME"}, {"state_key": ""}],
                                          "lazy_members": True}, ME)
    assert typed.matches(MEMBER, ME) and not typed.matches(MEMBER, "@bob:hs")
    assert typed.matches("m.room.name", "")  # a state key for every type
    assert typed.lazy_members
    assert formats.stable_required_state({}, ME) == RequiredState()


def test_stable_lazy_members_with_everything_included_leaves_other_members_lazy():
    """
    MSC4186 "Lazy loaded memberships": C{include: [{}], lazy_members: true}
    is all state except the member events, which are loaded lazily; a
    member named explicitly is still always included.
    """
    read = formats.stable_required_state({"include": [{}, {"type": MEMBER, "state_key": "@user:hs"}],
                                          "lazy_members": True}, ME)
    assert read.matches("m.room.name", "")
    assert read.matches(MEMBER, "@user:hs")
    assert not read.matches(MEMBER, "@bob:hs")


@pytest.mark.parametrize("value", [[], {"include": {}}, {"include": ["m.room.create"]},
                                   {"include": [{"type": 5}]}, {"lazy_members": "yes"}])
def test_malformed_stable_required_state_is_m_bad_json(value):
    assert errcode(formats.stable_required_state, value, ME) == "M_BAD_JSON"


# -- room configs, lists and subscriptions ----------------------------------------


def test_a_subscription_reads_its_room_config():
    subscriptions = formats.subscriptions({"room_subscriptions": {"!a:hs": {
        "timeline_limit": 20, "required_state": {"include": [{"type": "m.room.topic"}]}}}},
        ME, formats.stable_required_state)
    config = subscriptions["!a:hs"]
    assert config.timeline_limit == 20
    assert config.matches("m.room.topic", "") and not config.matches("m.room.name", "")


def test_a_huge_timeline_limit_is_capped():
    """MSC4186: the server may cap timeline_limit."""
    found = stable_lists({"lists": {"l": a_list(timeline_limit=10**9)}})
    assert found["l"].config.timeline_limit == MAX_TIMELINE_LIMIT


@pytest.mark.parametrize("body, code", [
    ({"lists": {"l": a_list(timeline_limit=-1)}}, "M_INVALID_PARAM"),
    ({"lists": {"l": a_list(timeline_limit="10")}}, "M_BAD_JSON"),
    ({"lists": {"l": a_list(timeline_limit=True)}}, "M_BAD_JSON"),
    ({"lists": {"l": {"timeline_limit": 1}}}, "M_MISSING_PARAM"),  # required_state is required
    ({"lists": {"l": "all"}}, "M_BAD_JSON"),
    ({"lists": [a_list()]}, "M_BAD_JSON"),
    ({"lists": {"l": a_list(filters=[])}}, "M_BAD_JSON"),
    ({"lists": {"l": a_list(filters={"is_dm": "yes"})}}, "M_BAD_JSON"),
    ({"lists": {"l": a_list(filters={"spaces": [None]})}}, "M_BAD_JSON"),
    ({"lists": {"l": a_list(filters={"tags": "m.favourite"})}}, "M_BAD_JSON"),
])
def test_malformed_lists_are_400(body, code):
    assert errcode(stable_lists, body) == code


def test_a_missing_timeline_limit_is_a_missing_param():
    assert errcode(stable_lists, {"lists": {"l": {"required_state": {}}}}) == "M_MISSING_PARAM"


def test_at_most_100_lists_and_100_subscriptions():
    """MSC4186: more is a 400 M_INVALID_PARAM; exactly 100 is fine."""
    lists = {f"l{i}": a_list() for i in range(MAX_LISTS)}
    assert len(stable_lists({"lists": lists})) == MAX_LISTS
    assert errcode(stable_lists, {"lists": {**lists, "one-more": a_list()}}) == "M_INVALID_PARAM"
    subscriptions = {f"!{i}:hs": a_list() for i in range(MAX_SUBSCRIPTIONS + 1)}
    assert errcode(formats.subscriptions, {"room_subscriptions": subscriptions}, ME,
                   formats.stable_required_state) == "M_INVALID_PARAM"


def test_the_unstable_format_reads_several_ranges():
    found = unstable_lists({"lists": {"l": an_unstable_list(ranges=[[0, 1], [10, 11]])}})
    assert window(ROOMS, found["l"].ranges) == [ROOMS[0], ROOMS[1], ROOMS[10], ROOMS[11]]


def test_the_stable_format_reads_one_range():
    found = stable_lists({"lists": {"l": a_list(range=[0, 19])}})
    assert window(ROOMS, found["l"].ranges) == ROOMS[:20]


def test_each_format_reads_only_its_own_range_field():
    """A list without its format's range field holds every room."""
    assert stable_lists({"lists": {"l": a_list(ranges=[[0, 1]])}})["l"].ranges is None
    assert unstable_lists({"lists": {"l": an_unstable_list(range=[0, 1])}})["l"].ranges is None


@pytest.mark.parametrize("bad", [[5, 2], [-1, 3], [0], [0, 1, 2], [0, 1.5], [False, True], "0-9", {"0": 9}])
def test_a_malformed_range_is_m_invalid_param(bad):
    assert errcode(stable_lists, {"lists": {"l": a_list(range=bad)}}) == "M_INVALID_PARAM"
    assert errcode(unstable_lists, {"lists": {"l": an_unstable_list(ranges=[[0, 1], bad])}}) == "M_INVALID_PARAM"


def test_is_invite_on_the_unstable_path_and_is_invited_on_the_stable_one():
    """MSC4186 changelog: is_invite was renamed is_invited; each format reads only its own name."""
    unstable = unstable_lists({"lists": {
        "invites": an_unstable_list(filters={"is_invite": True}),
        "other": an_unstable_list(filters={"is_invited": True})}})
    assert unstable["invites"].filters.is_invited is True and unstable["other"].filters.is_invited is None
    stable = stable_lists({"lists": {
        "invites": a_list(filters={"is_invited": False}), "other": a_list(filters={"is_invite": True})}})
    assert stable["invites"].filters.is_invited is False and stable["other"].filters.is_invited is None


def test_list_filters_are_read_with_null_room_types():
    found = stable_lists({"lists": {"l": a_list(filters={
        "is_dm": True, "is_encrypted": False, "spaces": ["!s:hs"], "room_types": [None, "m.space"],
        "not_room_types": ["m.space", None], "tags": ["m.favourite"], "not_tags": ["m.lowpriority"]})}})
    assert found["l"].filters == ListFilters(
        is_dm=True, is_encrypted=False, spaces=("!s:hs",), room_types=(None, "m.space"),
        not_room_types=("m.space", None), tags=("m.favourite",), not_tags=("m.lowpriority",))
    assert stable_lists({"lists": {"l": a_list(filters=None)}})["l"].filters == ListFilters()


# -- extensions and conn_id -----------------------------------------------------


def test_extensions_are_off_unless_enabled():
    extensions = formats.extensions({"extensions": {
        "e2ee": {"enabled": False}, "typing": {}, "receipts": {"enabled": True}, "org.example.unknown": {}}})
    assert extensions.e2ee is False and extensions.typing is None and extensions.to_device is None
    assert extensions.receipts == ExtensionScope()
    assert formats.extensions({}).account_data is None


def test_extension_scopes_and_to_device_settings_are_read():
    extensions = formats.extensions({"extensions": {
        "to_device": {"enabled": True, "since": "12", "limit": 5},
        "account_data": {"enabled": True, "lists": ["dms"], "rooms": ["!a:hs"]},
        "e2ee": {"enabled": True}}})
    assert extensions.to_device is not None
    assert (extensions.to_device.since, extensions.to_device.limit) == ("12", 5)
    assert extensions.account_data == ExtensionScope(lists=("dms",), rooms=("!a:hs",))
    assert extensions.e2ee is True
    default = formats.extensions({"extensions": {"to_device": {"enabled": True}}}).to_device
    assert default is not None and (default.since, default.limit) == (None, 100)


def test_an_extension_with_empty_lists_covers_only_its_rooms():
    """C{lists: []} means no list (Synapse, whose shapes these are); only the named subscription is covered."""
    extensions = formats.extensions({"extensions": {"receipts": {"enabled": True, "lists": [], "rooms": ["!a:hs"]}}})
    assert extensions.receipts is not None
    assert extensions.receipts.rooms_in({"all": ["!b:hs"]}, ["!a:hs"]) == ["!a:hs"]


@pytest.mark.parametrize("body, code", [
    ({"extensions": []}, "M_BAD_JSON"),
    ({"extensions": {"typing": True}}, "M_BAD_JSON"),
    ({"extensions": {"typing": {"enabled": "yes"}}}, "M_BAD_JSON"),
    ({"extensions": {"receipts": {"enabled": True, "lists": "all"}}}, "M_BAD_JSON"),
    ({"extensions": {"to_device": {"enabled": True, "limit": 0}}}, "M_INVALID_PARAM"),
    ({"extensions": {"to_device": {"enabled": True, "since": 12}}}, "M_BAD_JSON"),
])
def test_malformed_extensions_are_400(body, code):
    assert errcode(formats.extensions, body) == code


def test_conn_id_defaults_to_empty_and_is_bounded():
    assert formats.conn_id({}) == ""
    assert formats.conn_id({"conn_id": "main"}) == "main"
    assert formats.conn_id({"conn_id": "x" * formats.MAX_CONN_ID}) == "x" * formats.MAX_CONN_ID
    assert errcode(formats.conn_id, {"conn_id": "x" * (formats.MAX_CONN_ID + 1)}) == "M_INVALID_PARAM"
    assert errcode(formats.conn_id, {"conn_id": 3}) == "M_BAD_JSON"


# -- responses ------------------------------------------------------------------

ENGINE_ROOM = {"name": None, "initial": True, "stripped_state": [{"type": "m.room.create"}],
               "expanded_timeline": True, "membership": "invite", "lists": ["all"],
               "notification_count": 2, "highlight_count": 1}


def test_stable_rooms_keep_msc4186_names_and_null_for_a_removed_name():
    """MSC4186 changelog: stripped_state, expanded_timeline, membership, lists; no unread counts; name may be null."""
    shown = formats.shown_rooms({"!a:hs": ENGINE_ROOM}, formats.STABLE_ROOM_FIELDS, keep_nulls=True)
    assert shown == {"!a:hs": {"name": None, "initial": True, "stripped_state": [{"type": "m.room.create"}],
                               "expanded_timeline": True, "membership": "invite", "lists": ["all"]}}


def test_unstable_rooms_use_synapses_names_and_keep_unread_counts():
    """invite_state and unstable_expanded_timeline; no membership or lists; a null name is left out."""
    shown = formats.shown_rooms({"!a:hs": ENGINE_ROOM}, formats.UNSTABLE_ROOM_FIELDS, keep_nulls=False)
    assert shown == {"!a:hs": {"initial": True, "invite_state": [{"type": "m.room.create"}],
                               "unstable_expanded_timeline": True, "notification_count": 2,
                               "highlight_count": 1}}
