"""
Reading room history: the timelines history visibility is decided on,
pages of events restricted to visible positions and to a filter, events
by id and by timestamp. SQL only; the rules live in ruma_tx.matrix.visibility.
"""
from __future__ import annotations

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.filters import RoomEventFilter
from ruma_tx.services.ports.events import Ranges
from ruma_tx.storage.database import Database
from ruma_tx.storage.event_filters import filter_clause
from ruma_tx.storage.event_rows import event_columns, stored_event

_COLUMNS = event_columns()


def ranges_clause(ranges: Ranges, column: str = "stream_ordering") -> tuple[str, list]:
    """
    SQL restricting C{column} (a stream ordering) to inclusive C{(low, high)} ranges
    (C{high} L{None}: unbounded). An empty list matches nothing.
    """
    if not ranges:
        return "FALSE", []
    parts, args = [], []
    for low, high in ranges:
        if high is None:
            parts.append(f"{column} >= %s")
            args.append(low)
        else:
            parts.append(f"{column} BETWEEN %s AND %s")
            args += [low, high]
    return "(" + " OR ".join(parts) + ")", args


class HistoryStore:
    """
    @param database: the L{ruma_tx.storage.database.Database}.
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_timelines(self, room_id: str, user_id: str) -> tuple[list, list]:
        """
        What history visibility depends on, in one query: the
        C{(position, membership)} of the user's member events in the room
        and the C{(position, history_visibility)} of the room's history
        visibility events, each in position order.
        """
        rows = await self._db.fetch_all(
            "SELECT stream_ordering, type, membership,"
            " CASE WHEN type = 'm.room.history_visibility'"
            "  THEN pdu::jsonb -> 'content' ->> 'history_visibility' END"
            " FROM events WHERE room_id = %s AND ("
            "  (type = 'm.room.member' AND state_key = %s)"
            "  OR (type = 'm.room.history_visibility' AND state_key = ''))"
            " ORDER BY stream_ordering",
            (room_id, user_id),
        )
        memberships, visibilities = [], []
        for position, event_type, membership, visibility in rows:
            if event_type == "m.room.member":
                memberships.append((position, membership))
            else:
                visibilities.append((position, visibility))
        return memberships, visibilities

    async def get_timelines_many(
        self, room_ids: list[str], user_id: str
    ) -> dict[str, tuple[list[tuple[int, str | None]], list[tuple[int, str | None]]]]:
        """L{get_timelines} of many rooms in one query."""
        rows = await self._db.fetch_all(
            "SELECT room_id, stream_ordering, type, membership,"
            " CASE WHEN type = 'm.room.history_visibility'"
            "  THEN pdu::jsonb -> 'content' ->> 'history_visibility' END"
            " FROM events WHERE room_id = ANY(%s) AND ("
            "  (type = 'm.room.member' AND state_key = %s)"
            "  OR (type = 'm.room.history_visibility' AND state_key = ''))"
            " ORDER BY stream_ordering",
            (room_ids, user_id),
        )
        timelines: dict[str, tuple[list[tuple[int, str | None]], list[tuple[int, str | None]]]] = {
            room_id: ([], []) for room_id in room_ids}
        for room_id, position, event_type, membership, visibility in rows:
            memberships, visibilities = timelines[room_id]
            if event_type == "m.room.member":
                memberships.append((position, membership))
            else:
                visibilities.append((position, visibility))
        return timelines

    async def get_page(
        self, room_id: str, *, after: int, upto: int, ranges: Ranges, limit: int,
        backwards: bool, event_filter: RoomEventFilter | None = None,
    ) -> list[StoredEvent]:
        """
        Up to C{limit} events of the room with C{after < stream_ordering <=
        upto}, inside C{ranges} and matching C{event_filter}: the latest
        ones newest first when C{backwards}, else the earliest oldest first.
        """
        if limit <= 0 or after >= upto:
            return []
        in_ranges, range_args = ranges_clause(ranges)
        matching, filter_args = filter_clause(event_filter)
        order = "DESC" if backwards else "ASC"
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM events WHERE room_id = %s"
            f" AND stream_ordering > %s AND stream_ordering <= %s AND {in_ranges} AND {matching}"
            f" ORDER BY stream_ordering {order} LIMIT %s",
            [room_id, after, upto, *range_args, *filter_args, limit],
        )
        return [stored_event(row) for row in rows]

    async def get_state_keys_at(
        self, room_id: str, position: int, keys: list[tuple[str, str]]
    ) -> dict:
        """
        Some of the room's state as it was just after C{position}:
        C{(type, state_key) -> StoredEvent} for those of C{keys} that were set.
        """
        if not keys:
            return {}
        pairs = ", ".join(["(%s, %s)"] * len(keys))
        rows = await self._db.fetch_all(
            f"SELECT DISTINCT ON (type, state_key) {_COLUMNS} FROM events"
            f" WHERE room_id = %s AND state_key IS NOT NULL AND stream_ordering <= %s"
            f" AND (type, state_key) IN ({pairs})"
            f" ORDER BY type, state_key, stream_ordering DESC",
            [room_id, position, *(part for key in keys for part in key)],
        )
        return {(e.type, e.state_key): e for e in map(stored_event, rows)}

    async def get_joined_member_events(self, room_id: str) -> list[StoredEvent]:
        """The current C{m.room.member} events of the room's joined members."""
        rows = await self._db.fetch_all(
            f"SELECT {event_columns('e')}"
            " FROM current_state c JOIN events e ON e.event_id = c.event_id"
            " WHERE c.room_id = %s AND c.type = 'm.room.member' AND c.membership = 'join'",
            (room_id,),
        )
        return [stored_event(row) for row in rows]

    async def find_by_timestamp(
        self, room_id: str, ts: int, *, forwards: bool, upto: int, ranges: Ranges
    ) -> StoredEvent | None:
        """
        The room's event closest to C{ts}: the first with C{origin_server_ts
        >= ts} when C{forwards}, else the last with C{origin_server_ts <= ts};
        only events at positions up to C{upto} and inside C{ranges}.
        """
        in_ranges, range_args = ranges_clause(ranges)
        if forwards:
            condition, order = "origin_server_ts >= %s", "ASC"
        else:
            condition, order = "origin_server_ts <= %s", "DESC"
        row = await self._db.fetch_one(
            f"SELECT {_COLUMNS} FROM events WHERE room_id = %s AND {condition}"
            f" AND stream_ordering <= %s AND {in_ranges}"
            f" ORDER BY origin_server_ts {order}, stream_ordering {order} LIMIT 1",
            [room_id, ts, upto, *range_args],
        )
        return stored_event(row) if row else None
