"""
The room tables as the admin API reads them, blocked rooms and room
deletions (schema 037). SQL only.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from ruma_tx.matrix.room_admin import ROOM_ORDERS
from ruma_tx.services.ports.admin_rooms import (
    AdminRoom,
    DeleteJob,
    ForwardExtremity,
    RoomListQuery,
    RoomUsage,
    ShutdownResult,
)
from ruma_tx.storage.database import Database
from ruma_tx.storage.user_ids import server_of_column

_SERVER_OF_MEMBER = server_of_column("cs.state_key")

#: The state (key "") whose contents the list shows.
_STATE_TYPES = ["m.room.create", "m.room.name", "m.room.topic", "m.room.avatar", "m.room.canonical_alias",
                "m.room.encryption", "m.room.join_rules", "m.room.guest_access", "m.room.history_visibility"]


def _text(event_type: str, key: str) -> str:
    """A string of a state content, or NULL when absent or not a string."""
    path = "'{" + event_type + "," + key + "}'"
    return f"CASE WHEN jsonb_typeof(state #> {path}) = 'string' THEN state #>> {path} END"


# Every room this server is in, with the facts the list shows: its state
# (key "") from current_state, its member counts. A PDU holding \u0000
# cannot be read as jsonb: its content is left out.
_LISTED = (
    "WITH facts AS ("
    " SELECT r.room_id, r.room_version, r.creator, r.published, COALESCE(s.state, '{}'::jsonb) AS state,"
    "        c.state_events, c.joined, c.joined_local"
    " FROM rooms r"
    " LEFT JOIN LATERAL ("
    "  SELECT jsonb_object_agg(cs.type, CASE WHEN strpos(e.pdu, '\\u0000') = 0"
    "                                        THEN e.pdu::jsonb -> 'content' END) AS state"
    "  FROM current_state cs JOIN events e ON e.event_id = cs.event_id"
    "  WHERE cs.room_id = r.room_id AND cs.state_key = '' AND cs.type = ANY(%(types)s)) s ON TRUE"
    " CROSS JOIN LATERAL ("
    "  SELECT count(*) AS state_events,"
    "         count(*) FILTER (WHERE cs.type = 'm.room.member' AND cs.membership = 'join') AS joined,"
    "         count(*) FILTER (WHERE cs.type = 'm.room.member' AND cs.membership = 'join'"
    f"                          AND {_SERVER_OF_MEMBER} = %(server)s) AS joined_local"
    "  FROM current_state cs WHERE cs.room_id = r.room_id) c"
    " WHERE NOT r.out_of_band AND (%(room)s::text IS NULL OR r.room_id = %(room)s)"
    "  AND (%(rooms)s::text[] IS NULL OR r.room_id = ANY(%(rooms)s))"
    "), listed AS ("
    " SELECT room_id, "
    + _text("m.room.name", "name") + " AS name, "
    + _text("m.room.canonical_alias", "alias") + " AS canonical_alias,"
    " joined AS joined_members, joined_local AS joined_local_members, room_version AS version, creator, "
    + _text("m.room.encryption", "algorithm") + " AS encryption,"
    " COALESCE(state #> '{m.room.create,m.federate}', 'true') <> 'false'::jsonb AS federatable,"
    " published AS public, "
    + _text("m.room.join_rules", "join_rule") + " AS join_rules, "
    + _text("m.room.guest_access", "guest_access") + " AS guest_access, "
    + _text("m.room.history_visibility", "history_visibility") + " AS history_visibility,"
    " state_events, "
    + _text("m.room.create", "type") + " AS room_type, "
    + _text("m.room.topic", "topic") + " AS topic, "
    + _text("m.room.avatar", "url") + " AS avatar"
    " FROM facts"
    ")"
)

def _state_value(event_type: str, path: str) -> str:
    """The content value at C{path} of the room's C{event_type} state (key ""), as jsonb."""
    return ("(SELECT CASE WHEN strpos(e.pdu, '\\u0000') = 0 THEN e.pdu::jsonb #> '{content," + path + "}' END"
            " FROM current_state cs JOIN events e ON e.event_id = cs.event_id"
            f" WHERE cs.room_id = r.room_id AND cs.type = '{event_type}' AND cs.state_key = '')")


def _state_string(event_type: str, key: str) -> str:
    value = _state_value(event_type, key)
    return f"(SELECT CASE WHEN jsonb_typeof(v) = 'string' THEN v #>> '{{}}' END FROM (SELECT {value} AS v) x)"


_JOINED = ("(SELECT count(*) FROM current_state cs WHERE cs.room_id = r.room_id"
           " AND cs.type = 'm.room.member' AND cs.membership = 'join')")

#: Each order's key, computed for every room without reading the rest of
#: its state: the page's full facts are read for its rooms only (reading
#: them for every room cost PostgreSQL ~70 us a room).
_ORDER_KEYS = {
    "name": _state_string("m.room.name", "name"),
    "canonical_alias": _state_string("m.room.canonical_alias", "alias"),
    "joined_members": _JOINED,
    "joined_local_members": ("(SELECT count(*) FROM current_state cs WHERE cs.room_id = r.room_id"
                             " AND cs.type = 'm.room.member' AND cs.membership = 'join'"
                             f" AND {_SERVER_OF_MEMBER} = %(server)s)"),
    # Room versions as numbers ("10" after "9"), where they are.
    "version": "(length(r.room_version), r.room_version)",
    "creator": "r.creator",
    "encryption": _state_string("m.room.encryption", "algorithm"),
    "federatable": f"COALESCE({_state_value('m.room.create', 'm.federate')}, 'true') <> 'false'::jsonb",
    "public": "r.published",
    "join_rules": _state_string("m.room.join_rules", "join_rule"),
    "guest_access": _state_string("m.room.guest_access", "guest_access"),
    "history_visibility": _state_string("m.room.history_visibility", "history_visibility"),
    "state_events": "(SELECT count(*) FROM current_state cs WHERE cs.room_id = r.room_id)",
}

_MATCHING = (
    " WHERE (%(term)s::text IS NULL OR strpos(lower(name), lower(%(term)s)) > 0"
    "        OR strpos(lower(split_part(substr(canonical_alias, 2), ':', 1)), lower(%(term)s)) > 0"
    "        OR strpos(room_id, %(term)s) > 0)"
    "   AND (%(public)s::boolean IS NULL OR public = %(public)s)"
    "   AND (%(empty)s::boolean IS NULL OR (joined_members = 0) = %(empty)s)"
)

_ROOM_COLUMNS = ("room_id, name, canonical_alias, joined_members, joined_local_members, version, creator,"
                 " encryption, federatable, public, join_rules, guest_access, history_visibility,"
                 " state_events, room_type, topic, avatar")


def _args(server_name: str, room_id: str | None = None, query: RoomListQuery | None = None) -> dict[str, Any]:
    return {"types": _STATE_TYPES, "server": server_name, "room": room_id, "rooms": None,
            "term": query.search_term if query else None, "public": query.public_rooms if query else None,
            "empty": query.empty_rooms if query else None}


class AdminRoomStore:
    def __init__(self, database: Database, server_name: str) -> None:
        self._db = database
        self._server_name = server_name

    async def list_rooms(self, query: RoomListQuery) -> tuple[list[AdminRoom], int]:
        """A page of the rooms the query keeps, and how many it keeps in all."""
        assert query.order in ROOM_ORDERS  # a key of _ORDER_KEYS, never text from a request
        direction = "ASC" if query.ascending else "DESC"
        args = {**_args(self._server_name, query=query), "limit": query.limit, "offset": query.offset}
        searched = query.search_term is not None
        # Only what the order, the search and the filters read, for every room.
        keyed = (
            f"WITH listed AS (SELECT r.room_id, {_ORDER_KEYS[query.order]} AS sort_key, r.published AS public,"
            f" {_JOINED if query.empty_rooms is not None else '0'} AS joined_members,"
            f" {_ORDER_KEYS['name'] if searched else 'NULL::text'} AS name,"
            f" {_ORDER_KEYS['canonical_alias'] if searched else 'NULL::text'} AS canonical_alias"
            " FROM rooms r WHERE NOT r.out_of_band)")
        page = await self._db.fetch_all(
            keyed + " SELECT room_id, count(*) OVER () FROM listed" + _MATCHING
            + f" ORDER BY sort_key {direction}, room_id {direction} LIMIT %(limit)s OFFSET %(offset)s", args)
        if not page:
            counted = await self._db.fetch_one(keyed + " SELECT count(*) FROM listed" + _MATCHING, args)
            return [], counted[0] if counted else 0
        room_ids = [row[0] for row in page]
        rows = await self._db.fetch_all(_LISTED + f" SELECT {_ROOM_COLUMNS} FROM listed",
                                        {**_args(self._server_name), "rooms": room_ids})
        facts = {row[0]: AdminRoom(*row) for row in rows}
        return [facts[room_id] for room_id in room_ids if room_id in facts], page[0][-1]

    async def get_room(self, room_id: str) -> AdminRoom | None:
        """The room's facts; C{None} for a room this server is not in."""
        row = await self._db.fetch_one(_LISTED + f" SELECT {_ROOM_COLUMNS} FROM listed",
                                       _args(self._server_name, room_id))
        return AdminRoom(*row) if row else None

    async def get_usage(self, room_id: str) -> RoomUsage:
        row = await self._db.fetch_one(
            "SELECT (SELECT count(*) FROM current_state cs JOIN devices d ON d.user_id = cs.state_key"
            "        WHERE cs.room_id = %(room)s AND cs.type = 'm.room.member' AND cs.membership = 'join'),"
            "       NOT EXISTS (SELECT 1 FROM current_state cs"
            "        WHERE cs.room_id = %(room)s AND cs.type = 'm.room.member'"
            f"         AND {_SERVER_OF_MEMBER} = %(server)s"
            "         AND NOT EXISTS (SELECT 1 FROM forgotten_rooms f WHERE f.user_id = cs.state_key"
            "          AND f.room_id = cs.room_id AND f.stream_ordering = cs.stream_ordering))",
            {"room": room_id, "server": self._server_name})
        assert row is not None  # a SELECT without FROM has one row
        return RoomUsage(row[0], row[1])

    async def get_joined_members(self, room_id: str) -> list[str]:
        rows = await self._db.fetch_all(
            "SELECT state_key FROM current_state WHERE room_id = %s AND type = 'm.room.member'"
            " AND membership = 'join' ORDER BY state_key", (room_id,))
        return [row[0] for row in rows]

    async def get_forward_extremities(self, room_id: str) -> list[ForwardExtremity]:
        """
        A room shared with other servers: its extremities (schema 026);
        another: its last event, the one extremity of its line.
        """
        rows = await self._db.fetch_all(
            "SELECT x.event_id, s.group_id, e.depth, e.origin_server_ts FROM room_extremities x"
            " JOIN events e ON e.event_id = x.event_id LEFT JOIN event_state s ON s.event_id = x.event_id"
            " WHERE x.room_id = %(room)s"
            " UNION ALL (SELECT e.event_id, NULL, e.depth, e.origin_server_ts FROM events e"
            "  JOIN rooms r ON r.room_id = e.room_id AND NOT r.federated"
            "  WHERE e.room_id = %(room)s AND e.stream_ordering > 0 ORDER BY e.stream_ordering DESC LIMIT 1)"
            " ORDER BY 3 DESC, 1", {"room": room_id})
        return [ForwardExtremity(*row) for row in rows]

    async def delete_forward_extremities(self, room_id: str) -> int:
        """Forget all of a shared room's extremities but its latest (as Synapse); how many went."""
        row = await self._db.fetch_one(
            "WITH latest AS (SELECT x.event_id FROM room_extremities x JOIN events e ON e.event_id = x.event_id"
            "  WHERE x.room_id = %(room)s ORDER BY e.stream_ordering DESC LIMIT 1),"
            " gone AS (DELETE FROM room_extremities WHERE room_id = %(room)s"
            "  AND event_id NOT IN (SELECT event_id FROM latest) RETURNING 1)"
            " SELECT count(*) FROM gone", {"room": room_id})
        return row[0] if row else 0


class RoomBlockStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def is_blocked(self, room_id: str) -> bool:
        return await self.blocked_by(room_id) is not None

    async def blocked_by(self, room_id: str) -> str | None:
        """The admin who blocked the room; C{None} when it is not blocked."""
        row = await self._db.fetch_one("SELECT user_id FROM blocked_rooms WHERE room_id = %s", (room_id,))
        return row[0] if row else None

    async def block(self, room_id: str, user_id: str, now_ms: int) -> None:
        await self._db.execute(
            "INSERT INTO blocked_rooms (room_id, user_id, blocked_ts) VALUES (%s, %s, %s)"
            " ON CONFLICT (room_id) DO NOTHING", (room_id, user_id, now_ms))

    async def unblock(self, room_id: str) -> None:
        await self._db.execute("DELETE FROM blocked_rooms WHERE room_id = %s", (room_id,))


_JOB_COLUMNS = "delete_id, room_id, status, error, shutdown"


def _job(row: Sequence[Any]) -> DeleteJob:
    return DeleteJob(row[0], row[1], row[2], row[3], ShutdownResult(**json.loads(row[4])))


class DeleteJobStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def add_job(self, delete_id: str, room_id: str, requester: str, now_ms: int) -> None:
        await self._db.execute(
            "INSERT INTO room_delete_jobs (delete_id, room_id, requester, status, shutdown, created_ts, updated_ts)"
            " VALUES (%s, %s, %s, 'scheduled', %s, %s, %s)",
            (delete_id, room_id, requester, json.dumps(ShutdownResult().to_json()), now_ms, now_ms))

    async def update_job(self, delete_id: str, status: str, now_ms: int, *, error: str | None = None,
                         shutdown: ShutdownResult | None = None) -> None:
        await self._db.execute(
            "UPDATE room_delete_jobs SET status = %s, error = %s, updated_ts = %s,"
            " shutdown = COALESCE(%s, shutdown) WHERE delete_id = %s",
            (status, error, now_ms, json.dumps(shutdown.to_json()) if shutdown else None, delete_id))

    async def get_job(self, delete_id: str) -> DeleteJob | None:
        row = await self._db.fetch_one(
            f"SELECT {_JOB_COLUMNS} FROM room_delete_jobs WHERE delete_id = %s", (delete_id,))
        return _job(row) if row else None

    async def get_jobs_of_room(self, room_id: str) -> list[DeleteJob]:
        rows = await self._db.fetch_all(
            f"SELECT {_JOB_COLUMNS} FROM room_delete_jobs WHERE room_id = %s ORDER BY created_ts, delete_id",
            (room_id,))
        return [_job(row) for row in rows]
