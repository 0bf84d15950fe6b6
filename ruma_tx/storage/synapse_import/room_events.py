"""
The room events step of C{ruma-admin import-synapse}: every event of the
imported rooms, with its event id and JSON unchanged (signatures and
hashes stay valid), written through the functions that store events
received from other servers, with Synapse's decisions trusted (no auth
rule is checked again):

  - accepted events take stream positions, room by room in the order of
    Synapse's timeline (depth, then Synapse's stream order), with their
    relations and search text; a room's positions follow each other, and
    rooms come in the order of their last activity, the most recent last;
  - outliers and soft-failed events go outside the timeline, rejected
    events among the rejected (schema 026);
  - in a room another server takes part in, the state after each event is
    Synapse's (see L{ruma_tx.storage.synapse_import.room_state});
  - redactions Synapse applies redact their targets here too;
  - once a room's events are in, its current state and forward
    extremities become Synapse's.

Notification counts start at zero: no push action is computed for
imported events.

A batch is a run of one room's events, committed with the checkpoint
C{[room_id, depth, stream order]} of its last event.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import AsyncIterator, Sequence

from ruma_tx.matrix.room_versions import ROOM_VERSIONS
from ruma_tx.matrix.synapse_events import canonical_pdu_json, imported_pdu, internal_flags, is_soft_failed
from ruma_tx.matrix.sync import sync_event_json
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.ports.events import NewEvent
from ruma_tx.services.ports.room_dag import ACCEPTED, OUTLIER, REJECTED, SOFT_FAILED, Outlier
from ruma_tx.storage.database import Transaction
from ruma_tx.storage.events import insert_events
from ruma_tx.storage.positions import max_stream_position
from ruma_tx.storage.room_dag import insert_outside_line
from ruma_tx.storage.synapse_import import StepContext, count
from ruma_tx.storage.synapse_import.room_relations import (
    Redaction,
    apply_redactions,
    event_relations,
    read_redactions,
)
from ruma_tx.storage.synapse_import.room_state import (
    StateGroupCopy,
    TargetRoom,
    finish_room,
    read_state_groups,
    write_state_groups,
)

#: A room's events in Synapse, in timeline order (continued with a key condition).
_EVENTS = (
    "SELECT e.topological_ordering, e.stream_ordering, e.event_id, e.outlier, j.json, j.internal_metadata,"
    " x.reason, g.state_group FROM events e JOIN event_json j ON j.event_id = e.event_id"
    " LEFT JOIN rejections x ON x.event_id = e.event_id"
    " LEFT JOIN event_to_state_groups g ON g.event_id = e.event_id WHERE e.room_id = %s"
)

#: The events imported: those (with their JSON) of the rooms the rooms step imported.
_SOURCE_EVENTS = "events e JOIN event_json j ON j.event_id = e.event_id"
_OF_ROOMS = "e.room_id IN (SELECT room_id FROM rooms)"


@dataclass(frozen=True)
class SourceEvent:
    """
    One of Synapse's events, as it is to be stored.

    @ivar place: where it goes: C{ACCEPTED} (the timeline), C{OUTLIER},
        C{SOFT_FAILED} or C{REJECTED} (C{ruma_tx.services.ports.room_dag}).
    @ivar state_group: Synapse's state group of the state after it.
    """

    event_id: str
    pdu: JsonDict
    pdu_json: str
    place: str
    rejection: str | None
    state_group: int | None


def source_event(row: tuple, out_of_band: bool) -> SourceEvent:
    """An C{_EVENTS} row; in a room known only by memberships, every event is in the timeline (schema 028)."""
    _, _, event_id, outlier, event_json, metadata, rejection, state_group = row
    pdu = imported_pdu(event_json)
    if rejection is not None:
        place = REJECTED
    elif out_of_band:
        place = ACCEPTED
    elif outlier:
        place = OUTLIER
    elif is_soft_failed(internal_flags(metadata)):
        place = SOFT_FAILED
    else:
        place = ACCEPTED
    return SourceEvent(event_id, pdu, canonical_pdu_json(pdu), place, rejection, state_group)


class RoomEventsStep:
    name = "room_events"

    def __init__(self, context: StepContext) -> None:
        self._context = context
        self._next_position = 0

    async def source_count(self) -> int:
        return await count(self._context.source, _SOURCE_EVENTS, _OF_ROOMS)

    async def imported_count(self) -> int:
        row = await self._context.database.fetch_one(
            "SELECT (SELECT COUNT(*) FROM events) + (SELECT COUNT(*) FROM rejected_events)")
        return int(row[0]) if row else 0

    async def batches(self, checkpoint: str | None) -> AsyncIterator[tuple[int, str]]:
        context = self._context
        rooms = await self._rooms()
        after = json.loads(checkpoint) if checkpoint is not None else None
        start = next((index for index, room in enumerate(rooms) if after and room.room_id == after[0]), 0)
        self._next_position = await max_stream_position(context.database) + 1
        for room in rooms[start:]:
            key = after[1:] if after is not None and after[0] == room.room_id else None
            while True:
                sql, args = _EVENTS, [room.room_id]
                if key is not None:
                    sql += " AND (e.topological_ordering, e.stream_ordering) > (%s, %s)"
                    args += key
                rows = await context.source.fetch_all(
                    sql + f" ORDER BY e.topological_ordering, e.stream_ordering LIMIT {int(context.batch_size)}",
                    args)
                if not rows:
                    break
                await self._import(room, [source_event(row, room.out_of_band) for row in rows])
                key = list(rows[-1][:2])
                yield len(rows), json.dumps([room.room_id, *key])
                if len(rows) < context.batch_size:
                    break
            await finish_room(context.source, context.database, room)

    async def _rooms(self) -> list[TargetRoom]:
        """The imported rooms, in the order of their last activity in Synapse (the latest last)."""
        activity = await self._context.source.fetch_all(
            "SELECT room_id, MAX(stream_ordering) FROM events GROUP BY room_id ORDER BY 2, 1")
        targets = {row[0]: TargetRoom(*row) for row in await self._context.database.fetch_all(
            "SELECT room_id, room_version, federated, out_of_band FROM rooms")}
        return [targets[room_id] for room_id, _ in activity if room_id in targets]

    async def _import(self, room: TargetRoom, events: list[SourceEvent]) -> None:
        """One batch: the events not stored yet (a batch may be imported again after a crash)."""
        context = self._context
        ids = [event.event_id for event in events]
        known = {row[0] for row in await context.database.fetch_all(
            "SELECT event_id FROM events WHERE event_id = ANY(%s)"
            " UNION ALL SELECT event_id FROM rejected_events WHERE event_id = ANY(%s)", (ids, ids))}
        events = [event for event in events if event.event_id not in known]
        snapshots: list[tuple[str, int]] = []
        if room.federated:
            snapshots = [(e.event_id, e.state_group) for e in events
                         if e.place in (ACCEPTED, SOFT_FAILED) and e.state_group is not None]
        copy = await read_state_groups(context.source, context.database, {group for _, group in snapshots})
        redactions = await read_redactions(context.source, room.room_id, [e.event_id for e in events])
        first = self._next_position
        await context.database.transaction("import_room_events", _write, room, events, copy, snapshots,
                                           redactions, first)
        self._next_position = first + sum(1 for event in events if event.place == ACCEPTED)


async def _write(txn: Transaction, room: TargetRoom, events: Sequence[SourceEvent], copy: StateGroupCopy,
                 snapshots: Sequence[tuple[str, int]], redactions: Sequence[Redaction], first: int) -> None:
    room_id = room.room_id
    await txn.insert_many("rejected_events", ("event_id", "room_id", "pdu", "reason"),
                          [(e.event_id, room_id, e.pdu_json, e.rejection) for e in events if e.place == REJECTED],
                          "ON CONFLICT DO NOTHING")
    for place in (OUTLIER, SOFT_FAILED):
        await insert_outside_line(txn, room_id, [Outlier(e.event_id, e.pdu, e.pdu_json)
                                                 for e in events if e.place == place], place)
    await write_state_groups(txn, room_id, copy, snapshots)
    line = [e for e in events if e.place == ACCEPTED]
    positions = range(first, first + len(line))
    relations = await event_relations(txn, room_id, [(e.event_id, e.pdu) for e in line], positions)
    await insert_events(txn, [
        NewEvent(e.event_id, room_id, e.pdu, e.pdu_json, depth=e.pdu["depth"], relation=relation,
                 client_json=sync_event_json(e.pdu, e.event_id, room_id))
        for e, relation in zip(line, relations)], positions)
    await apply_redactions(txn, room_id, ROOM_VERSIONS[room.room_version], redactions)
