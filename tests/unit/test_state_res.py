"""
Tests for L{ruma_tx.matrix.state_res}: state resolution v2 (room versions
10 and 11) and v2.1 (room version 12), on small hand-built event graphs.

Cast: ALICE created the room (100 before v12, a creator in v12), BOB is
given a moderator level where a test needs one, CAROL is a plain member,
DAVE and ERIN join later.
"""
import itertools

import pytest

from ruma_tx.matrix.auth_rules import auth_types_for_event, check_event_auth
from ruma_tx.matrix.room_versions import V10, V11, V12
from ruma_tx.matrix.state_res import resolve_state

ALICE = "@alice:test"
BOB = "@bob:test"
CAROL = "@carol:test"
DAVE = "@dave:other"
ERIN = "@erin:other"

ALL = [V10, V11, V12]

PL = ("m.room.power_levels", "")
JR = ("m.room.join_rules", "")
TOPIC = ("m.room.topic", "")
NAME = ("m.room.name", "")


def member_key(user):
    """The state key of a user's membership."""
    return ("m.room.member", user)


class Room:
    """
    A test room: the events sent so far (event ID -> PDU, without
    C{event_id}, as federation carries them) and a main fork.
    """

    def __init__(self, version):
        self.version = version
        self.events = {}
        self._clock = itertools.count(1000, 1000)
        self.room_id = "!create" if version is V12 else "!room:test"
        content = {"room_version": version.identifier}
        if version is V10:
            content["creator"] = ALICE
        create = {"type": "m.room.create", "state_key": "", "sender": ALICE, "content": content,
                  "prev_events": [], "auth_events": [], "origin_server_ts": 0}
        if version is not V12:
            create["room_id"] = self.room_id
        check_event_auth({**create, "event_id": "$create"}, {}, version)
        self.events["$create"] = create
        self.main = Fork(self, {("m.room.create", ""): "$create"}, "$create")

    def pdu(self, event_id):
        """The PDU with its C{event_id}, as the auth rules read it."""
        return {**self.events[event_id], "event_id": event_id}

    def tick(self):
        """A later origin_server_ts."""
        return next(self._clock)

    def levels(self, **users):
        """Power levels content: ALICE at 100 (not listed in v12) plus C{users}."""
        listed = {} if self.version is V12 else {ALICE: 100}
        return {"users": {**listed, **users}}

    def resolve(self, *states, **kwargs):
        """Resolve state sets of this room."""
        return resolve_state(self.version, list(states), self.events, **kwargs)


class Fork:
    """A line of events in a room, with its current state (key -> event ID)."""

    def __init__(self, room, state, last):
        self.room = room
        self.state = dict(state)
        self.last = last

    def branch(self):
        """A new fork continuing from this one's latest event."""
        return Fork(self.room, self.state, self.last)

    def send(self, name, event_type, sender, content, state_key=None, ts=None):
        """
        Send an event after this fork's latest one, citing the auth events
        of the fork's state; it must pass the auth rules there.

        @return: Its event ID, C{$name}.
        """
        room = self.room
        event_id = "$" + name
        assert event_id not in room.events
        auth_events = [
            self.state[key]
            for key in auth_types_for_event(event_type, state_key, sender, content, room.version)
            if key in self.state
        ]
        pdu = {"room_id": room.room_id, "type": event_type, "sender": sender, "content": content,
               "prev_events": [self.last], "auth_events": auth_events,
               "origin_server_ts": room.tick() if ts is None else ts}
        if state_key is not None:
            pdu["state_key"] = state_key
        check_event_auth({**pdu, "event_id": event_id},
                         {k: room.pdu(v) for k, v in self.state.items()}, room.version)
        room.events[event_id] = pdu
        if state_key is not None:
            self.state[(event_type, state_key)] = event_id
        self.last = event_id
        return event_id

    def join(self, user, name=None, **content):
        """The user joins (or updates their join, e.g. a new displayname)."""
        return self.send(name or f"{user[1:].split(':')[0]}-join", "m.room.member", user,
                         {"membership": "join", **content}, state_key=user)

    def membership(self, name, sender, target, membership):
        """A membership change by C{sender} for C{target}."""
        return self.send(name, "m.room.member", sender, {"membership": membership},
                         state_key=target)

    def power_levels(self, name, sender, content, ts=None):
        """An m.room.power_levels event."""
        return self.send(name, "m.room.power_levels", sender, content, state_key="", ts=ts)

    def join_rule(self, name, sender, rule, ts=None):
        """An m.room.join_rules event."""
        return self.send(name, "m.room.join_rules", sender, {"join_rule": rule},
                         state_key="", ts=ts)

    def topic(self, name, sender, topic, ts=None):
        """An m.room.topic event."""
        return self.send(name, "m.room.topic", sender, {"topic": topic}, state_key="", ts=ts)


def new_room(version, join_rule="public", members=(CAROL,), **levels):
    """
    A room where ALICE joined, set power levels (C{levels} as extra users)
    and the join rule, then C{members} joined (invited first when the room
    is not public).
    """
    room = Room(version)
    main = room.main
    main.join(ALICE)
    main.power_levels("pl", ALICE, room.levels(**levels))
    main.join_rule("join-rules", ALICE, join_rule)
    for user in members:
        if join_rule != "public":
            main.membership(f"{user[1:].split(':')[0]}-invite", ALICE, user, "invite")
        main.join(user)
    return room


def user_level(room, state, user):
    """A user's level in the resolved power levels (ALICE's v12 creator power aside)."""
    content = room.events[state[PL]]["content"]
    return content["users"].get(user, content.get("users_default", 0))


# --------------------------------------------------------------------------
# Merging without real conflicts


@pytest.mark.parametrize("version", ALL)
def test_identical_states_resolve_to_themselves(version):
    """Two copies of the same state resolve to that state."""
    room = new_room(version)
    state = room.main.state
    assert room.resolve(state, dict(state)) == state


@pytest.mark.parametrize("version", ALL)
def test_independent_changes_on_both_forks_are_all_kept(version):
    """Dave joining on one fork and Carol's topic on the other both appear in the merged state."""
    room = new_room(version, members=(CAROL,), **{CAROL: 50})
    a, b = room.main.branch(), room.main.branch()
    dave = a.join(DAVE)
    topic = b.topic("topic", CAROL, "Carol's topic")
    resolved = room.resolve(a.state, b.state)
    assert resolved[member_key(DAVE)] == dave
    assert resolved[TOPIC] == topic
    assert resolved[member_key(CAROL)] == room.main.state[member_key(CAROL)]


# --------------------------------------------------------------------------
# MSC1442's worked example 1 (mainline)


@pytest.mark.parametrize("version", ALL)
def test_msc1442_mainline_example(version):
    """
    MSC1442 example 1: Alice ops Bob (P1), then concurrently sets Topic 2
    and deops Bob (P2) while Bob changes the power levels (P3) and sets
    Topic 3. At Message 2 users see P2 and Topic 2; at Message 3, Alice's
    Topic 4 (based on P2) wins over Topic 2 by the mainline of P2.
    """
    room = new_room(version, members=(BOB,))
    main = room.main
    main.topic("topic-1", ALICE, "Topic 1")
    main.power_levels("p1", ALICE, room.levels(**{BOB: 50}))
    alice, bob = main.branch(), main.branch()
    topic_2 = alice.topic("topic-2", ALICE, "Topic 2")
    p2 = alice.power_levels("p2", ALICE, room.levels())
    bob.power_levels("p3", BOB, {**room.levels(**{BOB: 50}), "events": {"m.room.name": 50}})
    bob.topic("topic-3", BOB, "Topic 3")

    at_message_2 = room.resolve(alice.state, bob.state)
    assert at_message_2[PL] == p2
    assert at_message_2[TOPIC] == topic_2

    after = Fork(room, at_message_2, "$p2")
    topic_4 = after.topic("topic-4", ALICE, "Topic 4")
    at_message_3 = room.resolve(at_message_2, after.state)
    assert at_message_3[TOPIC] == topic_4
    assert at_message_3[PL] == p2


def msc1442_message_3_with_an_older_topic_4(version):
    """
    MSC1442 example 1 at Message 3, but Topic 4 carries an older
    timestamp than Topic 2.

    @return: The resolved topic event ID.
    """
    room = new_room(version, members=(BOB,))
    room.main.power_levels("p1", ALICE, room.levels(**{BOB: 50}))
    room.main.topic("topic-2", ALICE, "Topic 2")
    room.main.power_levels("p2", ALICE, room.levels())
    at_message_2 = room.main.state
    after = room.main.branch()
    after.topic("topic-4", ALICE, "Topic 4", ts=1)
    return room.resolve(at_message_2, after.state)[TOPIC]


@pytest.mark.parametrize("version", [V10, V11])
def test_v2_mainline_beats_timestamps(version):
    """
    v2: Topic 4, authorised by the later power levels P2, is ordered after
    Topic 2 (authorised by P1) and wins despite its older timestamp.
    """
    assert msc1442_message_3_with_an_older_topic_4(version) == "$topic-4"


def test_v2_1_without_conflicted_power_levels_orders_by_timestamp():
    """
    v2.1 starts from an empty state, so when no power event is conflicted
    the partially resolved state has no power levels and the mainline is
    empty (spec step 3; Synapse does the same): the topics are ordered by
    timestamp and Topic 2, the newer one, wins.
    """
    assert msc1442_message_3_with_an_older_topic_4(V12) == "$topic-2"


# --------------------------------------------------------------------------
# Conflicts users notice


@pytest.mark.parametrize("version", ALL)
def test_ban_racing_a_demotion_is_undone(version):
    """
    Bob (moderator) bans Carol while Alice concurrently demotes Bob: the
    demotion is applied first, so the ban fails and Carol stays in the room.
    """
    room = new_room(version, members=(BOB, CAROL), **{BOB: 50})
    alice, bob = room.main.branch(), room.main.branch()
    demotion = alice.power_levels("demote-bob", ALICE, room.levels())
    bob.membership("ban-carol", BOB, CAROL, "ban")
    resolved = room.resolve(alice.state, bob.state)
    assert resolved[PL] == demotion
    assert resolved[member_key(CAROL)] == room.main.state[member_key(CAROL)]
    assert room.events[resolved[member_key(CAROL)]]["content"]["membership"] == "join"


@pytest.mark.parametrize("version", ALL)
def test_ban_by_admin_racing_a_promotion_by_moderator_holds(version):
    """
    Alice bans Carol while Bob concurrently (and validly) promotes Carol to
    his own level: Alice's ban stands and Carol stays banned.
    """
    room = new_room(version, members=(BOB, CAROL), **{BOB: 50})
    alice, bob = room.main.branch(), room.main.branch()
    ban = alice.membership("ban-carol", ALICE, CAROL, "ban")
    promotion = bob.power_levels("promote-carol", BOB, room.levels(**{BOB: 50, CAROL: 50}))
    resolved = room.resolve(alice.state, bob.state)
    assert resolved[member_key(CAROL)] == ban
    assert resolved[PL] == promotion


@pytest.mark.parametrize("version", ALL)
def test_later_topic_wins_whatever_the_senders_power(version):
    """
    Alice (100) and Carol (0) set the topic concurrently on the same power
    levels: ordinary state is ordered by timestamp, so Carol's later topic wins.
    """
    room = new_room(version, members=(CAROL,))
    room.main.power_levels("topic-for-all", ALICE,
                           {**room.levels(), "events": {"m.room.topic": 0}})
    alice, carol = room.main.branch(), room.main.branch()
    alice.topic("alice-topic", ALICE, "Alice's topic", ts=5000)
    carol_topic = carol.topic("carol-topic", CAROL, "Carol's topic", ts=6000)
    assert room.resolve(alice.state, carol.state)[TOPIC] == carol_topic
    assert room.resolve(carol.state, alice.state)[TOPIC] == carol_topic


@pytest.mark.parametrize("version", ALL)
def test_equal_timestamps_fall_back_to_event_id(version):
    """Two topics with the same timestamp and mainline: the larger event ID is applied last and wins."""
    room = new_room(version, members=(BOB,), **{BOB: 50})
    alice, bob = room.main.branch(), room.main.branch()
    alice.topic("a-topic", ALICE, "A", ts=7000)
    b_topic = bob.topic("b-topic", BOB, "B", ts=7000)
    assert room.resolve(alice.state, bob.state)[TOPIC] == b_topic


@pytest.mark.parametrize("version", ALL)
def test_state_change_by_a_concurrently_demoted_user_is_dropped(version):
    """
    Bob renames the room while Alice demotes him: the room keeps its old
    name, and Bob is demoted.
    """
    room = new_room(version, members=(BOB,), **{BOB: 50})
    old_name = room.main.send("old-name", "m.room.name", ALICE, {"name": "Old"}, state_key="")
    alice, bob = room.main.branch(), room.main.branch()
    demotion = alice.power_levels("demote-bob", ALICE, room.levels())
    bob.send("bob-name", "m.room.name", BOB, {"name": "Bob's"}, state_key="")
    resolved = room.resolve(alice.state, bob.state)
    assert resolved[NAME] == old_name
    assert user_level(room, resolved, BOB) == 0
    assert resolved[PL] == demotion


@pytest.mark.parametrize("version", ALL)
def test_kick_beats_a_concurrent_join_update_in_an_invite_only_room(version):
    """
    Bob kicks Carol while she updates her display name: the kick is applied
    first, then her join fails (she is no longer invited), so she is out.
    """
    room = new_room(version, join_rule="invite", members=(BOB, CAROL), **{BOB: 50})
    bob, carol = room.main.branch(), room.main.branch()
    kick = bob.membership("kick-carol", BOB, CAROL, "leave")
    carol.join(CAROL, name="carol-rename", displayname="Caroline")
    resolved = room.resolve(bob.state, carol.state)
    assert resolved[member_key(CAROL)] == kick


@pytest.mark.parametrize("version", ALL)
def test_join_racing_a_switch_to_invite_only_is_refused(version):
    """
    Alice makes the room invite-only while Dave joins it as a public room:
    the join rules apply first, so Dave is not in the room.
    """
    room = new_room(version)
    alice, dave = room.main.branch(), room.main.branch()
    invite_only = alice.join_rule("invite-only", ALICE, "invite")
    dave.join(DAVE)
    resolved = room.resolve(alice.state, dave.state)
    assert resolved[JR] == invite_only
    assert member_key(DAVE) not in resolved


def test_more_powerful_sender_is_replayed_first_so_the_moderator_wins():
    """
    Alice (100) and Bob (50) change the join rule concurrently: power events
    are replayed the most powerful first, so Bob's change, still allowed
    after Alice's, is the one users see even though it is older.
    """
    room = new_room(V11, members=(BOB,), **{BOB: 50})
    alice, bob = room.main.branch(), room.main.branch()
    bob_rule = bob.join_rule("bob-rule", BOB, "invite", ts=10)
    alice.join_rule("alice-rule", ALICE, "knock", ts=20)
    assert room.resolve(alice.state, bob.state)[JR] == bob_rule


def test_equal_power_falls_back_to_timestamp_for_power_events():
    """Two admins change the power levels concurrently: the later one is replayed last and wins."""
    room = new_room(V11, members=(BOB, CAROL), **{BOB: 100})
    alice, bob = room.main.branch(), room.main.branch()
    alice.power_levels("alice-pl", ALICE, room.levels(**{BOB: 100, CAROL: 50}), ts=10)
    bob_pl = bob.power_levels("bob-pl", BOB, room.levels(**{BOB: 100, CAROL: 20}), ts=20)
    resolved = room.resolve(alice.state, bob.state)
    assert resolved[PL] == bob_pl
    assert user_level(room, resolved, CAROL) == 20


def test_v12_creator_outranks_a_concurrent_admin():
    """
    In v12 Alice (a creator, infinite power) and Bob (100) change the join
    rule concurrently: Alice's is replayed first, then Bob's, which wins.
    """
    room = new_room(V12, members=(BOB,), **{BOB: 100})
    alice, bob = room.main.branch(), room.main.branch()
    alice.join_rule("alice-rule", ALICE, "knock", ts=10)
    bob_rule = bob.join_rule("bob-rule", BOB, "invite", ts=20)
    later_alice = room.main.branch()
    later_alice.join_rule("alice-late", ALICE, "knock", ts=30)
    # Bob's rule comes after Alice's earlier one regardless of timestamps.
    assert room.resolve(alice.state, bob.state)[JR] == bob_rule
    # Against an even later rule by Alice, Bob's is still replayed last.
    assert room.resolve(later_alice.state, bob.state)[JR] == bob_rule


# --------------------------------------------------------------------------
# Auth difference, rejected auth events, precomputed auth chains


@pytest.mark.parametrize("version", ALL)
def test_auth_difference_replays_a_fork_only_ban(version):
    """
    On one fork Bob bans Dave and Alice then sets a topic, on the other
    Dave changes his name: the ban (only in the first fork's auth chain
    through Bob's level) is replayed and Dave stays banned.
    """
    room = new_room(version, members=(BOB, DAVE), **{BOB: 50})
    alice, dave = room.main.branch(), room.main.branch()
    ban = alice.membership("ban-dave", BOB, DAVE, "ban")
    alice.topic("topic", ALICE, "after the ban")
    dave.join(DAVE, name="dave-rename", displayname="D")
    resolved = room.resolve(alice.state, dave.state)
    assert resolved[member_key(DAVE)] == ban


def test_rejected_auth_event_is_not_used_for_a_missing_key():
    """
    v12 replays a conflicted topic from an empty state, so Bob's join comes
    from the topic's auth events; if that join was rejected, Bob's topic
    cannot be authorised and the other fork's topic is kept.
    """
    room = new_room(V12, members=(BOB,), **{BOB: 50})
    alice, bob = room.main.branch(), room.main.branch()
    alice_topic = alice.topic("alice-topic", ALICE, "Alice's", ts=10)
    bob_topic = bob.topic("bob-topic", BOB, "Bob's", ts=20)
    assert room.resolve(alice.state, bob.state)[TOPIC] == bob_topic
    rejected = {room.main.state[member_key(BOB)]}
    assert room.resolve(alice.state, bob.state, rejected=rejected)[TOPIC] == alice_topic


@pytest.mark.parametrize("version", ALL)
def test_precomputed_auth_chains_give_the_same_state(version):
    """Auth chains given by the caller resolve to the same state as computed ones."""
    room = new_room(version, members=(BOB, CAROL), **{BOB: 50})
    alice, bob = room.main.branch(), room.main.branch()
    alice.power_levels("demote-bob", ALICE, room.levels())
    bob.membership("ban-carol", BOB, CAROL, "ban")
    states = [alice.state, bob.state]

    def chain(state):
        seen, todo = set(), list(state.values())
        while todo:
            event_id = todo.pop()
            if event_id not in seen:
                seen.add(event_id)
                todo.extend(room.events[event_id]["auth_events"])
                if version is V12 and event_id != "$create":
                    todo.append("$create")
        return seen

    chains = [chain(s) for s in states]
    assert room.resolve(*states, auth_chains=chains) == room.resolve(*states)


# --------------------------------------------------------------------------
# v2 vs v2.1 (MSC4297's problems A and B)


def problem_a(version):
    """
    MSC4297 problem A: Alice makes the room invite-only then leaves; Bob and
    Carol then change their names concurrently, but Carol's state was
    partially synced with the older public join rule.

    @return: The room and the two state sets.
    """
    room = new_room(version, members=(BOB, CAROL))
    public = room.main.state[JR]
    room.main.join_rule("invite-only", ALICE, "invite")
    room.main.membership("alice-leave", ALICE, ALICE, "leave")
    bob, carol = room.main.branch(), room.main.branch()
    bob.join(BOB, name="bob-rename", displayname="Robert")
    carol.join(CAROL, name="carol-rename", displayname="Caroline")
    return room, bob.state, {**carol.state, JR: public}


def test_problem_a_v2_loses_the_join_rules():
    """
    v2 (room version 11) replays both join rules from the unconflicted
    state, where Alice has left: both fail and the room has no join rules.
    """
    room, bob, carol = problem_a(V11)
    resolved = room.resolve(bob, carol)
    assert JR not in resolved
    assert resolved[member_key(ALICE)] == "$alice-leave"
    assert resolved[member_key(BOB)] == "$bob-rename"
    assert resolved[member_key(CAROL)] == "$carol-rename"


def test_problem_a_v2_1_keeps_the_invite_only_rule():
    """
    v2.1 (room version 12) replays the join rules from an empty state, so
    Alice's membership comes from their auth events: the room stays
    invite-only, Alice is still gone, and both renames are kept.
    """
    room, bob, carol = problem_a(V12)
    resolved = room.resolve(bob, carol)
    assert resolved[JR] == "$invite-only"
    assert resolved[member_key(ALICE)] == "$alice-leave"
    assert resolved[member_key(BOB)] == "$bob-rename"
    assert resolved[member_key(CAROL)] == "$carol-rename"


def problem_b(version):
    """
    MSC4297 problem B: Alice promotes Bob (p2), Bob promotes Carol (p3);
    then Dave joins and renames himself, concurrently Erin joins, but
    Dave's state was partially synced with Alice's first power levels (pl).

    @return: The room and the two state sets.
    """
    room = new_room(version, members=(BOB, CAROL))
    first = room.main.state[PL]
    room.main.power_levels("p2", ALICE, room.levels(**{BOB: 50}))
    room.main.power_levels("p3", BOB, room.levels(**{BOB: 50, CAROL: 50}))
    dave, erin = room.main.branch(), room.main.branch()
    dave.join(DAVE)
    dave.join(DAVE, name="dave-rename", displayname="D")
    erin.join(ERIN)
    return room, {**dave.state, PL: first}, erin.state


def test_problem_b_v2_resets_the_power_levels():
    """
    v2 (room version 11) does not replay Bob's promotion (p2 is in both
    auth chains), so Bob's promotion of Carol fails: the power levels reset
    to Alice's first ones and Carol loses her level.
    """
    room, dave, erin = problem_b(V11)
    resolved = room.resolve(dave, erin)
    assert resolved[PL] == "$pl"
    assert user_level(room, resolved, CAROL) == 0
    assert resolved[member_key(DAVE)] == "$dave-rename"
    assert resolved[member_key(ERIN)] == "$erin-join"


def test_problem_b_v2_1_keeps_the_promotions():
    """
    v2.1 (room version 12) adds p2, on the auth path between the conflicted
    power levels, to the replay: Carol keeps her level 50.
    """
    room, dave, erin = problem_b(V12)
    resolved = room.resolve(dave, erin)
    assert resolved[PL] == "$p3"
    assert user_level(room, resolved, CAROL) == 50
    assert user_level(room, resolved, BOB) == 50
    assert resolved[member_key(DAVE)] == "$dave-rename"
    assert resolved[member_key(ERIN)] == "$erin-join"
