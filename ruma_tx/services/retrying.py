"""
The loop a background worker runs (a pusher's deliveries, a destination's
transactions): poked work starts at once, or once more after the run
under way, or when the retry timer after a failure fires; never twice at
the same time.
"""
from __future__ import annotations

from typing import Any, Callable, Coroutine

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure

from ruma_tx.services.clock import Clock


class RetryingLoop:
    """
    @param run: one run; it reads and clears L{again} (poked while it ran)
        to go round once more.
    @param failed: told of a run that raised, unless the loop was stopped;
        it usually calls L{retry_in}.

    @ivar running: the run under way, if any.
    @ivar again: poked while running.
    @ivar retry: the timer of the next run after a failure.
    """

    def __init__(self, clock: Clock, run: Callable[[], Coroutine[Any, Any, None]], failed: Callable[[Failure], None]) -> None:
        self._clock = clock
        self._run = run
        self._failed = failed
        self.running: defer.Deferred[None] | None = None
        self.again = False
        self.retry: IDelayedCall | None = None
        self.stopped = False

    def poke(self) -> None:
        """Run now, unless running (then again once done), waiting to retry, or stopped."""
        if self.stopped:
            return
        if self.running is not None:
            self.again = True
            return
        if self.backing_off():
            return  # the retry timer looks at everything then
        running: defer.Deferred[None] = defer.ensureDeferred(self._run())
        if not running.called:
            self.running = running
        running.addBoth(self._finished)

    def _finished(self, result: object) -> None:
        self.running = None
        if isinstance(result, Failure):
            if not self.stopped:
                self._failed(result)
        elif self.again:
            # Poked after the run last looked (it ended, e.g. to back off,
            # and the poke cancelled that wait): run again.
            self.poke()

    def backing_off(self) -> bool:
        return self.retry is not None and self.retry.active()

    def retry_in(self, delay_s: float) -> None:
        """Run again in C{delay_s} seconds (and not before, whatever pokes it)."""
        self.cancel_retry()
        self.retry = self._clock.callLater(delay_s, self._retry_now)

    def _retry_now(self) -> None:
        self.retry = None
        self.poke()

    def cancel_retry(self) -> None:
        if self.backing_off():
            assert self.retry is not None
            self.retry.cancel()
        self.retry = None

    def stop(self, *, cancel_running: bool = True) -> None:
        """
        No more runs: the retry timer is cancelled, and the run under way
        too unless C{cancel_running} is false (a run stopping its own loop
        finishes).
        """
        self.stopped = True
        self.cancel_retry()
        if cancel_running and self.running is not None:
            self.running.cancel()
