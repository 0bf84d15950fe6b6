"""
The one clock: every use case reads time from the reactor it is given (a
C{twisted.internet.task.Clock} in tests), through this protocol.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable, Protocol

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall


class Clock(Protocol):
    """What the use cases need of the reactor's clock (C{IReactorTime})."""

    def seconds(self) -> float: ...

    def callLater(self, delay: float, callable: Callable[..., Any], *args: Any,  # noqa: N802
                  **kwargs: Any) -> IDelayedCall: ...


class Periodic:
    """
    Runs C{work} every C{interval_s} seconds once started (first one
    interval after L{start}); L{stop} stops it, then runs C{last} once, so
    what was collected since the last run is not lost at shutdown.
    """

    def __init__(self, clock: Clock, interval_s: float, work: Callable[[], Awaitable[None]],
                 last: Callable[[], Awaitable[None]]) -> None:
        self._interval_s = interval_s
        self._loop = LoopingCall(work)
        self._loop.clock = clock  # type: ignore[assignment]  # seconds() and callLater() suffice
        self._last = last

    def start(self) -> None:
        self._loop.start(self._interval_s, now=False)

    async def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()
        await self._last()


def now_ms(clock: Clock) -> int:
    """The current time in milliseconds since the epoch, as Matrix counts it."""
    return int(clock.seconds() * 1000)
