"""
Tests for L{ruma_tx.matrix.power_levels}.
"""

import pytest

from ruma_tx.matrix.power_levels import (
    as_room_version,
    creators,
    default_power_levels_content,
    event_power_level,
    is_level,
    notification_power_level,
    power_level_for,
    user_power_level,
)
from ruma_tx.matrix.room_versions import V10, V11, V12

ALICE = "@alice:test"
BOB = "@bob:test"
CAROL = "@carol:test"


def create(version, sender=ALICE, **content):
    """Build the create event of a room of C{version} sent by C{sender}."""
    c = {"room_version": version.identifier, **content}
    if version is V10 and "creator" not in c:
        c["creator"] = sender
    event = {"event_id": "$createhash", "type": "m.room.create", "state_key": "",
             "sender": sender, "content": c}
    if version is not V12:
        event["room_id"] = "!r:test"
    return event


def power(content):
    """Build an m.room.power_levels event with C{content}."""
    return {"event_id": "$pl", "type": "m.room.power_levels", "state_key": "",
            "sender": ALICE, "content": content}


def state(*events):
    """Build a state map from events."""
    return {(e["type"], e["state_key"]): e for e in events}


def test_v10_creator_from_content_without_power_levels():
    """In v10 with no power levels event, content.creator has 100 and others 0."""
    s = state(create(V10, sender=BOB, creator=ALICE))
    assert user_power_level(ALICE, s, V10) == 100
    assert user_power_level(BOB, s, V10) == 0


@pytest.mark.parametrize("version", [V11])
def test_v11_creator_is_sender_without_power_levels(version):
    """In v11 with no power levels event, the create sender has 100, content.creator is ignored."""
    s = state(create(version, sender=BOB, creator=ALICE))
    assert user_power_level(BOB, s, version) == 100
    assert user_power_level(ALICE, s, version) == 0


def test_v11_creator_level_comes_from_power_levels_when_present():
    """In v11 the creator's level is whatever the power levels event says."""
    s = state(create(V11), power({"users": {BOB: 50}}))
    assert user_power_level(ALICE, s, V11) == 0
    assert user_power_level(BOB, s, V11) == 50


def test_v12_creators_have_infinite_power():
    """In v12 the create sender and additional creators have infinite power, even with a power levels event."""
    s = state(create(V12, additional_creators=[BOB]), power({"users_default": 10}))
    assert user_power_level(ALICE, s, V12) == float("inf")
    assert user_power_level(BOB, s, V12) == float("inf")
    assert user_power_level(CAROL, s, V12) == 10


def test_v12_others_have_zero_without_power_levels():
    """In v12 without a power levels event, non-creators have level 0."""
    s = state(create(V12))
    assert user_power_level(CAROL, s, V12) == 0


def test_users_default_applies_to_unlisted_users():
    """Users not in 'users' get users_default, 0 when missing."""
    s = state(create(V11), power({"users": {ALICE: 100}, "users_default": 5}))
    assert user_power_level(CAROL, s, V11) == 5
    s = state(create(V11), power({"users": {ALICE: 100}}))
    assert user_power_level(CAROL, s, V11) == 0


def test_event_power_level_defaults_without_power_levels():
    """Without a power levels event, state events need 50 and message events 0."""
    s = state(create(V11))
    assert event_power_level("m.room.topic", True, s) == 50
    assert event_power_level("m.room.message", False, s) == 0


def test_event_power_level_uses_events_then_defaults():
    """An 'events' entry wins; otherwise state_default or events_default apply."""
    s = state(create(V11), power({"events": {"m.room.name": 75, "m.reaction": 3},
                                  "state_default": 20, "events_default": 7}))
    assert event_power_level("m.room.name", True, s) == 75
    assert event_power_level("m.reaction", False, s) == 3
    assert event_power_level("m.room.topic", True, s) == 20
    assert event_power_level("m.room.message", False, s) == 7


def test_event_power_level_defaults_with_sparse_power_levels():
    """A power levels event lacking the defaults gives 50 for state and 0 for messages."""
    s = state(create(V11), power({"users": {}}))
    assert event_power_level("m.room.topic", True, s) == 50
    assert event_power_level("m.room.message", False, s) == 0


def test_named_action_defaults():
    """invite defaults to 0 and kick, ban and redact to 50."""
    s = state(create(V11))
    assert [power_level_for(a, s) for a in ("invite", "kick", "ban", "redact")] == [0, 50, 50, 50]


def test_named_action_from_power_levels():
    """Explicit named levels are read from the power levels event."""
    s = state(create(V11), power({"invite": 10, "kick": 20, "ban": 30, "redact": 40}))
    assert [power_level_for(a, s) for a in ("invite", "kick", "ban", "redact")] == [10, 20, 30, 40]


def test_unknown_action_raises():
    """Asking for an unknown action is a programming error."""
    with pytest.raises(ValueError):
        power_level_for("fly", state(create(V11)))


def test_notification_power_level():
    """The @room notification level defaults to 50 and can be set."""
    assert notification_power_level("room", state(create(V11))) == 50
    s = state(create(V11), power({"notifications": {"room": 20}}))
    assert notification_power_level("room", s) == 20


def test_creators_per_version():
    """Creators are content.creator in v10, the sender in v11, sender plus additional_creators in v12."""
    assert creators(state(create(V10, sender=BOB, creator=ALICE)), V10) == {ALICE}
    assert creators(state(create(V11, additional_creators=[BOB])), V11) == {ALICE}
    assert creators(state(create(V12, additional_creators=[BOB, CAROL])), V12) == {ALICE, BOB, CAROL}
    assert creators({}, V12) == frozenset()


def test_room_version_identifier_accepted():
    """Functions accept a version identifier string as well as a RoomVersion."""
    assert as_room_version("11") is V11
    assert user_power_level(ALICE, state(create(V12)), "12") == float("inf")
    with pytest.raises(ValueError):
        as_room_version("13")


@pytest.mark.parametrize("value,ok", [
    (0, True), (-5, True), (2**53 - 1, True), (-(2**53) + 1, True),
    (2**53, False), (True, False), ("50", False), (50.0, False), (None, False),
])
def test_is_level(value, ok):
    """Only canonical-JSON-range integers (not booleans, strings or floats) are levels."""
    assert is_level(value) is ok


def test_default_content_v11_lists_creator():
    """Before v12, createRoom's power levels give the creator 100 and use Synapse's event levels."""
    content = default_power_levels_content(ALICE, V11, "public_chat")
    assert content["users"] == {ALICE: 100}
    assert content["events"]["m.room.power_levels"] == 100
    assert content["events"]["m.room.tombstone"] == 100
    assert content["events"]["m.room.name"] == 50
    assert (content["state_default"], content["events_default"]) == (50, 0)
    assert (content["ban"], content["kick"], content["redact"]) == (50, 50, 50)
    assert content["invite"] == 50
    assert content["notifications"] == {"room": 50}


def test_default_content_v12_omits_creator():
    """In v12 the creator is not listed and tombstone needs more than state_default."""
    content = default_power_levels_content(ALICE, V12, "private_chat")
    assert content["users"] == {}
    assert content["events"]["m.room.tombstone"] > content["state_default"]


@pytest.mark.parametrize("preset,invite", [
    ("private_chat", 0), ("trusted_private_chat", 0), ("public_chat", 50), (None, 50),
])
def test_default_content_invite_level_by_preset(preset, invite):
    """The private presets let anyone invite, others need 50 (as Synapse)."""
    assert default_power_levels_content(ALICE, V11, preset)["invite"] == invite


def test_trusted_private_chat_invitees_get_creator_level():
    """With trusted_private_chat, invitees get 100 before v12 and are not listed in v12."""
    v11 = default_power_levels_content(ALICE, V11, "trusted_private_chat", invitees=[BOB])
    assert v11["users"] == {ALICE: 100, BOB: 100}
    v12 = default_power_levels_content(ALICE, V12, "trusted_private_chat", invitees=[BOB])
    assert v12["users"] == {}
    private = default_power_levels_content(ALICE, V11, "private_chat", invitees=[BOB])
    assert private["users"] == {ALICE: 100}


def test_default_content_is_fresh():
    """Each call returns a new dict that callers may mutate."""
    a = default_power_levels_content(ALICE, V11, None)
    a["events"]["x"] = 1
    assert "x" not in default_power_levels_content(ALICE, V11, None)["events"]
