"""
The pure rules of room upgrades: the request, the new room's create
content, state, power levels and bans, the old room's restriction, the
canonical alias move and the settings that follow users.
"""
from __future__ import annotations

import pytest

from ruma_tx.matrix.errors import MatrixError
from ruma_tx.matrix.room_upgrade import (
    UpgradeRequest,
    aliases_in,
    carried_direct,
    carried_push_rules,
    copied_bans,
    copied_state,
    may_replace,
    moved_canonical_alias,
    only_aliases,
    parse_upgrade_request,
    restored_power_levels,
    restricted_power_levels,
    upgraded_create_content,
    upgraded_power_levels,
)
from ruma_tx.matrix.room_versions import V10, V11, V12

ALICE = "@alice:hs"
BOB = "@bob:hs"
OLD = "!old:hs"
NEW = "!new:hs"


def _errcode(fn, *args, **kwargs) -> str:
    with pytest.raises(MatrixError) as caught:
        fn(*args, **kwargs)
    return caught.value.errcode


# -- the request ---------------------------------------------------------------


def test_request_needs_a_known_version():
    """A missing version is M_MISSING_PARAM, an unknown one M_UNSUPPORTED_ROOM_VERSION, a number M_BAD_JSON."""
    assert _errcode(parse_upgrade_request, {}) == "M_MISSING_PARAM"
    assert _errcode(parse_upgrade_request, {"new_version": "13"}) == "M_UNSUPPORTED_ROOM_VERSION"
    assert _errcode(parse_upgrade_request, {"new_version": 11}) == "M_BAD_JSON"
    assert parse_upgrade_request({"new_version": "11"}) == UpgradeRequest(V11)


def test_additional_creators_are_checked_and_only_kept_where_they_exist():
    """Additional creators must be user ids; version 11 has none, so they are dropped there."""
    assert _errcode(parse_upgrade_request, {"new_version": "12", "additional_creators": ["bob"]}) \
        == "M_INVALID_PARAM"
    assert _errcode(parse_upgrade_request, {"new_version": "12", "additional_creators": BOB}) == "M_BAD_JSON"
    assert parse_upgrade_request({"new_version": "12", "additional_creators": [BOB, BOB]}) \
        == UpgradeRequest(V12, (BOB,))
    assert parse_upgrade_request({"new_version": "11", "additional_creators": [BOB]}) == UpgradeRequest(V11)


# -- the new room --------------------------------------------------------------


def test_create_content_names_the_predecessor_and_keeps_the_type():
    """The create content has the version, predecessor (room and last event), the old type and m.federate."""
    content = upgraded_create_content({"type": "m.space", "m.federate": False, "creator": BOB},
                                      upgrader=ALICE, old_room_id=OLD, last_event_id="$last",
                                      request=UpgradeRequest(V11))
    assert content == {"room_version": "11", "predecessor": {"room_id": OLD, "event_id": "$last"},
                       "type": "m.space", "m.federate": False}


def test_create_content_per_version():
    """Version 10 names the creator; 12 lists additional creators, never the upgrader."""
    v10 = upgraded_create_content({}, upgrader=ALICE, old_room_id=OLD, last_event_id=None,
                                  request=UpgradeRequest(V10))
    assert v10 == {"room_version": "10", "predecessor": {"room_id": OLD}, "creator": ALICE}
    v12 = upgraded_create_content({}, upgrader=ALICE, old_room_id=OLD, last_event_id=None,
                                  request=UpgradeRequest(V12, (ALICE, BOB)))
    assert v12["additional_creators"] == [BOB]
    assert "creator" not in v12


def test_copied_state_in_order_with_a_space_s_live_children():
    """The rules come first; a space's children are copied, except those emptied out."""
    old = {
        ("m.room.name", ""): {"name": "Room"},
        ("m.room.join_rules", ""): {"join_rule": "public"},
        ("m.room.pinned_events", ""): {"pinned": ["$x"]},
        ("m.space.child", "!b:hs"): {"via": ["hs"]},
        ("m.space.child", "!a:hs"): {},
        ("m.room.member", BOB): {"membership": "join"},
    }
    assert copied_state(old, is_space=False) == [
        ("m.room.join_rules", "", {"join_rule": "public"}),
        ("m.room.name", "", {"name": "Room"}),
    ]
    assert copied_state(old, is_space=True)[-1] == ("m.space.child", "!b:hs", {"via": ["hs"]})
    assert len(copied_state(old, is_space=True)) == 3


# -- power levels --------------------------------------------------------------

OLD_LEVELS = {"users": {ALICE: 50, BOB: 100}, "users_default": 0, "state_default": 50, "ban": 50,
              "events": {"m.room.tombstone": 100, "m.room.power_levels": 100}, "events_default": 0}


def test_upgrader_is_raised_while_copying_then_restored():
    """In version 11, a moderator gets the highest level needed while copying, then their own again."""
    levels = upgraded_power_levels(OLD_LEVELS, upgrader=ALICE, old_level=50,
                                   unlimited_old_creators=frozenset(), request=UpgradeRequest(V11))
    assert levels.initial["users"] == {ALICE: 100, BOB: 100}
    assert levels.final["users"] == {ALICE: 50, BOB: 100}
    assert restored_power_levels(levels.initial, ALICE, levels) == {**levels.initial,
                                                                    "users": {ALICE: 50, BOB: 100}}
    assert restored_power_levels(levels.final, ALICE, levels) is None


def test_restoring_changes_only_the_upgraders_level():
    """What the new room's levels became meanwhile stays; only the upgrader's entry is restored."""
    levels = upgraded_power_levels(OLD_LEVELS, upgrader=ALICE, old_level=50,
                                   unlimited_old_creators=frozenset(), request=UpgradeRequest(V11))
    current = {**levels.initial, "events_default": 10, "users": {ALICE: 100, BOB: 100, "@c:hs": 5}}
    assert restored_power_levels(current, ALICE, levels)["users"] == {ALICE: 50, BOB: 100, "@c:hs": 5}
    assert restored_power_levels(current, ALICE, levels)["events_default"] == 10


def test_version_12_creators_are_not_listed():
    """Upgrading to 12, the upgrader and additional creators are creators, absent from users."""
    levels = upgraded_power_levels(OLD_LEVELS, upgrader=ALICE, old_level=50, unlimited_old_creators=frozenset(),
                                   request=UpgradeRequest(V12, (BOB,)))
    assert levels.initial["users"] == {} == levels.final["users"]
    assert restored_power_levels(levels.initial, ALICE, levels) is None


def test_version_12_creators_keep_power_in_an_older_version():
    """A version 12 room's creators, unlimited there, get the highest level needed (at least 100)."""
    old = {"users": {BOB: 50}, "events": {"m.room.tombstone": 150}}
    levels = upgraded_power_levels(old, upgrader=ALICE, old_level=float("inf"),
                                   unlimited_old_creators=frozenset({ALICE, "@carol:hs"}),
                                   request=UpgradeRequest(V11))
    assert levels.final["users"] == {ALICE: 150, "@carol:hs": 150, BOB: 50}


def test_a_room_without_power_levels_gets_the_defaults():
    """With no power levels in the old room, the new room gets createRoom's defaults."""
    levels = upgraded_power_levels(None, upgrader=ALICE, old_level=100, unlimited_old_creators=frozenset(),
                                   request=UpgradeRequest(V11))
    assert levels.final["users"] == {ALICE: 100}
    assert levels.final["events"]["m.room.tombstone"] == 100


def test_bans_are_copied_unless_the_rules_would_refuse_them():
    """Bans go over with their content; one of a user at the upgrader's level or above is left out."""
    bans = {"@spam:hs": {"membership": "ban", "reason": "spam"}, BOB: {"membership": "ban"}}
    kept = copied_bans(bans, upgrader=ALICE, create_content={"room_version": "11"},
                       power_levels={"users": {ALICE: 100, BOB: 100}}, room_version=V11)
    assert kept == [("@spam:hs", {"membership": "ban", "reason": "spam"})]
    as_creator = copied_bans(bans, upgrader=ALICE, create_content={"additional_creators": [BOB]},
                             power_levels={"users": {}}, room_version=V12)
    assert [user for user, _ in as_creator] == ["@spam:hs"]


def test_old_room_is_restricted():
    """Sending and inviting need max(50, users_default + 1); nothing changes when they already do."""
    assert restricted_power_levels({"users_default": 0})["events_default"] == 50
    restricted = restricted_power_levels({"users_default": 60, "invite": 100, "events_default": 0})
    assert (restricted["events_default"], restricted["invite"]) == (61, 100)
    assert restricted_power_levels({"events_default": 50, "invite": 50}) is None


def test_may_replace_needs_to_be_joined_with_tombstone_power():
    """Only a joined member at the tombstone's level may upgrade."""
    state = {("m.room.create", ""): {"sender": BOB, "content": {"room_version": "11"}},
             ("m.room.power_levels", ""): {"content": OLD_LEVELS},
             ("m.room.member", ALICE): {"content": {"membership": "join"}},
             ("m.room.member", BOB): {"content": {"membership": "join"}}}
    assert may_replace(BOB, state, V11)
    assert not may_replace(ALICE, state, V11)
    assert not may_replace("@carol:hs", state, V11)


# -- aliases and users' settings -----------------------------------------------


def test_local_aliases_move_to_the_new_room():
    """This server's aliases move to the new room's canonical alias; others stay."""
    moved, kept = moved_canonical_alias(
        {"alias": "#a:hs", "alt_aliases": ["#b:hs", "#c:other"]}, "hs")
    assert moved == {"alias": "#a:hs", "alt_aliases": ["#b:hs"]}
    assert kept == {"alt_aliases": ["#c:other"]}
    assert aliases_in(moved) == ["#a:hs", "#b:hs"]
    assert only_aliases(moved, {"#b:hs"}) == {"alt_aliases": ["#b:hs"]}
    assert only_aliases(moved, set()) == {}


def test_push_rules_about_the_old_room_are_copied():
    """A room rule and rules with a room_id condition on the old room are copied; others are not."""
    ruleset = {"global": {
        "override": [
            {"rule_id": ".m.rule.master", "default": True, "enabled": False, "conditions": [], "actions": []},
            {"rule_id": "mute", "default": False, "enabled": True, "actions": [],
             "conditions": [{"kind": "event_match", "key": "room_id", "pattern": OLD}]},
            {"rule_id": "off", "default": False, "enabled": False, "actions": [],
             "conditions": [{"kind": "event_match", "key": "room_id", "pattern": OLD}]},
        ],
        "room": [{"rule_id": OLD, "default": False, "enabled": True, "actions": ["notify"]},
                 {"rule_id": "!else:hs", "default": False, "enabled": True, "actions": []}],
        "underride": [],
    }}
    assert carried_push_rules(ruleset, OLD, NEW) == [
        ("override", f"mute-{NEW}", {"actions": [], "conditions": [
            {"kind": "event_match", "key": "room_id", "pattern": NEW}]}),
        ("room", NEW, {"actions": ["notify"]}),
    ]


def test_direct_lists_the_new_room_beside_the_old():
    """m.direct gains the new room where it lists the old one; otherwise nothing changes."""
    assert carried_direct({BOB: [OLD]}, OLD, NEW) == {BOB: [OLD, NEW]}
    assert carried_direct({BOB: [OLD, NEW]}, OLD, NEW) is None
    assert carried_direct({BOB: ["!x:hs"]}, OLD, NEW) is None
