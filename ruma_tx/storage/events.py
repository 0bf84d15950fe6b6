"""Rooms, events and room state. SQL only; the rules live in ruma_tx.matrix."""
from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Sequence

import psycopg2.errors

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.relations import thread_key
from ruma_tx.services.ports.directory import AliasExists
from ruma_tx.services.ports.events import (
    DuplicateTransaction,
    NewEvent,
    NewRoom,
    RoomExists,
    RoomHead,
)
from ruma_tx.services.ports.room_dag import OUTLIER, DagUpdate, Outlier, StateAfter
from ruma_tx.storage.database import Database, Transaction
from ruma_tx.storage.event_rows import event_columns, stored_event
from ruma_tx.storage.relations import forget_relation, insert_relations, message_relation_ctes
from ruma_tx.storage.room_dag import apply_current_state, insert_outside_line, record_dag, record_resolution
from ruma_tx.storage.search import index_events, message_search_cte, unindex_event
from ruma_tx.storage.user_directory import record_joined_room_publicity, record_room_publicity

_COLUMNS = event_columns()


EVENT_ROW_COLUMNS = ("stream_ordering", "event_id", "room_id", "type", "state_key", "sender",
                      "origin_server_ts", "depth", "membership", "pdu", "client_json")

#: Moves the read position of the sender's own event's thread forward only.
_READ_POSITION_CONFLICT = (
    " ON CONFLICT (user_id, room_id, thread_id) DO UPDATE SET stream_ordering ="
    " GREATEST(push_thread_read_position.stream_ordering, EXCLUDED.stream_ordering)"
)


def event_row(event: NewEvent, position: int) -> tuple:
    """The values of L{EVENT_ROW_COLUMNS} for an event stored at C{position}."""
    pdu = event.pdu
    membership = pdu["content"].get("membership") if pdu["type"] == "m.room.member" else None
    return (position, event.event_id, event.room_id, pdu["type"], pdu.get("state_key"), pdu["sender"],
            pdu["origin_server_ts"], event.depth, membership, event.pdu_json, event.client_json)


async def insert_events(txn: Transaction, events: Sequence[NewEvent], positions: Sequence[int]) -> None:
    """
    Insert events of one room, the current state they set, their relations
    and push actions (and in a federated room, their DAG bookkeeping).
    """
    rows = [event_row(event, position) for event, position in zip(events, positions)]
    await txn.insert_many("events", EVENT_ROW_COLUMNS, rows)
    state: dict[tuple[str, str], tuple] = {}   # the last event of each key wins
    for event, (position, event_id, room_id, event_type, state_key, _, _, _, membership, _, _) in zip(events, rows):
        if event.dag is not None:
            await record_dag(txn, room_id, event_id, event.dag)
            if event.dag.current_state is not None:
                await apply_current_state(txn, room_id, event.dag.current_state)
                own_key = (event_type, state_key) if state_key is not None else None
                await record_resolution(txn, room_id, position, own_key, event.dag.current_state)
                continue
        if state_key is not None:
            state[(event_type, state_key)] = (room_id, event_type, state_key, event_id, position, membership)
    await txn.insert_many(
        "current_state", ("room_id", "type", "state_key", "event_id", "stream_ordering", "membership"),
        list(state.values()),
        "ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = EXCLUDED.event_id,"
        " stream_ordering = EXCLUDED.stream_ordering, membership = EXCLUDED.membership",
    )
    await insert_relations(txn, events, positions)
    await index_events(txn, events, positions)
    await record_room_publicity(txn, events)
    actions = [(user_id, event.room_id, position, notify, highlight, event.push.detailed.get(user_id),
                thread_key(event.relation))
               for event, position in zip(events, positions)
               for user_id, notify, highlight in event.push.actions]
    await txn.insert_many("event_push_actions",
                          ("user_id", "room_id", "stream_ordering", "notify", "highlight", "actions",
                           "thread_id"),
                          actions, "ON CONFLICT DO NOTHING")
    read: dict[tuple[str, str], tuple] = {}
    for event, position in zip(events, positions):
        if event.push.read_by is not None:
            thread = thread_key(event.relation)
            read[(event.push.read_by, thread)] = (event.push.read_by, event.room_id, thread, position)
    await txn.insert_many("push_thread_read_position", ("user_id", "room_id", "thread_id", "stream_ordering"),
                          list(read.values()), _READ_POSITION_CONFLICT)


async def apply_redaction(txn: Transaction, redaction: NewEvent) -> None:
    """
    Replace the redacted event by its pruned form and forget its push
    actions and its relation. Redacted content is dropped at once
    (Synapse keeps it a while for moderators; we keep nothing we were
    asked to remove).
    """
    rows = await txn.fetch_all(
        "UPDATE events SET redacted_by = %s, pdu = %s, client_json = %s"
        " WHERE event_id = %s AND room_id = %s AND redacted_by IS NULL RETURNING stream_ordering",
        (redaction.event_id, redaction.redacted_pdu_json, redaction.redacted_client_json, redaction.redacts,
         redaction.room_id),
    )
    for (position,) in rows:
        await txn.execute(
            "DELETE FROM event_push_actions WHERE room_id = %s AND stream_ordering = %s",
            (redaction.room_id, position),
        )
        assert redaction.redacts is not None  # the event updated is the one it redacts
        await forget_relation(txn, redaction.redacts)
        await unindex_event(txn, position)


class EventStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_room_head(self, room_id: str) -> RoomHead | None:
        row = await self._db.fetch_one(
            "SELECT r.room_version, e.event_id, COALESCE(e.depth, 0), r.federated, r.out_of_band FROM rooms r"
            " LEFT JOIN LATERAL (SELECT event_id, depth FROM events WHERE room_id = r.room_id"
            "  ORDER BY stream_ordering DESC LIMIT 1) e ON TRUE"
            " WHERE r.room_id = %s",
            (room_id,),
        )
        return RoomHead(*row) if row else None

    async def persist_event(self, event: NewEvent, position: int, now_ms: int) -> None:
        """
        Store an event at stream position C{position}, in one transaction
        with what it changes: current state for a state event, the redacted
        event's pruned form for a redaction, its transaction id, and its
        push actions.

        @raise DuplicateTransaction: the transaction id already names an event.
        """
        if event.pdu.get("state_key") is None and event.redacted_pdu_json is None and event.dag is None:
            await self._persist_message(event, position, now_ms)
            return

        async def persist(txn: Transaction) -> None:
            if event.txn is not None:
                row = await txn.fetch_one(
                    "INSERT INTO event_txn_ids (user_id, device_id, scope, txn_id, event_id, created_ts)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING event_id",
                    (*event.txn, event.event_id, now_ms),
                )
                if row is None:
                    existing = await txn.fetch_one(
                        "SELECT event_id FROM event_txn_ids"
                        " WHERE user_id = %s AND device_id = %s AND scope = %s AND txn_id = %s",
                        event.txn,
                    )
                    assert existing is not None  # it conflicted, and transaction ids stay
                    raise DuplicateTransaction(existing[0])
            await insert_events(txn, [event], [position])
            if event.redacted_pdu_json is not None:
                await apply_redaction(txn, event)

        try:
            await self._db.transaction("persist_event", persist)
        except psycopg2.errors.UniqueViolation:
            if event.txn is None:
                raise
            existing = await self.get_txn_event(*event.txn)
            if existing is None:
                raise
            raise DuplicateTransaction(existing) from None

    async def _persist_message(self, event: NewEvent, position: int, now_ms: int) -> None:
        """
        A message event (no state, no redaction) in one statement: its
        transaction id, the event, its relation and its push actions are
        inserted together, and nothing is when the transaction id is taken.
        """
        push = event.push
        users = [user_id for user_id, _, _ in push.actions]
        notify = [n for _, n, _ in push.actions]
        highlight = [h for _, _, h in push.actions]
        detailed = [push.detailed.get(user_id) for user_id in users]
        txn_cte, gate, txn_args = "", "", []
        if event.txn is not None:
            txn_cte = (
                "txn AS (INSERT INTO event_txn_ids (user_id, device_id, scope, txn_id, event_id, created_ts)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1), "
            )
            gate = " WHERE EXISTS (SELECT 1 FROM txn)"
            txn_args = [*event.txn, event.event_id, now_ms]
        relation_ctes, relation_args = message_relation_ctes(event, position)
        search_cte, search_args = message_search_cte(event, position)
        thread = thread_key(event.relation)
        rows = await self._db.fetch_all(
            "WITH " + txn_cte
            + f"ev AS (INSERT INTO events ({', '.join(EVENT_ROW_COLUMNS)})"
            f" SELECT {', '.join(['%s'] * len(EVENT_ROW_COLUMNS))}" + gate + " RETURNING 1),"
            + relation_ctes + search_cte +
            " actions AS (INSERT INTO event_push_actions"
            " (user_id, room_id, stream_ordering, notify, highlight, actions, thread_id)"
            " SELECT a.user_id, %s, %s, a.notify, a.highlight, a.actions, %s"
            " FROM unnest(%s::text[], %s::boolean[], %s::boolean[], %s::text[])"
            " AS a(user_id, notify, highlight, actions)"
            " WHERE EXISTS (SELECT 1 FROM ev) ON CONFLICT DO NOTHING),"
            " read_by AS (INSERT INTO push_thread_read_position (user_id, room_id, thread_id, stream_ordering)"
            " SELECT %s, %s, %s, %s WHERE %s::text IS NOT NULL AND EXISTS (SELECT 1 FROM ev)"
            + _READ_POSITION_CONFLICT + ")"
            " SELECT 1 FROM ev",
            (*txn_args, *event_row(event, position), *relation_args, *search_args, event.room_id, position,
             thread, users, notify, highlight, detailed, push.read_by, event.room_id, thread, position,
             push.read_by),
        )
        if not rows:
            # Only a taken transaction id stops the insert; transaction ids stay.
            assert event.txn is not None
            existing = await self.get_txn_event(*event.txn)
            assert existing is not None
            raise DuplicateTransaction(existing)

    async def persist_room(self, room: NewRoom, events: Sequence[NewEvent], positions: Sequence[int],
                           now_ms: int) -> None:
        """
        Store a new room with its initial events, all or nothing.

        @raise RoomExists: a room with this id is stored already.
        @raise AliasExists: C{room.alias} is taken.
        """
        async def persist(txn: Transaction) -> None:
            if not await txn.fetch_all(
                "INSERT INTO rooms (room_id, room_version, creator, created_ts, published)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                (room.room_id, room.room_version, room.creator, now_ms, room.published),
            ):
                raise RoomExists(room.room_id)
            if room.alias is not None and not await txn.fetch_all(
                "INSERT INTO room_aliases (room_alias, room_id, creator) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING RETURNING 1",
                (room.alias, room.room_id, room.creator),
            ):
                raise AliasExists(room.alias)
            await insert_events(txn, events, positions)

        await self._db.transaction("persist_room", persist)

    async def persist_joined_room(self, room: NewRoom, outliers: Sequence[Outlier],
                                  state: Mapping[tuple[str, str], str], join: NewEvent, position: int) -> None:
        """
        Store a room this server joined through another (federated from the
        start): the state and auth chain the resident server sent as
        outliers, the join event as the first event of the line with
        C{state} (the state before it) as its snapshot's base, and the
        current state: C{state} with the join.

        @raise RoomExists: the room is stored already.
        """
        async def persist(txn: Transaction) -> None:
            if not await txn.fetch_all(
                "INSERT INTO rooms (room_id, room_version, creator, created_ts, federated)"
                " VALUES (%s, %s, %s, %s, TRUE)"
                " ON CONFLICT (room_id) DO UPDATE SET out_of_band = FALSE, creator = EXCLUDED.creator"
                " WHERE rooms.out_of_band RETURNING 1",
                (room.room_id, room.room_version, room.creator, join.pdu["origin_server_ts"]),
            ):
                raise RoomExists(room.room_id)
            await insert_outside_line(txn, room.room_id, outliers, OUTLIER)
            # Before the state: whether the room is public decides its members' directory entries.
            # Only events of an empty state key say anything of that (room_publicity).
            in_state = {event_id for (_, state_key), event_id in state.items() if state_key == ""}
            await record_joined_room_publicity(
                txn, room.room_id, [o.pdu for o in outliers if o.event_id in in_state])
            key = (join.pdu["type"], join.pdu["state_key"])
            # The room's state, then the join's own key, as a local event's.
            await apply_current_state(txn, room.room_id, {k: e for k, e in state.items() if k != key})
            dag = DagUpdate(StateAfter(None, {**state, key: join.event_id}), ())
            await insert_events(txn, [replace(join, dag=dag)], [position])

        await self._db.transaction("persist_joined_room", persist)

    async def persist_out_of_band(self, room: NewRoom, event: NewEvent, position: int) -> None:
        """
        Store a membership event of a room this server is not in (see
        schema 028) at C{position}, as the user's current membership.

        @raise RoomExists: this server is in the room (its memberships come
            as PDUs).
        """
        async def persist(txn: Transaction) -> None:
            rows = await txn.fetch_all(
                "INSERT INTO rooms (room_id, room_version, creator, created_ts, federated, out_of_band)"
                " VALUES (%s, %s, %s, %s, TRUE, TRUE)"
                " ON CONFLICT (room_id) DO UPDATE SET out_of_band = TRUE WHERE rooms.out_of_band RETURNING 1",
                (room.room_id, room.room_version, room.creator, event.pdu["origin_server_ts"]),
            )
            if not rows:
                raise RoomExists(room.room_id)
            await insert_events(txn, [event], [position])

        await self._db.transaction("persist_out_of_band", persist)

    async def get_txn_event(self, user_id: str, device_id: str, scope: str, txn_id: str) -> str | None:
        row = await self._db.fetch_one(
            "SELECT event_id FROM event_txn_ids"
            " WHERE user_id = %s AND device_id = %s AND scope = %s AND txn_id = %s",
            (user_id, device_id, scope, txn_id),
        )
        return row[0] if row else None

    async def get_txn_ids(self, user_id: str, device_id: str, event_ids: list[str]) -> dict[str, str]:
        """C{event_id -> txn_id} of those events this device sent with a transaction id."""
        # By event id first (OFFSET 0 keeps it a subquery): PostgreSQL would
        # rather scan every transaction of the device, 5,000+ rows for an
        # active one, to find the few asked.
        rows = await self._db.fetch_prepared(
            "SELECT event_id, txn_id FROM (SELECT event_id, txn_id, user_id, device_id FROM event_txn_ids"
            "  WHERE event_id = ANY(%s) OFFSET 0) AS t WHERE user_id = %s AND device_id = %s",
            (event_ids, user_id, device_id),
        )
        return dict(rows)

    async def get_event(self, event_id: str) -> StoredEvent | None:
        row = await self._db.fetch_one(
            f"SELECT {_COLUMNS} FROM events WHERE event_id = %s", (event_id,)
        )
        return stored_event(row) if row else None

    async def get_state(self, room_id: str, keys: list[tuple[str, str]] | None = None, *,
                        types: list[str] | None = None) -> dict:
        """
        The room's current state: C{(type, state_key) -> StoredEvent}, all
        of it, or only C{keys}, or only events of C{types}.
        """
        if keys is not None and not keys:
            return {}
        sql = (
            f"SELECT {event_columns('e')}"
            " FROM current_state c JOIN events e ON e.event_id = c.event_id"
            " WHERE c.room_id = %s"
        )
        args: list = [room_id]
        if keys is not None:
            sql += " AND (c.type, c.state_key) IN (" + ", ".join(["(%s, %s)"] * len(keys)) + ")"
            args += [part for key in keys for part in key]
        if types is not None:
            sql += " AND c.type = ANY(%s)"
            args.append(types)
        rows = await self._db.fetch_all(sql, args)
        return {(e.type, e.state_key): e for e in map(stored_event, rows)}

    async def get_state_at(self, room_id: str, position: int, types: list[str] | None = None) -> dict:
        """The room's state as it was just after stream position C{position}."""
        sql = (
            f"SELECT DISTINCT ON (type, state_key) {_COLUMNS} FROM events"
            f" WHERE room_id = %s AND state_key IS NOT NULL AND stream_ordering <= %s"
        )
        args: list = [room_id, position]
        if types is not None:
            sql += " AND type = ANY(%s)"
            args.append(types)
        sql += " ORDER BY type, state_key, stream_ordering DESC"
        rows = await self._db.fetch_all(sql, args)
        return {(e.type, e.state_key): e for e in map(stored_event, rows)}

    async def get_members(self, room_id: str,
                          memberships: Sequence[str] = ("join", "invite")) -> dict[str, str]:
        """C{user_id -> membership} of the room's current members."""
        rows = await self._db.fetch_all(
            "SELECT state_key, membership FROM current_state"
            " WHERE room_id = %s AND type = 'm.room.member' AND membership = ANY(%s)",
            (room_id, list(memberships)),
        )
        return dict(rows)

    async def get_rooms_for_user(self, user_id: str) -> dict[str, tuple[str, int]]:
        """C{room_id -> (membership, stream_ordering)} of the user's current memberships."""
        rows = await self._db.fetch_all(
            "SELECT room_id, membership, stream_ordering FROM current_state"
            " WHERE type = 'm.room.member' AND state_key = %s",
            (user_id,),
        )
        return {room_id: (membership, position) for room_id, membership, position in rows}

    async def forget_room(self, user_id: str, room_id: str, membership_position: int) -> None:
        await self._db.execute(
            "INSERT INTO forgotten_rooms (user_id, room_id, stream_ordering) VALUES (%s, %s, %s)"
            " ON CONFLICT (user_id, room_id) DO UPDATE SET stream_ordering = EXCLUDED.stream_ordering",
            (user_id, room_id, membership_position),
        )

    async def get_forgotten_rooms(self, user_id: str) -> dict[str, int]:
        """C{room_id -> position of the membership event the user forgot}."""
        rows = await self._db.fetch_all(
            "SELECT room_id, stream_ordering FROM forgotten_rooms WHERE user_id = %s", (user_id,)
        )
        return dict(rows)

    async def get_membership_changes(self, user_id: str, after: int, upto: int) -> list[StoredEvent]:
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM events WHERE type = 'm.room.member' AND state_key = %s"
            f" AND stream_ordering > %s AND stream_ordering <= %s ORDER BY stream_ordering",
            (user_id, after, upto),
        )
        return [stored_event(row) for row in rows]

    async def get_room_events(
        self, room_id: str, *, after: int | None, upto: int, limit: int, backwards: bool = True
    ) -> list[StoredEvent]:
        """
        Events of a room with C{after < stream_ordering <= upto}, the
        C{limit} latest (or earliest, when not C{backwards}), oldest first.
        """
        order = "DESC" if backwards else "ASC"
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM events WHERE room_id = %s"
            f" AND stream_ordering > %s AND stream_ordering <= %s"
            f" ORDER BY stream_ordering {order} LIMIT %s",
            (room_id, after if after is not None else 0, upto, limit),
        )
        events = [stored_event(row) for row in rows]
        if backwards:
            events.reverse()
        return events
