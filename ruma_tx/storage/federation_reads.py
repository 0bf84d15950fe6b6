"""
Reading rooms' history over federation (schema 030): what other servers
may see, walks of the DAG, and history fetched from other servers put into
the line. SQL only.
"""
from __future__ import annotations

from typing import Sequence

import orjson

from ruma_tx.matrix.stream_token import OUTSIDE_LINE
from ruma_tx.services.ports.events import NewEvent
from ruma_tx.services.ports.federation_reads import DagEvent
from ruma_tx.services.ports.room_dag import OUTLIER
from ruma_tx.storage.database import Database, Transaction
from ruma_tx.storage.events import EVENT_ROW_COLUMNS, event_row
from ruma_tx.storage.relations import insert_relations
from ruma_tx.storage.search import index_events
from ruma_tx.storage.user_ids import server_of_column

#: The server of the user id in C{state_key} (as the indexes of schema 027 have it).
_MEMBER_SERVER = server_of_column("state_key")

#: The events among C{start} and those they reach through prev_events (ids,
#: or C{[id, hashes]} pairs up to room version 2), not past C{stop} nor
#: past C{span} below the deepest of C{start}.
_WALK = (
    "WITH RECURSIVE bound AS ("
    "  SELECT COALESCE(max(depth), 0) - %(span)s AS depth FROM events"
    "  WHERE room_id = %(room)s AND event_id = ANY(%(start)s)),"
    " walk(event_id) AS ("
    "  SELECT unnest(%(start)s::text[])"
    "  UNION SELECT CASE jsonb_typeof(prev) WHEN 'array' THEN prev ->> 0 ELSE prev #>> '{}' END"
    "  FROM walk w JOIN events e ON e.event_id = w.event_id CROSS JOIN bound b"
    "  CROSS JOIN LATERAL jsonb_array_elements(CASE jsonb_typeof(e.pdu::jsonb -> 'prev_events')"
    "   WHEN 'array' THEN e.pdu::jsonb -> 'prev_events' ELSE '[]'::jsonb END) prev"
    "  WHERE e.room_id = %(room)s AND e.depth > b.depth AND NOT (w.event_id = ANY(%(stop)s)))"
    " SELECT e.event_id, e.stream_ordering, e.pdu FROM walk w JOIN events e ON e.event_id = w.event_id"
    " WHERE e.room_id = %(room)s AND NOT (e.event_id = ANY(%(stop)s))"
)


class FederationReadStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def server_in_room(self, room_id: str, server_name: str) -> bool:
        row = await self._db.fetch_one(
            "SELECT 1 FROM current_state WHERE room_id = %s AND type = 'm.room.member'"
            f" AND membership = 'join' AND {_MEMBER_SERVER} = %s LIMIT 1", (room_id, server_name))
        return row is not None

    async def get_server_timelines(self, room_id: str, server_name: str
                                   ) -> tuple[list[tuple[int, str, str | None]], list[tuple[int, str | None]]]:
        rows = await self._db.fetch_all(
            "SELECT stream_ordering, type, state_key, membership,"
            " CASE WHEN type = 'm.room.history_visibility'"
            "  THEN pdu::jsonb -> 'content' ->> 'history_visibility' END"
            " FROM events WHERE room_id = %s AND ("
            f"  (type = 'm.room.member' AND {_MEMBER_SERVER} = %s)"
            "  OR (type = 'm.room.history_visibility' AND state_key = ''))"
            " ORDER BY stream_ordering",
            (room_id, server_name))
        members = [(position, user_id, membership) for position, kind, user_id, membership, _ in rows
                   if kind == "m.room.member"]
        visibilities = [(position, visibility) for position, kind, _, _, visibility in rows
                        if kind != "m.room.member"]
        return members, visibilities

    async def walk_prev_events(self, room_id: str, start: Sequence[str], *, depth_span: int,
                               stop: Sequence[str] = ()) -> dict[str, DagEvent]:
        rows = await self._db.fetch_all(
            _WALK, {"span": depth_span, "room": room_id, "start": list(start), "stop": list(stop)})
        return {event_id: DagEvent(event_id, position, orjson.loads(pdu)) for event_id, position, pdu in rows}

    async def get_oldest_events(self, room_id: str, limit: int) -> list[DagEvent]:
        rows = await self._db.fetch_all(
            "SELECT event_id, stream_ordering, pdu FROM events WHERE room_id = %s AND stream_ordering > %s"
            " ORDER BY stream_ordering LIMIT %s", (room_id, OUTSIDE_LINE, limit))
        return [DagEvent(event_id, position, orjson.loads(pdu)) for event_id, position, pdu in rows]

    async def persist_backfilled(self, room_id: str, events: Sequence[NewEvent]) -> int:
        async def persist(txn: Transaction) -> int:
            rows = await txn.fetch_all(
                "SELECT e.event_id, s.status FROM events e LEFT JOIN event_dag_status s USING (event_id)"
                " WHERE e.event_id = ANY(%s)", ([event.event_id for event in events],))
            known = dict(rows)
            added = [event for event in events if known.get(event.event_id, OUTLIER) == OUTLIER]
            if not added:
                return 0
            numbers = await txn.fetch_all("SELECT nextval('backfill_stream') FROM generate_series(1, %s)",
                                          (len(added),))
            positions = sorted((number for number, in numbers), reverse=True)   # the newest highest
            new = [(event, position) for event, position in zip(added, positions) if event.event_id not in known]
            await txn.insert_many("events", EVENT_ROW_COLUMNS, [event_row(e, p) for e, p in new],
                                  "ON CONFLICT (event_id) DO NOTHING")
            await _move_outliers(txn, room_id, [(e, p) for e, p in zip(added, positions) if e.event_id in known])
            await insert_relations(txn, [e for e, _ in new], [p for _, p in new])
            await index_events(txn, added, positions)
            return len(added)

        return await self._db.transaction("persist_backfilled", persist)


async def _move_outliers(txn: Transaction, room_id: str, moved: Sequence[tuple[NewEvent, int]]) -> None:
    """Outliers into the line at their positions (the current state they are part of follows them)."""
    if not moved:
        return
    event_ids = [event.event_id for event, _ in moved]
    await txn.execute(
        "UPDATE events e SET stream_ordering = m.position, client_json = m.client_json"
        " FROM unnest(%s::text[], %s::bigint[], %s::text[]) AS m(event_id, position, client_json)"
        " WHERE e.event_id = m.event_id",
        (event_ids, [position for _, position in moved], [event.client_json for event, _ in moved]))
    await txn.execute("DELETE FROM event_dag_status WHERE event_id = ANY(%s)", (event_ids,))
    await txn.execute(
        "UPDATE current_state c SET stream_ordering = e.stream_ordering FROM events e"
        " WHERE c.room_id = %s AND c.event_id = e.event_id AND e.event_id = ANY(%s)", (room_id, event_ids))
