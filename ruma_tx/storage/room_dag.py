"""
The DAG of rooms shared with other servers (schema 026): extremities, state
snapshots, outliers, soft-failed and rejected events. SQL only.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import orjson

from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.ports.room_dag import (
    ACCEPTED,
    OUTLIER,
    REJECTED,
    SOFT_FAILED,
    DagUpdate,
    Outlier,
    StateAfter,
    StateKey,
)
from ruma_tx.storage.database import Database, Transaction

#: Deltas on deltas up to this many, then a full snapshot: reading a state
#: walks at most this many groups.
MAX_CHAIN_LENGTH = 50

#: The whole state of a group: the first value of each key along its chain.
_GROUP_STATE = (
    "WITH RECURSIVE chain(group_id, prev_group, step) AS ("
    " SELECT group_id, prev_group, 0 FROM state_groups WHERE group_id = %s"
    " UNION ALL SELECT g.group_id, g.prev_group, c.step + 1 FROM state_groups g"
    "  JOIN chain c ON g.group_id = c.prev_group)"
    " SELECT type, state_key, event_id FROM ("
    "  SELECT DISTINCT ON (s.type, s.state_key) s.type, s.state_key, s.event_id"
    "  FROM state_group_entries s JOIN chain c ON s.group_id = c.group_id"
    "  ORDER BY s.type, s.state_key, c.step) latest WHERE event_id IS NOT NULL"
)


async def group_state(txn: Transaction | Database, group_id: int) -> dict[StateKey, str]:
    rows = await txn.fetch_all(_GROUP_STATE, (group_id,))
    return {(event_type, state_key): event_id for event_type, state_key, event_id in rows}


async def store_state_after(txn: Transaction, room_id: str, event_id: str, state: StateAfter) -> None:
    """
    Record the state after C{event_id}: the group of C{state.base} when
    nothing changes, else a delta on it (or a full snapshot when there is
    no base or its chain is long).
    """
    base = None
    if state.base is not None:
        base = await txn.fetch_one(
            "SELECT g.group_id, g.chain_length FROM event_state e JOIN state_groups g USING (group_id)"
            " WHERE e.event_id = %s", (state.base,))
        if base is None:
            raise LookupError(f"no state snapshot after {state.base}")
    if base is not None and not state.changes:
        group_id = base[0]
    else:
        entries: Mapping[StateKey, str | None] = state.changes
        prev_group, length = None, 0
        if base is not None and base[1] < MAX_CHAIN_LENGTH:
            prev_group, length = base[0], base[1] + 1
        elif base is not None:
            full: dict[StateKey, str | None] = dict(await group_state(txn, base[0]))
            full.update(state.changes)
            entries = {key: value for key, value in full.items() if value is not None}
        row = await txn.fetch_one(
            "INSERT INTO state_groups (room_id, prev_group, chain_length) VALUES (%s, %s, %s)"
            " RETURNING group_id", (room_id, prev_group, length))
        assert row is not None
        group_id = row[0]
        await txn.insert_many("state_group_entries", ("group_id", "type", "state_key", "event_id"),
                              [(group_id, t, k, e) for (t, k), e in entries.items()])
    await txn.execute("INSERT INTO event_state (event_id, group_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                      (event_id, group_id))


async def record_dag(txn: Transaction, room_id: str, event_id: str, dag: DagUpdate) -> None:
    """The event's snapshot, and it replacing C{dag.replaces} as a forward extremity."""
    await store_state_after(txn, room_id, event_id, dag.state_after)
    if dag.replaces:
        await txn.execute("DELETE FROM room_extremities WHERE room_id = %s AND event_id = ANY(%s)",
                          (room_id, list(dag.replaces)))
    await txn.execute("INSERT INTO room_extremities (room_id, event_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                      (room_id, event_id))


async def apply_current_state(txn: Transaction, room_id: str, changes: Mapping[StateKey, str | None]) -> None:
    """Set current_state's keys to the (stored) events given, delete those given C{None}."""
    removed = [key for key, event_id in changes.items() if event_id is None]
    for event_type, state_key in removed:
        await txn.execute("DELETE FROM current_state WHERE room_id = %s AND type = %s AND state_key = %s",
                          (room_id, event_type, state_key))
    event_ids = [event_id for event_id in changes.values() if event_id is not None]
    if event_ids:
        await txn.execute(
            "INSERT INTO current_state (room_id, type, state_key, event_id, stream_ordering, membership)"
            " SELECT room_id, type, state_key, event_id, stream_ordering, membership FROM events"
            " WHERE event_id = ANY(%s) AND state_key IS NOT NULL"
            " ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = EXCLUDED.event_id,"
            " stream_ordering = EXCLUDED.stream_ordering, membership = EXCLUDED.membership",
            (event_ids,))


async def record_resolution(txn: Transaction, room_id: str, position: int, own_key: StateKey | None,
                            changes: Mapping[StateKey, str | None]) -> None:
    """Keep the keys other than C{own_key} that resolution set at C{position} (schema 033), for /sync."""
    rows = [(room_id, position, event_type, state_key, event_id)
            for (event_type, state_key), event_id in changes.items()
            if event_id is not None and (event_type, state_key) != own_key]
    await txn.insert_many("resolved_state", ("room_id", "stream_ordering", "type", "state_key", "event_id"), rows)


#: Outliers per INSERT: a joined room's 10,000 state events as one statement
#: would be a SQL text of ~9 MB (and all their parameters) at once.
OUTLIERS_PER_INSERT = 500


async def insert_outside_line(txn: Transaction, room_id: str, events: Sequence[Outlier], status: str) -> None:
    """Store events at negative positions (clients never see them), with their status."""
    for start in range(0, len(events), OUTLIERS_PER_INSERT):
        await _insert_outliers(txn, room_id, events[start:start + OUTLIERS_PER_INSERT], status)


async def _insert_outliers(txn: Transaction, room_id: str, events: Sequence[Outlier], status: str) -> None:
    rows = await txn.fetch_all("SELECT nextval('outlier_stream') FROM generate_series(1, %s)", (len(events),))
    event_rows = []
    for (position,), event in zip(rows, events):
        pdu = event.pdu
        membership = pdu["content"].get("membership") if pdu["type"] == "m.room.member" else None
        event_rows.append((position, event.event_id, room_id, pdu["type"], pdu.get("state_key"), pdu["sender"],
                           pdu["origin_server_ts"], pdu["depth"], membership, event.pdu_json))
    await txn.insert_many("events", ("stream_ordering", "event_id", "room_id", "type", "state_key", "sender",
                                     "origin_server_ts", "depth", "membership", "pdu"),
                          event_rows, "ON CONFLICT (event_id) DO NOTHING")
    await txn.insert_many("event_dag_status", ("event_id", "room_id", "status"),
                          [(event.event_id, room_id, status) for event in events], "ON CONFLICT DO NOTHING")


class DagStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def mark_federated(self, room_id: str) -> bool:
        """
        Make a local room federated: its last event becomes its one forward
        extremity, with the current state as its snapshot (call it under
        the room's lock, so that nothing is sent meanwhile).

        @return: whether it was not federated yet.
        """
        async def mark(txn: Transaction) -> bool:
            if not await txn.fetch_all(
                    "UPDATE rooms SET federated = TRUE WHERE room_id = %s AND NOT federated RETURNING 1",
                    (room_id,)):
                return False
            last = await txn.fetch_one(
                "SELECT event_id FROM events WHERE room_id = %s AND stream_ordering > 0"
                " ORDER BY stream_ordering DESC LIMIT 1", (room_id,))
            if last is None:
                return True
            rows = await txn.fetch_all(
                "SELECT type, state_key, event_id FROM current_state WHERE room_id = %s", (room_id,))
            await record_dag(txn, room_id, last[0],
                             DagUpdate(StateAfter(None, {(t, k): e for t, k, e in rows}), ()))
            return True

        return await self._db.transaction("mark_federated", mark)

    async def get_extremities(self, room_id: str) -> list[tuple[str, int]]:
        """C{(event_id, depth)} of the room's forward extremities, deepest first."""
        rows = await self._db.fetch_all(
            "SELECT x.event_id, e.depth FROM room_extremities x JOIN events e USING (event_id)"
            " WHERE x.room_id = %s ORDER BY e.depth DESC, x.event_id", (room_id,))
        return [(event_id, depth) for event_id, depth in rows]

    async def get_statuses(self, event_ids: Sequence[str]) -> dict[str, str]:
        """Of those events that are known, where each stands (ports.room_dag: ACCEPTED ... REJECTED)."""
        rows = await self._db.fetch_all(
            "SELECT e.event_id, COALESCE(s.status, %s) FROM events e"
            " LEFT JOIN event_dag_status s USING (event_id) WHERE e.event_id = ANY(%s)"
            " UNION ALL SELECT event_id, %s FROM rejected_events WHERE event_id = ANY(%s)",
            (ACCEPTED, list(event_ids), REJECTED, list(event_ids)))
        return dict(rows)

    async def get_pdus(self, event_ids: Sequence[str]) -> dict[str, JsonDict]:
        """The PDUs of those events that are stored and not rejected."""
        rows = await self._db.fetch_all(
            "SELECT event_id, pdu FROM events WHERE event_id = ANY(%s)", (list(event_ids),))
        return {event_id: orjson.loads(pdu) for event_id, pdu in rows}

    async def get_auth_chain_pdus(self, event_ids: Sequence[str]) -> dict[str, JsonDict]:
        """The PDUs of the events and of their stored auth chains."""
        rows = await self._db.fetch_all(
            # Rooms v1-2 cite [event_id, hashes] pairs, later ones ids.
            "WITH RECURSIVE chain(event_id) AS (SELECT unnest(%s::text[])"
            " UNION SELECT CASE jsonb_typeof(a) WHEN 'array' THEN a ->> 0 ELSE a #>> '{}' END"
            "  FROM chain c JOIN events e ON e.event_id = c.event_id,"
            "  jsonb_array_elements(e.pdu::jsonb -> 'auth_events') AS a)"
            " SELECT e.event_id, e.pdu FROM chain c JOIN events e ON e.event_id = c.event_id",
            (list(event_ids),))
        return {event_id: orjson.loads(pdu) for event_id, pdu in rows}

    async def get_state_after(self, event_ids: Sequence[str]) -> dict[str, dict[StateKey, str]]:
        """The state after each of those events that has a snapshot."""
        rows = await self._db.fetch_all(
            "SELECT event_id, group_id FROM event_state WHERE event_id = ANY(%s)", (list(event_ids),))
        states: dict[int, dict[StateKey, str]] = {}
        for _, group_id in rows:
            if group_id not in states:
                states[group_id] = await group_state(self._db, group_id)
        return {event_id: states[group_id] for event_id, group_id in rows}

    async def get_current_state_ids(self, room_id: str) -> dict[StateKey, str]:
        rows = await self._db.fetch_all(
            "SELECT type, state_key, event_id FROM current_state WHERE room_id = %s", (room_id,))
        return {(t, k): e for t, k, e in rows}

    async def store_outliers(self, room_id: str, events: Sequence[Outlier]) -> None:
        async def store(txn: Transaction) -> None:
            await insert_outside_line(txn, room_id, events, OUTLIER)

        await self._db.transaction("store_outliers", store)

    async def store_rejected(self, room_id: str, event_id: str, pdu_json: str, reason: str) -> None:
        await self._db.execute(
            "INSERT INTO rejected_events (event_id, room_id, pdu, reason) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING", (event_id, room_id, pdu_json, reason))

    async def store_soft_failed(self, event: Outlier, room_id: str, state_after: StateAfter) -> None:
        """A soft-failed event: in the DAG with its snapshot, but neither shown nor an extremity."""
        async def store(txn: Transaction) -> None:
            await insert_outside_line(txn, room_id, [event], SOFT_FAILED)
            await store_state_after(txn, room_id, event.event_id, state_after)

        await self._db.transaction("store_soft_failed", store)
