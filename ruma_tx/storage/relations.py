"""
The relations index (schema C{020_relations.sql}): one row per event
carrying a well-formed relation, written in the event's own transaction,
and the threads of each room by latest activity. SQL only; the rules live
in L{ruma_tx.matrix.relations} and L{ruma_tx.services.relations}.

The functions at module level are the parts of storing and redacting an
event that touch these tables (L{ruma_tx.storage.events} calls them);
L{RelationStore} answers the use cases.
"""
from __future__ import annotations

from typing import Sequence

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.relations import ANNOTATION, REFERENCE, REPLACE, THREAD, ParentEvent
from ruma_tx.services.ports.events import NewEvent
from ruma_tx.services.ports.relations import Aggregates, ChildrenQuery, ThreadAggregate
from ruma_tx.storage.database import Database, Transaction
from ruma_tx.storage.event_rows import event_columns, stored_event
from ruma_tx.storage.history import ranges_clause

_RELATION_COLUMNS = ("event_id", "parent_id", "parent_stream_ordering", "rel_type", "room_id",
                     "stream_ordering", "type", "sender", "aggregation_key", "thread_id", "valid")

_THREAD_COLUMNS = ("room_id", "thread_id", "latest_event_id", "latest_stream_ordering")

#: A thread's latest reply only moves forward.
_THREAD_CONFLICT = (
    "ON CONFLICT (room_id, thread_id) DO UPDATE SET latest_event_id = EXCLUDED.latest_event_id,"
    " latest_stream_ordering = EXCLUDED.latest_stream_ordering"
    " WHERE threads.latest_stream_ordering < EXCLUDED.latest_stream_ordering"
)

_EVENT_COLUMN_COUNT = len(event_columns().split(", "))

#: Up to this many events' aggregations are looked up event by event;
#: more (a /sync of many rooms asks for thousands) with one scan of each
#: room's span of positions, which costs far less than a probe per event.
_PROBED_PARENTS = 100


def _relation_row(event: NewEvent, position: int) -> tuple:
    relation = event.relation
    assert relation is not None
    pdu = event.pdu
    return (event.event_id, relation.parent_id, relation.parent_position, relation.rel_type, event.room_id,
            position, pdu["type"], pdu["sender"], relation.key, relation.thread_id, relation.valid)


def message_relation_ctes(event: NewEvent, position: int) -> tuple[str, list]:
    """
    For the one statement that stores a message (see
    C{EventStore._persist_message}): CTEs inserting its relation row and,
    for a threaded reply, its thread's latest activity, each only if the
    statement's C{ev} CTE inserted the event. Empty for an event without
    a relation.
    """
    if event.relation is None:
        return "", []
    placeholders = ", ".join(["%s"] * len(_RELATION_COLUMNS))
    sql = (f" relation AS (INSERT INTO event_relations ({', '.join(_RELATION_COLUMNS)})"
           f" SELECT {placeholders} WHERE EXISTS (SELECT 1 FROM ev)),")
    args: list = list(_relation_row(event, position))
    if event.relation.rel_type == THREAD:
        sql += (f" thread AS (INSERT INTO threads ({', '.join(_THREAD_COLUMNS)})"
                f" SELECT %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM ev) {_THREAD_CONFLICT}),")
        args += [event.room_id, event.relation.parent_id, event.event_id, position]
    return sql, args


async def insert_relations(txn: Transaction, events: Sequence[NewEvent], positions: Sequence[int]) -> None:
    """Index the relations of events stored in C{txn} (no statement when none has one)."""
    rows = [_relation_row(event, position) for event, position in zip(events, positions)
            if event.relation is not None]
    await txn.insert_many("event_relations", _RELATION_COLUMNS, rows)
    latest: dict[tuple[str, str], tuple] = {}   # the batch's last reply of each thread wins
    for event_id, parent_id, _, rel_type, room_id, position, *_ in rows:
        if rel_type == THREAD:
            latest[(room_id, parent_id)] = (room_id, parent_id, event_id, position)
    await txn.insert_many("threads", _THREAD_COLUMNS, list(latest.values()), _THREAD_CONFLICT)


async def forget_relation(txn: Transaction, event_id: str) -> None:
    """
    A redacted event loses its relation (no room version keeps
    C{m.relates_to} through redaction): drop its row, and move its
    thread's latest activity back to the reply before it (or drop a
    thread left without replies).
    """
    row = await txn.fetch_one(
        "DELETE FROM event_relations WHERE event_id = %s RETURNING room_id, parent_id, rel_type", (event_id,))
    if row is None or row[2] != THREAD:
        return
    room_id, root, _ = row
    latest = await txn.fetch_one(
        "SELECT event_id, stream_ordering FROM event_relations WHERE parent_id = %s AND rel_type = %s"
        " ORDER BY stream_ordering DESC LIMIT 1", (root, THREAD))
    if latest is None:
        await txn.execute("DELETE FROM threads WHERE room_id = %s AND thread_id = %s", (room_id, root))
    else:
        await txn.execute(
            "UPDATE threads SET latest_event_id = %s, latest_stream_ordering = %s"
            " WHERE room_id = %s AND thread_id = %s", (*latest, room_id, root))


class RelationStore:
    """
    @param database: the L{ruma_tx.storage.database.Database}.
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_parent(self, parent_id: str, annotation: tuple[str, str, str] | None
                         ) -> tuple[ParentEvent | None, bool]:
        """
        The parent of a new relation (with its own relation and thread),
        and whether the annotation C{(type, sender, key)}, if given, is on
        it already; one query.
        """
        event_type, sender, key = annotation if annotation is not None else (None, None, None)
        row = await self._db.fetch_one(
            "SELECT e.room_id, e.stream_ordering, e.type, e.sender, e.state_key IS NOT NULL, r.rel_type, r.thread_id,"
            " EXISTS (SELECT 1 FROM event_relations a WHERE a.parent_id = e.event_id"
            "  AND a.rel_type = %s AND a.type = %s AND a.sender = %s AND a.aggregation_key = %s)"
            " FROM events e LEFT JOIN event_relations r ON r.event_id = e.event_id WHERE e.event_id = %s",
            (ANNOTATION, event_type, sender, key, parent_id),
        )
        if row is None:
            return None, False
        return ParentEvent(*row[:7]), row[7]

    async def get_aggregates(self, parents: Sequence[StoredEvent], user_id: str,
                             hidden_senders: Sequence[str], *, pdu: bool = True) -> Aggregates:
        """
        What is aggregated of the parents' children, in one query: per
        thread root its reply count, whether C{user_id} replied, and the
        latest reply; per edited event its latest valid edit (by
        C{origin_server_ts}, then event id, as the spec says); per
        referenced event the references, oldest first. Children of
        C{hidden_senders} (ignored users) do not count.

        @param pdu: read the PDUs of the latest replies and edits even when
            they have a stored client JSON.
        """
        found = Aggregates()
        if not parents:
            return found
        args: dict[str, object] = {"hidden": list(hidden_senders), "user": user_id,
                                   "thread": THREAD, "replace": REPLACE, "reference": REFERENCE}
        if len(parents) <= _PROBED_PARENTS:
            source = "event_relations WHERE parent_id = ANY(%(parents)s::text[])"
            args["parents"] = [event.event_id for event in parents]
        else:
            # Every parent in each room's span is read (few are not asked
            # for: those a filter hid); a list of thousands of ids would
            # cost more to plan than this to run.
            spans: dict[str, tuple[int, int]] = {}
            for event in parents:
                low, high = spans.get(event.room_id, (event.stream_ordering, event.stream_ordering))
                spans[event.room_id] = (min(low, event.stream_ordering), max(high, event.stream_ordering))
            args.update(rooms=list(spans), lows=[low for low, _ in spans.values()],
                        highs=[high for _, high in spans.values()])
            source = ("unnest(%(rooms)s::text[], %(lows)s::bigint[], %(highs)s::bigint[]) AS w(room, low, high)"
                      " JOIN event_relations ON room_id = w.room"
                      " AND parent_stream_ordering BETWEEN w.low AND w.high WHERE TRUE")
        no_event = ", ".join(["NULL"] * (_EVENT_COLUMN_COUNT - 2))
        rows = await self._db.fetch_all(
            "WITH r AS MATERIALIZED (SELECT event_id, parent_id, rel_type, sender, stream_ordering"
            f"  FROM {source} AND rel_type IN (%(thread)s, %(replace)s, %(reference)s)"
            "  AND (rel_type <> %(replace)s OR valid) AND NOT (sender = ANY(%(hidden)s::text[]))),"
            " threads AS (SELECT parent_id, count(*) AS replies, bool_or(sender = %(user)s) AS participated,"
            "  max(stream_ordering) AS latest FROM r WHERE rel_type = %(thread)s GROUP BY parent_id),"
            " edits AS (SELECT DISTINCT ON (r.parent_id) r.parent_id, r.stream_ordering"
            "  FROM r JOIN events e ON e.event_id = r.event_id WHERE r.rel_type = %(replace)s"
            "  ORDER BY r.parent_id, e.origin_server_ts DESC, e.event_id DESC)"
            f" SELECT %(thread)s, t.parent_id, t.replies, t.participated, {event_columns('e', pdu=pdu)}"
            "  FROM threads t JOIN events e ON e.stream_ordering = t.latest"
            " UNION ALL"
            f" SELECT %(replace)s, d.parent_id, 0, FALSE, {event_columns('e', pdu=pdu)}"
            "  FROM edits d JOIN events e ON e.stream_ordering = d.stream_ordering"
            " UNION ALL"
            f" SELECT %(reference)s, parent_id, 0, FALSE, stream_ordering, event_id, {no_event}"
            "  FROM r WHERE rel_type = %(reference)s"
            " ORDER BY 5",
            args,
        )
        asked = {event.event_id for event in parents}
        for rel_type, parent_id, replies, participated, *event_row in rows:
            if parent_id not in asked:
                continue
            if rel_type == THREAD:
                found.threads[parent_id] = ThreadAggregate(replies, participated, stored_event(event_row))
            elif rel_type == REPLACE:
                found.edits[parent_id] = stored_event(event_row)
            else:
                found.references.setdefault(parent_id, []).append(event_row[1])
        return found

    async def get_children(self, query: ChildrenQuery) -> list[StoredEvent]:
        """
        A page of the parent's children visible in C{query.ranges}, down
        to C{query.depth} levels, each level through children that match
        the filters only: newest first when C{backwards}, else oldest first.
        """
        def matching(prefix: str) -> tuple[str, list]:
            """The filters, on the relations table under C{prefix}."""
            sql = f"NOT ({prefix}sender = ANY(%s::text[]))"
            args: list[object] = [list(query.hidden_senders)]
            for column, value in (("rel_type", query.rel_type), ("type", query.event_type)):
                if value is not None:
                    sql += f" AND {prefix}{column} = %s"
                    args.append(value)
            return sql, args

        direct, direct_args = matching("")
        indirect, indirect_args = matching("r.")
        in_ranges, range_args = ranges_clause(query.ranges)
        order = "DESC" if query.backwards else "ASC"
        rows = await self._db.fetch_all(
            "WITH RECURSIVE tree (child_id, depth) AS ("
            f" SELECT event_id, 1 FROM event_relations WHERE parent_id = %s AND {direct}"
            " UNION ALL"
            " SELECT r.event_id, tree.depth + 1 FROM event_relations r JOIN tree ON r.parent_id = tree.child_id"
            f"  WHERE tree.depth < %s AND {indirect})"
            f" SELECT {event_columns()} FROM tree JOIN events ON events.event_id = tree.child_id"
            f" WHERE room_id = %s AND stream_ordering > %s AND stream_ordering <= %s AND {in_ranges}"
            f" ORDER BY stream_ordering {order} LIMIT %s",
            [query.parent_id, *direct_args, query.depth, *indirect_args, query.room_id, query.after,
             query.upto, *range_args, query.limit],
        )
        return [stored_event(row) for row in rows]

    async def get_threads(self, room_id: str, *, upto: int, limit: int,
                          participant: str | None) -> list[tuple[StoredEvent, int]]:
        """
        Up to C{limit} thread roots of the room whose latest reply is at or
        before C{upto}, most recently active first, with that position;
        only the threads C{participant} started or replied to, if given.
        """
        participated, args = "", []
        if participant is not None:
            participated = (" AND (e.sender = %s OR EXISTS (SELECT 1 FROM event_relations r"
                            "  WHERE r.parent_id = t.thread_id AND r.rel_type = %s AND r.sender = %s))")
            args = [participant, THREAD, participant]
        rows = await self._db.fetch_all(
            f"SELECT {event_columns('e')}, t.latest_stream_ordering FROM threads t"
            " JOIN events e ON e.event_id = t.thread_id"
            f" WHERE t.room_id = %s AND t.latest_stream_ordering <= %s{participated}"
            " ORDER BY t.latest_stream_ordering DESC LIMIT %s",
            [room_id, upto, *args, limit],
        )
        return [(stored_event(row[:-1]), row[-1]) for row in rows]

    async def get_receipt_thread(self, event_id: str) -> tuple[str | None, list[str]]:
        """
        The thread root the event is in (C{None}: the main timeline) and
        the events it relates to, nearest first, at most 3 hops up.
        """
        rows = await self._db.fetch_all(
            "WITH RECURSIVE up (child_id, parent_id, thread_id, depth) AS ("
            " SELECT event_id, parent_id, thread_id, 1 FROM event_relations WHERE event_id = %s"
            " UNION ALL"
            " SELECT r.event_id, r.parent_id, r.thread_id, up.depth + 1 FROM event_relations r"
            "  JOIN up ON r.event_id = up.parent_id WHERE up.depth < 3)"
            " SELECT parent_id, thread_id FROM up ORDER BY depth",
            (event_id,),
        )
        if not rows:
            return None, []
        return rows[0][1], [parent_id for parent_id, _ in rows]
