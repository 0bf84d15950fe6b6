"""
The health check of load balancers: the server is healthy when its
database answers a trivial query within a short time.
"""
from __future__ import annotations

from typing import Any, Callable, Coroutine, cast

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from ruma_tx.matrix.errors import Unavailable
from ruma_tx.services.clock import Clock


class HealthCheck:
    """
    @param ping: runs a trivial query (C{SELECT 1}); fails when the
        database does not answer.
    @param timeout_s: how long the query may take: a pool busy for longer
        is as good as down to a load balancer.
    """

    def __init__(self, ping: Callable[[], Coroutine[Any, Any, object]], clock: Clock, timeout_s: float = 2.0) -> None:
        self._ping = ping
        self._clock = clock
        self._timeout_s = timeout_s

    async def check(self) -> None:
        """@raise Unavailable: the database did not answer in time."""
        pinging = defer.ensureDeferred(self._ping())
        pinging.addTimeout(self._timeout_s, cast(IReactorTime, self._clock))
        try:
            await pinging
        except Exception:
            raise Unavailable("The database does not answer") from None
