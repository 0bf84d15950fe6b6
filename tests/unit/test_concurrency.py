"""KeyedLocks, SingleFlight and Batcher: per-key serialisation, shared in-flight results, batched loads."""
from twisted.internet import defer, task

from ruma_tx.services.concurrency import Batcher, KeyedLocks, SingleFlight


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


def test_what_is_asked_in_one_turn_is_loaded_at_once():
    """Loads asked before the reactor turns go to the store as one batch; each caller gets its own value."""
    clock, batches = task.Clock(), []

    async def load_many(keys):
        batches.append(sorted(keys))
        return {key: key * 10 for key in keys}

    batcher = Batcher(clock, load_many)
    first, second, again = batcher.load(1), batcher.load(2), batcher.load(1)
    assert batches == []
    clock.advance(0)
    assert batches == [[1, 2]]
    assert (first.result, second.result, again.result) == (10, 20, 10)
    later = batcher.load(3)
    clock.advance(0)
    assert batches == [[1, 2], [3]] and later.result == 30


def test_a_cancelled_caller_leaves_the_batch_to_the_others():
    """One caller hanging up stops its own wait only; a failed load fails every caller of its batch."""
    clock, loads = task.Clock(), []
    batcher = Batcher(clock, lambda keys: loads.append(defer.Deferred()) or loads[-1])
    gone, staying = batcher.load("a"), batcher.load("a")
    gone.cancel()
    gone.addErrback(lambda f: f.trap(defer.CancelledError))
    clock.advance(0)
    loads[0].callback({"a": 1})
    assert staying.result == 1
    failing = [batcher.load("b"), batcher.load("c")]
    clock.advance(0)
    loads[1].errback(RuntimeError("database gone"))
    for each in failing:
        assert isinstance(each.result.value, RuntimeError)
        each.addErrback(lambda f: None)
