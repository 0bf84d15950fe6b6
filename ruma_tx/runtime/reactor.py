"""
The reactor as the runtime drives it: the composition root, the embedded
cluster and the admin CLI each need several of the reactor's interfaces at
once (time, threads, processes, start and stop).
"""
from __future__ import annotations

from twisted.internet.interfaces import (
    IReactorCore,
    IReactorFDSet,
    IReactorPluggableNameResolver,
    IReactorProcess,
    IReactorThreads,
    IReactorTime,
)


class IRuntimeReactor(IReactorCore, IReactorTime, IReactorFDSet, IReactorProcess, IReactorThreads,
                      IReactorPluggableNameResolver):
    """
    Every reactor interface the runtime uses. Twisted's default reactor
    provides them all, though the type of C{twisted.internet.reactor} names
    only some of them: it is cast to this where it is imported.
    """
