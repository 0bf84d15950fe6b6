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
from typing import Awaitable, Callable, Iterable

from ruma_tx.services.notifier import Notifier


class StreamIdGenerator:
    """
    Hands out increasing positions and tracks which have finished.

    @ivar current: the highest position such that it and every lower one
        have finished: what clients may be told.
    """

    def __init__(self, start: int):
        self.current = start
        self._next = start + 1
        self._in_flight: list[int] = []  # a heap
        self._finished: dict[int, object] = {}

    def allocate(self) -> int:
        position = self._next
        self._next += 1
        heapq.heappush(self._in_flight, position)
        return position

    def finish(self, position: int, payload: object = None) -> list[tuple[int, object]]:
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

    def __init__(self, ids: StreamIdGenerator, notifier: Notifier) -> None:
        self._ids = ids
        self._notifier = notifier

    @property
    def current(self) -> int:
        return self._ids.current

    async def write(self, persist: Callable[[int], Awaitable[Iterable[str] | dict]],
                    kind: str = "events") -> int:
        """
        Call C{await persist(position)}, which stores its change at
        C{position} and returns the ids of the users who should hear of it
        (or a dict C{kind -> user ids} when it is several kinds of change).

        @param kind: what kind of change this is (C{"events"},
            C{"receipts"}, C{"account_data"}...): /sync asks a source for
            its part only when a change of its kind concerns the user.
        """
        position = self._ids.allocate()
        touched = None
        try:
            users = await persist(position)
            if users:
                touched = users if isinstance(users, dict) else {kind: users}
        finally:
            for visible, payload in self._ids.finish(position, touched):
                if payload:
                    self._notifier.notify(visible, payload)
        return position
