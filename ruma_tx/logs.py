"""
ruma_tx's loggers: Twisted loggers whose events pass a level filter set
from the config (C{[logging] level}) before reaching twistd's log.
"""
from __future__ import annotations

import json
import sys

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
    LogEvent,
    formatEvent,
)
from zope.interface import provider

_levels = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)
_observer = FilteringLogObserver(globalLogPublisher, [_levels])


def logger(namespace: str) -> Logger:
    """The logger of a ruma_tx module (pass C{__name__})."""
    return Logger(namespace=namespace, observer=_observer)


def set_level(name: str) -> None:
    """Log ruma_tx events at C{name} (debug, info, warn, error, critical) and above."""
    _levels.setLogLevelForNamespace("", LogLevel.levelWithName(name))



def json_observer() -> ILogObserver:
    """
    Structured logs: one JSON object per line on stdout: C{time} (Unix
    seconds), C{level}, C{namespace}, C{message} (the formatted line) and
    every field of the event (a request's line carries request_id, ip,
    user_id, method, path, route, code, bytes, duration_ms), plus
    C{failure} for an error's traceback. Chosen with twistd's own option:
    C{twistd --logger ruma_tx.logs.json_observer -n ruma}.
    """
    out = sys.stdout

    @provider(ILogObserver)
    def observe(event: LogEvent) -> None:
        record: dict[str, object] = {
            "time": event.get("log_time"),
            "level": event["log_level"].name if event.get("log_level") else None,
            "namespace": event.get("log_namespace"),
            "message": formatEvent(event),
        }
        for key, value in event.items():
            if not key.startswith("log_") and key not in record:
                record[key] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
        failure = event.get("log_failure")
        if failure is not None:
            record["failure"] = failure.getTraceback()
        out.write(json.dumps(record) + "\n")
        out.flush()

    return observe
