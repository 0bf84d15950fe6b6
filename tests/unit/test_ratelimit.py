"""
Tests for L{ruma_tx.services.ratelimit}.
"""

import pytest
from twisted.internet.task import Clock

from ruma_tx.services.ratelimit import RateLimit, RateLimiter


def make_limiter(clock, **kwargs):
    """
    Build a limiter with a "message" action (burst 3, 0.5/s) and a "login"
    action (burst 1, 0.1/s).
    """
    limits = {
        "message": RateLimit(per_second=0.5, burst_count=3),
        "login": RateLimit(per_second=0.1, burst_count=1),
    }
    return RateLimiter(clock, limits, **kwargs)


def exhausted_limiter(clock):
    """A limiter from L{make_limiter} whose "message" bucket for "@a:hs" is full."""
    limiter = make_limiter(clock)
    for _ in range(3):
        limiter.check("message", "@a:hs")
    return limiter


def test_burst_allowed():
    """A full burst of actions from an empty bucket is allowed."""
    limiter = make_limiter(Clock())
    assert [limiter.check("message", "@a:hs") for _ in range(3)] == [None, None, None]


@pytest.mark.parametrize("waited, retry", [(0.0, 2.0), (0.5, 1.5)])
def test_over_burst_refused_with_retry_time(waited, retry):
    """
    The action after the burst is refused, with the time for one action to
    drain (2 s at 0.5/s), less however long the caller has already waited.
    """
    clock = Clock()
    limiter = exhausted_limiter(clock)
    clock.advance(waited)
    assert limiter.check("message", "@a:hs") == pytest.approx(retry)


def test_allowed_after_waiting_retry_time():
    """Waiting exactly the advertised retry time makes the action allowed again."""
    clock = Clock()
    limiter = exhausted_limiter(clock)
    retry = limiter.check("message", "@a:hs")
    clock.advance(retry)
    assert limiter.check("message", "@a:hs") is None
    assert limiter.check("message", "@a:hs") is not None


def test_allowed_after_waiting_retry_time_awkward_rate():
    """Float rounding does not refuse a caller who waited the advertised time."""
    clock = Clock()
    limiter = RateLimiter(clock, {"x": RateLimit(per_second=0.3, burst_count=7)})
    for _ in range(7):
        assert limiter.check("x", "k") is None
    for _ in range(20):
        retry = limiter.check("x", "k")
        assert retry is not None
        clock.advance(retry)
        assert limiter.check("x", "k") is None


def test_refused_action_not_recorded():
    """Refused attempts do not push the retry time further out."""
    clock = Clock()
    limiter = exhausted_limiter(clock)
    for _ in range(10):
        assert limiter.check("message", "@a:hs") == pytest.approx(2.0)
    clock.advance(2.0)
    assert limiter.check("message", "@a:hs") is None


def test_full_drain_restores_burst():
    """After the bucket drains completely, a whole burst is allowed again."""
    clock = Clock()
    limiter = exhausted_limiter(clock)
    clock.advance(6.0)
    assert [limiter.check("message", "@a:hs") for _ in range(3)] == [None, None, None]
    assert limiter.check("message", "@a:hs") is not None


def test_keys_independent():
    """Exhausting one key's bucket does not limit another key."""
    limiter = make_limiter(Clock())
    assert limiter.check("login", "1.2.3.4") is None
    assert limiter.check("login", "1.2.3.4") == pytest.approx(10.0)
    assert limiter.check("login", "5.6.7.8") is None


def test_actions_independent():
    """Exhausting one action's bucket does not limit another action for the same key."""
    limiter = make_limiter(Clock())
    limiter.check("login", "@a:hs")
    assert limiter.check("login", "@a:hs") is not None
    assert limiter.check("message", "@a:hs") is None


def test_unknown_action_never_refused():
    """An action with no configured limit is always allowed and not stored."""
    limiter = make_limiter(Clock())
    assert all(limiter.check("other", "@a:hs") is None for _ in range(100))
    assert len(limiter) == 0


def test_disabled_never_refuses():
    """A disabled limiter allows every action."""
    limiter = make_limiter(Clock(), enabled=False)
    assert all(limiter.check("login", "@a:hs") is None for _ in range(100))


def test_bucket_count_bounded():
    """The number of buckets never exceeds max_buckets, even with all buckets full."""
    limiter = make_limiter(Clock(), max_buckets=50)
    for i in range(1000):
        assert limiter.check("login", f"key{i}") is None
        assert len(limiter) <= 50


def test_eviction_prefers_drained_buckets():
    """When full, drained buckets are dropped before a recently used full one."""
    clock = Clock()
    limiter = make_limiter(clock, max_buckets=10)
    limiter.check("login", "busy")  # oldest bucket, will stay full
    for i in range(9):
        limiter.check("message", f"idle{i}")
    clock.advance(5.0)  # the "message" buckets (level 1, 0.5/s) drain; "busy" does not
    limiter.check("login", "new")
    assert limiter.check("login", "busy") is not None


def test_eviction_drops_least_recently_used():
    """When no bucket has drained, the least recently used one is dropped."""
    limiter = make_limiter(Clock(), max_buckets=10)
    for i in range(10):
        limiter.check("login", f"key{i}")
    limiter.check("login", "key0")  # refused, but touches key0 so key1 is now oldest
    limiter.check("login", "new")
    assert limiter.check("login", "key1") is None
    assert limiter.check("login", "key0") is not None


@pytest.mark.parametrize(
    "per_second, burst_count", [(0, 1), (-1.0, 1), (float("inf"), 1), (1.0, 0)]
)
def test_invalid_limits_rejected(per_second, burst_count):
    """A limit that could never drain or never allow anything is a configuration error."""
    with pytest.raises(ValueError):
        RateLimit(per_second=per_second, burst_count=burst_count)
