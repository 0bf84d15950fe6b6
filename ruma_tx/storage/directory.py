"""Room aliases and the public room directory. SQL only."""
from __future__ import annotations

import json

import psycopg2.errors

from ruma_tx.matrix.directory import DirectoryPage, ListedRoom
from ruma_tx.services.ports.directory import AliasExists
from ruma_tx.storage.database import Database

#: The state a directory entry is built from (all with state key "").
DIRECTORY_STATE_TYPES = (
    "m.room.create", "m.room.name", "m.room.topic", "m.room.canonical_alias",
    "m.room.avatar", "m.room.join_rules", "m.room.history_visibility", "m.room.guest_access",
)

#: Redaction keeps the content that matters here of these types only; the
#: others read as empty once redacted.
_KEPT_WHEN_REDACTED = ("m.room.create", "m.room.join_rules", "m.room.history_visibility")






# One statement reads a page, its rooms' state and the total: the published
# rooms with their member counts and state contents (current_state joined to
# events), filtered as Synapse does (only rooms one could join or read:
# join rule public/knock/knock_restricted, or world-readable history; and at
# least one joined member), then the filter, then the keyset bound.
_PUBLIC_ROOMS_SQL = """
WITH listed AS (
    SELECT r.room_id,
           (SELECT count(*) FROM current_state m
             WHERE m.room_id = r.room_id AND m.type = 'm.room.member'
               AND m.membership = 'join') AS joined,
           COALESCE(s.state, '{{}}'::jsonb) AS state
    FROM rooms r
    LEFT JOIN LATERAL (
        SELECT jsonb_object_agg(
                   c.type,
                   CASE WHEN e.redacted_by IS NULL OR c.type = ANY(%(kept_types)s)
                        THEN (e.pdu::jsonb) -> 'content' ELSE '{{}}'::jsonb END) AS state
        FROM current_state c JOIN events e ON e.event_id = c.event_id
        WHERE c.room_id = r.room_id AND c.state_key = '' AND c.type = ANY(%(state_types)s)
    ) AS s ON TRUE
    WHERE r.published
), visible AS (
    SELECT room_id, joined, state FROM listed
    WHERE joined > 0
      AND (state #>> '{{m.room.join_rules,join_rule}}' IN ('public', 'knock', 'knock_restricted')
           OR state #>> '{{m.room.history_visibility,history_visibility}}' = 'world_readable')
      AND (%(term)s::text IS NULL
           OR strpos(lower(state #>> '{{m.room.name,name}}'), lower(%(term)s)) > 0
           OR strpos(lower(state #>> '{{m.room.topic,topic}}'), lower(%(term)s)) > 0
           OR strpos(lower(state #>> '{{m.room.canonical_alias,alias}}'), lower(%(term)s)) > 0)
      AND (%(any_type)s
           OR state #>> '{{m.room.create,type}}' = ANY(%(room_types)s)
           OR (%(untyped)s AND state #>> '{{m.room.create,type}}' IS NULL))
)
SELECT total.n, page.room_id, page.joined, page.state::text
FROM (SELECT count(*) AS n FROM visible) AS total
LEFT JOIN LATERAL (
    SELECT room_id, joined, state FROM visible
    WHERE {bound}
    ORDER BY {order}
    LIMIT %(limit)s
) AS page ON TRUE
ORDER BY page.joined DESC, page.room_id ASC
"""

_FORWARD = ("joined DESC, room_id ASC",
            "(joined < %(b_joined)s OR (joined = %(b_joined)s AND room_id > %(b_room)s))")
_BACKWARD = ("joined ASC, room_id DESC",
             "(joined > %(b_joined)s OR (joined = %(b_joined)s AND room_id < %(b_room)s))")


class DirectoryStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_alias(self, room_alias: str) -> tuple[str, str] | None:
        """C{(room_id, creator)} of an alias, or C{None}."""
        row = await self._db.fetch_one(
            "SELECT room_id, creator FROM room_aliases WHERE room_alias = %s", (room_alias,)
        )
        return (row[0], row[1]) if row else None

    async def get_alias_rooms(self, room_aliases: list[str]) -> dict[str, str]:
        """C{alias -> room_id} of those of C{room_aliases} that exist."""
        if not room_aliases:
            return {}
        rows = await self._db.fetch_all(
            "SELECT room_alias, room_id FROM room_aliases WHERE room_alias = ANY(%s)",
            (list(room_aliases),),
        )
        return dict(rows)

    async def create_alias(self, room_alias: str, room_id: str, creator: str) -> None:
        """@raise AliasExists: if the alias is taken."""
        try:
            await self._db.execute(
                "INSERT INTO room_aliases (room_alias, room_id, creator) VALUES (%s, %s, %s)",
                (room_alias, room_id, creator),
            )
        except psycopg2.errors.UniqueViolation:
            raise AliasExists(room_alias) from None

    async def delete_alias(self, room_alias: str) -> str | None:
        """Delete an alias; return the room it named, or C{None} if there was none."""
        row = await self._db.fetch_one(
            "DELETE FROM room_aliases WHERE room_alias = %s RETURNING room_id", (room_alias,)
        )
        return row[0] if row else None

    async def get_aliases_for_room(self, room_id: str) -> list[str]:
        rows = await self._db.fetch_all(
            "SELECT room_alias FROM room_aliases WHERE room_id = %s ORDER BY room_alias", (room_id,)
        )
        return [row[0] for row in rows]

    async def set_published(self, room_id: str, published: bool) -> bool:
        rows = await self._db.fetch_all(
            "UPDATE rooms SET published = %s WHERE room_id = %s RETURNING 1", (published, room_id)
        )
        return bool(rows)

    async def is_published(self, room_id: str) -> bool | None:
        """Whether the room is published; C{None} for an unknown room."""
        row = await self._db.fetch_one("SELECT published FROM rooms WHERE room_id = %s", (room_id,))
        return row[0] if row else None

    async def get_public_rooms(
        self, *, limit: int, bound: tuple[int, str] | None = None, forwards: bool = True,
        search_term: str | None = None, room_types: list[str | None] | None = None,
    ) -> DirectoryPage:
        """
        One page of the published room directory, in one statement.

        @param limit: the most rooms to return.
        @param bound: C{(joined, room_id)} of the room the page starts
            after (C{forwards}) or ends before (backwards); C{None} for
            the first page.
        @param search_term: keep rooms whose name, topic or canonical alias
            contains it, ignoring case.
        @param room_types: keep rooms of these C{m.room.create} types
            (C{None} in the list: rooms without a type); C{None} keeps all.
        """
        order, bound_sql = _FORWARD if forwards else _BACKWARD
        if bound is None:
            bound_sql = "TRUE"
        types = [t for t in room_types or () if t is not None]
        sql = _PUBLIC_ROOMS_SQL.format(bound=bound_sql, order=order)
        args = {
            "kept_types": list(_KEPT_WHEN_REDACTED),
            "state_types": list(DIRECTORY_STATE_TYPES),
            "term": search_term,
            "any_type": room_types is None,
            "room_types": types,
            "untyped": room_types is not None and None in room_types,
            "limit": limit,
            "b_joined": bound[0] if bound else 0,
            "b_room": bound[1] if bound else "",
        }
        rows = await self._db.fetch_all(sql, args)
        total = rows[0][0] if rows else 0
        rooms = [ListedRoom(room_id, joined, json.loads(state))
                 for _, room_id, joined, state in rows if room_id is not None]
        return DirectoryPage(total, rooms)
