"""
The room event search index (spec: "Server Side Search"): one row per
searchable event in C{event_search}, a PostgreSQL full-text vector under a
GIN index, written with the event and deleted when it is redacted. SQL
only; what is searchable is decided by L{ruma_tx.matrix.search}.

Search terms are read by C{websearch_to_tsquery} (as Synapse's): words
all must match (stemmed, so "meeting" finds "meetings"), C{"quoted
phrases"}, C{or}, and C{-word} to exclude.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Sequence

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.filters import RoomEventFilter
from ruma_tx.matrix.search import GROUP_KEYS, HIGHLIGHT_START, HIGHLIGHT_STOP, SEARCH_KEYS, searchable_text
from ruma_tx.services.ports.events import NewEvent, Ranges
from ruma_tx.services.ports.search import ContextWindow, SearchHit, SearchPage, SearchQuery
from ruma_tx.storage.database import Database, Transaction
from ruma_tx.storage.event_filters import filter_clause
from ruma_tx.storage.event_rows import event_columns, stored_event
from ruma_tx.storage.history import ranges_clause

#: The text search configuration of every vector and query.
CONFIG = "english"

_COLUMNS = ("stream_ordering", "room_id", "sender", "type", "key", "vector")

#: What ts_headline marks matched words with, for L{ruma_tx.matrix.search.highlight_words}.
_HEADLINE_OPTIONS = f"HighlightAll=TRUE, StartSel={HIGHLIGHT_START}, StopSel={HIGHLIGHT_STOP}"

#: L{ruma_tx.matrix.search.searchable_text} in SQL, of an event C{e} with
#: content C{c} (jsonb): for events stored before the index, and for
#: highlighting results without parsing their PDUs in Python.
_TEXT_SQL = (
    "CASE"
    " WHEN e.type = 'm.room.message' AND e.state_key IS NULL AND jsonb_typeof(c -> 'body') = 'string'"
    "  THEN c ->> 'body'"
    " WHEN e.type = 'm.room.name' AND e.state_key = '' AND jsonb_typeof(c -> 'name') = 'string'"
    "  THEN c ->> 'name'"
    " WHEN e.type = 'm.room.topic' AND e.state_key = '' THEN concat_ws(E'\\n',"
    "  CASE WHEN jsonb_typeof(c -> 'topic') = 'string' THEN NULLIF(c ->> 'topic', '') END,"
    "  NULLIF(jsonb_path_query_first(c, '$.\"m.topic\".\"m.text\"[*] ? (@.mimetype == \"text/plain\""
    " || !exists(@.mimetype)).body') #>> '{}', c ->> 'topic'))"
    " END"
)


# ----------------------------------------------- writes, with the events


def _row(event: NewEvent, position: int) -> tuple[Any, ...] | None:
    pdu = event.pdu
    found = searchable_text(pdu["type"], pdu.get("state_key"), pdu.get("content") or {})
    if found is None:
        return None
    key, text = found
    return (position, event.room_id, pdu["sender"], pdu["type"], key, text)


def message_search_cte(event: NewEvent, position: int) -> tuple[str, list[Any]]:
    """
    For the one statement that stores a message (C{storage.events}): a CTE
    indexing it, run only if the event row C{ev} was inserted, with its
    arguments; nothing for an event without searchable text.
    """
    row = _row(event, position)
    if row is None:
        return "", []
    return (f" search AS (INSERT INTO event_search ({', '.join(_COLUMNS)})"
            f" SELECT %s, %s, %s, %s, %s, to_tsvector('{CONFIG}', %s) WHERE EXISTS (SELECT 1 FROM ev)),",
            list(row))


async def index_events(txn: Transaction, events: Sequence[NewEvent], positions: Sequence[int]) -> None:
    """Index the searchable ones of events being stored (no statement when there are none)."""
    rows = [row for row in map(_row, events, positions) if row is not None]
    if not rows:
        return
    values = ", ".join([f"(%s, %s, %s, %s, %s, to_tsvector('{CONFIG}', %s))"] * len(rows))
    await txn.execute(f"INSERT INTO event_search ({', '.join(_COLUMNS)}) VALUES {values}",
                      [value for row in rows for value in row])


async def unindex_event(txn: Transaction, position: int) -> None:
    """Forget a redacted event's text."""
    await txn.execute("DELETE FROM event_search WHERE stream_ordering = %s", (position,))


# --------------------------------------------------------------- reading


def _visible(rooms: Mapping[str, Ranges]) -> tuple[str, list[Any]]:
    """The rooms and, in each, the positions the user may see; rooms seen whole share one test."""
    whole = [room for room, ranges in rooms.items() if list(ranges) == [(0, None)]]
    parts: list[str] = []
    args: list[Any] = []
    if whole:
        parts.append("s.room_id = ANY(%s)")
        args.append(whole)
    for room, ranges in rooms.items():
        if ranges and list(ranges) != [(0, None)]:
            clause, range_args = ranges_clause(ranges, "s.stream_ordering")
            parts.append(f"(s.room_id = %s AND {clause})")
            args += [room, *range_args]
    return ("(" + " OR ".join(parts) + ")" if parts else "FALSE"), args


def _matching(query: SearchQuery) -> tuple[str, list[Any]]:
    """Which indexed events are candidates: visible, of the keys asked, passing the filter."""
    visible, args = _visible(query.rooms)
    conditions = ["s.vector @@ q.query", "s.stream_ordering <= %s", visible]
    args = [query.upto, *args]
    if set(query.keys) != set(SEARCH_KEYS):
        conditions.append("s.key = ANY(%s)")
        args.append(list(query.keys))
    event_filter = query.event_filter
    matching, filter_args = filter_clause(replace(event_filter, contains_url=None), "s.")
    conditions.append(matching)
    args += filter_args
    if query.hidden_senders:
        conditions.append("(s.key <> 'content.body' OR NOT (s.sender = ANY(%s)))")
        args.append(list(query.hidden_senders))
    if event_filter.contains_url is not None:
        has_url, url_args = filter_clause(RoomEventFilter(contains_url=event_filter.contains_url), "e.")
        conditions.append("EXISTS (SELECT 1 FROM events e"
                          f" WHERE e.stream_ordering = s.stream_ordering AND {has_url})")
        args += url_args
    return " AND ".join(conditions), args


def _group_ends(keys: Sequence[str]) -> str:
    """Per requested group key, a JSON object: group -> [rank, position] of its last match."""
    selects = []
    for key in GROUP_KEYS:
        if key in keys:
            selects.append(
                "(SELECT json_object_agg(g, json_build_array(r, p)) FROM"
                f" (SELECT DISTINCT ON (m.{key}) m.{key} AS g, m.rank AS r, m.stream_ordering AS p"
                f"  FROM matches m ORDER BY m.{key}, m.rank, m.stream_ordering) ends)")
        else:
            selects.append("NULL::json")
    return ", ".join(selects)


class SearchStore:
    """
    @param database: the L{ruma_tx.storage.database.Database}.
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    async def search(self, query: SearchQuery) -> SearchPage:
        """
        One page of results and the number of all matches, in one statement:
        the matches are collected once (a GIN index scan), counted, and the
        page is the first C{limit + 1} after C{query.after} in sort order.
        Each hit also carries its highlighted text, for the highlights.
        """
        if not query.rooms or not query.keys:
            return SearchPage(0, [], {})
        matching, args = _matching(query)
        page_conditions: list[str] = ["TRUE"]
        page_args: list[Any] = []
        if query.group is not None:
            key, value = query.group
            assert key in GROUP_KEYS
            page_conditions.append(f"m.{key} = %s")
            page_args.append(value)
        if query.after is not None:
            # ::real: the rank as the token carries it is the float4 ts_rank gave.
            page_conditions.append("(m.rank, m.stream_ordering) < (%s::real, %s)")
            page_args += list(query.after)
        rank = "ts_rank_cd(s.vector, q.query)" if query.by_rank else "0::real"
        rows = await self._db.fetch_all(
            f"WITH q AS MATERIALIZED (SELECT websearch_to_tsquery('{CONFIG}', %s) AS query),"
            " matches AS MATERIALIZED ("
            f"  SELECT s.stream_ordering, s.room_id, s.sender, {rank} AS rank"
            f"  FROM event_search s CROSS JOIN q WHERE {matching}),"
            " page AS ("
            "  SELECT m.stream_ordering, m.rank FROM matches m"
            f"  WHERE {' AND '.join(page_conditions)}"
            "  ORDER BY m.rank DESC, m.stream_ordering DESC LIMIT %s)"
            f" SELECT (SELECT count(*) FROM matches), {_group_ends(query.group_ends)},"
            "  p.rank, ts_rank_cd(s.vector, q.query),"
            f"  ts_headline('{CONFIG}', {_TEXT_SQL}, q.query, %s), {event_columns('e', pdu=False)}"
            " FROM (SELECT 1) AS one"
            " LEFT JOIN (page p JOIN event_search s ON s.stream_ordering = p.stream_ordering"
            "  JOIN events e ON e.stream_ordering = p.stream_ordering"
            "  CROSS JOIN LATERAL (SELECT e.pdu::jsonb -> 'content' AS c) content) ON TRUE"
            " CROSS JOIN q"
            " ORDER BY p.rank DESC, p.stream_ordering DESC",
            [query.search_term, *args, *page_args, query.limit + 1, _HEADLINE_OPTIONS],
        )
        count, room_ends, sender_ends = rows[0][0], rows[0][1], rows[0][2]
        hits = [SearchHit(stored_event(row[6:]), rank=row[4], order_rank=row[3], headline=row[5])
                for row in rows if row[3] is not None]
        ends = {key: {g: (float(r), int(p)) for g, (r, p) in found.items()}
                for key, found in (("room_id", room_ends), ("sender", sender_ends)) if found is not None}
        return SearchPage(count, hits, ends)

    async def get_searched_rooms(self, user_id: str) -> dict[str, tuple[str, int]]:
        """
        C{room_id -> (membership, position)} of the rooms a user's searches
        look in: those they are joined to, or have left or been banned from
        and not forgotten since.
        """
        rows = await self._db.fetch_all(
            "SELECT c.room_id, c.membership, c.stream_ordering FROM current_state c"
            " LEFT JOIN forgotten_rooms f ON f.user_id = c.state_key AND f.room_id = c.room_id"
            "  AND f.stream_ordering = c.stream_ordering"
            " WHERE c.type = 'm.room.member' AND c.state_key = %s AND c.membership IN ('join', 'leave', 'ban')"
            " AND f.room_id IS NULL",
            (user_id,),
        )
        return {room_id: (membership, position) for room_id, membership, position in rows}

    async def get_contexts(self, windows: Sequence[ContextWindow], hidden_senders: Sequence[str]
                           ) -> list[tuple[list[StoredEvent], list[StoredEvent]]]:
        """
        The events before and after each window's position, oldest first,
        read for all windows in one statement.

        @param hidden_senders: senders whose non-state events are left out.
        """
        if not windows:
            return []
        rows = await self._db.fetch_all(
            f"SELECT w.i, x.before, {event_columns('x')}"
            " FROM unnest(%s::int[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::int[], %s::int[])"
            "  AS w(i, room_id, position, low, high, before_limit, after_limit)"
            " CROSS JOIN LATERAL ("
            f"  (SELECT TRUE AS before, {event_columns('e', pdu=False)} FROM events e"
            "   WHERE e.room_id = w.room_id AND e.stream_ordering >= w.low AND e.stream_ordering < w.position"
            "   AND (e.state_key IS NOT NULL OR NOT (e.sender = ANY(%s)))"
            "   ORDER BY e.stream_ordering DESC LIMIT w.before_limit)"
            "  UNION ALL"
            f"  (SELECT FALSE, {event_columns('e', pdu=False)} FROM events e"
            "   WHERE e.room_id = w.room_id AND e.stream_ordering > w.position AND e.stream_ordering <= w.high"
            "   AND (e.state_key IS NOT NULL OR NOT (e.sender = ANY(%s)))"
            "   ORDER BY e.stream_ordering LIMIT w.after_limit)) x"
            " ORDER BY w.i, x.stream_ordering",
            [list(range(len(windows))), [w.room_id for w in windows], [w.position for w in windows],
             [w.low for w in windows], [w.high for w in windows], [w.before for w in windows],
             [w.after for w in windows], list(hidden_senders), list(hidden_senders)],
        )
        contexts: list[tuple[list[StoredEvent], list[StoredEvent]]] = [([], []) for _ in windows]
        for row in rows:
            contexts[row[0]][0 if row[1] else 1].append(stored_event(row[2:]))
        return contexts

    async def get_member_profiles(self, wanted: Sequence[tuple[str, int, str]]
                                  ) -> dict[tuple[str, int, str], tuple[str | None, str | None]]:
        """
        C{(room_id, position, user_id) -> (displayname, avatar_url)} from the
        user's member event in the room as of the position (strings only).
        """
        if not wanted:
            return {}
        rows = await self._db.fetch_all(
            "SELECT w.room_id, w.position, w.user_id, m.displayname, m.avatar_url"
            " FROM unnest(%s::text[], %s::bigint[], %s::text[]) AS w(room_id, position, user_id)"
            " CROSS JOIN LATERAL (SELECT"
            "   CASE WHEN jsonb_typeof(c -> 'displayname') = 'string' THEN c ->> 'displayname' END AS displayname,"
            "   CASE WHEN jsonb_typeof(c -> 'avatar_url') = 'string' THEN c ->> 'avatar_url' END AS avatar_url"
            "  FROM (SELECT pdu::jsonb -> 'content' AS c FROM events"
            "   WHERE room_id = w.room_id AND type = 'm.room.member' AND state_key = w.user_id"
            "   AND stream_ordering <= w.position ORDER BY stream_ordering DESC LIMIT 1) latest) m",
            [[w[0] for w in wanted], [w[1] for w in wanted], [w[2] for w in wanted]],
        )
        return {(room_id, position, user_id): (displayname, avatar_url)
                for room_id, position, user_id, displayname, avatar_url in rows}

    async def backfill(self, batch_size: int) -> bool:
        """
        Index one batch of the events stored before the index existed: those
        in the C{batch_size} stream positions below the backfill mark, which
        then moves down. Redacted events have no text left to index.

        @return: whether events remain to be indexed.
        """
        async def batch(txn: Transaction) -> bool:
            row = await txn.fetch_one("SELECT below FROM event_search_backfill FOR UPDATE")
            if row is None:
                return False
            below = row[0]
            await txn.execute(
                f"INSERT INTO event_search ({', '.join(_COLUMNS)})"
                f" SELECT e.stream_ordering, e.room_id, e.sender, e.type, k.key, to_tsvector('{CONFIG}', t.text)"
                " FROM events e"
                " CROSS JOIN LATERAL (SELECT e.pdu::jsonb -> 'content' AS c) content"
                f" CROSS JOIN LATERAL (SELECT {_TEXT_SQL} AS text) t"
                " CROSS JOIN LATERAL (SELECT CASE e.type WHEN 'm.room.message' THEN 'content.body'"
                "  WHEN 'm.room.name' THEN 'content.name' ELSE 'content.topic' END AS key) k"
                " WHERE e.stream_ordering >= %s AND e.stream_ordering < %s AND e.redacted_by IS NULL"
                "  AND e.type IN ('m.room.message', 'm.room.name', 'm.room.topic')"
                "  AND t.text IS NOT NULL AND btrim(t.text) <> ''"
                " ON CONFLICT (stream_ordering) DO NOTHING",
                (below - batch_size, below),
            )
            # Down to the first live event: events fetched later (backfilled,
            # at negative positions) are indexed as they are stored.
            remaining = await txn.fetch_one(
                "SELECT 1 FROM events WHERE stream_ordering < %s AND stream_ordering > 0 LIMIT 1",
                (below - batch_size,))
            if remaining is None:
                await txn.execute("DELETE FROM event_search_backfill")
                return False
            await txn.execute("UPDATE event_search_backfill SET below = %s", (below - batch_size,))
            return True

        return await self._db.transaction("event_search_backfill", batch)
