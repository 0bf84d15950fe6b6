"""
Leaky-bucket rate limiting, with the same arithmetic as Synapse's C{Ratelimiter}.

Each (action, key) pair has a bucket holding a level. Every allowed action adds
one to the level; the level drains at C{per_second} per second and never goes
below zero. An action is refused when the drained level plus one would exceed
C{burst_count}; the caller is then told how many seconds remain until it would
be allowed.

The module does no I/O and reads time only from the clock it is given
(anything with C{seconds()}, such as the reactor or L{twisted.internet.task.Clock}).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from cachetools import Cache

from ruma_tx.services.caches import LRUCache
from ruma_tx.services.clock import Clock

# Tolerance for float rounding: a caller who waits exactly the advertised
# retry time must be allowed, even if the drain arithmetic lands a hair short.
_EPSILON = 1e-9


@dataclass(frozen=True)
class RateLimit:
    """
    The parameters of one leaky bucket.

    @ivar per_second: How fast the bucket drains, in actions per second. Must
        be positive and finite.
    @ivar burst_count: The bucket size: how many actions may be performed in a
        burst from an empty bucket. Must be at least 1.
    """

    per_second: float
    burst_count: int

    def __post_init__(self) -> None:
        if not (self.per_second > 0 and math.isfinite(self.per_second)):
            raise ValueError(
                f"RateLimit.per_second must be a positive number, not {self.per_second!r}"
            )
        if self.burst_count < 1:
            raise ValueError(
                f"RateLimit.burst_count must be at least 1, not {self.burst_count!r}"
            )


class Unlimited(Enum):
    """A per-key override lifting an action's limit (see L{RateLimiter.check})."""

    UNLIMITED = "unlimited"


UNLIMITED = Unlimited.UNLIMITED


class RateLimiter:
    """
    Leaky buckets keyed by (action, key).

    Bounded: at most C{max_buckets} buckets are kept. When the table is full
    and a new bucket is needed, buckets that have fully drained (and so carry
    no information) are dropped first, then the least recently used ones.
    Eviction frees a tenth of the capacity at a time so that its cost is
    amortised over many inserts.

    @ivar _buckets: (action, key) -> (level, time the level was measured).
    """

    def __init__(
        self,
        clock: Clock,
        limits: dict[str, RateLimit],
        enabled: bool = True,
        max_buckets: int = 100_000,
    ) -> None:
        """
        @param clock: Provides C{seconds() -> float}; usually the reactor.
        @param limits: The limit for each action name. Actions not listed are
            never limited.
        @param enabled: When false, L{check} allows everything and records
            nothing.
        @param max_buckets: The most buckets to keep at once; at least 1.
        """
        if max_buckets < 1:
            raise ValueError(f"max_buckets must be at least 1, not {max_buckets!r}")
        self._clock = clock
        self._limits = dict(limits)
        self._enabled = enabled
        self._max_buckets = max_buckets
        # Nothing to invalidate: a bucket's level is recomputed from the clock.
        self._buckets: LRUCache[tuple[str, str], tuple[float, float]] = LRUCache(max_buckets)

    def __len__(self) -> int:
        """
        @return: How many buckets are currently held.
        """
        return len(self._buckets)

    def check(self, action: str, key: str, override: RateLimit | Unlimited | None = None) -> float | None:
        """
        Record one performance of C{action} by C{key}, if the limit allows it.

        @param action: The name of the action, looked up in the limits.
        @param key: Who performs it (a user ID, an IP address, ...).
        @param override: this key's own limit of a limited action, in
            place of the configured one, or L{UNLIMITED}.
        @return: L{None} if the action is allowed (and it is then recorded), or
            the number of seconds until it would be allowed (and it is then
            not recorded). Always L{None} for an unknown action or when the
            limiter is disabled.
        """
        if not self._enabled or override is UNLIMITED:
            return None
        limit = self._limits.get(action)
        if limit is None:
            return None
        if override is not None:
            limit = override

        now = self._clock.seconds()
        bucket_id = (action, key)
        bucket = self._buckets.get(bucket_id)
        if bucket is None:
            level = 0.0
        else:
            level = _drained(bucket, limit.per_second, now)

        if level + 1 > limit.burst_count + _EPSILON:
            # Refused: remember the drained level (equivalent, as draining is
            # linear) and say when enough will have drained for one more.
            self._buckets[bucket_id] = (level, now)
            return (level + 1 - limit.burst_count) / limit.per_second

        if bucket is None and len(self._buckets) >= self._max_buckets:
            self._evict(now)
        self._buckets[bucket_id] = (level + 1, now)
        return None

    def _evict(self, now: float) -> None:
        """
        Make room for new buckets: drop every fully drained bucket, then the
        least recently used ones until a tenth of the capacity is free.

        @param now: The current time, in seconds.
        """
        target = self._max_buckets - max(1, self._max_buckets // 10)
        for bucket_id in list(self._buckets):
            # Cache.__getitem__ reads without making the bucket most recent.
            bucket = Cache.__getitem__(self._buckets, bucket_id)
            limit = self._limits.get(bucket_id[0])
            if limit is None or _drained(bucket, limit.per_second, now) <= 0:
                del self._buckets[bucket_id]
        while len(self._buckets) > target:
            self._buckets.popitem()


def _drained(bucket: tuple[float, float], per_second: float, now: float) -> float:
    """
    @param bucket: (level, time the level was measured).
    @param per_second: The drain rate.
    @param now: The current time, in seconds.
    @return: The bucket's level at C{now}, never below zero. A clock that went
        backwards drains nothing.
    """
    level, measured_at = bucket
    return max(0.0, level - max(0.0, now - measured_at) * per_second)
