"""
Bundled aggregations (spec: "Aggregations of child events"): what the
server summarises of an event's children in C{unsigned["m.relations"]} of
the events every reading endpoint serves (/sync, /messages, /context,
/event, /relations, /threads, /search).
"""
from __future__ import annotations

from typing import Awaitable, Callable, Mapping, Sequence

from ruma_tx.matrix.events import StoredEvent, room_event
from ruma_tx.matrix.relations import (
    REFERENCE,
    REPLACE,
    THREAD,
    reference_chunk,
    thread_summary,
    with_relations,
)
from ruma_tx.matrix.sync import StoredJson, shown_as_stored
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.ports.relations import Aggregates, RelationStorage

#: C{async (user_id) -> the users they ignore}.
IgnoredUsers = Callable[[str], Awaitable[frozenset[str]]]


class Aggregator:
    """
    Bundled aggregations (spec: "Aggregations of child events"): per
    event, C{m.thread} (count, latest reply with its own aggregations,
    whether the user took part), C{m.replace} (the latest valid edit; the
    event's content is left as it is, spec v1.7) and C{m.reference}
    (the referencing events). C{m.annotation} is not aggregated (spec
    v1.7). Children of users the reader ignores do not count.

    @param store: the relations index.
    @param ignored: the users a user ignores.
    """

    def __init__(self, *, store: RelationStorage, ignored: IgnoredUsers) -> None:
        self._store = store
        self._ignored = ignored

    async def bundle(self, user_id: str, events: Sequence[StoredEvent], *,
                     ignored: frozenset[str] | None = None,
                     include_room_id: bool = True) -> dict[str, JsonDict]:
        """
        C{event_id -> unsigned["m.relations"]} for those of C{events} that
        have aggregations, read with one query for all of them (and one
        more for the latest replies of their threads, if any).

        @param ignored: the users C{user_id} ignores, if known already.
        @param include_room_id: whether events inside the aggregations
            carry C{room_id} (not in /sync, where the room is implied).
        """
        parents = [event for event in events if event.state_key is None]  # spec: not state events
        if not parents:
            return {}
        hidden = sorted(ignored if ignored is not None else await self._ignored(user_id))
        # /sync shows events as stored: they are read without their PDUs.
        show: Callable[[StoredEvent], JsonDict | StoredJson] = room_event if include_room_id else shown_as_stored
        found = await self._store.get_aggregates(parents, user_id, hidden, pdu=include_room_id)
        latest = [thread.latest for thread in found.threads.values()]
        inner = await self._store.get_aggregates(latest, user_id, hidden, pdu=include_room_id) \
            if latest else Aggregates()

        def serve(event: StoredEvent) -> JsonDict | StoredJson:
            relations = _relations(event, inner, {}, show)
            return with_relations(show(event), relations) if relations else show(event)

        # Spec: the root's sender took part in its thread too.
        senders = {event.event_id: event.sender for event in parents}
        threads = {parent_id: thread_summary(serve(thread.latest), thread.count,
                                             thread.participated or senders[parent_id] == user_id)
                   for parent_id, thread in found.threads.items()}
        bundles: dict[str, JsonDict] = {}
        for event in parents:
            relations = _relations(event, found, threads, show)
            if relations:
                bundles[event.event_id] = relations
        return bundles

    async def serve(self, user_id: str, events: Sequence[StoredEvent]) -> list[JsonDict]:
        """The events in client format, each with its bundled aggregations."""
        bundles = await self.bundle(user_id, events)
        return [with_relations(room_event(event), bundles[event.event_id]) if event.event_id in bundles
                else room_event(event) for event in events]


def _relations(event: StoredEvent, found: Aggregates, threads: Mapping[str, JsonDict],
               show: Callable[[StoredEvent], JsonDict | StoredJson]) -> JsonDict:
    """The event's C{m.relations}: its thread summary, latest edit and references."""
    relations: JsonDict = {}
    if event.event_id in threads:
        relations[THREAD] = threads[event.event_id]
    edit = found.edits.get(event.event_id)
    if edit is not None and event.redacted_by is None:
        # Spec: the edits of a redacted event are not bundled with it.
        relations[REPLACE] = show(edit)
    references = found.references.get(event.event_id)
    if references:
        relations[REFERENCE] = reference_chunk(references)
    return relations
