"""
Ports: what the relation use cases need of storage (implemented by
C{ruma_tx.storage.relations.RelationStore}).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.relations import ParentEvent
from ruma_tx.services.ports.events import Ranges


@dataclass(frozen=True)
class ThreadAggregate:
    """
    A thread root's replies, as far as the reader may see them.

    @ivar participated: the reader sent one of the replies.
    @ivar latest: the most recent reply.
    """

    count: int
    participated: bool
    latest: StoredEvent


@dataclass(frozen=True)
class Aggregates:
    """
    What the server aggregates of some parents' children, by parent id:
    their threads, their latest valid edit, the events referencing them.
    """

    threads: dict[str, ThreadAggregate] = field(default_factory=dict)
    edits: dict[str, StoredEvent] = field(default_factory=dict)
    references: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ChildrenQuery:
    """
    Which children of a parent C{/relations} reads.

    @ivar after: only children at stream positions above this one...
    @ivar upto: ...and at or below this one.
    @ivar ranges: the stream ranges the reader may see.
    @ivar depth: how many levels of relations to follow (1: direct children).
    @ivar hidden_senders: children of these senders are left out (ignored users).
    """

    room_id: str
    parent_id: str
    rel_type: str | None
    event_type: str | None
    after: int
    upto: int
    ranges: Ranges
    limit: int
    backwards: bool
    depth: int
    hidden_senders: Sequence[str] = ()


class RelationStorage(Protocol):
    """What the relation use cases need of storage."""

    async def get_parent(self, parent_id: str, annotation: tuple[str, str, str] | None
                         ) -> tuple[ParentEvent | None, bool]:
        """
        The parent of a new relation, and whether the annotation C{(type,
        sender, key)}, if given, is on it already.
        """
        ...

    async def get_aggregates(self, parents: Sequence[StoredEvent], user_id: str,
                             hidden_senders: Sequence[str], *, pdu: bool = True) -> Aggregates: ...

    async def get_children(self, query: ChildrenQuery) -> list[StoredEvent]: ...

    async def get_threads(self, room_id: str, *, upto: int, limit: int,
                          participant: str | None) -> list[tuple[StoredEvent, int]]:
        """
        Up to C{limit} thread roots of the room whose latest reply is at
        or before C{upto}, most recently active first, each with the
        position of its latest reply; only threads C{participant} took
        part in, if given.
        """
        ...

    async def get_receipt_thread(self, event_id: str) -> tuple[str | None, list[str]]:
        """
        The thread root the event is in (C{None}: main timeline) and the
        events it relates to, nearest first (at most 3 hops).
        """
        ...
