"""
What /sync reads of rooms, for all of a user's rooms at once: one query per
kind of read, never one per room. SQL only; the rules live in
ruma_tx.matrix.sync and ruma_tx.services.sync_rooms.
"""
from __future__ import annotations

import json
from typing import Iterable, Mapping, Sequence

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.filters import RoomEventFilter
from ruma_tx.storage.database import Database
from ruma_tx.storage.event_filters import filter_clause

_COLUMNS = "e.stream_ordering, e.event_id, e.room_id, e.pdu, e.redacted_by"

StateByRoom = dict[str, dict[tuple[str, str], StoredEvent]]


def _event(row: Sequence[object]) -> StoredEvent:
    return StoredEvent(row[0], row[1], row[2], json.loads(row[3]), row[4])  # type: ignore[arg-type]


def _by_room(rows: Iterable[Sequence[object]], room_ids: Iterable[str]) -> StateByRoom:
    states: StateByRoom = {room_id: {} for room_id in room_ids}
    for row in rows:
        event = _event(row)
        states.setdefault(event.room_id, {})[(event.type, event.state_key or "")] = event
    return states


def _windows(windows: Mapping[str, tuple[int, int]]) -> tuple[list[str], list[int], list[int]]:
    room_ids = list(windows)
    return room_ids, [windows[r][0] for r in room_ids], [windows[r][1] for r in room_ids]


class SyncReadStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_latest_events(
        self, windows: Mapping[str, tuple[int, int]], *, limit: int,
        event_filter: RoomEventFilter | None = None, hidden_senders: Sequence[str] = (),
    ) -> dict[str, list[StoredEvent]]:
        """
        Per room, its latest C{limit} events in its window C{(after, upto]}
        that C{event_filter} keeps, plus one more (to tell whether more
        exist), oldest first.

        @param hidden_senders: senders whose non-state events are left out
            (ignored users), before the limit counts.
        """
        if not windows:
            return {}
        room_ids, afters, uptos = _windows(windows)
        matching, filter_args = filter_clause(event_filter, "e.")
        rows = await self._db.fetch_all(
            "SELECT stream_ordering, event_id, room_id, pdu, redacted_by FROM ("
            f" SELECT {_COLUMNS}, row_number() OVER"
            "  (PARTITION BY e.room_id ORDER BY e.stream_ordering DESC) AS n"
            " FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS w(room_id, after, upto)"
            " JOIN events e ON e.room_id = w.room_id"
            "  AND e.stream_ordering > w.after AND e.stream_ordering <= w.upto"
            f" WHERE {matching}"
            "  AND (e.state_key IS NOT NULL OR NOT (e.sender = ANY(%s)))"
            ") AS latest WHERE n <= %s ORDER BY stream_ordering",
            [room_ids, afters, uptos, *filter_args, list(hidden_senders), limit + 1],
        )
        found: dict[str, list[StoredEvent]] = {}
        for row in rows:
            event = _event(row)
            found.setdefault(event.room_id, []).append(event)
        return found

    async def get_current_state(self, room_ids: Sequence[str]) -> StateByRoom:
        """The current state of each room."""
        if not room_ids:
            return {}
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM current_state c JOIN events e ON e.event_id = c.event_id"
            " WHERE c.room_id = ANY(%s)",
            (list(room_ids),),
        )
        return _by_room(rows, room_ids)

    async def get_current_state_keys(self, keys: Mapping[str, Sequence[tuple[str, str]]]) -> StateByRoom:
        """Per room, its current state events under the given C{(type, state_key)}s."""
        room_ids = [r for r, room_keys in keys.items() for _ in room_keys]
        types = [k[0] for room_keys in keys.values() for k in room_keys]
        state_keys = [k[1] for room_keys in keys.values() for k in room_keys]
        if not room_ids:
            return {room_id: {} for room_id in keys}
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM unnest(%s::text[], %s::text[], %s::text[]) AS k(room_id, type, state_key)"
            " JOIN current_state c ON c.room_id = k.room_id AND c.type = k.type AND c.state_key = k.state_key"
            " JOIN events e ON e.event_id = c.event_id",
            (room_ids, types, state_keys),
        )
        return _by_room(rows, keys)

    async def get_state_at(self, positions: Mapping[str, int]) -> StateByRoom:
        """Per room, its state just after its stream position."""
        if not positions:
            return {}
        room_ids = list(positions)
        rows = await self._db.fetch_all(
            f"SELECT DISTINCT ON (e.room_id, e.type, e.state_key) {_COLUMNS}"
            " FROM unnest(%s::text[], %s::bigint[]) AS p(room_id, position)"
            " JOIN events e ON e.room_id = p.room_id AND e.stream_ordering <= p.position"
            " WHERE e.state_key IS NOT NULL"
            " ORDER BY e.room_id, e.type, e.state_key, e.stream_ordering DESC",
            (room_ids, [positions[r] for r in room_ids]),
        )
        return _by_room(rows, room_ids)

    async def get_state_changes(self, windows: Mapping[str, tuple[int, int]]) -> StateByRoom:
        """Per room, the latest state event of each key changed in its window C{(after, upto]}."""
        if not windows:
            return {}
        room_ids, afters, uptos = _windows(windows)
        rows = await self._db.fetch_all(
            f"SELECT DISTINCT ON (e.room_id, e.type, e.state_key) {_COLUMNS}"
            " FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS w(room_id, after, upto)"
            " JOIN events e ON e.room_id = w.room_id"
            "  AND e.stream_ordering > w.after AND e.stream_ordering <= w.upto"
            " WHERE e.state_key IS NOT NULL"
            " ORDER BY e.room_id, e.type, e.state_key, e.stream_ordering DESC",
            (room_ids, afters, uptos),
        )
        return _by_room(rows, room_ids)
