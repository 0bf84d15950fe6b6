"""KeyedLocks and SingleFlight: per-key serialisation and shared in-flight results."""
from twisted.internet import defer

from ruma_tx.services.concurrency import KeyedLocks, SingleFlight


def test_single_flight_shares_one_run_among_concurrent_callers():
    """Identical calls made while the first is running get its result, and the work runs once."""
    flight, gate, runs = SingleFlight(), defer.Deferred(), []

    async def work():
        runs.append(1)
        return await gate

    calls = [defer.ensureDeferred(flight.run("k", work)) for _ in range(3)]
    gate.callback("done")
    assert [c.result for c in calls] == ["done"] * 3
    assert runs == [1]


def test_single_flight_shares_failures_and_forgets_them():
    """A failure reaches every waiting caller, and the next call runs afresh."""
    flight, gate = SingleFlight(), defer.Deferred()

    async def failing():
        await gate
        raise ValueError("boom")

    errors = []
    for _ in range(2):
        defer.ensureDeferred(flight.run("k", failing)).addErrback(lambda f: errors.append(f.type))
    gate.callback(None)
    assert errors == [ValueError, ValueError]

    async def fine():
        return 1

    assert defer.ensureDeferred(flight.run("k", fine)).result == 1


def test_a_cancelled_caller_leaves_the_shared_work_running():
    """One caller hanging up neither stops the work nor fails the others, who get its result."""
    flight, gate, runs = SingleFlight(), defer.Deferred(), []

    async def work():
        runs.append(1)
        return await gate

    first = flight.run("k", work)
    second = flight.run("k", work)
    first.cancel()
    first.addErrback(lambda f: f.trap(defer.CancelledError))
    assert not gate.called and not second.called
    third = flight.run("k", work)  # a retry joins the same run
    gate.callback("done")
    assert (second.result, third.result, runs) == ("done", "done", [1])


def test_keyed_locks_serialise_per_key_only():
    """Work on one key waits for the previous; another key does not wait."""
    locks, gate, order = KeyedLocks(), defer.Deferred(), []

    async def slow(name):
        order.append(f"{name} start")
        await gate
        order.append(f"{name} end")

    async def quick(name):
        order.append(name)

    first = defer.ensureDeferred(locks.run("room", slow, "a"))
    second = defer.ensureDeferred(locks.run("room", quick, "b"))
    other = defer.ensureDeferred(locks.run("other", quick, "c"))
    assert order == ["a start", "c"] and other.called and not second.called
    gate.callback(None)
    assert order == ["a start", "c", "a end", "b"] and first.called and second.called
