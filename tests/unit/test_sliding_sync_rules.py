"""
Simplified sliding sync (MSC4186): the pure rules of
L{ruma_tx.matrix.sliding_sync}, i.e. which state a room config returns,
how the configs of several rules combine, which rooms a list holds and in
what order, what a connection remembers of what it sent, and the room
fields (name, avatar, heroes) and user data (DMs, space children) rooms
are read with.
"""
from __future__ import annotations

import json

import pytest
import pytest_twisted

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.sliding_sync import (
    MAX_LAZY_REMEMBERED,
    ConnectionState,
    ExtensionScope,
    ListConfig,
    ListFilters,
    RequiredState,
    RoomConfig,
    RoomFacts,
    RoomSent,
    SlidingSyncRequest,
    UserRoomData,
    combine_configs,
    direct_rooms,
    expanded_state,
    filter_matches,
    hero,
    lazy_member_targets,
    listed_rooms,
    sort_key,
    remembered_lazy,
    room_avatar,
    room_name,
    space_children,
    window,
)
from ruma_tx.services.sliding_sync import UserData

ME = "@me:hs"
MEMBER = "m.room.member"


def state(*include, exclude=(), lazy=False) -> RequiredState:
    return RequiredState(frozenset(include), frozenset(exclude), lazy)


def config(*required: RequiredState, limit: int = 10) -> RoomConfig:
    return RoomConfig(limit, tuple(required))


# -- required_state -----------------------------------------------------------


def test_required_state_returns_what_it_includes_less_what_it_excludes():
    """MSC4186 example: everything but the create event."""
    everything_but_create = state((None, None), exclude=[("m.room.create", "")])
    assert everything_but_create.matches("m.room.name", "")
    assert everything_but_create.matches(MEMBER, "@bob:hs")
    assert not everything_but_create.matches("m.room.create", "")


def test_required_state_elements_match_a_type_a_state_key_or_both():
    """A missing type matches every type; a missing state key every key; both given, only that event."""
    by_type = state((MEMBER, None))
    assert by_type.matches(MEMBER, "@bob:hs") and not by_type.matches("m.room.name", "")
    by_key = state((None, ""))
    assert by_key.matches("m.room.name", "") and by_key.matches("m.room.topic", "")
    assert not by_key.matches(MEMBER, "@bob:hs")
    exact = state(("m.room.create", ""))
    assert exact.matches("m.room.create", "") and not exact.matches("m.room.create", "x")
    assert not state().matches("m.room.create", "")


def test_a_room_config_returns_what_any_of_its_required_states_return():
    """Configs combined by keeping them apart: the union, an exclude only narrowing its own config."""
    combined = config(state(("m.room.create", "")), state((None, None), exclude=[("m.room.create", "")]))
    assert combined.matches("m.room.create", "") and combined.matches("m.room.topic", "")


def test_the_state_a_room_config_reads():
    """What is fetched: the whole state for a type wildcard, else the asked types and exact keys."""
    asked = config(state(("m.room.create", ""), (MEMBER, None)), state(("m.room.name", "")))
    assert not asked.reads_all_state()
    assert asked.whole_types() == {MEMBER}
    assert asked.exact_keys() == {("m.room.create", ""), ("m.room.name", "")}
    assert config(state((None, ""))).reads_all_state()


def test_combined_configs_take_the_largest_timeline_and_every_state():
    """MSC4186 "Combining room configs": max timeline_limit, union of required_state."""
    create = state(("m.room.create", ""))
    name = state(("m.room.name", ""))
    combined = combine_configs([config(create, limit=1), config(name, create, limit=20), config(limit=5)])
    assert combined.timeline_limit == 20
    assert combined.matches("m.room.create", "") and combined.matches("m.room.name", "")
    assert combined.required_state == (create, name)  # the same config is not repeated


@pytest.mark.parametrize("others, lazy", [
    ([], True),
    ([state(("m.room.create", ""))], True),  # returns no member events
    ([state((MEMBER, "@bob:hs"))], True),  # only one member
    ([state((MEMBER, None))], False),  # every member
    ([state((None, None))], False),  # everything, members included
    ([state((None, None), exclude=[(MEMBER, None)])], True),  # everything but the members
    ([state((MEMBER, None), lazy=True)], True),  # every member, but lazily
])
def test_combined_configs_load_members_lazily_unless_one_returns_them_all(others, lazy):
    """
    MSC4186: lazy_members is set iff a config sets it and no config
    without it returns every membership event.
    """
    lazy_config = config(state(("m.room.create", ""), lazy=True))
    assert combine_configs([lazy_config, *(config(o) for o in others)]).lazy_members is lazy


def test_no_config_asking_lazy_members_means_no_lazy_members():
    assert not config(state((MEMBER, "@bob:hs")), state((None, None))).lazy_members


def test_expanded_state_is_what_the_new_config_wants_and_the_old_did_not():
    """MSC4186 "Changes to required_state": only the newly matching state is sent again."""
    old = config(state(("m.room.create", "")))
    new = config(state(("m.room.create", ""), ("m.room.topic", "")))
    assert expanded_state(old, new, "m.room.topic", "")
    assert not expanded_state(old, new, "m.room.create", "")
    assert not expanded_state(new, old, "m.room.topic", "")  # narrowed: nothing to send


# -- list filters -------------------------------------------------------------

PLAIN = RoomFacts(None, False)
SPACE = RoomFacts("m.space", False)
ENCRYPTED = RoomFacts(None, True)


def passes(filters: ListFilters, room_id: str = "!r:hs", membership: str = "join",
           facts: RoomFacts | None = PLAIN, data: UserRoomData = UserRoomData()) -> bool:
    return filter_matches(filters, room_id, membership, facts, data)


def test_an_unfiltered_list_holds_every_room():
    assert passes(ListFilters(), membership="invite", facts=SPACE)


def test_not_room_types_m_space_leaves_spaces_out():
    """The common room list: everything but spaces."""
    no_spaces = ListFilters(not_room_types=("m.space",))
    assert passes(no_spaces, facts=PLAIN)
    assert not passes(no_spaces, facts=SPACE)


def test_room_types_null_asks_for_rooms_without_a_type():
    """MSC4186: null in room_types stands for rooms with no type; not_room_types wins over room_types."""
    untyped = ListFilters(room_types=(None,))
    assert passes(untyped, facts=PLAIN) and not passes(untyped, facts=SPACE)
    spaces = ListFilters(room_types=("m.space",))
    assert passes(spaces, facts=SPACE) and not passes(spaces, facts=PLAIN)
    both = ListFilters(room_types=("m.space", None), not_room_types=("m.space",))
    assert passes(both, facts=PLAIN) and not passes(both, facts=SPACE)
    assert not passes(ListFilters(not_room_types=(None,)), facts=PLAIN)


def test_is_encrypted_keeps_only_encrypted_rooms_or_only_unencrypted_ones():
    assert passes(ListFilters(is_encrypted=True), facts=ENCRYPTED)
    assert not passes(ListFilters(is_encrypted=True), facts=PLAIN)
    assert passes(ListFilters(is_encrypted=False), facts=PLAIN)
    assert not passes(ListFilters(is_encrypted=False), facts=ENCRYPTED)


def test_is_invited_keeps_only_invites_or_leaves_them_out():
    assert passes(ListFilters(is_invited=True), membership="invite")
    assert not passes(ListFilters(is_invited=True), membership="join")
    assert passes(ListFilters(is_invited=False), membership="join")
    assert not passes(ListFilters(is_invited=False), membership="invite")


def test_is_dm_follows_m_direct():
    data = UserRoomData(direct=frozenset({"!dm:hs"}))
    assert passes(ListFilters(is_dm=True), "!dm:hs", data=data)
    assert not passes(ListFilters(is_dm=True), "!group:hs", data=data)
    assert passes(ListFilters(is_dm=False), "!group:hs", data=data)
    assert not passes(ListFilters(is_dm=False), "!dm:hs", data=data)


def test_spaces_keeps_only_the_children_of_the_asked_spaces():
    data = UserRoomData(space_children={"!space:hs": frozenset({"!child:hs"})})
    assert passes(ListFilters(spaces=("!space:hs",)), "!child:hs", data=data)
    assert not passes(ListFilters(spaces=("!space:hs",)), "!other:hs", data=data)


def test_tags_keep_rooms_with_any_of_them_and_not_tags_win():
    """MSC4186: a room tagged A and B is not in a list with tags [A] and not_tags [B]."""
    data = UserRoomData(tags={"!both:hs": frozenset({"m.favourite", "u.work"}),
                              "!fav:hs": frozenset({"m.favourite"})})
    favourites = ListFilters(tags=("m.favourite", "m.lowpriority"))
    assert passes(favourites, "!fav:hs", data=data) and passes(favourites, "!both:hs", data=data)
    assert not passes(favourites, "!untagged:hs", data=data)
    not_work = ListFilters(tags=("m.favourite",), not_tags=("u.work",))
    assert passes(not_work, "!fav:hs", data=data)
    assert not passes(not_work, "!both:hs", data=data)
    assert passes(ListFilters(not_tags=("u.work",)), "!untagged:hs", data=data)


def test_filters_are_anded():
    """Every filter given must hold: an encrypted DM invite for a list asking all three."""
    data = UserRoomData(direct=frozenset({"!dm:hs"}))
    strict = ListFilters(is_dm=True, is_encrypted=True, is_invited=True)
    assert passes(strict, "!dm:hs", "invite", ENCRYPTED, data)
    assert not passes(strict, "!dm:hs", "join", ENCRYPTED, data)
    assert not passes(strict, "!dm:hs", "invite", PLAIN, data)
    assert not passes(strict, "!other:hs", "invite", ENCRYPTED, data)


def test_only_type_and_encryption_filters_need_the_rooms_create_and_encryption_events():
    assert not ListFilters(is_dm=True, tags=("m.favourite",), spaces=("!s:hs",)).needs_facts()
    assert ListFilters(is_encrypted=False).needs_facts()
    assert ListFilters(room_types=(None,)).needs_facts()
    assert ListFilters(not_room_types=("m.space",)).needs_facts()


class _SpaceReads:
    """Each space's m.space.child events."""

    def __init__(self, children: dict[str, list[str]]) -> None:
        self.children = children

    async def get_current_state_of_types(self, types_by_room):
        return {space: {("m.space.child", child): StoredEvent(1, f"${space}{child}", space, {
            "type": "m.space.child", "state_key": child, "sender": ME, "content": {"via": ["hs"]}})
            for child in self.children.get(space, [])} for space in types_by_room}


class _Quiet:
    def touched_since(self, user_id, since, kind=None):
        return False


async def _no_dms(user_id):
    return frozenset()


async def _no_tags(user_id, upto):
    return {}


@pytest_twisted.ensureDeferred
async def test_two_lists_filtered_on_different_spaces_each_hold_their_own_spaces_children():
    """
    MSC4186 C{spaces}: only rooms named by the listed spaces' m.space.child
    events. A list of space A's rooms does not show space B's rooms because
    another list of the same request asks for space B.
    """
    lists = {"a": ListConfig(config(), filters=ListFilters(spaces=("!a:hs",))),
             "b": ListConfig(config(), filters=ListFilters(spaces=("!b:hs",)))}
    user_data = UserData(direct_rooms=_no_dms, all_tags=_no_tags,
                         reads=_SpaceReads({"!a:hs": ["!in-a:hs"], "!b:hs": ["!in-b:hs"]}), notifier=_Quiet())
    data = await user_data.read(ME, SlidingSyncRequest(lists=lists), {"!a:hs", "!b:hs"}, 1)
    assert passes(lists["a"].filters, "!in-a:hs", data=data)
    assert not passes(lists["a"].filters, "!in-b:hs", data=data)


# -- the user's list, its order and its windows -------------------------------


def test_the_users_list_holds_joins_invites_and_knocks_not_rooms_they_left():
    memberships = {"!join:hs": ("join", 1), "!invite:hs": ("invite", 2), "!knock:hs": ("knock", 3),
                   "!left:hs": ("leave", 4), "!banned:hs": ("ban", 5)}
    assert listed_rooms(memberships, sent_before=(), removed_by_others=()) == {
        "!join:hs": "join", "!invite:hs": "invite", "!knock:hs": "knock"}


def test_a_room_the_user_was_kicked_or_banned_from_stays_listed():
    """MSC4186: kicks and bans after a join are always listed, so the user learns of them."""
    memberships = {"!kicked:hs": ("leave", 4), "!banned:hs": ("ban", 5), "!left:hs": ("leave", 6)}
    listed = listed_rooms(memberships, sent_before=(), removed_by_others=("!kicked:hs", "!banned:hs"))
    assert listed == {"!kicked:hs": "leave", "!banned:hs": "ban"}


def test_a_room_left_after_the_connection_sent_it_stays_listed_to_show_the_leave():
    memberships = {"!left:hs": ("leave", 4), "!other:hs": ("leave", 5)}
    assert listed_rooms(memberships, sent_before=("!left:hs",), removed_by_others=()) == {"!left:hs": "leave"}


def test_rooms_are_ordered_most_recent_first_ties_by_room_id():
    """The order is stable between requests: equal recency falls back to the room id; unknown counts as oldest."""
    recency = {"!b:hs": 5, "!a:hs": 5, "!c:hs": 9}
    rooms = ["!a:hs", "!b:hs", "!c:hs", "!d:hs"]
    assert sorted(rooms, key=lambda r: sort_key(r, recency.get(r, 0))) == ["!c:hs", "!a:hs", "!b:hs", "!d:hs"]


ROOMS = [f"!{i}:hs" for i in range(10)]


def test_a_range_is_inclusive_at_both_ends():
    """MSC4186 example: [0, 19] is the top 20 rooms."""
    assert window(ROOMS, [(0, 2)]) == ROOMS[:3]
    assert window(ROOMS, [(4, 4)]) == [ROOMS[4]]


def test_a_list_without_a_range_holds_every_filtered_room():
    assert window(ROOMS, None) == ROOMS


def test_a_range_past_the_end_holds_what_there_is():
    assert window(ROOMS, [(8, 99)]) == ROOMS[8:]
    assert window(ROOMS, [(20, 29)]) == []


def test_several_ranges_hold_their_rooms_once_in_list_order():
    """The unstable path's ranges: overlapping ones do not repeat a room."""
    assert window(ROOMS, [(6, 7), (0, 1), (1, 2)]) == [ROOMS[0], ROOMS[1], ROOMS[2], ROOMS[6], ROOMS[7]]
    assert window(ROOMS, []) == []


# -- extensions' rooms --------------------------------------------------------

LISTS = {"all": ["!a:hs", "!b:hs"], "dms": ["!dm:hs"]}


def test_an_extension_covers_every_list_and_subscription_by_default():
    assert ExtensionScope().rooms_in(LISTS, ["!sub:hs", "!a:hs"]) == ["!a:hs", "!b:hs", "!dm:hs", "!sub:hs"]


def test_an_extension_covers_only_the_named_lists_and_subscriptions():
    """Rooms named but not subscribed to are not covered."""
    scope = ExtensionScope(lists=("dms",), rooms=("!sub:hs", "!nope:hs"))
    assert scope.rooms_in(LISTS, ["!sub:hs", "!other:hs"]) == ["!dm:hs", "!sub:hs"]


def test_an_extension_with_no_lists_and_no_rooms_covers_nothing():
    assert ExtensionScope(lists=(), rooms=()).rooms_in(LISTS, ["!sub:hs"]) == []


# -- what a connection remembers ----------------------------------------------


def sample_state() -> ConnectionState:
    members = RequiredState(frozenset({(MEMBER, None), (None, "")}), frozenset({("m.room.create", "")}), False)
    lazy = RequiredState(frozenset({("m.room.name", "")}), frozenset(), True)
    return ConnectionState(42, {
        "!a:hs": RoomSent(40, "join", RoomConfig(20, (members, lazy)), frozenset({"@bob:hs", "@amy:hs"})),
        "!b:hs": RoomSent(12, "invite", RoomConfig(0, ())),
    })


def test_a_connection_state_reads_back_what_it_wrote_through_json():
    """What a restart reads from the database is what was sent: positions, configs, lazy members."""
    original = sample_state()
    assert ConnectionState.from_json(json.loads(json.dumps(original.as_json()))) == original


def test_a_room_config_read_back_still_combines_and_matches_the_same():
    """The read-back config compares equal, so a room is not seen as having a new config after a restart."""
    state = sample_state()
    sent = state.rooms["!a:hs"]
    back = ConnectionState.from_json(json.loads(json.dumps(state.as_json()))).rooms["!a:hs"]
    assert set(back.config.required_state) == set(sent.config.required_state)
    assert back.config.lazy_members is sent.config.lazy_members is False
    assert back.config.matches("m.room.topic", "") and not back.config.matches("m.room.create", "")


def test_lazy_members_are_the_timelines_senders_and_targets_not_sent_before():
    """MSC4186 "Lazy loaded memberships": senders and member targets, less those already sent."""
    targets = lazy_member_targets(["@a:hs", "@b:hs", "@a:hs"], ["@c:hs"], frozenset({"@b:hs"}), reset=False)
    assert targets == {"@a:hs", "@c:hs"}


def test_a_cut_timeline_sends_every_lazy_member_again():
    """A limited timeline makes the client flush its members: they are all sent again."""
    targets = lazy_member_targets(["@a:hs", "@b:hs"], [], frozenset({"@b:hs"}), reset=True)
    assert targets == {"@a:hs", "@b:hs"}


def test_remembered_lazy_members_grow_until_a_cut_starts_them_over():
    assert remembered_lazy(frozenset({"@a:hs"}), ["@b:hs"], reset=False) == {"@a:hs", "@b:hs"}
    assert remembered_lazy(frozenset({"@a:hs"}), ["@b:hs"], reset=True) == {"@b:hs"}


def test_too_many_remembered_lazy_members_are_forgotten_so_they_are_sent_again():
    many = frozenset(f"@u{i}:hs" for i in range(MAX_LAZY_REMEMBERED))
    assert remembered_lazy(many, [], reset=False) == many
    assert remembered_lazy(many, ["@one-more:hs"], reset=False) == frozenset()


# -- room fields and user data --------------------------------------------------


def test_room_name_and_avatar_are_absent_without_a_usable_value():
    """A removed name (empty or no event) gives no name, so heroes are sent instead."""
    assert room_name({"name": "Lounge"}) == "Lounge"
    assert room_name({"name": ""}) is None
    assert room_name({"name": 7}) is None
    assert room_name({}) is None and room_name(None) is None
    assert room_avatar({"url": "mxc://hs/a"}) == "mxc://hs/a"
    assert room_avatar({"url": ""}) is None and room_avatar({}) is None and room_avatar(None) is None


def test_a_hero_carries_the_name_and_avatar_of_their_member_event():
    """MSC4186 Hero: user_id always; displayname and avatar_url when the member event has them."""
    assert hero("@bob:hs", {"membership": "join", "displayname": "Bob", "avatar_url": "mxc://hs/b"}) == {
        "user_id": "@bob:hs", "displayname": "Bob", "avatar_url": "mxc://hs/b"}
    assert hero("@bob:hs", {"membership": "join", "displayname": None}) == {"user_id": "@bob:hs"}
    assert hero("@bob:hs", None) == {"user_id": "@bob:hs"}


def test_dm_rooms_are_every_room_m_direct_names():
    content = {"@bob:hs": ["!a:hs", "!b:hs"], "@amy:hs": ["!b:hs", 3], "@odd:hs": "!c:hs"}
    assert direct_rooms(content) == {"!a:hs", "!b:hs"}
    assert direct_rooms(None) == frozenset()


def test_space_children_are_those_with_a_via():
    """A child event without a non-empty via is a removed child."""
    space_state = [
        ("m.space.child", "!kept:hs", {"via": ["hs"]}),
        ("m.space.child", "!removed:hs", {}),
        ("m.space.child", "!empty:hs", {"via": []}),
        ("m.space.child", "!bad:hs", {"via": "hs"}),
        ("m.space.parent", "!parent:hs", {"via": ["hs"]}),
    ]
    assert space_children(space_state) == {"!kept:hs"}
