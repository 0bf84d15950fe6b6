"""
Keeping cancellation where it belongs.

Klein cancels a handler's Deferred when the client hangs up, and Twisted
passes a cancellation down to whatever Deferred the handler awaits. Work
that must not stop half-way (a write, a query running on a pooled
connection, a computation others share) runs behind L{shielded}: the
caller may stop waiting, the work runs to its end.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

T = TypeVar("T")


def shielded(work: defer.Deferred[T],
             abandoned: Callable[[Any], None] | None = None) -> defer.Deferred[T]:
    """
    A Deferred that fires with C{work}'s result, and whose cancellation
    stops only the waiting: C{work} itself carries on, and its result is
    then given to C{abandoned} (or dropped).

    @param abandoned: called with C{work}'s result or L{Failure} when it
        arrives after the waiter was cancelled, e.g. to log a failure nobody
        will see otherwise.
    """
    waiter: defer.Deferred[T] = defer.Deferred()

    def forward(result: Any) -> None:
        if not waiter.called:
            waiter.callback(result)  # a Failure errbacks it
        elif abandoned is not None:
            abandoned(result)
        elif isinstance(result, Failure):
            pass  # nobody waits for it any more: do not log it as unhandled
        return None

    work.addBoth(forward)
    return waiter
