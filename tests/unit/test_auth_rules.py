"""
Tests for L{ruma_tx.matrix.auth_rules}: the authorisation rules of room
versions 10, 11 and 12, on hand-built events.

Cast: ALICE created the room (100 before v12, a creator in v12), BOB is a
moderator (50), CAROL is a plain member (0), DAVE is an outsider, EVE is on
another server.
"""
import itertools

import pytest

from ruma_tx.matrix.auth_rules import AuthError, auth_types_for_event, check_event_auth
from ruma_tx.matrix.redaction import check_redaction, redacted_event_id
from ruma_tx.matrix.room_versions import V10, V11, V12

ALICE = "@alice:test"
BOB = "@bob:test"
CAROL = "@carol:test"
DAVE = "@dave:test"
EVE = "@eve:other"

ALL = [V10, V11, V12]
_ids = itertools.count()


def room_id(version):
    """The room ID of the test room: domain-less in v12."""
    return "!createhash" if version is V12 else "!r:test"


def ev(version, type_, sender, content, state_key=None, **extra):
    """Build an event of the test room."""
    event = {"event_id": f"$e{next(_ids)}", "room_id": room_id(version), "type": type_,
             "sender": sender, "content": content, "origin_server_ts": 0}
    if state_key is not None:
        event["state_key"] = state_key
    event.update(extra)
    return event


def create(version, sender=ALICE, **content):
    """Build the test room's create event (v10 gets a creator, v12 no room_id)."""
    c = {"room_version": version.identifier}
    if version is V10:
        c["creator"] = sender
    c.update(content)
    event = {"event_id": "$createhash", "type": "m.room.create", "state_key": "",
             "sender": sender, "content": c, "prev_events": [], "auth_events": [],
             "origin_server_ts": 0}
    if version is not V12:
        event["room_id"] = room_id(version)
    return event


def member(version, target, membership, sender=None, **content):
    """Build an m.room.member event for C{target} sent by C{sender} (default: the target)."""
    return ev(version, "m.room.member", sender or target,
              {"membership": membership, **content}, state_key=target)


def power(version, content, sender=ALICE):
    """Build an m.room.power_levels event."""
    return ev(version, "m.room.power_levels", sender, content, state_key="")


def default_users(version):
    """ALICE 100 (not listed in v12, where she is a creator) and BOB 50."""
    return {BOB: 50} if version is V12 else {ALICE: 100, BOB: 50}


def room(version, join_rule="public", levels=None, members=None, create_content=None):
    """
    Build a room's state: create event, power levels (C{levels} merged into
    the default users, or no event if C{levels} is False), join rules and
    members (default ALICE, BOB and CAROL joined).
    """
    s = {}

    def put(event):
        s[(event["type"], event["state_key"])] = event

    put(create(version, **(create_content or {})))
    if levels is not False:
        content = {"users": default_users(version)}
        content.update(levels or {})
        put(power(version, content))
    if join_rule is not None:
        put(ev(version, "m.room.join_rules", ALICE, {"join_rule": join_rule}, state_key=""))
    for user, membership in (members or {ALICE: "join", BOB: "join", CAROL: "join"}).items():
        put(member(version, user, membership))
    return s


def allowed(event, state, version):
    """Whether the auth rules accept C{event}."""
    try:
        check_event_auth(event, state, version)
    except AuthError:
        return False
    return True


def rejected(event, state, version):
    """Assert the auth rules reject C{event}, returning the message."""
    with pytest.raises(AuthError) as info:
        check_event_auth(event, state, version)
    assert str(info.value)
    return str(info.value)


# --------------------------------------------------------------------------
# m.room.create


@pytest.mark.parametrize("version", ALL)
def test_create_event_valid(version):
    """A well-formed create event with no previous events is allowed in every version."""
    check_event_auth(create(version), {}, version)


def test_v10_create_requires_creator():
    """In v10 a create event without content.creator is rejected."""
    event = create(V10)
    del event["content"]["creator"]
    assert "creator" in rejected(event, {}, V10)


@pytest.mark.parametrize("version", [V11, V12])
def test_v11_create_without_creator_allowed(version):
    """From v11 on the create event needs no creator property."""
    event = create(version)
    assert "creator" not in event["content"]
    check_event_auth(event, {}, version)


@pytest.mark.parametrize("version", [V10, V11])
def test_create_room_id_domain_must_match_sender(version):
    """Before v12 the room ID's server must be the sender's server."""
    event = create(version)
    event["room_id"] = "!r:elsewhere"
    rejected(event, {}, version)


def test_v12_create_with_room_id_rejected():
    """In v12 a create event carrying a room_id is rejected."""
    event = create(V12)
    event["room_id"] = "!createhash"
    rejected(event, {}, V12)


@pytest.mark.parametrize("version", ALL)
def test_create_with_prev_events_rejected(version):
    """A create event with previous events is rejected."""
    event = create(version)
    event["prev_events"] = ["$earlier"]
    rejected(event, {}, version)


@pytest.mark.parametrize("version", ALL)
def test_create_with_unknown_room_version_rejected(version):
    """A create event naming an unrecognised room version is rejected."""
    rejected(create(version, room_version="999"), {}, version)


@pytest.mark.parametrize("version", ALL)
def test_second_create_event_rejected(version):
    """A create event in a room that already has one is rejected."""
    state = room(version)
    second = create(version)
    second["event_id"] = "$other"
    rejected(second, state, version)


def test_v12_additional_creators_must_be_user_ids():
    """In v12 additional_creators must be a list of valid user IDs."""
    check_event_auth(create(V12, additional_creators=[BOB, EVE]), {}, V12)
    rejected(create(V12, additional_creators=BOB), {}, V12)
    rejected(create(V12, additional_creators=[BOB, "carol"]), {}, V12)
    rejected(create(V12, additional_creators=[42]), {}, V12)


def test_v11_additional_creators_not_validated():
    """Before v12 additional_creators means nothing and is not validated."""
    check_event_auth(create(V11, additional_creators="nonsense"), {}, V11)


@pytest.mark.parametrize("version", ALL)
def test_event_before_create_rejected(version):
    """Any other event in a room with no create event is rejected."""
    event = member(version, ALICE, "join")
    assert "create" in rejected(event, {}, version)


@pytest.mark.parametrize("version", ALL)
def test_create_event_keyword_supplies_create(version):
    """The create event may be passed separately from the state."""
    state = room(version)
    create_event = state.pop(("m.room.create", ""))
    event = ev(version, "m.room.message", CAROL, {"body": "hi"})
    check_event_auth(event, state, version, create_event=create_event)
    with pytest.raises(AuthError):
        check_event_auth(event, state, version)


def test_v12_room_id_must_be_create_event_id():
    """In v12 an event whose room_id is not derived from the create event's ID is rejected."""
    state = room(V12)
    event = ev(V12, "m.room.message", CAROL, {"body": "hi"}, room_id="!otherhash")
    rejected(event, state, V12)


def test_v11_room_id_must_match_create_event():
    """Before v12 an event for another room than the create event's is rejected."""
    state = room(V11)
    event = ev(V11, "m.room.message", CAROL, {"body": "hi"}, room_id="!elsewhere:test")
    rejected(event, state, V11)


@pytest.mark.parametrize("version", ALL)
def test_m_federate_false_rejects_other_servers(version):
    """With m.federate false, users of another server cannot even join a public room."""
    state = room(version, create_content={"m.federate": False})
    rejected(member(version, EVE, "join"), state, version)
    check_event_auth(member(version, DAVE, "join"), state, version)
    state = room(version)
    check_event_auth(member(version, EVE, "join"), state, version)


# --------------------------------------------------------------------------
# Auth events selection


def test_auth_types_message_v11():
    """A message cites the create event, power levels and the sender's membership before v12."""
    assert auth_types_for_event("m.room.message", None, CAROL, {}, V11) == [
        ("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.member", CAROL)]


def test_auth_types_message_v12_omits_create():
    """In v12 the create event is never cited."""
    assert auth_types_for_event("m.room.message", None, CAROL, {}, V12) == [
        ("m.room.power_levels", ""), ("m.room.member", CAROL)]


def test_auth_types_create_is_empty():
    """The create event cites nothing."""
    assert auth_types_for_event("m.room.create", "", ALICE, {}, V11) == []


def test_auth_types_restricted_join():
    """A join cites the target, join rules and the authorising user's membership."""
    content = {"membership": "join", "join_authorised_via_users_server": BOB}
    assert auth_types_for_event("m.room.member", DAVE, DAVE, content, V10) == [
        ("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.member", DAVE),
        ("m.room.join_rules", ""), ("m.room.member", BOB)]


def test_auth_types_invite_and_leave():
    """An invite cites the target and join rules (plus a 3pid token); a kick does not cite join rules."""
    invite = {"membership": "invite", "third_party_invite": {"signed": {"token": "tok"}}}
    assert auth_types_for_event("m.room.member", DAVE, ALICE, invite, V12) == [
        ("m.room.power_levels", ""), ("m.room.member", ALICE), ("m.room.member", DAVE),
        ("m.room.join_rules", ""), ("m.room.third_party_invite", "tok")]
    assert auth_types_for_event("m.room.member", CAROL, BOB, {"membership": "leave"}, V12) == [
        ("m.room.power_levels", ""), ("m.room.member", BOB), ("m.room.member", CAROL)]


def _cite(state, version, event):
    """Fill C{event}'s auth_events from the state per the selection algorithm."""
    keys = auth_types_for_event(event["type"], event.get("state_key"), event["sender"],
                                event["content"], version)
    event["auth_events"] = [state[k]["event_id"] for k in keys if k in state]
    return event


@pytest.mark.parametrize("version", ALL)
def test_correct_auth_events_accepted(version):
    """An event citing exactly the selected auth events is allowed."""
    state = room(version)
    check_event_auth(_cite(state, version, ev(version, "m.room.message", CAROL, {})), state, version)
    check_event_auth(_cite(state, version, member(version, DAVE, "join")), state, version)


@pytest.mark.parametrize("version", ALL)
def test_duplicate_auth_events_rejected(version):
    """Citing the same auth event twice is rejected."""
    state = room(version)
    event = _cite(state, version, ev(version, "m.room.message", CAROL, {}))
    event["auth_events"].append(event["auth_events"][-1])
    rejected(event, state, version)


@pytest.mark.parametrize("version", ALL)
def test_unexpected_auth_event_rejected(version):
    """Citing an event the selection algorithm does not pick (join rules for a message) is rejected."""
    state = room(version)
    event = _cite(state, version, ev(version, "m.room.message", CAROL, {}))
    event["auth_events"].append(state[("m.room.join_rules", "")]["event_id"])
    rejected(event, state, version)


@pytest.mark.parametrize("version", ALL)
def test_unknown_auth_event_rejected(version):
    """Citing an event that is not in the room's state is rejected."""
    state = room(version)
    event = _cite(state, version, ev(version, "m.room.message", CAROL, {}))
    event["auth_events"].append("$nowhere")
    rejected(event, state, version)


@pytest.mark.parametrize("version", [V10, V11])
def test_create_must_be_cited_before_v12(version):
    """Before v12 auth_events without the create event are rejected."""
    state = room(version)
    event = _cite(state, version, ev(version, "m.room.message", CAROL, {}))
    event["auth_events"].remove("$createhash")
    assert "create" in rejected(event, state, version)


def test_v12_create_must_not_be_cited():
    """In v12 citing the create event is rejected."""
    state = room(V12)
    event = _cite(state, V12, ev(V12, "m.room.message", CAROL, {}))
    event["auth_events"].append("$createhash")
    rejected(event, state, V12)


# --------------------------------------------------------------------------
# Joins


@pytest.mark.parametrize("version", ALL)
def test_creator_first_join(version):
    """The creator may join right after the create event, with no join rules or power levels."""
    c = create(version)
    state = {("m.room.create", ""): c}
    event = member(version, ALICE, "join", prev_events=[c["event_id"]])
    check_event_auth(event, state, version)
    # Without prev_events, a state holding only the create event is the same.
    check_event_auth(member(version, ALICE, "join"), state, version)


@pytest.mark.parametrize("version", ALL)
def test_non_creator_first_join_rejected(version):
    """Someone else cannot join right after the create event (the default join rule is invite)."""
    c = create(version)
    state = {("m.room.create", ""): c}
    rejected(member(version, DAVE, "join", prev_events=[c["event_id"]]), state, version)


@pytest.mark.parametrize("version", ALL)
def test_creator_join_exception_only_right_after_create(version):
    """A creator who left an invite room cannot rejoin through the first-join exception."""
    state = room(version, "invite", members={ALICE: "leave", BOB: "join"})
    rejected(member(version, ALICE, "join"), state, version)
    rejected(member(version, ALICE, "join", prev_events=["$e-latest"]), state, version)
    rejected(member(version, ALICE, "join", prev_events=["$createhash", "$e-latest"]),
             state, version)


def test_v10_first_join_uses_content_creator():
    """In v10 the first-join exception is for content.creator, not the create sender."""
    c = create(V10, sender=BOB, creator=ALICE)
    state = {("m.room.create", ""): c}
    check_event_auth(member(V10, ALICE, "join", prev_events=[c["event_id"]]), state, V10)
    rejected(member(V10, BOB, "join", prev_events=[c["event_id"]]), state, V10)


def test_v12_first_join_only_for_create_sender():
    """In v12 an additional creator does not get the first-join exception."""
    c = create(V12, additional_creators=[BOB])
    state = {("m.room.create", ""): c}
    rejected(member(V12, BOB, "join", prev_events=[c["event_id"]]), state, V12)


@pytest.mark.parametrize("version", ALL)
def test_public_join_allowed(version):
    """Anyone may join a public room."""
    check_event_auth(member(version, DAVE, "join"), room(version, "public"), version)


@pytest.mark.parametrize("version", ALL)
def test_join_for_another_user_rejected(version):
    """A user cannot join someone else, even into a public room."""
    rejected(member(version, DAVE, "join", sender=ALICE), room(version, "public"), version)


@pytest.mark.parametrize("version", ALL)
def test_banned_user_cannot_join(version):
    """A banned user cannot join a public room."""
    state = room(version, "public", members={ALICE: "join", DAVE: "ban"})
    assert "banned" in rejected(member(version, DAVE, "join"), state, version)


@pytest.mark.parametrize("version", ALL)
def test_invite_room_requires_invite(version):
    """In an invite room an invited user may join and an uninvited one may not."""
    state = room(version, "invite", members={ALICE: "join", DAVE: "invite"})
    check_event_auth(member(version, DAVE, "join"), state, version)
    rejected(member(version, CAROL, "join"), state, version)


@pytest.mark.parametrize("version", ALL)
def test_joined_user_may_rejoin_invite_room(version):
    """A joined member may send another join (e.g. a profile change) in an invite room."""
    check_event_auth(member(version, CAROL, "join", displayname="C"), room(version, "invite"), version)


@pytest.mark.parametrize("version", ALL)
def test_left_user_cannot_rejoin_invite_room(version):
    """A user who left an invite room needs a new invite."""
    state = room(version, "invite", members={ALICE: "join", DAVE: "leave"})
    rejected(member(version, DAVE, "join"), state, version)


@pytest.mark.parametrize("version", ALL)
def test_knock_room_join_requires_invite(version):
    """In a knock room, knocking is not enough to join: an invite is."""
    state = room(version, "knock", members={ALICE: "join", DAVE: "knock", CAROL: "invite"})
    rejected(member(version, DAVE, "join"), state, version)
    check_event_auth(member(version, CAROL, "join"), state, version)


@pytest.mark.parametrize("version", ALL)
def test_missing_join_rules_means_invite(version):
    """Without a join rules event, only invited users may join."""
    state = room(version, None, members={ALICE: "join", CAROL: "invite"})
    rejected(member(version, DAVE, "join"), state, version)
    check_event_auth(member(version, CAROL, "join"), state, version)


@pytest.mark.parametrize("version", ALL)
def test_unknown_join_rule_rejects_joins(version):
    """An unknown join rule (e.g. private) lets nobody join."""
    rejected(member(version, DAVE, "join"), room(version, "private"), version)


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("rule", ["restricted", "knock_restricted"])
def test_restricted_join_with_valid_authoriser(version, rule):
    """A restricted join authorised by a joined member with invite power is allowed."""
    state = room(version, rule)
    event = member(version, DAVE, "join", join_authorised_via_users_server=CAROL)
    check_event_auth(event, state, version)


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("rule", ["restricted", "knock_restricted"])
def test_restricted_join_without_authoriser_rejected(version, rule):
    """A restricted join with no authorising user is rejected for an uninvited user."""
    rejected(member(version, DAVE, "join"), room(version, rule), version)


@pytest.mark.parametrize("version", ALL)
def test_restricted_join_authoriser_not_joined(version):
    """An authorising user who is not joined cannot authorise a restricted join."""
    state = room(version, "restricted", members={ALICE: "join", CAROL: "leave"})
    event = member(version, DAVE, "join", join_authorised_via_users_server=CAROL)
    rejected(event, state, version)


@pytest.mark.parametrize("version", ALL)
def test_restricted_join_authoriser_lacks_invite_power(version):
    """An authorising user below the invite level cannot authorise a restricted join."""
    state = room(version, "restricted", levels={"invite": 50})
    rejected(member(version, DAVE, "join", join_authorised_via_users_server=CAROL), state, version)
    check_event_auth(member(version, DAVE, "join", join_authorised_via_users_server=BOB),
                     state, version)


@pytest.mark.parametrize("version", ALL)
def test_restricted_join_invited_needs_no_authoriser(version):
    """An invited user joins a restricted room without an authorising user."""
    state = room(version, "restricted", members={ALICE: "join", DAVE: "invite"})
    check_event_auth(member(version, DAVE, "join"), state, version)


@pytest.mark.parametrize("version", ALL)
def test_restricted_join_banned_rejected(version):
    """A banned user cannot join a restricted room even with an authorising user."""
    state = room(version, "restricted", members={ALICE: "join", DAVE: "ban"})
    rejected(member(version, DAVE, "join", join_authorised_via_users_server=ALICE), state, version)


# --------------------------------------------------------------------------
# Invites


@pytest.mark.parametrize("version", ALL)
def test_member_can_invite_at_default_level(version):
    """With the default invite level 0, any joined member may invite."""
    check_event_auth(member(version, DAVE, "invite", sender=CAROL), room(version, "invite"), version)


@pytest.mark.parametrize("version", ALL)
def test_invite_needs_invite_level(version):
    """With invite at 50, a level-0 member may not invite but a moderator may."""
    state = room(version, "invite", levels={"invite": 50})
    rejected(member(version, DAVE, "invite", sender=CAROL), state, version)
    check_event_auth(member(version, DAVE, "invite", sender=BOB), state, version)


@pytest.mark.parametrize("version", ALL)
def test_non_member_cannot_invite(version):
    """A user who is not joined cannot invite."""
    state = room(version, "invite", members={ALICE: "join", CAROL: "invite"})
    rejected(member(version, DAVE, "invite", sender=CAROL), state, version)


@pytest.mark.parametrize("version", ALL)
def test_cannot_invite_joined_user(version):
    """Inviting a user who is already joined is rejected."""
    assert "already" in rejected(member(version, CAROL, "invite", sender=ALICE),
                                 room(version), version)


@pytest.mark.parametrize("version", ALL)
def test_cannot_invite_banned_user(version):
    """Inviting a banned user is rejected, even by the creator."""
    state = room(version, members={ALICE: "join", DAVE: "ban"})
    assert "banned" in rejected(member(version, DAVE, "invite", sender=ALICE), state, version)


@pytest.mark.parametrize("version", ALL)
def test_can_invite_user_who_left_or_knocked(version):
    """Users who left or knocked may be invited."""
    state = room(version, "knock", members={ALICE: "join", DAVE: "leave", CAROL: "knock"})
    check_event_auth(member(version, DAVE, "invite", sender=ALICE), state, version)
    check_event_auth(member(version, CAROL, "invite", sender=ALICE), state, version)


@pytest.mark.parametrize("version", ALL)
def test_third_party_invite_refused(version):
    """Invites carrying a third_party_invite are not supported and are rejected."""
    event = member(version, DAVE, "invite", sender=ALICE,
                   third_party_invite={"display_name": "d", "signed": {
                       "mxid": DAVE, "token": "tok", "signatures": {}}})
    rejected(event, room(version), version)


# --------------------------------------------------------------------------
# Leave, kick, ban, unban


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("current", ["join", "invite", "knock"])
def test_self_leave_allowed(version, current):
    """A joined, invited or knocking user may leave (or reject or retract)."""
    state = room(version, "knock", members={ALICE: "join", DAVE: current})
    check_event_auth(member(version, DAVE, "leave"), state, version)


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("current", ["leave", "ban", None])
def test_self_leave_rejected_when_not_in_room(version, current):
    """A user who left, is banned or never came cannot leave (a banned user cannot unban themselves)."""
    members = {ALICE: "join"}
    if current:
        members[DAVE] = current
    rejected(member(version, DAVE, "leave"), room(version, members=members), version)


@pytest.mark.parametrize("version", ALL)
def test_kick_needs_kick_level(version):
    """A moderator may kick a plain member; a plain member may not kick."""
    state = room(version, members={ALICE: "join", BOB: "join", CAROL: "join", DAVE: "join"})
    check_event_auth(member(version, CAROL, "leave", sender=BOB), state, version)
    rejected(member(version, DAVE, "leave", sender=CAROL), state, version)


@pytest.mark.parametrize("version", ALL)
def test_kick_needs_higher_level_than_target(version):
    """A moderator cannot kick a user of equal or higher level."""
    levels = {"users": {**default_users(version), CAROL: 50}}
    state = room(version, levels=levels)
    rejected(member(version, CAROL, "leave", sender=BOB), state, version)
    rejected(member(version, ALICE, "leave", sender=BOB), state, version)


@pytest.mark.parametrize("version", ALL)
def test_kick_custom_kick_level(version):
    """A raised kick level stops moderators below it from kicking."""
    state = room(version, levels={"kick": 75})
    rejected(member(version, CAROL, "leave", sender=BOB), state, version)
    check_event_auth(member(version, CAROL, "leave", sender=ALICE), state, version)


@pytest.mark.parametrize("version", ALL)
def test_kicker_must_be_joined(version):
    """A moderator who is not joined cannot kick."""
    state = room(version, members={ALICE: "join", BOB: "leave", CAROL: "join"})
    rejected(member(version, CAROL, "leave", sender=BOB), state, version)


@pytest.mark.parametrize("version", ALL)
def test_kick_invited_user_revokes_invite(version):
    """A moderator may revoke an invite by kicking the invitee."""
    state = room(version, members={ALICE: "join", BOB: "join", DAVE: "invite"})
    check_event_auth(member(version, DAVE, "leave", sender=BOB), state, version)


@pytest.mark.parametrize("version", ALL)
def test_ban_needs_ban_level_and_higher_level(version):
    """A moderator may ban a plain member or an outsider, not a peer; a plain member may not ban."""
    levels = {"users": {**default_users(version), DAVE: 50}}
    state = room(version, levels=levels)
    check_event_auth(member(version, CAROL, "ban", sender=BOB), state, version)
    check_event_auth(member(version, EVE, "ban", sender=BOB), state, version)
    rejected(member(version, DAVE, "ban", sender=BOB), state, version)
    rejected(member(version, EVE, "ban", sender=CAROL), state, version)


@pytest.mark.parametrize("version", ALL)
def test_ban_custom_ban_level(version):
    """A raised ban level stops moderators below it from banning."""
    state = room(version, levels={"ban": 60})
    rejected(member(version, CAROL, "ban", sender=BOB), state, version)


@pytest.mark.parametrize("version", ALL)
def test_banner_must_be_joined(version):
    """A moderator who is not joined cannot ban."""
    state = room(version, members={ALICE: "join", BOB: "invite", CAROL: "join"})
    rejected(member(version, CAROL, "ban", sender=BOB), state, version)


@pytest.mark.parametrize("version", ALL)
def test_unban_needs_ban_and_kick_level(version):
    """Unbanning needs both the ban and kick levels and a level above the target's."""
    state = room(version, levels={"ban": 60}, members={ALICE: "join", BOB: "join", DAVE: "ban"})
    rejected(member(version, DAVE, "leave", sender=BOB), state, version)
    check_event_auth(member(version, DAVE, "leave", sender=ALICE), state, version)
    state = room(version, levels={"kick": 60}, members={ALICE: "join", BOB: "join", DAVE: "ban"})
    rejected(member(version, DAVE, "leave", sender=BOB), state, version)
    state = room(version, members={ALICE: "join", BOB: "join", DAVE: "ban"})
    check_event_auth(member(version, DAVE, "leave", sender=BOB), state, version)


# --------------------------------------------------------------------------
# Knocks and unknown memberships


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("rule", ["knock", "knock_restricted"])
def test_knock_allowed_in_knock_rooms(version, rule):
    """An outsider may knock on a knock or knock_restricted room."""
    check_event_auth(member(version, DAVE, "knock"), room(version, rule), version)


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("rule", ["public", "invite", "restricted"])
def test_knock_rejected_in_other_rooms(version, rule):
    """Knocking on a public, invite or restricted room is rejected."""
    rejected(member(version, DAVE, "knock"), room(version, rule), version)


@pytest.mark.parametrize("version", ALL)
def test_knock_for_another_user_rejected(version):
    """A user cannot knock on behalf of someone else."""
    rejected(member(version, EVE, "knock", sender=DAVE), room(version, "knock"), version)


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("current", ["join", "ban", "invite"])
def test_knock_rejected_when_joined_banned_or_invited(version, current):
    """Joined, banned and invited users cannot knock."""
    state = room(version, "knock", members={ALICE: "join", DAVE: current})
    rejected(member(version, DAVE, "knock"), state, version)


@pytest.mark.parametrize("version", ALL)
def test_knock_after_leaving_allowed(version):
    """A user who left may knock again."""
    state = room(version, "knock", members={ALICE: "join", DAVE: "leave"})
    check_event_auth(member(version, DAVE, "knock"), state, version)


@pytest.mark.parametrize("version", ALL)
def test_unknown_membership_rejected(version):
    """A membership value the spec does not define is rejected."""
    rejected(member(version, CAROL, "lurk"), room(version), version)


@pytest.mark.parametrize("version", ALL)
def test_member_event_needs_membership_and_state_key(version):
    """A member event without membership, or without a state_key, is rejected."""
    state = room(version)
    rejected(ev(version, "m.room.member", DAVE, {}, state_key=DAVE), state, version)
    rejected(ev(version, "m.room.member", DAVE, {"membership": "join"}), state, version)


# --------------------------------------------------------------------------
# Other events: membership, power, state keys


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("current", ["invite", "leave", "knock", "ban", None])
def test_non_members_cannot_send(version, current):
    """Only joined users may send events; invited, departed, knocking, banned and unknown users may not."""
    members = {ALICE: "join"}
    if current:
        members[DAVE] = current
    state = room(version, "knock", members=members)
    rejected(ev(version, "m.room.message", DAVE, {"body": "hi"}), state, version)


@pytest.mark.parametrize("version", ALL)
def test_member_can_send_message(version):
    """A joined member may send a message at the default events level."""
    check_event_auth(ev(version, "m.room.message", CAROL, {"body": "hi"}), room(version), version)


@pytest.mark.parametrize("version", ALL)
def test_state_event_needs_state_default(version):
    """A plain member cannot send a state event at state_default 50; a moderator can."""
    state = room(version)
    rejected(ev(version, "m.room.topic", CAROL, {"topic": "t"}, state_key=""), state, version)
    check_event_auth(ev(version, "m.room.topic", BOB, {"topic": "t"}, state_key=""), state, version)


@pytest.mark.parametrize("version", ALL)
def test_events_override_defaults(version):
    """An events entry overrides the defaults, both up and down."""
    state = room(version, levels={"events": {"m.room.topic": 0, "m.room.message": 20,
                                             "m.room.name": 75}})
    check_event_auth(ev(version, "m.room.topic", CAROL, {}, state_key=""), state, version)
    rejected(ev(version, "m.room.message", CAROL, {}), state, version)
    rejected(ev(version, "m.room.name", BOB, {}, state_key=""), state, version)
    check_event_auth(ev(version, "m.room.name", ALICE, {}, state_key=""), state, version)


@pytest.mark.parametrize("version", ALL)
def test_events_default_applies_to_messages(version):
    """A raised events_default stops plain members from sending messages."""
    state = room(version, levels={"events_default": 10})
    rejected(ev(version, "m.room.message", CAROL, {"body": "hi"}), state, version)
    check_event_auth(ev(version, "m.room.message", BOB, {"body": "hi"}), state, version)


@pytest.mark.parametrize("version", ALL)
def test_no_power_levels_uses_defaults(version):
    """Without power levels the creator can send state events and a member cannot."""
    state = room(version, levels=False)
    check_event_auth(ev(version, "m.room.name", ALICE, {"name": "n"}, state_key=""), state, version)
    rejected(ev(version, "m.room.name", CAROL, {"name": "n"}, state_key=""), state, version)
    check_event_auth(ev(version, "m.room.message", CAROL, {"body": "hi"}), state, version)


@pytest.mark.parametrize("version", ALL)
def test_user_id_state_keys_belong_to_their_user(version):
    """A state key starting with @ must be the sender's own user ID."""
    state = room(version, levels={"state_default": 0})
    check_event_auth(ev(version, "org.example.status", CAROL, {}, state_key=CAROL), state, version)
    rejected(ev(version, "org.example.status", CAROL, {}, state_key=BOB), state, version)
    rejected(ev(version, "org.example.status", ALICE, {}, state_key=CAROL), state, version)
    check_event_auth(ev(version, "org.example.status", CAROL, {}, state_key="x@y"), state, version)


@pytest.mark.parametrize("version", ALL)
def test_third_party_invite_event_needs_invite_level(version):
    """An m.room.third_party_invite event needs only the invite level, not state_default."""
    state = room(version)
    check_event_auth(ev(version, "m.room.third_party_invite", CAROL, {}, state_key="tok"),
                     state, version)
    state = room(version, levels={"invite": 10})
    rejected(ev(version, "m.room.third_party_invite", CAROL, {}, state_key="tok"), state, version)


# --------------------------------------------------------------------------
# m.room.power_levels


@pytest.mark.parametrize("version", ALL)
def test_first_power_levels_event_allowed(version):
    """The first power levels event only has to be well formed and sendable."""
    state = room(version, levels=False)
    content = {"users": {BOB: 100} if version is V12 else {ALICE: 100, BOB: 100}, "ban": 100}
    check_event_auth(power(version, content), state, version)


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("field,value", [
    ("ban", "50"), ("kick", 50.0), ("invite", True), ("state_default", None),
    ("users_default", 2**53), ("events", {"m.room.name": "50"}), ("events", []),
    ("notifications", {"room": 1.5}), ("users", {CAROL: "10"}), ("users", {"carol": 10}),
    ("users", [CAROL]),
])
def test_power_levels_must_be_integers(version, field, value):
    """Power level values that are not integers (or not in range), and invalid user IDs, are rejected."""
    content = {"users": default_users(version)}
    content[field] = value
    rejected(power(version, content), room(version), version)


@pytest.mark.parametrize("version", ALL)
def test_power_levels_need_state_level(version):
    """A member below the power levels event's required level cannot send one."""
    state = room(version, levels={"events": {"m.room.power_levels": 100}})
    rejected(power(version, {"users": default_users(version)}, sender=BOB), state, version)


@pytest.mark.parametrize("version", ALL)
def test_cannot_raise_user_above_own_level(version):
    """A moderator may give 50 but not 51, nor raise themselves."""
    state = room(version, levels={"events": {"m.room.power_levels": 50}})
    base = default_users(version)
    check_event_auth(power(version, {"users": {**base, CAROL: 50}}, sender=BOB), state, version)
    rejected(power(version, {"users": {**base, CAROL: 51}}, sender=BOB), state, version)
    rejected(power(version, {"users": {**base, BOB: 60}}, sender=BOB), state, version)


@pytest.mark.parametrize("version", ALL)
def test_cannot_change_peer_level(version):
    """A moderator cannot demote or remove another user of the same level."""
    levels = {"users": {**default_users(version), CAROL: 50}, "events": {"m.room.power_levels": 50}}
    state = room(version, levels=levels)
    rejected(power(version, {"users": {**default_users(version), CAROL: 10}}, sender=BOB),
             state, version)
    rejected(power(version, {"users": default_users(version)}, sender=BOB), state, version)


@pytest.mark.parametrize("version", ALL)
def test_can_change_lower_user_and_own_level(version):
    """A moderator may demote a lower user, remove them, and lower their own level."""
    levels = {"users": {**default_users(version), CAROL: 20}, "events": {"m.room.power_levels": 20}}
    state = room(version, levels=levels)
    base = default_users(version)
    check_event_auth(power(version, {**levels, "users": {**base, CAROL: 0}}, sender=BOB),
                     state, version)
    check_event_auth(power(version, {**levels, "users": base}, sender=BOB), state, version)
    check_event_auth(power(version, {**levels, "users": {**base, CAROL: 20, BOB: 30}},
                           sender=BOB), state, version)


@pytest.mark.parametrize("version", ALL)
def test_named_level_changes_bounded_by_own_level(version):
    """Named levels can be changed only if both old and new values are within the sender's level."""
    levels = {"events": {"m.room.power_levels": 50}, "ban": 50, "kick": 75}
    state = room(version, levels=levels)
    users = default_users(version)
    check_event_auth(power(version, {"users": users, **levels, "ban": 40}, sender=BOB),
                     state, version)
    rejected(power(version, {"users": users, **levels, "ban": 60}, sender=BOB), state, version)
    rejected(power(version, {"users": users, **levels, "kick": 40}, sender=BOB), state, version)
    no_kick = {k: v for k, v in levels.items() if k != "kick"}
    rejected(power(version, {"users": users, **no_kick}, sender=BOB), state, version)
    # Adding a named level is checked against its new value.
    check_event_auth(power(version, {"users": users, **levels, "redact": 50}, sender=BOB),
                     state, version)
    rejected(power(version, {"users": users, **levels, "redact": 51}, sender=BOB), state, version)


@pytest.mark.parametrize("version", ALL)
def test_events_entry_changes_bounded_by_own_level(version):
    """Events entries above the sender cannot be added, changed or removed; others can."""
    levels = {"events": {"m.room.power_levels": 50, "m.room.tombstone": 100}}
    state = room(version, levels=levels)
    users = default_users(version)

    def events(**e):
        return power(version, {"users": users, "events": e}, sender=BOB)

    ok = events(**{"m.room.power_levels": 50, "m.room.tombstone": 100, "m.room.topic": 10})
    check_event_auth(ok, state, version)
    rejected(events(**{"m.room.power_levels": 50, "m.room.tombstone": 100, "m.room.topic": 90}),
             state, version)
    rejected(events(**{"m.room.power_levels": 50, "m.room.tombstone": 40}), state, version)
    rejected(events(**{"m.room.power_levels": 50}), state, version)


@pytest.mark.parametrize("version", ALL)
def test_notifications_changes_bounded_by_own_level(version):
    """Notification levels above the sender cannot be changed."""
    levels = {"events": {"m.room.power_levels": 50}, "notifications": {"room": 80}}
    state = room(version, levels=levels)
    users = default_users(version)
    content = {"users": users, "events": levels["events"], "notifications": {"room": 10}}
    rejected(power(version, content, sender=BOB), state, version)
    check_event_auth(power(version, content, sender=ALICE), state, version)


@pytest.mark.parametrize("version", [V10, V11])
def test_creator_has_no_special_power_before_v12(version):
    """Before v12 a creator demoted to 0 is an ordinary member."""
    state = room(version, levels={"users": {ALICE: 0, BOB: 50}})
    rejected(ev(version, "m.room.name", ALICE, {}, state_key=""), state, version)
    check_event_auth(member(version, ALICE, "ban", sender=BOB), state, version)


def test_v12_power_levels_listing_creator_rejected():
    """In v12 a power levels event giving the create sender a level is rejected."""
    state = room(V12)
    assert "creator" in rejected(power(V12, {"users": {ALICE: 100, BOB: 50}}), state, V12).lower()


def test_v12_power_levels_listing_additional_creator_rejected():
    """In v12 a power levels event giving an additional creator a level is rejected."""
    state = room(V12, create_content={"additional_creators": [DAVE]})
    rejected(power(V12, {"users": {BOB: 50, DAVE: 0}}), state, V12)


def test_v12_first_power_levels_listing_creator_rejected():
    """In v12 even the first power levels event may not list a creator."""
    state = room(V12, levels=False)
    rejected(power(V12, {"users": {ALICE: 100}}), state, V12)


def test_v11_power_levels_may_list_creator():
    """Before v12 the creator is listed in power levels as usual."""
    state = room(V11)
    check_event_auth(power(V11, {"users": {ALICE: 100, BOB: 50}}), state, V11)


def test_v12_creator_can_set_any_level():
    """A v12 creator may set any in-range level and change any user."""
    state = room(V12, levels={"users": {BOB: 2**53 - 1}, "ban": 2**53 - 1})
    content = {"users": {BOB: 0, CAROL: 2**53 - 1}, "state_default": 1000, "ban": 0,
               "events": {"m.room.power_levels": 2**53 - 1}}
    check_event_auth(power(V12, content), state, V12)


def test_v12_creators_cannot_be_kicked_or_banned():
    """In v12 even the highest-levelled admin cannot kick or ban a creator, who can kick them."""
    state = room(V12, levels={"users": {BOB: 2**53 - 1}},
                 create_content={"additional_creators": [CAROL]})
    rejected(member(V12, ALICE, "ban", sender=BOB), state, V12)
    rejected(member(V12, CAROL, "leave", sender=BOB), state, V12)
    check_event_auth(member(V12, BOB, "ban", sender=CAROL), state, V12)


def test_v12_creator_bypasses_high_event_levels():
    """A v12 creator passes any required level."""
    state = room(V12, levels={"events_default": 2**53 - 1, "state_default": 2**53 - 1})
    check_event_auth(ev(V12, "m.room.message", ALICE, {}), state, V12)
    check_event_auth(ev(V12, "m.room.topic", ALICE, {}, state_key=""), state, V12)
    rejected(ev(V12, "m.room.message", BOB, {}), state, V12)


# --------------------------------------------------------------------------
# Redactions


def test_redacted_event_id_location():
    """From v11 redacts is read from content; in v10 from the top level."""
    v11 = ev(V11, "m.room.redaction", CAROL, {"redacts": "$a"}, redacts="$b")
    assert redacted_event_id(v11, V11) == "$a"
    v10 = ev(V10, "m.room.redaction", CAROL, {"redacts": "$a"}, redacts="$b")
    assert redacted_event_id(v10, V10) == "$b"
    assert redacted_event_id(ev(V12, "m.room.redaction", CAROL, {}), V12) is None


@pytest.mark.parametrize("version", ALL)
def test_redaction_event_is_authorised_like_any_event(version):
    """The auth rules ignore the redact level: any member may send a redaction unless events sets a level."""
    state = room(version, levels={"redact": 100})
    check_event_auth(ev(version, "m.room.redaction", CAROL, {"redacts": "$x"}), state, version)
    state = room(version, levels={"events": {"m.room.redaction": 50}})
    rejected(ev(version, "m.room.redaction", CAROL, {"redacts": "$x"}), state, version)


@pytest.mark.parametrize("version", ALL)
def test_redaction_of_own_event_allowed(version):
    """A user may redact their own event without the redact level."""
    state = room(version)
    original = ev(version, "m.room.message", CAROL, {"body": "oops"})
    redaction = ev(version, "m.room.redaction", CAROL, {"redacts": original["event_id"]})
    check_redaction(redaction, original, state, version)


@pytest.mark.parametrize("version", ALL)
def test_redaction_of_others_needs_redact_level(version):
    """Redacting another user's event needs the redact level."""
    state = room(version)
    original = ev(version, "m.room.message", BOB, {"body": "hi"})
    with pytest.raises(AuthError):
        check_redaction(ev(version, "m.room.redaction", CAROL, {}), original, state, version)
    check_redaction(ev(version, "m.room.redaction", ALICE, {}), ev(
        version, "m.room.message", CAROL, {}), state, version)
    check_redaction(ev(version, "m.room.redaction", BOB, {}), original, state, version)


@pytest.mark.parametrize("version", ALL)
def test_redact_level_is_configurable(version):
    """A raised redact level stops moderators below it from redacting others' events."""
    state = room(version, levels={"redact": 75})
    with pytest.raises(AuthError):
        check_redaction(ev(version, "m.room.redaction", BOB, {}),
                        ev(version, "m.room.message", CAROL, {}), state, version)


@pytest.mark.parametrize("version", ALL)
def test_same_server_rule_for_federation(version):
    """With same_sender_only=False, a redaction from the original sender's server is applied."""
    state = room(version)
    original = ev(version, "m.room.message", BOB, {"body": "hi"})
    redaction = ev(version, "m.room.redaction", CAROL, {})
    check_redaction(redaction, original, state, version, same_sender_only=False)
    with pytest.raises(AuthError):
        check_redaction(ev(version, "m.room.redaction", EVE, {}), original, state, version,
                        same_sender_only=False)


@pytest.mark.parametrize("version", ALL)
def test_create_event_cannot_be_redacted(version):
    """Nobody, not even the creator, may redact the create event."""
    state = room(version)
    with pytest.raises(AuthError):
        check_redaction(ev(version, "m.room.redaction", ALICE, {}), state[("m.room.create", "")],
                        state, version)


# --------------------------------------------------------------------------
# Miscellaneous


def test_room_version_as_string():
    """check_event_auth accepts the room version identifier as a string."""
    check_event_auth(ev(V11, "m.room.message", CAROL, {}), room(V11), "11")


@pytest.mark.parametrize("version", ALL)
def test_invalid_sender_rejected(version):
    """An event whose sender is not a user ID is rejected."""
    rejected(ev(version, "m.room.message", "carol", {}), room(version), version)
