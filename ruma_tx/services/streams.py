"""
Stream positions: every persisted event, receipt and account-data change
gets one, and a position is only handed to clients once every lower one
has committed or failed.

Positions are allocated in memory, so this process must be the only one
writing to the streams (the intended multi-process design keeps one writer
per stream and has the others hear positions by NOTIFY).
"""
from __future__ import annotations

import heapq
from typing import Awaitable, Callable, Generic, Iterable, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

from ruma_tx.cancellation import shielded
from ruma_tx.logs import logger
from ruma_tx.matrix.errors import MatrixError
from ruma_tx.services.notifier import Notifier

log = logger(__name__)

#: What a finished position carries (the writer's: who to wake).
Payload = TypeVar("Payload")


class StreamIdGenerator(Generic[Payload]):
    """
    Hands out increasing positions and tracks which have finished.

    @ivar current: the highest position such that it and every lower one
        have finished: what clients may be told.
    """

    def __init__(self, start: int) -> None:
        self.current = start
        self._next = start + 1
        self._in_flight: list[int] = []  # a heap
        self._finished: dict[int, Payload | None] = {}

    def allocate(self) -> int:
        position = self._next
        self._next += 1
        heapq.heappush(self._in_flight, position)
        return position

    def finish(self, position: int, payload: Payload | None = None) -> list[tuple[int, Payload | None]]:
        """
        Mark C{position} finished (committed, or failed with C{payload}
        C{None}); return the C{(position, payload)} pairs that have just
        become visible, in order.
        """
        self._finished[position] = payload
        visible = []
        while self._in_flight and self._in_flight[0] in self._finished:
            done = heapq.heappop(self._in_flight)
            self.current = done
            visible.append((done, self._finished.pop(done)))
        return visible


class StreamWriter:
    """
    Runs writes at fresh stream positions and tells the notifier which
    users each one concerns once it is visible.
    """

    def __init__(self, ids: StreamIdGenerator[dict[str, Iterable[str]]], notifier: Notifier) -> None:
        self._ids = ids
        self._notifier = notifier
        # Writes answered once their position is visible: position -> waiters.
        self._until_visible: dict[int, list[defer.Deferred[None]]] = {}

    @property
    def current(self) -> int:
        return self._ids.current

    def until_visible(self, position: int) -> defer.Deferred[None]:
        """Fires once C{position} and every lower one have finished (at once if they have)."""
        if self._ids.current >= position:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._until_visible.setdefault(position, []).append(waiter)
        return waiter

    def write(self, persist: Callable[[int], Awaitable[Touched]], kind: str = "events") -> defer.Deferred[int]:
        """
        Call C{await persist(position)}, which stores its change at
        C{position} and returns the ids of the users who should hear of it
        (or a dict C{kind -> user ids} when it is several kinds of change).

        Once a position is claimed it is always finished: filled when
        C{persist} succeeds (the users are woken), released when it fails,
        so readers never wait on it. The write runs to its end even when the
        caller is cancelled (its client hung up): a stored change must reach
        the notifier. It returns once its position is visible (every lower
        one finished too), so a client reads its own writes: a sync made
        after the answer includes the change.

        @param kind: what kind of change this is (C{"events"},
            C{"receipts"}, C{"account_data"}...): /sync asks a source for
            its part only when a change of its kind concerns the user.
        @return: the position.
        """
        async def one(positions: list[int]) -> Touched:
            return await persist(positions[0])

        return self.write_many(1, one, kind)

    def write_many(self, count: int, persist: Callable[[list[int]], Awaitable[Touched]],
                   kind: str = "events") -> defer.Deferred[int]:
        """
        Like L{write}, for C{count} changes stored together (one transaction)
        at consecutive positions: they become visible at once, and the users
        C{persist} returns are woken once, at the last position.

        @return: the last position.
        """
        return shielded(defer.ensureDeferred(self._write(count, persist, kind)), _log_abandoned)

    async def _write(self, count: int, persist: Callable[[list[int]], Awaitable[Touched]],
                     kind: str) -> int:
        positions = [self._ids.allocate() for _ in range(count)]
        touched: dict[str, Iterable[str]] | None = None
        try:
            users = await persist(positions)
            if users:
                touched = users if isinstance(users, dict) else {kind: users}
        finally:
            for position in positions:
                payload = touched if position == positions[-1] else None
                for visible, woken in self._ids.finish(position, payload):
                    if woken:
                        self._notifier.notify(visible, woken)
                    for ready in self._until_visible.pop(visible, ()):
                        ready.callback(None)
        last = positions[-1]
        await self.until_visible(last)
        return last


#: The users a change concerns: their ids, or C{kind -> user ids}.
Touched = Iterable[str] | dict[str, Iterable[str]] | None


def _log_abandoned(result: object) -> None:
    """A write whose caller went away failed: nobody else will say so."""
    if isinstance(result, Failure) and not result.check(MatrixError):
        log.failure("a write failed after its client left", result)
