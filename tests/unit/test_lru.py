"""LruCache: the bound and the recency order that decides what is dropped."""
from ruma_tx.services.lru import LruCache


def test_least_recently_used_entry_is_dropped_past_the_bound():
    """Past its bound the cache drops the entry used least recently, and reading counts as use."""
    cache = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recent
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


def test_pop_and_missing_keys():
    """pop removes an entry; missing keys give the default and are not added."""
    cache = LruCache(3)
    cache.put("a", 1)
    assert cache.pop("a") == 1 and cache.pop("a") is None
    assert cache.get("zzz", 7) == 7 and "zzz" not in cache
