"""
Two small tools for concurrent requests in one process: a lock per key,
and sharing one result among identical operations in flight.
"""
from __future__ import annotations

from typing import Awaitable, Callable, Hashable

from twisted.internet import defer


class KeyedLocks:
    """
    One lock per key (a room, a device...), so work on one key runs one at
    a time; the lock of an idle key is dropped, so the map stays small.
    """

    def __init__(self):
        self._locks: dict[Hashable, defer.DeferredLock] = {}

    async def run(self, key: Hashable, fn: Callable[..., Awaitable], *args):
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = defer.DeferredLock()
        try:
            return await lock.run(fn, *args)
        finally:
            if not lock.locked and not lock.waiting and self._locks.get(key) is lock:
                del self._locks[key]


class SingleFlight:
    """
    Identical operations in flight at once run once: later callers with
    the same key wait for the first one's result (or failure). Nothing is
    kept once it finishes, so there is nothing to invalidate.
    """

    def __init__(self):
        self._in_flight: dict[Hashable, list[defer.Deferred]] = {}

    async def run(self, key: Hashable, fn: Callable[[], Awaitable]):
        sharing = self._in_flight.get(key)
        if sharing is not None:
            waiter = defer.Deferred()
            sharing.append(waiter)
            return await waiter
        sharing = self._in_flight[key] = []
        try:
            result = await fn()
        except Exception as e:
            for waiter in sharing:
                waiter.errback(e)
            raise
        else:
            for waiter in sharing:
                waiter.callback(result)
            return result
        finally:
            del self._in_flight[key]
