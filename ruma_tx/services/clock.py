"""
The one clock: every use case reads time from the reactor it is given (a
C{twisted.internet.task.Clock} in tests), through this protocol.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

from twisted.internet.interfaces import IDelayedCall


class Clock(Protocol):
    """What the use cases need of the reactor's clock (C{IReactorTime})."""

    def seconds(self) -> float: ...

    def callLater(self, delay: float, callable: Callable[..., Any], *args: Any,  # noqa: N802
                  **kwargs: Any) -> IDelayedCall: ...


def now_ms(clock: Clock) -> int:
    """The current time in milliseconds since the epoch, as Matrix counts it."""
    return int(clock.seconds() * 1000)
