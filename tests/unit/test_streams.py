"""Stream positions, the notifier and stream tokens: pure, on a fake clock."""
import pytest
from twisted.internet import defer, task

from ruma_tx.matrix.stream_token import OUTSIDE_LINE, InvalidToken, StreamToken
from ruma_tx.services.notifier import Notifier
from ruma_tx.services.streams import StreamIdGenerator, StreamWriter


def test_positions_become_visible_only_when_all_lower_finished():
    """A position that commits before a lower one stays invisible until the lower one finishes."""
    ids = StreamIdGenerator(10)
    first, second = ids.allocate(), ids.allocate()
    assert (first, second) == (11, 12)
    assert ids.finish(second, "b") == []
    assert ids.current == 10
    assert ids.finish(first, "a") == [(11, "a"), (12, "b")]
    assert ids.current == 12


def test_failed_position_does_not_block_the_stream():
    """A write that failed (payload None) still lets later positions through."""
    ids = StreamIdGenerator(0)
    failed, ok = ids.allocate(), ids.allocate()
    ids.finish(ok, {"@a:x"})
    assert ids.finish(failed, None) == [(1, None), (2, {"@a:x"})]


def test_writer_notifies_in_order_after_out_of_order_commits():
    """
    The writer wakes users, and answers a write, only once its change and
    every earlier one are visible (a client then reads its own write).
    """
    clock = task.Clock()
    notifier = Notifier(clock, 0)
    writer = StreamWriter(StreamIdGenerator(0), notifier)
    slow = defer.Deferred()

    async def slow_persist(position):
        await slow
        return {"@slow:x"}

    async def fast_persist(position):
        return {"@fast:x"}

    first = defer.ensureDeferred(writer.write(slow_persist))
    second = defer.ensureDeferred(writer.write(fast_persist))
    assert not second.called and not first.called  # stored, not visible yet
    assert not notifier.touched_since("@fast:x", 0)  # position 2 waits for 1
    slow.callback(None)
    assert (first.result, second.result) == (1, 2)
    assert notifier.touched_since("@fast:x", 0) and notifier.touched_since("@slow:x", 0)
    assert notifier.current == 2


def test_wait_fires_at_once_when_already_touched():
    """A waiter whose user changed after its since token gets an answer immediately (no lost wake-ups)."""
    notifier = Notifier(task.Clock(), 0)
    notifier.notify(5, {"events": ["@a:x"]})
    d = notifier.wait("@a:x", 4, 30)
    assert d.called and d.result == 5


def test_wait_fires_on_notify_and_only_for_that_user():
    """A change wakes the users it concerns, not others."""
    clock = task.Clock()
    notifier = Notifier(clock, 0)
    mine, other = notifier.wait("@a:x", 0, 30), notifier.wait("@b:x", 0, 30)
    notifier.notify(1, {"events": ["@a:x"]})
    assert mine.called and not other.called
    clock.advance(30)
    assert other.called and other.result == 1
    assert clock.getDelayedCalls() == []


def test_wait_times_out_with_current_position():
    """With nothing new, the wait ends at its timeout with the current position."""
    clock = task.Clock()
    notifier = Notifier(clock, 7)
    d = notifier.wait("@a:x", 7, 2)
    clock.advance(1.9)
    assert not d.called
    clock.advance(0.2)
    assert d.result == 7


def test_cancelled_wait_leaves_nothing_behind():
    """A client that disconnects cancels its wait: no waiter and no timer remain."""
    clock = task.Clock()
    notifier = Notifier(clock, 0)
    d = notifier.wait("@a:x", 0, 30)
    d.addErrback(lambda f: f.trap(defer.CancelledError))
    d.cancel()
    assert clock.getDelayedCalls() == []
    notifier.notify(1, {"events": ["@a:x"]})  # must not fire the cancelled Deferred again


def test_shutdown_answers_every_waiter():
    """Shutting down answers every long-poll at once."""
    clock = task.Clock()
    notifier = Notifier(clock, 3)
    waits = [notifier.wait(f"@u{i}:x", 3, 30) for i in range(5)]
    notifier.shutdown()
    assert all(d.called and d.result == 3 for d in waits)
    assert notifier.wait("@late:x", 3, 30).called


def test_forgotten_users_are_answered_at_once():
    """Past the bound on remembered users, a forgotten user's wait answers at once (safe, never lost)."""
    notifier = Notifier(task.Clock(), 0, max_users=2)
    for i, user in enumerate(["@a:x", "@b:x", "@c:x"], start=1):
        notifier.notify(i, {"events": [user]})
    assert notifier.wait("@a:x", 0, 30).called      # forgotten: answer now
    assert not notifier.wait("@c:x", 3, 30).called   # remembered and up to date: wait


@pytest.mark.parametrize("token, parsed", [("s0_0", StreamToken(0, 0)), ("s42_7", StreamToken(42, 7))])
def test_stream_tokens_round_trip(token, parsed):
    """Tokens parse to their positions and print back unchanged."""
    assert StreamToken.parse(token) == parsed
    assert str(parsed) == token


@pytest.mark.parametrize("token, parsed", [("s-30_0", StreamToken(-30, 0)),
                                           (f"s{OUTSIDE_LINE}_0", StreamToken(OUTSIDE_LINE, 0))])
def test_pagination_tokens_may_point_into_backfilled_history(token, parsed):
    """Pagination tokens of backfilled history are negative; they round-trip, and are no sync tokens."""
    assert StreamToken.parse(token, backfilled=True) == parsed
    assert str(parsed) == token
    with pytest.raises(InvalidToken):
        StreamToken.parse(token)


@pytest.mark.parametrize("token", ["", "s", "s1", "t1_0", "s--1_0", "s1_0_0", "s1_x", "s" + "9" * 19 + "_0", " s1_0",
                                   f"s{OUTSIDE_LINE - 1}_0", "s-" + "9" * 20 + "_0"])
def test_malformed_stream_tokens_are_refused(token):
    """Anything but s<stream>_<typing>, or a position outside the line, is refused with InvalidToken."""
    with pytest.raises(InvalidToken):
        StreamToken.parse(token, backfilled=True)


def test_tokens_order_by_stream_position():
    """Tokens compare by position, so the older of two is the smaller."""
    assert StreamToken(3) < StreamToken(4) and min(StreamToken(9), StreamToken(2)) == StreamToken(2)


def test_changes_are_tracked_per_kind():
    """A receipt for a user does not count as an account-data change for them, but counts as a change."""
    notifier = Notifier(task.Clock(), 10)
    notifier.notify(11, {"receipts": ["@a:x"], "events": ["@b:x"]})
    assert notifier.touched_since("@a:x", 10, "receipts")
    assert not notifier.touched_since("@a:x", 10, "account_data")
    assert not notifier.touched_since("@a:x", 11, "receipts")
    assert notifier.touched_since("@a:x", 10)
    assert notifier.touched_since("@a:x", 5, "account_data")  # before this process started: unknown


def test_woken_waiter_sees_every_kind_of_the_change():
    """When a change of several kinds wakes a user, all its kinds are already recorded."""
    notifier = Notifier(task.Clock(), 0)
    seen = []
    notifier.wait("@a:x", 0, 30).addCallback(
        lambda _: seen.append(notifier.touched_since("@a:x", 0, "membership")))
    notifier.notify(1, {"events": ["@a:x"], "membership": ["@a:x"]})
    assert seen == [True]


def test_a_user_forgotten_and_seen_again_is_unsure_of_the_other_kinds():
    """A receipt forgotten past the bound is not lost when the user comes back with another kind of change."""
    notifier = Notifier(task.Clock(), 0, max_users=1)
    notifier.notify(1, {"receipts": ["@a:x"]})
    notifier.notify(2, {"events": ["@b:x"]})     # @a:x forgotten
    notifier.notify(3, {"events": ["@a:x"]})     # and seen again
    assert notifier.touched_since("@a:x", 0, "receipts")
    assert not notifier.touched_since("@a:x", 3, "events")
