"""
The one notifier: long-polling /sync requests wait here, per user, and are
woken when a change that concerns their user becomes visible.
"""
from __future__ import annotations

from typing import Awaitable, Callable, Generic, Iterable, TypeVar

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall

from ruma_tx.services.caches import ANY_KIND, LastPositionsByKind, LRUCache
from ruma_tx.services.clock import Clock


class Notifier:
    """
    Per-user waiters. A waiter whose user has already been touched after
    its C{since} position fires at once, so no wake-up is ever lost.

    @param max_users: bound on the per-user "last touched" positions kept;
        for a user forgotten from it, every wait is answered at once, which
        is always safe (the sync computes and finds nothing or something).
    """

    def __init__(self, clock: Clock, start_position: int, max_users: int = 100_000) -> None:
        self._clock = clock
        self.current = start_position
        # Per user, the last position of each kind of change (so /sync asks
        # only the sources that have something) and of any kind.
        self._last: LastPositionsByKind[str] = LastPositionsByKind(max_users, start_position)
        self._waiters: dict[str, set[defer.Deferred[int]]] = {}
        self._stopping = False
        #: Long-polls answered because something new concerned them (for metrics).
        self.wakeups = 0

    def notify(self, position: int, touched: dict[str, Iterable[str]]) -> None:
        """
        Positions up to C{position} are visible; wake the users the change
        at C{position} concerns.

        @param touched: C{kind -> user ids}: which kinds of change (e.g.
            C{"events"}, C{"receipts"}) concern which users.
        """
        self.current = max(self.current, position)
        woken = set()
        for kind, user_ids in touched.items():
            for user_id in user_ids:
                self._last.record(user_id, kind, position)
                woken.add(user_id)
        # Only once every kind is recorded: a woken sync resumes at once and
        # asks which kinds changed.
        for user_id in woken:
            for waiter in self._waiters.pop(user_id, ()):
                self.wakeups += 1
                waiter.callback(position)

    def wake(self, user_ids: Iterable[str]) -> None:
        """Wake waiters for changes outside the stream (typing, presence)."""
        for user_id in user_ids:
            for waiter in self._waiters.pop(user_id, ()):
                self.wakeups += 1
                waiter.callback(self.current)

    def touched_since(self, user_id: str, since: int, kind: str | None = None) -> bool:
        """
        Whether a change concerning C{user_id} (of C{kind}, or of any kind)
        became visible after C{since}. When unsure (before this process
        started, or forgotten from the bounded tables) the answer is yes.
        """
        return self._last.changed_since(user_id, since, kind or ANY_KIND)

    def wait(self, user_id: str, since: int, timeout_s: float) -> defer.Deferred[int]:
        """
        A Deferred that fires with the current position when a change
        concerning C{user_id} after C{since} is visible, or when
        C{timeout_s} passes. Cancelling it removes the waiter.
        """
        if self._stopping or self.touched_since(user_id, since):
            return defer.succeed(self.current)
        waiters = self._waiters.setdefault(user_id, set())

        def cancel(d: defer.Deferred[int]) -> None:
            waiters.discard(d)
            if not waiters and self._waiters.get(user_id) is waiters:
                del self._waiters[user_id]

        d: defer.Deferred[int] = defer.Deferred(canceller=cancel)
        waiters.add(d)
        timer = self._clock.callLater(timeout_s, self._time_out, user_id, d)
        d.addBoth(self._cancel_timer, timer)
        return d

    def _time_out(self, user_id: str, d: defer.Deferred[int]) -> None:
        waiters = self._waiters.get(user_id)
        if waiters is not None and d in waiters:
            waiters.discard(d)
            if not waiters:
                del self._waiters[user_id]
            d.callback(self.current)

    @staticmethod
    def _cancel_timer(result: object, timer: IDelayedCall) -> object:
        if timer.active():
            timer.cancel()
        return result

    @property
    def stopping(self) -> bool:
        """
        Whether L{shutdown} was called. A long-poll must then answer: its
        waits return at once, so looping on them would spin the reactor
        until the poll's deadline.
        """
        return self._stopping

    @property
    def waiting(self) -> int:
        """How many long-polls wait now (read by the metrics at each scrape)."""
        return sum(len(group) for group in self._waiters.values())

    def shutdown(self) -> None:
        """Answer every waiter now (the server is stopping)."""
        self._stopping = True
        waiters, self._waiters = self._waiters, {}
        for group in waiters.values():
            for waiter in group:
                waiter.callback(self.current)


V = TypeVar("V")


class KeptPerUser(Generic[V]):
    """
    Per user, a value read at a stream position and kept (bounded LRU)
    until the notifier says a change of C{kind} concerned the user since.
    A fresh read replaces the entry, never changes it, so a caller may tell
    a fresh value by identity.

    @param read: C{async (user_id) -> the value}.
    """

    def __init__(self, notifier: Notifier, kind: str, read: Callable[[str], Awaitable[V]], max_users: int) -> None:
        self._notifier = notifier
        self._kind = kind
        self._read = read
        self._kept: LRUCache[str, tuple[int, V]] = LRUCache(max_users)

    async def get(self, user_id: str, now: int) -> V:
        """The user's value; C{now} is the stream position the caller reads at."""
        kept = self._kept.get(user_id)
        if kept is not None and not self._notifier.touched_since(user_id, kept[0], self._kind):
            return kept[1]
        value = await self._read(user_id)
        self._kept[user_id] = (now, value)
        return value
