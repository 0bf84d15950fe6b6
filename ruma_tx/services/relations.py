"""
Relations between events (spec: "Forming relationships between events",
"Threading", "Event replacements", "Event annotations and reactions",
"Reference relations"):

  - L{RelationChecker}: run by the event creator on each new event, under
    its room's lock: refuses the relations the spec (or Synapse) refuses
    and says how the relation is stored; also decides whether a threaded
    receipt fits its event.
  - L{RelationsReader}: C{GET /relations} and C{GET /threads}.

The bundled aggregations of served events are L{ruma_tx.services.aggregations}'s.
"""
from __future__ import annotations

from typing import Callable

from ruma_tx.matrix.events import StoredEvent, room_event
from ruma_tx.matrix.redaction import redact
from ruma_tx.matrix.relations import (
    ANNOTATION,
    MAX_RECURSION_DEPTH,
    EventRelation,
    check_relation,
    receipt_fits_thread,
    relation_of,
    with_relations,
)
from ruma_tx.matrix.stream_token import StreamToken, pagination_window
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.aggregations import Aggregator, IgnoredUsers
from ruma_tx.services.history import HistoryReader
from ruma_tx.services.ports.events import Events, NewEvent
from ruma_tx.services.ports.relations import ChildrenQuery, RelationStorage


class RelationChecker:
    """
    @param store: the relations index.
    """

    def __init__(self, *, store: RelationStorage) -> None:
        self._store = store

    async def check(self, event: NewEvent) -> EventRelation | None:
        """
        The relation of a new event, as it is to be stored: C{None} when
        its content declares none (or a malformed one, which the spec
        ignores). Run under the room's lock, so two identical annotations
        sent at once cannot both pass.

        @raise BadRequest: for a relation the spec refuses (see
            L{ruma_tx.matrix.relations.check_relation}).
        """
        pdu = event.pdu
        relation = relation_of(pdu["content"])
        if relation is None:
            return None
        annotation = None
        if relation.rel_type == ANNOTATION and relation.key is not None:
            annotation = (pdu["type"], pdu["sender"], relation.key)
        parent, annotated = await self._store.get_parent(relation.parent_id, annotation)
        return check_relation(
            room_id=event.room_id, event_type=pdu["type"], sender=pdu["sender"],
            state_key=pdu.get("state_key"), content=pdu["content"], relation=relation, parent=parent,
            already_annotated=annotated,
        )

    async def fits_thread(self, event_id: str, thread_id: str) -> bool:
        """Whether a receipt for C{thread_id} may point at the event (spec: else 400)."""
        event_thread, ancestors = await self._store.get_receipt_thread(event_id)
        return receipt_fits_thread(thread_id, event_id, event_thread, ancestors)


class RelationsReader:
    """
    C{GET /relations} and C{GET /threads}.

    @param events: single events.
    @param history: who may see what (history visibility).
    @param store: the relations index.
    @param aggregations: the events' bundled aggregations.
    @param ignored: the users a user ignores.
    @param current_position: the highest stream position clients may be shown.
    """

    def __init__(self, *, events: Events, history: HistoryReader, store: RelationStorage,
                 aggregations: Aggregator, ignored: IgnoredUsers,
                 current_position: Callable[[], int]) -> None:
        self._events = events
        self._history = history
        self._store = store
        self._aggregations = aggregations
        self._ignored = ignored
        self._current = current_position

    async def relations(self, user_id: str, room_id: str, parent_id: str, *, rel_type: str | None,
                        event_type: str | None, from_token: StreamToken | None,
                        to_token: StreamToken | None, limit: int, backwards: bool,
                        recurse: bool | None) -> JsonDict:
        """
        A page of the children of an event the user may see (spec:
        "Relationships API"): those the user may see too, newest first
        (C{backwards}) or oldest first, following relations
        L{MAX_RECURSION_DEPTH} levels down with C{recurse}. Tokens mean
        what they mean for C{/messages}; C{prev_batch} is the C{from}
        given, as Synapse answers.

        @param recurse: as given, C{None} when not given (then no
            C{recursion_depth} in the answer).
        @raise MatrixError: 404 when the event is unknown, in another room,
            or not visible to the user.
        """
        _, view = await self._history.visible_event(user_id, room_id, parent_id)
        after, upto = pagination_window(backwards=backwards, from_token=from_token, to_token=to_token,
                                        current=self._current())
        depth = MAX_RECURSION_DEPTH if recurse else 1
        ignored = await self._ignored(user_id)
        children = await self._store.get_children(ChildrenQuery(
            room_id=room_id, parent_id=parent_id, rel_type=rel_type, event_type=event_type,
            after=after, upto=upto, ranges=view.visible_ranges(), limit=limit + 1, backwards=backwards,
            depth=depth, hidden_senders=sorted(ignored)))
        more, page = len(children) > limit, await self._history.with_erasure(view, room_id, children[:limit])
        response: JsonDict = {"chunk": await self._aggregations.serve(user_id, page)}
        if more and page:
            last = page[-1].stream_ordering
            response["next_batch"] = str(StreamToken(last - 1 if backwards else last))
        if from_token is not None:
            response["prev_batch"] = str(from_token)
        if recurse is not None:
            response["recursion_depth"] = depth
        return response

    async def threads(self, user_id: str, room_id: str, *, participated: bool,
                      from_token: StreamToken | None, limit: int) -> JsonDict:
        """
        A page of the room's thread roots the user may see, most recently
        active first, each with its bundled aggregations (spec: "Querying
        threads in a room"); with C{participated}, only threads the user
        started or replied to. A root sent by an ignored user is served
        redacted (spec). A page may hold fewer than C{limit} roots when
        some are hidden from the user, as in Synapse; C{next_batch} says
        whether more follow.

        @raise MatrixError: 403 for a room the user may not read.
        """
        view = await self._history.readable_view(user_id, room_id)
        current = self._current()
        upto = min(from_token.stream, current) if from_token is not None else current
        found = await self._store.get_threads(room_id, upto=upto, limit=limit + 1,
                                              participant=user_id if participated else None)
        more, found = len(found) > limit, found[:limit]
        roots = await self._history.with_erasure(
            view, room_id, [root for root, _ in found if view.can_see(root.stream_ordering)])
        ignored = await self._ignored(user_id)
        bundles = await self._aggregations.bundle(user_id, roots, ignored=ignored)
        version = ""
        if any(root.sender in ignored for root in roots):
            head = await self._events.get_room_head(room_id)
            version = head.room_version if head is not None else ""
        chunk = []
        for root in roots:
            shown = _redacted(root, version) if root.sender in ignored else room_event(root)
            chunk.append(with_relations(shown, bundles[root.event_id]) if root.event_id in bundles else shown)
        response: JsonDict = {"chunk": chunk}
        if more and found:
            response["next_batch"] = str(StreamToken(found[-1][1] - 1))
        return response


def _redacted(event: StoredEvent, room_version: str) -> JsonDict:
    """An event as its redaction would leave it (a thread root of an ignored user)."""
    return room_event(StoredEvent(event.stream_ordering, event.event_id, event.room_id,
                                  redact(event.pdu, room_version)))
