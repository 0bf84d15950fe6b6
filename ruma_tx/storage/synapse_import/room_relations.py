"""
What imported events say of others: their relations (threads, edits,
reactions...), indexed as ruma_tx indexes an event received from another
server, and the redactions Synapse applies.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

from ruma_tx.matrix.errors import BadRequest
from ruma_tx.matrix.events import redacted_pdu
from ruma_tx.matrix.relations import ANNOTATION, EventRelation, ParentEvent, check_relation, relation_of
from ruma_tx.matrix.room_versions import RoomVersion
from ruma_tx.matrix.synapse_events import canonical_pdu_json, imported_pdu, internal_flags, redaction_applies
from ruma_tx.matrix.sync import sync_event_json
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.ports.events import NewEvent
from ruma_tx.services.ports.synapse_import import SynapseSource
from ruma_tx.storage.database import Transaction
from ruma_tx.storage.events import apply_redaction
from ruma_tx.storage.synapse_import.rooms import placeholders


async def event_relations(txn: Transaction, room_id: str, events: Sequence[tuple[str, JsonDict]],
                          positions: Sequence[int]) -> list[EventRelation | None]:
    """
    The relation of each of C{events} (C{(event_id, pdu)}, in order, to be
    stored at C{positions}), checked against its parent as stored or among
    the events before it; one the rules refuse is left out, as for an
    event received from another server.
    """
    declared = [relation_of(content) if isinstance(content := pdu.get("content"), dict) else None
                for _, pdu in events]
    wanted = sorted({relation.parent_id for relation in declared if relation is not None})
    if not wanted:
        return [None] * len(events)
    parents = {row[0]: ParentEvent(*row[1:]) for row in await txn.fetch_all(
        "SELECT e.event_id, e.room_id, e.stream_ordering, e.type, e.sender, e.state_key IS NOT NULL,"
        " r.rel_type, r.thread_id FROM events e LEFT JOIN event_relations r ON r.event_id = e.event_id"
        " WHERE e.event_id = ANY(%s)", (wanted,))}
    annotated = set(await txn.fetch_all(
        "SELECT parent_id, type, sender, aggregation_key FROM event_relations"
        " WHERE parent_id = ANY(%s) AND rel_type = %s", (wanted, ANNOTATION)))
    found: list[EventRelation | None] = []
    for (event_id, pdu), position, relation in zip(events, positions, declared):
        checked = None
        if relation is not None:
            annotation = (relation.parent_id, pdu["type"], pdu["sender"], relation.key)
            try:
                checked = check_relation(
                    room_id=room_id, event_type=pdu["type"], sender=pdu["sender"], state_key=pdu.get("state_key"),
                    content=pdu["content"], relation=relation, parent=parents.get(relation.parent_id),
                    already_annotated=annotation in annotated)
            except BadRequest:
                pass  # kept as an event without a relation
            if checked is not None and checked.rel_type == ANNOTATION:
                annotated.add(annotation)
        parents[event_id] = ParentEvent(room_id, position, pdu["type"], pdu["sender"], "state_key" in pdu,
                                        checked.rel_type if checked else None, checked.thread_id if checked else None)
        found.append(checked)
    return found


@dataclass(frozen=True)
class Redaction:
    """A redaction Synapse applies to its target (see L{read_redactions})."""

    event_id: str
    pdu: JsonDict
    redacts: str


async def read_redactions(source: SynapseSource, room_id: str, event_ids: Sequence[str]) -> list[Redaction]:
    """
    The redactions of the room that are among C{event_ids} or redact one
    of them, and that Synapse applies: not rejected, in the same room as
    their target, from a sender allowed to (see
    L{ruma_tx.matrix.synapse_events.redaction_applies}).
    """
    if not event_ids:
        return []
    holes = placeholders(event_ids)
    rows = await source.fetch_all(
        "SELECT r.event_id, r.redacts, j.json, j.internal_metadata, e.sender, t.sender FROM redactions r"
        " JOIN events e ON e.event_id = r.event_id JOIN event_json j ON j.event_id = r.event_id"
        " JOIN events t ON t.event_id = r.redacts AND t.room_id = e.room_id"
        " WHERE e.room_id = %s AND NOT EXISTS (SELECT 1 FROM rejections x WHERE x.event_id = r.event_id)"
        f" AND (r.event_id IN ({holes}) OR r.redacts IN ({holes}))",
        [room_id, *event_ids, *event_ids])
    return [Redaction(event_id, imported_pdu(event_json), redacts)
            for event_id, redacts, event_json, metadata, sender, target_sender in rows
            if redaction_applies(internal_flags(metadata), sender, target_sender)]


async def apply_redactions(txn: Transaction, room_id: str, room_version: RoomVersion,
                           redactions: Sequence[Redaction]) -> None:
    """
    Redact the targets of C{redactions} once both are stored, as a
    redaction stored here does; those whose other half comes in a later
    batch are applied then (a target redacted already is left alone).
    """
    if not redactions:
        return
    stored = {row[0] for row in await txn.fetch_all(
        "SELECT event_id FROM events WHERE event_id = ANY(%s)", ([r.event_id for r in redactions],))}
    targets = dict(await txn.fetch_all(
        "SELECT event_id, pdu FROM events WHERE event_id = ANY(%s) AND room_id = %s AND redacted_by IS NULL",
        ([r.redacts for r in redactions], room_id)))
    for redaction in redactions:
        target = targets.pop(redaction.redacts, None) if redaction.event_id in stored else None
        if target is None:
            continue
        pruned = redacted_pdu(json.loads(target), {**redaction.pdu, "event_id": redaction.event_id}, room_id,
                              room_version)
        await apply_redaction(txn, NewEvent(
            redaction.event_id, room_id, redaction.pdu, canonical_pdu_json(redaction.pdu), redacts=redaction.redacts,
            redacted_pdu_json=canonical_pdu_json(pruned),
            redacted_client_json=sync_event_json(pruned, redaction.redacts, room_id)))
