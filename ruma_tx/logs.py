"""
ruma_tx's loggers: Twisted loggers whose events pass a level filter set
from the config (C{[logging] level}) before reaching twistd's log.
"""
from __future__ import annotations

from twisted.logger import (
    FilteringLogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
)

_levels = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)
_observer = FilteringLogObserver(globalLogPublisher, [_levels])


def logger(namespace: str) -> Logger:
    """The logger of a ruma_tx module (pass C{__name__})."""
    return Logger(namespace=namespace, observer=_observer)


def set_level(name: str) -> None:
    """Log ruma_tx events at C{name} (debug, info, warn, error, critical) and above."""
    _levels.setLogLevelForNamespace("", LogLevel.levelWithName(name))
