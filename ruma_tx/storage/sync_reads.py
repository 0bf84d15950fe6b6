"""
What /sync reads of rooms, for all of a user's rooms at once: one query per
kind of read, never one per room. SQL only; the rules live in
ruma_tx.matrix.sync and ruma_tx.services.sync_rooms.

With C{pdu=False} an event with a stored client JSON is read without its
PDU (most of its bytes): for a response that shows events as stored.

Every read here runs for every sync: each is a prepared statement
(L{Database.fetch_prepared}), parsed and planned once per connection.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.filters import RoomEventFilter
from ruma_tx.matrix.sync import MAX_HEROES, MemberCounts
from ruma_tx.services.ports.events import ResolvedByRoom
from ruma_tx.storage.database import Database
from ruma_tx.storage.event_filters import filter_clause
from ruma_tx.storage.event_rows import event_columns, stored_event



StateByRoom = dict[str, dict[tuple[str, str], StoredEvent]]

#: Ends a LATERAL subquery that reads current_state by key: OFFSET 0 keeps
#: PostgreSQL from flattening it into a join, which it planned as a hash
#: join over the whole table (it cannot estimate unnest's rows): 18 ms for
#: 240 keys in a small database, growing with every room on the server.
#: The events are then found by their position (current_state keeps it),
#: an integer key, not by their id: twice as fast for 120 events.
_PER_KEY = "OFFSET 0"


def _current_events(room: str, match: str) -> str:
    """
    The SQL that joins each row naming a room (column C{room}) to the
    events of its current state that C{match} selects (a condition on
    C{c}), one index lookup per row.
    """
    return (f" CROSS JOIN LATERAL (SELECT c.stream_ordering FROM current_state c WHERE c.room_id = {room}"
            f" {match} {_PER_KEY}) c JOIN events e ON e.stream_ordering = c.stream_ordering")


#: Matches the key of a row C{k(type, state_key)}.
_AT_KEY = "AND c.type = k.type AND c.state_key = k.state_key"


def _by_room(rows: Iterable[Sequence[object]], room_ids: Iterable[str]) -> StateByRoom:
    states: StateByRoom = {room_id: {} for room_id in room_ids}
    for row in rows:
        event = stored_event(row)
        states.setdefault(event.room_id, {})[(event.type, event.state_key or "")] = event
    return states


def _windows(windows: Mapping[str, tuple[int, int]]) -> tuple[list[str], list[int], list[int]]:
    room_ids = list(windows)
    return room_ids, [windows[r][0] for r in room_ids], [windows[r][1] for r in room_ids]


def _in_windows(table: str, alias: str) -> str:
    """The SQL that joins the windows of the parameters C{(room ids, afters, uptos)} to C{table}'s rows in them."""
    return (" FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS w(room_id, after, upto)"
            f" JOIN {table} {alias} ON {alias}.room_id = w.room_id"
            f"  AND {alias}.stream_ordering > w.after AND {alias}.stream_ordering <= w.upto")


class SyncReadStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_latest_events(
        self, windows: Mapping[str, tuple[int, int]], *, limit: int,
        event_filter: RoomEventFilter | None = None, hidden_senders: Sequence[str] = (), pdu: bool = True,
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
        # Per room, an index scan backwards from its upper bound that stops
        # at the limit: the cost does not grow with the room's history.
        rows = await self._db.fetch_prepared(
            f"SELECT {event_columns('latest')} FROM unnest(%s::text[], %s::bigint[], %s::bigint[])"
            " AS w(room_id, after, upto)"
            f" CROSS JOIN LATERAL (SELECT {event_columns('e', pdu=pdu)} FROM events e"
            "  WHERE e.room_id = w.room_id AND e.stream_ordering > w.after AND e.stream_ordering <= w.upto"
            f"  AND {matching} AND (e.state_key IS NOT NULL OR NOT (e.sender = ANY(%s)))"
            "  ORDER BY e.stream_ordering DESC LIMIT %s) AS latest"
            " ORDER BY latest.stream_ordering",
            [room_ids, afters, uptos, *filter_args, list(hidden_senders), limit + 1],
        )
        found: dict[str, list[StoredEvent]] = {}
        for row in rows:
            event = stored_event(row)
            found.setdefault(event.room_id, []).append(event)
        return found

    async def get_current_state(self, room_ids: Sequence[str], *, pdu: bool = True) -> StateByRoom:
        """The current state of each room."""
        if not room_ids:
            return {}
        rows = await self._db.fetch_prepared(
            f"SELECT {event_columns('e', pdu=pdu)} FROM unnest(%s::text[]) AS r(room_id)"
            + _current_events("r.room_id", ""),
            (list(room_ids),),
        )
        return _by_room(rows, room_ids)

    async def get_member_counts(self, room_ids: Sequence[str]) -> dict[str, MemberCounts]:
        """Per room, its member counts (from the membership column of current state, no events read)."""
        if not room_ids:
            return {}
        rows = await self._db.fetch_prepared(
            "SELECT r.room_id,"
            " (SELECT count(*) FROM current_state c WHERE c.room_id = r.room_id"
            "   AND c.type = 'm.room.member' AND c.membership = 'join'),"
            " (SELECT count(*) FROM current_state c WHERE c.room_id = r.room_id"
            "   AND c.type = 'm.room.member' AND c.membership = 'invite'),"
            " EXISTS (SELECT 1 FROM current_state c WHERE c.room_id = r.room_id"
            "   AND c.type IN ('m.room.name', 'm.room.canonical_alias') AND c.state_key = ''),"
            " ARRAY(SELECT c.state_key FROM current_state c WHERE c.room_id = r.room_id"
            "   AND c.type = 'm.room.member' AND c.membership IN ('join', 'invite')"
            "   ORDER BY c.membership = 'invite', c.state_key COLLATE \"C\" LIMIT %s)"
            " FROM unnest(%s::text[]) AS r(room_id)",
            (MAX_HEROES + 1, list(room_ids)),
        )
        return {room_id: MemberCounts(joined, invited, named, tuple(first))
                for room_id, joined, invited, named, first in rows}

    async def get_current_state_keys(self, keys: Mapping[str, Sequence[tuple[str, str]]], *,
                                     pdu: bool = True) -> StateByRoom:
        """Per room, its current state events under the given C{(type, state_key)}s."""
        room_ids = [r for r, room_keys in keys.items() for _ in room_keys]
        types = [k[0] for room_keys in keys.values() for k in room_keys]
        state_keys = [k[1] for room_keys in keys.values() for k in room_keys]
        if not room_ids:
            return {room_id: {} for room_id in keys}
        rows = await self._db.fetch_prepared(
            f"SELECT {event_columns('e', pdu=pdu)} FROM unnest(%s::text[], %s::text[], %s::text[])"
            " AS k(room_id, type, state_key)" + _current_events("k.room_id", _AT_KEY),
            (room_ids, types, state_keys),
        )
        return _by_room(rows, keys)

    async def get_current_state_of_keys(self, room_ids: Sequence[str], keys: Sequence[tuple[str, str]], *,
                                        pdu: bool = True) -> StateByRoom:
        """
        Per room, its current state events under the given C{(type,
        state_key)}s, the same for every room: the arrays sent are the rooms
        and the keys, not their product (psycopg2 adapts arrays element by
        element: 240 keys of 20 rooms cost 0.6 ms of CPU).
        """
        if not room_ids or not keys:
            return {room_id: {} for room_id in room_ids}
        rows = await self._db.fetch_prepared(
            f"SELECT {event_columns('e', pdu=pdu)} FROM unnest(%s::text[]) AS r(room_id)"
            " CROSS JOIN unnest(%s::text[], %s::text[]) AS k(type, state_key)"
            + _current_events("r.room_id", _AT_KEY),
            (list(room_ids), [k[0] for k in keys], [k[1] for k in keys]),
        )
        return _by_room(rows, room_ids)

    async def get_current_state_of_types(self, types: Mapping[str, Sequence[str]], *,
                                         pdu: bool = True) -> StateByRoom:
        """Per room, its current state events of the given types (every state key)."""
        room_ids = [r for r, room_types in types.items() for _ in room_types]
        if not room_ids:
            return {room_id: {} for room_id in types}
        rows = await self._db.fetch_prepared(
            f"SELECT {event_columns('e', pdu=pdu)} FROM unnest(%s::text[], %s::text[]) AS k(room_id, type)"
            + _current_events("k.room_id", "AND c.type = k.type"),
            (room_ids, [t for room_types in types.values() for t in room_types]),
        )
        return _by_room(rows, types)

    async def get_state_at(self, positions: Mapping[str, int], *, pdu: bool = True) -> StateByRoom:
        """Per room, its state just after its stream position."""
        if not positions:
            return {}
        room_ids = list(positions)
        rows = await self._db.fetch_prepared(
            f"SELECT DISTINCT ON (e.room_id, e.type, e.state_key) {event_columns('e', pdu=pdu)}"
            " FROM unnest(%s::text[], %s::bigint[]) AS p(room_id, position)"
            " JOIN events e ON e.room_id = p.room_id AND e.stream_ordering <= p.position"
            " WHERE e.state_key IS NOT NULL"
            " ORDER BY e.room_id, e.type, e.state_key, e.stream_ordering DESC",
            (room_ids, [positions[r] for r in room_ids]),
        )
        return _by_room(rows, room_ids)

    async def get_resolved_state(self, windows: Mapping[str, tuple[int, int]], *,
                                 pdu: bool = True) -> ResolvedByRoom:
        """
        Per room, each key that state resolution moved in its window
        C{(after, upto]} (schema 033): the last position it did, and the
        event it chose then.
        """
        if not windows:
            return {}
        room_ids, afters, uptos = _windows(windows)
        rows = await self._db.fetch_prepared(
            f"SELECT DISTINCT ON (r.room_id, r.type, r.state_key) r.stream_ordering, {event_columns('e', pdu=pdu)}"
            + _in_windows("resolved_state", "r") + " JOIN events e ON e.event_id = r.event_id"
            " ORDER BY r.room_id, r.type, r.state_key, r.stream_ordering DESC",
            (room_ids, afters, uptos),
        )
        resolved: ResolvedByRoom = {room_id: {} for room_id in room_ids}
        for row in rows:
            event = stored_event(row[1:])
            resolved[event.room_id][(event.type, event.state_key or "")] = (row[0], event)
        return resolved

    async def get_state_changes(self, windows: Mapping[str, tuple[int, int]], *,
                                pdu: bool = True) -> StateByRoom:
        """Per room, the latest state event of each key changed in its window C{(after, upto]}."""
        if not windows:
            return {}
        room_ids, afters, uptos = _windows(windows)
        rows = await self._db.fetch_prepared(
            f"SELECT DISTINCT ON (e.room_id, e.type, e.state_key) {event_columns('e', pdu=pdu)}"
            + _in_windows("events", "e") + " WHERE e.state_key IS NOT NULL"
            " ORDER BY e.room_id, e.type, e.state_key, e.stream_ordering DESC",
            (room_ids, afters, uptos),
        )
        return _by_room(rows, room_ids)
