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

__all__ = ["LRUCache", "LastPositions", "LastPositionsByKind"]

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


#: The kind under which L{LastPositionsByKind} keeps a key's last change of any kind.
ANY_KIND = ""


class LastPositionsByKind(LRUCache[K, dict[str, int]]):
    """
    Per key, the last stream position something changed at, per kind of
    change and of any kind: one entry per key, so recording a change for
    the 10,000 members of a room costs one cache operation each, not one
    per kind.

    @ivar forgotten_before: positions up to this one may hide changes of
        keys no longer kept.
    """

    def __init__(self, maxsize: int, start: int) -> None:
        super().__init__(maxsize)
        self.forgotten_before = start

    def popitem(self) -> tuple[K, dict[str, int]]:
        key, positions = super().popitem()
        self.forgotten_before = max(self.forgotten_before, positions[ANY_KIND])
        return key, positions

    def record(self, key: K, kind: str, position: int) -> None:
        """Something of C{kind} changed for C{key} at C{position}."""
        positions = self.get(key)
        if positions is None:
            self[key] = {kind: position, ANY_KIND: position}
        else:
            positions[kind] = position
            positions[ANY_KIND] = max(positions[ANY_KIND], position)

    def changed_since(self, key: K, since: int, kind: str = ANY_KIND) -> bool:
        """Whether C{key} changed (in C{kind}, or at all) after C{since}: yes when unsure."""
        positions = self.get(key)
        if positions is None:
            return self.forgotten_before > since
        last = positions.get(kind)
        if last is None:
            # Kept since some change of another kind: none of this one since.
            return self.forgotten_before > since
        return last > since
