"""
Tests for L{ruma_tx.matrix.state_res_v1}, state resolution of room version
1, reached through L{ruma_tx.matrix.state_res.resolve_state}, on small
scenarios after rooms/v1.md "State resolution".

Cast: ALICE created the room (100), BOB is a moderator (50), CAROL a plain
member.
"""
import hashlib

from ruma_tx.matrix.room_versions import V1, V2
from ruma_tx.matrix.state_res import resolve_state

ALICE = "@alice:test"
BOB = "@bob:test"
CAROL = "@carol:test"
ROOM = "!r:test"
CREATE = ("m.room.create", "")
PL = ("m.room.power_levels", "")
JR = ("m.room.join_rules", "")
TOPIC = ("m.room.topic", "")


class Room:
    """The events of a v1 room (event ID -> PDU with its event_id) and its common state."""

    def __init__(self):
        self.events = {}
        self.state = {}
        self.add("$create:test", "m.room.create", ALICE, {"creator": ALICE}, "", depth=1)
        self.add("$alice:test", "m.room.member", ALICE, {"membership": "join"}, ALICE, depth=2,
                 prev="$create:test")
        self.add("$pl:test", "m.room.power_levels", ALICE, {"users": {ALICE: 100, BOB: 50}}, "", depth=3)
        self.add("$jr:test", "m.room.join_rules", ALICE, {"join_rule": "public"}, "", depth=4)
        self.add("$bob:test", "m.room.member", BOB, {"membership": "join"}, BOB, depth=5)
        self.add("$carol:test", "m.room.member", CAROL, {"membership": "join"}, CAROL, depth=6)

    def add(self, event_id, event_type, sender, content, state_key, *, depth, prev=None):
        """Add a state event citing the current state as its auth events; return its ID."""
        auth = [[eid, {}] for key, eid in self.state.items() if key in (CREATE, PL, ("m.room.member", sender))]
        self.events[event_id] = {
            "event_id": event_id, "room_id": ROOM, "type": event_type, "sender": sender,
            "content": content, "state_key": state_key, "depth": depth, "origin_server_ts": depth,
            "prev_events": [[prev, {}]] if prev else [], "auth_events": auth,
        }
        self.state.setdefault((event_type, state_key), event_id)   # the common state keeps the first
        return event_id

    def fork(self):
        """A copy of the common state."""
        return dict(self.state)

    def resolve(self, *states, version=V1):
        """Resolve state sets of this room."""
        return resolve_state(version, list(states), self.events)


def test_unconflicted_keys_are_kept_even_when_a_state_lacks_them():
    """A key only one state holds is no conflict in v1: it is kept without an auth check."""
    room = Room()
    topic = room.add("$topic:test", "m.room.topic", CAROL, {"topic": "by carol"}, "", depth=7)
    with_topic = room.fork()
    without = {k: v for k, v in with_topic.items() if k != TOPIC}
    assert room.resolve(with_topic, without)[TOPIC] == topic
    assert TOPIC not in room.resolve(with_topic, without, version=V2)


def test_other_conflicts_pick_the_deepest_allowed_event():
    """Of two allowed topics the deeper one wins; a deeper one its sender may not send loses."""
    room = Room()
    shallow = room.add("$t1:test", "m.room.topic", BOB, {"topic": "one"}, "", depth=7)
    deep = room.add("$t2:test", "m.room.topic", ALICE, {"topic": "two"}, "", depth=9)
    forbidden = room.add("$t3:test", "m.room.topic", CAROL, {"topic": "three"}, "", depth=11)
    assert room.resolve(room.fork() | {TOPIC: shallow}, room.fork() | {TOPIC: deep})[TOPIC] == deep
    assert room.resolve(room.fork() | {TOPIC: shallow}, room.fork() | {TOPIC: forbidden})[TOPIC] == shallow


def test_equal_depths_are_ordered_by_sha1_of_the_event_id():
    """At equal depth the topic with the lowest sha1(event_id) wins."""
    room = Room()
    ids = [room.add(f"$same{n}:test", "m.room.topic", ALICE, {"topic": str(n)}, "", depth=7)
           for n in range(4)]
    expected = min(ids, key=lambda eid: hashlib.sha1(eid.encode()).hexdigest())
    assert room.resolve(*(room.fork() | {TOPIC: eid} for eid in ids))[TOPIC] == expected


def test_power_levels_apply_in_depth_order_while_allowed():
    """The shallower levels come first; a deeper one that its sender could not send is dropped."""
    room = Room()
    demote_bob = room.add("$pl2:test", "m.room.power_levels", ALICE,
                          {"users": {ALICE: 100, BOB: 0}}, "", depth=7)
    bob_raises_carol = room.add("$pl3:test", "m.room.power_levels", BOB,
                                {"users": {ALICE: 100, BOB: 50, CAROL: 50}}, "", depth=8)
    assert room.resolve(room.fork() | {PL: demote_bob}, room.fork() | {PL: bob_raises_carol})[PL] == demote_bob
    alice_again = room.add("$pl4:test", "m.room.power_levels", ALICE,
                           {"users": {ALICE: 100, BOB: 50, CAROL: 10}}, "", depth=9)
    assert room.resolve(room.fork() | {PL: demote_bob}, room.fork() | {PL: alice_again})[PL] == alice_again


def test_a_ban_is_not_undone_by_a_later_join():
    """CAROL's rejoin after BOB banned her is not allowed on top of the ban, so the ban stays."""
    room = Room()
    member = ("m.room.member", CAROL)
    ban = room.add("$ban:test", "m.room.member", BOB, {"membership": "ban"}, CAROL, depth=7)
    rejoin = room.add("$rejoin:test", "m.room.member", CAROL, {"membership": "join"}, CAROL, depth=8)
    assert room.resolve(room.fork() | {member: ban}, room.fork() | {member: rejoin})[member] == ban


def test_memberships_are_checked_against_the_resolved_power_levels():
    """BOB's kick of CAROL loses once the resolved levels have demoted BOB (levels resolve first)."""
    room = Room()
    member = ("m.room.member", CAROL)
    demote_bob = room.add("$pl2:test", "m.room.power_levels", ALICE,
                          {"users": {ALICE: 100, BOB: 0}}, "", depth=7)
    kick = room.add("$kick:test", "m.room.member", BOB, {"membership": "leave"}, CAROL, depth=8)
    leave = room.add("$leave:test", "m.room.member", CAROL, {"membership": "leave"}, CAROL, depth=7)
    resolved = room.resolve(room.fork() | {PL: demote_bob, member: leave}, room.fork() | {member: kick})
    assert resolved[PL] == demote_bob
    assert resolved[member] == leave
    kept = room.resolve(room.fork() | {member: leave}, room.fork() | {member: kick})
    assert kept[member] == kick


def test_join_rules_resolve_before_joins():
    """A join to a room whose resolved join rule is invite is not allowed over a leave."""
    room = Room()
    dave = ("m.room.member", "@dave:test")
    invite_only = room.add("$jr2:test", "m.room.join_rules", ALICE, {"join_rule": "invite"}, "", depth=7)
    left = room.add("$dleave:test", "m.room.member", "@dave:test", {"membership": "leave"}, "@dave:test",
                    depth=6)
    joined = room.add("$djoin:test", "m.room.member", "@dave:test", {"membership": "join"}, "@dave:test",
                      depth=8)
    resolved = room.resolve(room.fork() | {JR: invite_only, dave: left}, room.fork() | {dave: joined})
    assert resolved[JR] == invite_only
    assert resolved[dave] == left
