"""
The one cache type: cachetools' bounded C{LRUCache}, least recently used
entries dropped first. Every cache of the use cases is one of these, and
each says next to it what invalidates its entries.

L{LastPositions} is the same cache keeping, per key, the last stream
position at which something changed, for questions of the form "did this
change since position N?": an entry it dropped raises
L{LastPositions.forgotten_before}, so it answers "maybe" (yes) when it no
longer knows, which is always safe.
"""
from __future__ import annotations

from typing import Hashable, TypeVar

from cachetools import LRUCache

__all__ = ["LRUCache", "LastPositions"]

K = TypeVar("K", bound=Hashable)


class LastPositions(LRUCache[K, int]):
    """
    Per key, the last stream position something changed at.

    @ivar forgotten_before: positions up to this one may hide changes of
        keys no longer kept.
    """

    def __init__(self, maxsize: int, start: int) -> None:
        super().__init__(maxsize)
        self.forgotten_before = start

    def popitem(self) -> tuple[K, int]:
        key, position = super().popitem()
        self.forgotten_before = max(self.forgotten_before, position)
        return key, position

    def record(self, key: K, position: int) -> None:
        """Something changed for C{key} at C{position}."""
        self[key] = position

    def changed_since(self, key: K, since: int) -> bool:
        """Whether C{key} changed after C{since}: yes when unsure."""
        last = self.get(key)
        if last is None:
            return self.forgotten_before > since
        return last > since
