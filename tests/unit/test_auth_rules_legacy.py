"""
Tests for L{ruma_tx.matrix.auth_rules} in room versions 1 to 9: what each
version changed (aliases, the v1-2 redaction rule, knocking, restricted
joins, knock_restricted, string and float power levels, notifications,
v1-2 references).

Cast: ALICE created the room (100), BOB is a moderator (50), CAROL a plain
member, DAVE an outsider, EVE is on another server.
"""
import itertools

import pytest
from test_auth_rules import allowed

from ruma_tx.matrix.auth_rules import AuthError, check_event_auth
from ruma_tx.matrix.room_versions import ROOM_VERSIONS, V1, V2, V6

ALICE = "@alice:test"
BOB = "@bob:test"
CAROL = "@carol:test"
DAVE = "@dave:test"
EVE = "@eve:other"
ROOM = "!r:test"
_ids = itertools.count()


def versions(first=1, last=11):
    """The room versions from C{first} to C{last}, for parametrize."""
    return pytest.mark.parametrize(
        "version", [ROOM_VERSIONS[str(n)] for n in range(first, last + 1)],
        ids=[f"v{n}" for n in range(first, last + 1)])


def ev(type_, sender, content, state_key=None, **extra):
    """An event of the test room, with a v1-style event ID on the sender's server."""
    event = {"event_id": f"$e{next(_ids)}:{sender.split(':')[1]}", "room_id": ROOM, "type": type_,
             "sender": sender, "content": content, "origin_server_ts": 0}
    if state_key is not None:
        event["state_key"] = state_key
    event.update(extra)
    return event


def member(target, membership, sender=None, **content):
    """An m.room.member event for C{target} by C{sender} (default: the target)."""
    return ev("m.room.member", sender or target, {"membership": membership, **content}, state_key=target)


def room(version, join_rule="public", levels=None, members=None):
    """
    A room's state: create (with creator before v11), power levels (ALICE
    100, BOB 50, plus C{levels}), join rules and members.
    """
    create = ev("m.room.create", ALICE, {"room_version": version.identifier}, state_key="",
                prev_events=[], auth_events=[])
    if not version.implicit_room_creator:
        create["content"]["creator"] = ALICE
    events = [create, ev("m.room.power_levels", ALICE, {"users": {ALICE: 100, BOB: 50}, **(levels or {})},
                         state_key=""),
              ev("m.room.join_rules", ALICE, {"join_rule": join_rule}, state_key="")]
    events += [member(u, m) for u, m in (members or {ALICE: "join", BOB: "join", CAROL: "join"}).items()]
    return {(e["type"], e["state_key"]): e for e in events}


# --- m.room.aliases (v1-5 rule 4) ------------------------------------------------------


@versions(1, 6)
def test_servers_manage_their_own_aliases_until_v6(version):
    """Before v6 any server may set the aliases under its name, even without a member; not from v6."""
    event = ev("m.room.aliases", EVE, {"aliases": ["#a:other"]}, state_key="other")
    assert allowed(event, room(version), version) is (version is not V6)


@versions(1, 5)
def test_aliases_under_another_server_name_are_refused(version):
    """The state key of m.room.aliases must be the sender's server."""
    event = ev("m.room.aliases", CAROL, {"aliases": []}, state_key="other")
    assert not allowed(event, room(version), version)


def test_from_v6_aliases_are_a_plain_state_event():
    """v6: m.room.aliases needs membership and the state level like any other state event."""
    event = ev("m.room.aliases", BOB, {"aliases": []}, state_key="test")
    assert allowed(event, room(V6), V6)
    assert not allowed(ev("m.room.aliases", CAROL, {"aliases": []}, state_key="test"), room(V6), V6)


# --- m.room.redaction (v1-2 rule 11) -----------------------------------------------------


@pytest.mark.parametrize("version", [V1, V2])
def test_v1_redaction_needs_redact_level_or_the_same_server(version):
    """In v1-2 a plain member may only redact events whose ID names their own server."""
    state = room(version, members={ALICE: "join", CAROL: "join", EVE: "join"})
    own = ev("m.room.redaction", CAROL, {}, redacts="$x:test")
    foreign = ev("m.room.redaction", CAROL, {}, redacts="$x:other")
    by_admin = ev("m.room.redaction", ALICE, {}, redacts="$x:other")
    assert allowed(own, state, version)
    assert not allowed(foreign, state, version)
    assert allowed(by_admin, state, version)


@versions(3, 11)
def test_from_v3_the_auth_rules_ignore_the_redact_level(version):
    """From v3 any member may send a redaction; whether it applies is checked later."""
    state = room(version)
    redacts = {"redacts": "$x:other"}
    event = ev("m.room.redaction", CAROL, redacts if version.updated_redaction_rules else {}, **(
        {} if version.updated_redaction_rules else redacts))
    assert allowed(event, state, version)


# --- joins and knocks ----------------------------------------------------------------------


@versions(1, 11)
def test_knocking_exists_from_v7(version):
    """A knock on a knock room is allowed from v7; before, the membership is unknown."""
    event = member(DAVE, "knock")
    assert allowed(event, room(version, join_rule="knock"), version) is (int(version.identifier) >= 7)
    if not version.knocking:
        with pytest.raises(AuthError, match="does not support knocking"):
            check_event_auth(event, room(version, join_rule="knock"), version)


@versions(1, 11)
def test_invited_user_may_join_a_knock_room_from_v7(version):
    """The knock join rule admits invited users from v7; before, it is an unknown rule."""
    state = room(version, join_rule="knock", members={ALICE: "join", DAVE: "invite"})
    assert allowed(member(DAVE, "join"), state, version) is (int(version.identifier) >= 7)


@versions(1, 11)
def test_restricted_joins_exist_from_v8(version):
    """A join authorised by a member with invite power works from v8; before, restricted refuses all."""
    event = member(DAVE, "join", join_authorised_via_users_server=BOB)
    ok = allowed(event, room(version, join_rule="restricted"), version)
    assert ok is (int(version.identifier) >= 8)


@versions(1, 11)
def test_knock_restricted_exists_from_v10(version):
    """knock_restricted admits authorised joins and knocks from v10 only."""
    state = room(version, join_rule="knock_restricted")
    join = member(DAVE, "join", join_authorised_via_users_server=BOB)
    knock = member(EVE, "knock")
    new = int(version.identifier) >= 10
    assert allowed(join, state, version) is new
    assert allowed(knock, state, version) is new


@versions(1, 7)
def test_authoriser_is_not_an_auth_event_before_v8(version):
    """Before v8 a join citing its authoriser's member event cites one auth event too many."""
    state = room(version, members={ALICE: "join", BOB: "join"})
    join = member(DAVE, "join", join_authorised_via_users_server=BOB)
    cited = [state[k]["event_id"] for k in (("m.room.create", ""), ("m.room.power_levels", ""),
                                             ("m.room.join_rules", ""), ("m.room.member", BOB))]
    if version.event_reference_pairs:
        cited = [[eid, {}] for eid in cited]
    assert not allowed({**join, "auth_events": cited}, state, version)
    assert allowed({**join, "auth_events": cited[:3]}, state, version)


@pytest.mark.parametrize("version", [V1, V2])
def test_v1_creator_join_reads_pair_prev_events(version):
    """The creator's first join is recognised when prev_events holds an [id, hashes] pair."""
    state = room(version)
    create = state[("m.room.create", "")]
    only_create = {("m.room.create", ""): create}
    join = member(ALICE, "join", prev_events=[[create["event_id"], {"sha256": "x"}]])
    assert allowed(join, only_create, version)
    assert not allowed({**join, "prev_events": [["$other:test", {}]]}, only_create, version)


# --- power levels ----------------------------------------------------------------------------


@versions(1, 11)
def test_string_power_levels_are_accepted_until_v10(version):
    """Before v10 a levels event may hold '100' and ' +050 '; v10 rejects it."""
    levels = ev("m.room.power_levels", ALICE, {"users": {ALICE: "100", CAROL: " +050 "}}, state_key="")
    assert allowed(levels, room(version), version) is (int(version.identifier) < 10)


@versions(1, 9)
def test_string_power_levels_are_read_as_integers(version):
    """' +050 ' is a level of 50: enough to set the topic, not to kick a moderator at 50."""
    levels = ev("m.room.power_levels", ALICE, {"users": {ALICE: "100", BOB: 50, CAROL: " +050 "}},
                state_key="")
    state = {**room(version), ("m.room.power_levels", ""): levels}
    assert allowed(ev("m.room.topic", CAROL, {"topic": "t"}, state_key=""), state, version)
    assert not allowed(member(BOB, "leave", sender=CAROL), state, version)
    assert allowed(member(CAROL, "leave", sender=ALICE), state, version)


@versions(1, 9)
def test_users_levels_that_are_not_integers_are_rejected(version):
    """Even before v10 a user's level must be an integer or a string holding one."""
    for bad in ("fifty", "5.0", "1_000", [50]):
        event = ev("m.room.power_levels", ALICE, {"users": {ALICE: 100, CAROL: bad}}, state_key="")
        assert not allowed(event, room(version), version), bad


@versions(1, 5)
def test_float_levels_are_truncated_before_v6(version):
    """v1-5 read a float level truncated: 50.57 is 50, enough for BOB's kick of CAROL but not above."""
    state = room(version, levels={"users": {ALICE: 100, BOB: 50.57}})
    assert allowed(member(CAROL, "leave", sender=BOB), state, version)
    raise_carol = ev("m.room.power_levels", BOB, {"users": {ALICE: 100, BOB: 50.57, CAROL: 51}},
                     state_key="")
    assert not allowed(raise_carol, state, version)


@versions(1, 11)
def test_notifications_are_guarded_from_v6(version):
    """BOB (50) may raise notifications.room above himself before v6, when the rule ignored it."""
    content = {"users": {ALICE: 100, BOB: 50}, "state_default": 50,
               "events": {"m.room.power_levels": 50}, "notifications": {"room": 90}}
    event = ev("m.room.power_levels", BOB, content, state_key="")
    assert allowed(event, room(version, levels={"events": {"m.room.power_levels": 50}}), version) is (
        int(version.identifier) < 6)


# --- m.room.create -----------------------------------------------------------------------------


@versions(1, 10)
def test_create_needs_a_creator_until_v11(version):
    """Up to v10 the create event must name its creator."""
    create = room(version)[("m.room.create", "")]
    check_event_auth(create, {}, version)
    without = {**create, "content": {"room_version": version.identifier}}
    assert not allowed(without, {}, version)


@versions(1, 11)
def test_create_may_name_any_supported_version(version):
    """content.room_version may name any of 1..12, and is refused when unknown."""
    create = room(version)[("m.room.create", "")]
    assert allowed({**create, "content": {**create["content"], "room_version": "1"}}, {}, version)
    assert not allowed({**create, "content": {**create["content"], "room_version": "99"}}, {}, version)
