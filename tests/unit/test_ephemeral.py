"""
Tests for the pure rules and in-memory state of L{ruma_tx.services.ephemeral},
L{ruma_tx.services.presence} and L{ruma_tx.services.account_data}: typing
expiry on a L{Clock}, the sync sources' windows, presence idleness.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from ruma_tx.http.errors import status_code
from ruma_tx.matrix.account_data import (
    check_settable,
    check_tag,
    ignored_users_in,
    shown_to_ignorer,
)
from ruma_tx.matrix.ephemeral import (
    MAX_TYPING_TIMEOUT_MS,
    Receipt,
    check_receipt,
    receipt_event,
    typing_timeout_ms,
)
from ruma_tx.matrix.errors import MatrixError
from ruma_tx.matrix.filters import Filter
from ruma_tx.matrix.presence import (
    IDLE_AFTER_MS,
    Presence,
    after_sync,
    effective_state,
    presence_content,
)
from ruma_tx.matrix.stream_token import StreamToken
from ruma_tx.services.ephemeral import TypingTracker
from ruma_tx.services.notifier import Notifier
from ruma_tx.services.presence import PresenceTracker
from ruma_tx.services.streams import StreamIdGenerator, StreamWriter
from ruma_tx.services.sync import SyncContext

ROOM = "!room:hs"
OTHER_ROOM = "!other:hs"
ALICE = "@alice:hs"
BOB = "@bob:hs"


class FakeEvents:
    """The one EventStore query typing makes: the joined members of a room."""

    def __init__(self, members: dict[str, list[str]]):
        self.members = members

    async def get_members(self, room_id, memberships=("join", "invite")):
        return {user: "join" for user in self.members.get(room_id, [])}


def run(coroutine):
    """Run a coroutine whose awaits all complete at once; return its result."""
    d = defer.ensureDeferred(coroutine)
    results = []
    d.addBoth(results.append)
    assert results, "the coroutine waited on something"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def make_tracker(**kwargs):
    clock = Clock()
    notifier = Notifier(clock, 0)
    streams = StreamWriter(StreamIdGenerator(0), notifier)
    events = FakeEvents({ROOM: [ALICE, BOB], OTHER_ROOM: [ALICE, BOB]})
    tracker = TypingTracker(events=events, streams=streams, clock=clock, **kwargs)
    return tracker, clock, notifier, streams


def typing_sync(tracker, since, now, rooms=(ROOM,)) -> dict:
    response = {}
    request = SimpleNamespace(user_id=BOB, filter=Filter(), use_state_after=False)
    ctx = SyncContext(request, None if since is None else StreamToken(since), StreamToken(now),
                      list(rooms), response)
    run(tracker.add_to_sync(ctx))
    return {room_id: section["ephemeral"]["events"]
            for room_id, section in response.get("rooms", {}).get("join", {}).items()}


# -- typing ------------------------------------------------------------------

def test_typing_expires_after_its_timeout():
    """A typer stays listed until the timeout passes on the clock, then the expiry wakes the room."""
    tracker, clock, notifier, streams = make_tracker()
    run(tracker.set_typing(ALICE, ROOM, ALICE, True, 5000))
    assert tracker.typers(ROOM) == [ALICE]
    started_at = streams.current
    assert notifier.touched_since(BOB, 0)
    clock.advance(4.9)
    assert tracker.typers(ROOM) == [ALICE]
    clock.advance(0.2)
    assert tracker.typers(ROOM) == []
    assert streams.current == started_at + 1
    assert notifier.touched_since(BOB, started_at) and notifier.touched_since(ALICE, started_at)
    assert clock.getDelayedCalls() == []


def test_renewing_resets_the_timer_without_news():
    """Typing again while typing pushes the expiry back and takes no stream position."""
    tracker, clock, _, streams = make_tracker()
    run(tracker.set_typing(ALICE, ROOM, ALICE, True, 5000))
    position = streams.current
    clock.advance(4)
    run(tracker.set_typing(ALICE, ROOM, ALICE, True, 5000))
    assert streams.current == position
    clock.advance(4)
    assert tracker.typers(ROOM) == [ALICE]
    clock.advance(1.1)
    assert tracker.typers(ROOM) == []


def test_stopping_cancels_the_timer_and_stopping_again_is_no_news():
    """Stopping removes the typer at once and cancels its timer; stopping again changes nothing."""
    tracker, clock, _, streams = make_tracker()
    run(tracker.set_typing(ALICE, ROOM, ALICE, True, 5000))
    run(tracker.set_typing(ALICE, ROOM, ALICE, False))
    assert tracker.typers(ROOM) == [] and clock.getDelayedCalls() == []
    position = streams.current
    run(tracker.set_typing(ALICE, ROOM, ALICE, False))
    assert streams.current == position


def test_timeouts_are_capped():
    """Timeouts are capped at two minutes; a missing one is 30 s; negative ones are 0."""
    assert typing_timeout_ms(10**9) == MAX_TYPING_TIMEOUT_MS
    assert typing_timeout_ms(None) == 30_000
    assert typing_timeout_ms(-5) == 0
    tracker, clock, _, _ = make_tracker()
    run(tracker.set_typing(ALICE, ROOM, ALICE, True, 10**9))
    clock.advance(MAX_TYPING_TIMEOUT_MS / 1000 + 0.1)
    assert tracker.typers(ROOM) == []


def test_typing_refusals():
    """Another user's typing and typing outside the room are 403."""
    tracker, _, _, _ = make_tracker()
    with pytest.raises(MatrixError) as other:
        run(tracker.set_typing(ALICE, ROOM, BOB, True, 1000))
    assert status_code(other.value) == 403
    with pytest.raises(MatrixError) as outside:
        run(tracker.set_typing("@carol:hs", ROOM, "@carol:hs", True, 1000))
    assert status_code(outside.value) == 403


def test_sync_shows_rooms_changed_in_the_window():
    """Incremental syncs show m.typing for rooms changed in (since, now]; initial ones for rooms with typers."""
    tracker, _, _, streams = make_tracker()
    run(tracker.set_typing(ALICE, ROOM, ALICE, True, 5000))
    changed = streams.current
    expected = {ROOM: [{"type": "m.typing", "content": {"user_ids": [ALICE]}}]}
    assert typing_sync(tracker, changed - 1, changed) == expected
    assert typing_sync(tracker, changed, changed + 5) == {}
    assert typing_sync(tracker, changed - 1, changed - 1) == {}
    assert typing_sync(tracker, None, changed) == expected
    assert typing_sync(tracker, None, changed, rooms=(OTHER_ROOM,)) == {}


def test_forgotten_changes_resend_every_rooms_typing():
    """When old change positions were forgotten, a sync from before them gets every joined room's list."""
    tracker, _, _, streams = make_tracker(max_rooms=1)
    run(tracker.set_typing(ALICE, ROOM, ALICE, True, 5000))
    run(tracker.set_typing(ALICE, ROOM, ALICE, False))
    run(tracker.set_typing(BOB, OTHER_ROOM, BOB, True, 5000))
    now = streams.current
    assert typing_sync(tracker, 0, now, rooms=(ROOM, OTHER_ROOM)) == {
        ROOM: [{"type": "m.typing", "content": {"user_ids": []}}],
        OTHER_ROOM: [{"type": "m.typing", "content": {"user_ids": [BOB]}}],
    }
    assert typing_sync(tracker, now - 1, now, rooms=(ROOM, OTHER_ROOM)) == {
        OTHER_ROOM: [{"type": "m.typing", "content": {"user_ids": [BOB]}}],
    }


def test_leaving_stops_typing():
    """A typer's leave event removes them at once, at the leave's position."""
    tracker, clock, _, _ = make_tracker()
    run(tracker.set_typing(ALICE, ROOM, ALICE, True, 5000))
    leave = SimpleNamespace(room_id=ROOM, pdu={"type": "m.room.member", "state_key": ALICE,
                                                "content": {"membership": "leave"}})
    tracker.event_stored(leave, 100)
    assert tracker.typers(ROOM) == [] and clock.getDelayedCalls() == []
    assert typing_sync(tracker, 99, 100) == {ROOM: [{"type": "m.typing", "content": {"user_ids": []}}]}


# -- receipts ----------------------------------------------------------------

def test_receipts_are_batched_into_one_event():
    """A room's receipts make one m.receipt keyed by event, type and user; thread ids only when set."""
    event = receipt_event([
        Receipt(ROOM, ALICE, "m.read", None, "$a", 1),
        Receipt(ROOM, BOB, "m.read", "main", "$a", 2),
        Receipt(ROOM, BOB, "m.read.private", None, "$b", 3),
    ])
    assert event == {"type": "m.receipt", "content": {
        "$a": {"m.read": {ALICE: {"ts": 1}, BOB: {"ts": 2, "thread_id": "main"}}},
        "$b": {"m.read.private": {BOB: {"ts": 3}}},
    }}


@pytest.mark.parametrize("receipt_type, thread_id", [
    ("m.unknown", None), ("m.read", ""), ("m.read", 5), ("m.fully_read", "main"),
])
def test_bad_receipts_are_refused(receipt_type, thread_id):
    """Unknown types, empty or non-string thread ids, and threads on m.fully_read are 400 M_INVALID_PARAM."""
    with pytest.raises(MatrixError) as refused:
        check_receipt(receipt_type, thread_id)
    assert (status_code(refused.value), refused.value.errcode) == (400, "M_INVALID_PARAM")


def test_good_receipts_pass():
    """The spec's receipt types pass, threaded (main or a root) or not."""
    for receipt_type in ("m.read", "m.read.private", "m.fully_read"):
        check_receipt(receipt_type, None)
    check_receipt("m.read", "main")
    check_receipt("m.read.private", "$root")


# -- presence ----------------------------------------------------------------

def test_online_users_go_idle():
    """An online user inactive for longer than the idle time shows as unavailable; others keep their state."""
    presence = Presence("online", None, 1_000)
    assert effective_state(presence, 1_000 + IDLE_AFTER_MS) == "online"
    assert effective_state(presence, 1_001 + IDLE_AFTER_MS) == "unavailable"
    assert effective_state(Presence("offline", None, 1_000), 10**12) == "offline"


def test_presence_content():
    """Content has last_active_ago and status_msg when known, currently_active only when online."""
    assert presence_content(Presence("online", "hi", 1_000), 31_000) == {
        "presence": "online", "last_active_ago": 30_000, "status_msg": "hi", "currently_active": True}
    assert presence_content(Presence("online", None, 1_000), 120_000)["currently_active"] is False
    assert presence_content(Presence("unavailable", None, 1_000), 2_000) == {
        "presence": "unavailable", "last_active_ago": 1_000}
    assert presence_content(Presence("offline"), 5) == {"presence": "offline"}


def test_sync_set_presence_writes_only_changes():
    """A sync's set_presence changes presence only when what others see changes; offline changes nothing."""
    online = Presence("online", "msg", 1_000)
    assert after_sync(online, "online", 2_000) is None
    assert after_sync(online, "offline", 2_000) is None
    assert after_sync(Presence("offline"), "offline", 2_000) is None
    assert after_sync(Presence("offline", "msg", 0), "online", 2_000) == Presence("online", "msg", 2_000)
    assert after_sync(online, "unavailable", 2_000) == Presence("unavailable", "msg", 1_000)
    idle = 1_000 + IDLE_AFTER_MS + 1
    assert after_sync(online, "online", idle) == Presence("online", "msg", idle)
    assert after_sync(online, "unavailable", idle) is None


# -- account data ------------------------------------------------------------

def test_server_managed_types_cannot_be_set():
    """m.fully_read and m.push_rules are 405 M_BAD_JSON; other types pass."""
    for data_type in ("m.fully_read", "m.push_rules"):
        with pytest.raises(MatrixError) as refused:
            check_settable(data_type)
        assert (status_code(refused.value), refused.value.errcode) == (405, "M_BAD_JSON")
    check_settable("m.ignored_user_list")


def test_tag_checks():
    """Tag names are at most 255 bytes; an order must be a number."""
    check_tag("u." + "é" * 126, {"order": 0.5})
    with pytest.raises(MatrixError):
        check_tag("u." + "é" * 127, {})
    for order in ("1", True, [1]):
        with pytest.raises(MatrixError):
            check_tag("u.x", {"order": order})


def test_ignored_users():
    """The ignored users are the keys of ignored_users; malformed lists ignore nobody; state events still show."""
    assert ignored_users_in({"ignored_users": {BOB: {}}}) == {BOB}
    assert ignored_users_in({"ignored_users": [BOB]}) == frozenset()
    assert ignored_users_in(None) == frozenset()
    assert not shown_to_ignorer(BOB, None, frozenset({BOB}))
    assert shown_to_ignorer(BOB, "", frozenset({BOB}))
    assert shown_to_ignorer(ALICE, None, frozenset({BOB}))


def test_unknown_set_presence_is_a_programming_error():
    """set_presence values outside the spec's three are the caller's bug (the API refuses them first)."""
    with pytest.raises(ValueError):
        after_sync(Presence("offline"), "busy", 0)


class FakePresenceStore:
    """Presence rows in a dict; counts the writes."""

    def __init__(self):
        self.rows = {}
        self.writes = 0
        self.room_mates = {}   # user id -> the users sharing a room with them
        self.joined = {}       # room id -> its joined members

    async def get(self, user_id):
        return self.rows.get(user_id)

    async def put(self, stored):
        self.writes += 1
        self.rows[stored.user_id] = stored

    async def get_room_mates(self, user_id):
        return self.room_mates.get(user_id, [])

    async def get_joined_presence(self, room_id):
        rows = [self.rows[u] for u in self.joined.get(room_id, []) if u in self.rows]
        return [row for row in rows if row.state != "offline"]


def test_set_from_sync_writes_only_on_change():
    """Syncing online writes once when the user comes online, then only refreshes activity in memory."""
    clock = Clock()
    clock.advance(1_000)
    notifier = Notifier(clock, 0)
    store = FakePresenceStore()
    tracker = PresenceTracker(store=store, streams=StreamWriter(StreamIdGenerator(0), notifier), clock=clock,
                              server_name="hs")
    run(tracker.set_from_sync(ALICE, "online"))
    assert store.writes == 1 and store.rows[ALICE].state == "online"
    assert notifier.touched_since(ALICE, 0) and not notifier.touched_since(BOB, 0)
    clock.advance(200)
    run(tracker.set_from_sync(ALICE, "online"))
    run(tracker.set_from_sync(ALICE, "offline"))
    assert store.writes == 1
    own = run(tracker.get_status(ALICE, ALICE))
    assert own["presence"] == "online" and own["last_active_ago"] == 0
    clock.advance(IDLE_AFTER_MS / 1000 + 1)
    assert run(tracker.get_status(ALICE, ALICE))["presence"] == "unavailable"
    run(tracker.set_from_sync(ALICE, "online"))
    assert store.writes == 2
    assert run(tracker.get_status(ALICE, ALICE))["presence"] == "online"


def test_presence_change_wakes_room_mates_and_is_told_to_federation():
    """A change touches the user's room-mates' syncs; a local user's change is told to the hooks, a remote one's not."""
    clock = Clock()
    notifier = Notifier(clock, 0)
    store = FakePresenceStore()
    store.room_mates = {ALICE: [BOB], "@eve:remote": [ALICE]}
    told = []
    tracker = PresenceTracker(store=store, streams=StreamWriter(StreamIdGenerator(0), notifier), clock=clock,
                              server_name="hs", changed=[lambda *args: told.append(args)])
    run(tracker.set_status(ALICE, ALICE, "online", "here"))
    assert notifier.touched_since(BOB, 0)
    assert [(user, content["status_msg"], servers) for user, content, servers in told] == [(ALICE, "here", None)]
    run(tracker.set_status("@eve:remote", "@eve:remote", "unavailable", None))
    assert notifier.touched_since(ALICE, 1) and len(told) == 1


def test_a_join_tells_federation_what_the_new_member_does_not_know():
    """A remote user's join sends our members' presence to their server; a local user's join sends theirs."""
    clock = Clock()
    store = FakePresenceStore()
    told = []
    tracker = PresenceTracker(store=store, streams=StreamWriter(StreamIdGenerator(0), Notifier(clock, 0)),
                              clock=clock, server_name="hs", changed=[lambda *args: told.append(args)])
    run(tracker.set_status(ALICE, ALICE, "online", "hi"))
    run(tracker.set_status("@eve:remote", "@eve:remote", "online", None))
    store.joined["!r:hs"] = [ALICE, BOB, "@eve:remote"]
    told.clear()

    def join(user_id):
        return SimpleNamespace(room_id="!r:hs", pdu={"type": "m.room.member", "state_key": user_id,
                                                     "content": {"membership": "join"}})

    tracker.event_stored(join("@zed:other"), 5)
    assert [(user, servers) for user, _, servers in told] == [(ALICE, ["other"])]
    told.clear()
    tracker.event_stored(join(ALICE), 6)
    assert [(user, content["presence"], servers) for user, content, servers in told] == [(ALICE, "online", None)]
    told.clear()
    tracker.event_stored(join(BOB), 7)   # never set a presence: nothing to tell
    assert told == []
