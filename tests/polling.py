"""
Long polls in tests, without measuring time: a poll waits far longer than
any test does, so one the server fails to wake ends the test at its
deadline (a hang is a failure) instead of being judged by a stopwatch on
a noisy machine.
"""
from __future__ import annotations

from twisted.internet import defer, reactor

#: The timeout given to long polls: longer than any deadline below.
LONG_POLL_MS = 120_000

#: How long a test waits for what should happen at once, before failing.
DEADLINE_S = 60


def within_deadline(d: defer.Deferred) -> defer.Deferred:
    """C{d}, failing with a TimeoutError if it has not fired by the deadline."""
    return d.addTimeout(DEADLINE_S, reactor)
