"""
Small tools for concurrent requests in one process: a lock per key,
sharing one result among identical operations in flight, and loading
what many requests ask at once with one query.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable, Generic, Hashable, Mapping, TypeVar, cast

from twisted.internet import defer
from twisted.python.failure import Failure

from ruma_tx.services.clock import Clock

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class KeyedLocks:
    """
    One lock per key (a room, a device...), so work on one key runs one at
    a time; the lock of an idle key is dropped, so the map stays small.
    """

    def __init__(self) -> None:
        self._locks: dict[Hashable, defer.DeferredLock] = {}

    async def run(self, key: Hashable, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = defer.DeferredLock()
        try:
            # run() awaits a coroutine as well as a Deferred; its stub names them apart.
            return await lock.run(cast(Callable[..., defer.Deferred[T]], fn), *args)
        finally:
            if not lock.locked and not lock.waiting and self._locks.get(key) is lock:
                del self._locks[key]


class SingleFlight:
    """
    Identical operations in flight at once run once: later callers with
    the same key wait for the first one's result (or failure). Nothing is
    kept once it finishes, so there is nothing to invalidate.

    The shared operation belongs to no caller: a caller that is cancelled
    (its client hung up) stops waiting, and the operation runs on for the
    others, and for whoever asks again meanwhile.
    """

    def __init__(self) -> None:
        self._in_flight: dict[Hashable, list[defer.Deferred[Any]]] = {}

    def run(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> defer.Deferred[T]:
        waiter: defer.Deferred[T] = defer.Deferred()
        sharing = self._in_flight.get(key)
        if sharing is not None:
            sharing.append(waiter)
            return waiter
        sharing = self._in_flight[key] = [waiter]

        def finished(result: object) -> None:
            del self._in_flight[key]
            for each in sharing:
                if not each.called:  # a cancelled waiter has fired already
                    each.callback(result)  # a Failure errbacks it
            return None

        defer.ensureDeferred(_awaited(fn)).addBoth(finished)
        return waiter


class Batcher(Generic[K, V]):
    """
    What is asked within one turn of the reactor is loaded at once: a
    message wakes the syncs of every member of its room together, and each
    asks for its own user's counts; one query answers them all.

    As with L{SingleFlight}, the load belongs to no caller: a cancelled
    caller stops waiting, and the load runs on for the others.

    @param load_many: loads the values of many keys, C{key -> value} for
        every key asked.
    """

    def __init__(self, clock: Clock, load_many: Callable[[list[K]], Awaitable[Mapping[K, V]]]) -> None:
        self._clock = clock
        self._load_many = load_many
        self._pending: dict[K, list[defer.Deferred[V]]] = {}

    def load(self, key: K) -> defer.Deferred[V]:
        waiter: defer.Deferred[V] = defer.Deferred()
        if not self._pending:
            self._clock.callLater(0, self._flush)
        self._pending.setdefault(key, []).append(waiter)
        return waiter

    def _flush(self) -> None:
        batch, self._pending = self._pending, {}

        def finished(result: Mapping[K, V] | Failure) -> None:
            for key, waiters in batch.items():
                for waiter in waiters:
                    if waiter.called:  # cancelled: it has fired already
                        continue
                    if isinstance(result, Failure):
                        waiter.errback(result)
                    else:
                        waiter.callback(result[key])

        defer.ensureDeferred(_awaited(lambda: self._load_many(list(batch)))).addBoth(finished)


async def _awaited(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


async def concurrently(*awaitables: Awaitable[Any]) -> list[Any]:
    """
    Await independent reads at once (each takes its own pooled database
    connection), so a response waits for the slowest, not for their sum.
    The first failure is raised; cancelling cancels them all.
    """
    try:
        return await defer.gatherResults(
            [defer.ensureDeferred(_await(a)) for a in awaitables], consumeErrors=True)
    except defer.FirstError as e:
        e.subFailure.raiseException()
        raise  # not reached: raiseException raises


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable
