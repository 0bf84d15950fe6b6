"""
Relationships between events as pure rules (spec: client-server API,
"Forming relationships between events", "Aggregations of child events",
and the modules "Threading", "Event replacements", "Event annotations and
reactions", "Reference relations", "Receipts" (threaded read receipts)).

A child event names its parent in C{content["m.relates_to"]} with a
C{rel_type} and the parent's C{event_id}. Relationships that do not match
the schema are simply not relationships (spec: "simply ignored"); those
that do are checked when sent (L{check_relation}) and stored, with the
thread the child belongs to, so the server can list children, aggregate
them, and count notifications per thread.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence, overload

import orjson

from ruma_tx.matrix.errors import BadRequest
from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.filters import Filter
from ruma_tx.matrix.sync import EventSerializer, StoredJson, stored_fragment, with_transaction_id
from ruma_tx.matrix.types import JsonDict

THREAD = "m.thread"
REPLACE = "m.replace"
ANNOTATION = "m.annotation"
REFERENCE = "m.reference"

#: The thread id of the main timeline (receipts, notification counts).
MAIN_THREAD = "main"

#: How many levels of relations C{/relations?recurse=true} follows (the
#: spec: "at least 3"; Synapse: 3).
MAX_RECURSION_DEPTH = 3

#: The longest annotation key accepted (Synapse's limit; the spec sets none).
MAX_ANNOTATION_KEY_LENGTH = 500

#: The event type whose content is encrypted: a replacement's
#: C{m.new_content} is inside the ciphertext, out of the server's sight.
ENCRYPTED = "m.room.encrypted"


@dataclass(frozen=True)
class Relation:
    """
    What a well-formed C{m.relates_to} says.

    @ivar key: an annotation's C{key} (C{None} when absent or not a string).
    """

    rel_type: str
    parent_id: str
    key: str | None = None


@dataclass(frozen=True)
class ParentEvent:
    """
    What checking a new relation needs to know of its parent.

    @ivar stream_ordering: the parent's stream position.
    @ivar is_state: whether the parent is a state event.
    @ivar rel_type: the parent's own relation, if it has one.
    @ivar thread_id: the thread root the parent is in (C{None}: the main
        timeline).
    """

    room_id: str
    stream_ordering: int
    type: str
    sender: str
    is_state: bool
    rel_type: str | None
    thread_id: str | None


@dataclass(frozen=True)
class EventRelation:
    """
    A new event's relation as stored with it.

    @ivar parent_position: the parent's stream position.
    @ivar thread_id: the thread root the event is in, C{None} for the main
        timeline: the parent for C{m.thread}, else the parent's thread (so
        a reaction to a threaded reply is in that thread).
    @ivar valid: C{False} for an C{m.replace} breaking the rules of
        replacements: listed by C{/relations}, never aggregated.
    """

    rel_type: str
    parent_id: str
    parent_position: int
    key: str | None
    thread_id: str | None
    valid: bool = True


def relation_of(content: JsonDict) -> Relation | None:
    """
    The relation C{content} declares: C{m.relates_to} an object with
    string C{rel_type} and C{event_id}; C{None} otherwise (a rich reply,
    which has no C{rel_type}, or a malformed one).
    """
    relates_to = content.get("m.relates_to")
    if not isinstance(relates_to, dict):
        return None
    rel_type, parent_id = relates_to.get("rel_type"), relates_to.get("event_id")
    if not isinstance(rel_type, str) or not isinstance(parent_id, str):
        return None
    key = relates_to.get("key")
    return Relation(rel_type, parent_id, key if isinstance(key, str) else None)


def _refused(message: str, errcode: str = "M_UNKNOWN") -> BadRequest:
    return BadRequest(errcode, message)


def check_relation(*, room_id: str, event_type: str, sender: str, state_key: str | None,
                   content: JsonDict, relation: Relation, parent: ParentEvent | None,
                   already_annotated: bool) -> EventRelation:
    """
    Check a relation a client sends, and say how it is stored.

    Refused (400), as the spec asks or, where it is silent, as Synapse does:
      - a parent unknown to the server or in another room (Synapse: the
        spec only says such relations are ignored, but a client cannot
        know of such a parent);
      - an annotation without a string C{key} or with one over
        L{MAX_ANNOTATION_KEY_LENGTH} (Synapse), or the same annotation
        (type and key) by the same sender twice (spec:
        C{M_DUPLICATE_ANNOTATION});
      - a thread from an event that itself has a relation (spec: 400
        C{M_UNKNOWN}; it would nest threads).

    An C{m.replace} is never refused: one that breaks the rules of
    replacements is stored as not L{EventRelation.valid} (spec: "should
    ignore the replacement event").

    @param already_annotated: C{sender} has an annotation of this type and
        key on the parent already.
    @raise BadRequest: as above.
    """
    if parent is None:
        raise _refused(f"Can't send relation to unknown event {relation.parent_id}")
    if parent.room_id != room_id:
        raise _refused("Relations must be in the same room")
    if relation.rel_type == ANNOTATION:
        if relation.key is None:
            raise _refused("Annotations need a string key")
        if len(relation.key) > MAX_ANNOTATION_KEY_LENGTH:
            raise _refused("Annotation key is too long")
        if already_annotated:
            raise _refused("Can't send the same annotation twice", "M_DUPLICATE_ANNOTATION")
    elif relation.rel_type == THREAD and parent.rel_type is not None:
        raise _refused("Cannot start a thread from an event with a relation")
    valid = relation.rel_type != REPLACE or is_valid_replacement(
        event_type=event_type, sender=sender, state_key=state_key, content=content, original=parent)
    thread_id = relation.parent_id if relation.rel_type == THREAD else parent.thread_id
    return EventRelation(relation.rel_type, relation.parent_id, parent.stream_ordering, relation.key,
                         thread_id, valid)


def is_valid_replacement(*, event_type: str, sender: str, state_key: str | None, content: JsonDict,
                         original: ParentEvent) -> bool:
    """
    Spec, "Validity of replacement events": same sender and type as the
    original, neither a state event, the original not an edit itself, and
    an C{m.new_content} object (unless encrypted: it is in the ciphertext).
    The same room is checked by L{check_relation}.
    """
    if sender != original.sender or event_type != original.type:
        return False
    if state_key is not None or original.is_state or original.rel_type == REPLACE:
        return False
    return event_type == ENCRYPTED or isinstance(content.get("m.new_content"), dict)


def thread_key(relation: EventRelation | None) -> str:
    """The thread an event is counted in: its thread root, or L{MAIN_THREAD}."""
    if relation is None or relation.thread_id is None:
        return MAIN_THREAD
    return relation.thread_id


def receipt_fits_thread(thread_id: str, event_id: str, event_thread: str | None,
                        ancestors: Sequence[str]) -> bool:
    """
    Whether a receipt for C{thread_id} may point at the event (spec: 400
    when "the event_id is not related to the thread_id"): for L{MAIN_THREAD},
    an event of the main timeline; for a thread, an event in it, its root,
    or an event related (at most L{MAX_RECURSION_DEPTH} hops) to its root,
    as Synapse accepts.

    @param event_thread: the thread root the event is in, C{None} for the
        main timeline.
    @param ancestors: the events the event relates to, nearest first.
    """
    if thread_id == MAIN_THREAD:
        return event_thread is None
    return thread_id in (event_thread, event_id) or thread_id in ancestors[:MAX_RECURSION_DEPTH]


def thread_summary(latest_event: JsonDict | StoredJson, count: int, participated: bool) -> JsonDict:
    """The C{m.thread} aggregation of a thread root (spec: "Server-side aggregation")."""
    return {"latest_event": latest_event, "count": count, "current_user_participated": participated}


def reference_chunk(event_ids: Sequence[str]) -> JsonDict:
    """The C{m.reference} aggregation: the referencing events' ids."""
    return {"chunk": [{"event_id": event_id} for event_id in event_ids]}


@overload
def with_relations(shown: JsonDict, relations: JsonDict) -> JsonDict: ...
@overload
def with_relations(shown: JsonDict | StoredJson, relations: JsonDict) -> JsonDict | StoredJson: ...


def with_relations(shown: JsonDict | StoredJson, relations: JsonDict) -> JsonDict | StoredJson:
    """
    An event as served, with C{unsigned["m.relations"]} set (the
    relations may hold stored JSON, written as it is). Stored JSON without
    C{unsigned} (most events) gets it appended, unparsed; other stored
    JSON is parsed; a given dict is copied, never changed.
    """
    if isinstance(shown, StoredJson) and '"unsigned"' not in shown.json:
        unsigned = orjson.dumps({"m.relations": relations}, default=stored_fragment).decode("utf-8")
        return StoredJson(f'{shown.json[:-1]},"unsigned":{unsigned}}}')
    event: JsonDict = orjson.loads(shown.json) if isinstance(shown, StoredJson) else dict(shown)
    unsigned_before = event.get("unsigned")
    event["unsigned"] = {**(unsigned_before if isinstance(unsigned_before, dict) else {}),
                         "m.relations": relations}
    return event


def shown_timeline(events: Sequence[StoredEvent], serialize: EventSerializer, txn_ids: Mapping[str, str],
                   bundles: Mapping[str, JsonDict], sync_filter: Filter) -> list[object]:
    """
    A timeline as sync shows it: each event serialized, with its
    transaction id when this device sent it, and its bundled aggregations.
    """
    shown: list[object] = []
    for event in events:
        txn_id = txn_ids.get(event.event_id)
        shown_event = serialize(event) if txn_id is None else with_transaction_id(event, txn_id, sync_filter)
        bundle = bundles.get(event.event_id)
        shown.append(shown_event if bundle is None else with_relations(shown_event, bundle))
    return shown
