"""
Receipts, account data and presence (schema C{004_ephemeral.sql}). SQL
only: the rules live in L{ruma_tx.services.ephemeral},
L{ruma_tx.services.account_data} and L{ruma_tx.services.presence}.

Every write takes the stream position its change is stored at; the
C{changed} queries read what changed in C{(after, upto]}.
"""
from __future__ import annotations

import json

from ruma_tx.matrix.ephemeral import Receipt
from ruma_tx.services.ports.ephemeral import AccountData, StoredPresence
from ruma_tx.storage.database import Database

#: The room id of global account data rows.
GLOBAL = ""

#: Receipt types whose receipt marks what the user has read.
READ_TYPES = ("m.read", "m.read.private")


# ---------------------------------------------------------------- receipts




class ReceiptStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def put_receipt(self, receipt: Receipt, event_stream_ordering: int, position: int) -> bool:
        """
        Store C{receipt} at stream position C{position} unless the user's
        receipt of that type and thread already points at this event or a
        later one (as Synapse does: receipts mark "read up to" and never
        move back).

        It also marks notifications read up to the event, in the same
        statement (unread counts never lag behind a stored receipt): the
        room's when unthreaded, else its thread's (C{"main"} or a root).

        @return: whether it was stored.
        """
        if receipt.thread_id is None:
            read_position = (
                "INSERT INTO push_read_position (user_id, room_id, stream_ordering)"
                " SELECT %s, %s, %s WHERE EXISTS (SELECT 1 FROM receipt)"
                " ON CONFLICT (user_id, room_id) DO UPDATE SET stream_ordering ="
                " GREATEST(push_read_position.stream_ordering, EXCLUDED.stream_ordering)")
            read_args: tuple = (receipt.user_id, receipt.room_id, event_stream_ordering)
        else:
            read_position = (
                "INSERT INTO push_thread_read_position (user_id, room_id, thread_id, stream_ordering)"
                " SELECT %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM receipt)"
                " ON CONFLICT (user_id, room_id, thread_id) DO UPDATE SET stream_ordering ="
                " GREATEST(push_thread_read_position.stream_ordering, EXCLUDED.stream_ordering)")
            read_args = (receipt.user_id, receipt.room_id, receipt.thread_id, event_stream_ordering)
        row = await self._db.fetch_one(
            "WITH receipt AS (INSERT INTO receipts (room_id, user_id, receipt_type, thread_id, event_id,"
            " event_stream_ordering, ts, stream_position) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (room_id, user_id, receipt_type, thread_id) DO UPDATE SET"
            " event_id = EXCLUDED.event_id, event_stream_ordering = EXCLUDED.event_stream_ordering,"
            " ts = EXCLUDED.ts, stream_position = EXCLUDED.stream_position"
            " WHERE receipts.event_stream_ordering < EXCLUDED.event_stream_ordering"
            " RETURNING 1),"
            f" read AS ({read_position})"
            " SELECT 1 FROM receipt",
            (receipt.room_id, receipt.user_id, receipt.receipt_type, receipt.thread_id or "",
             receipt.event_id, event_stream_ordering, receipt.ts, position, *read_args),
        )
        return row is not None

    async def get_changed_receipts(
        self, room_ids: list[str], after: int, upto: int, viewer: str
    ) -> list[Receipt]:
        """
        The receipts in C{room_ids} stored in C{(after, upto]} that
        C{viewer} may see: everyone's C{m.read}, only their own
        C{m.read.private}.
        """
        if not room_ids:
            return []
        rows = await self._db.fetch_all(
            "SELECT room_id, user_id, receipt_type, thread_id, event_id, ts FROM receipts"
            " WHERE room_id = ANY(%s) AND stream_position > %s AND stream_position <= %s"
            " AND (receipt_type <> 'm.read.private' OR user_id = %s)",
            (room_ids, after, upto, viewer),
        )
        return [Receipt(room_id, user_id, receipt_type, thread_id or None, event_id, ts)
                for room_id, user_id, receipt_type, thread_id, event_id, ts in rows]

    async def get_read_up_to(self, user_id: str, room_id: str) -> int | None:
        """
        The C{stream_ordering} of the latest event the user's C{m.read} or
        C{m.read.private} receipts point at, unthreaded or for the main
        timeline; C{None} without such a receipt.
        """
        row = await self._db.fetch_one(
            "SELECT max(event_stream_ordering) FROM receipts"
            " WHERE room_id = %s AND user_id = %s AND receipt_type = ANY(%s)"
            " AND thread_id IN ('', 'main')",
            (room_id, user_id, list(READ_TYPES)),
        )
        return row[0] if row else None

    async def get_thread_read_up_to(self, user_id: str, room_id: str) -> dict[str | None, int]:
        """
        Per thread (C{None}: unthreaded, C{"main"}, or a thread root's event
        id), the C{stream_ordering} of the latest event the user's
        C{m.read}/C{m.read.private} receipts point at.
        """
        rows = await self._db.fetch_all(
            "SELECT thread_id, max(event_stream_ordering) FROM receipts"
            " WHERE room_id = %s AND user_id = %s AND receipt_type = ANY(%s) GROUP BY thread_id",
            (room_id, user_id, list(READ_TYPES)),
        )
        return {thread_id or None: ordering for thread_id, ordering in rows}


# ------------------------------------------------------------ account data




def _content(text: str) -> dict:
    content = json.loads(text)
    return content if isinstance(content, dict) else {}


class AccountDataStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def put(self, user_id: str, room_id: str | None, data_type: str, content: dict,
                  position: int) -> None:
        """Set one entry (global when C{room_id} is C{None}) at stream position C{position}."""
        await self._db.execute(
            "INSERT INTO account_data (user_id, room_id, type, content, stream_position)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id, room_id, type) DO UPDATE SET"
            " content = EXCLUDED.content, stream_position = EXCLUDED.stream_position",
            (user_id, room_id or GLOBAL, data_type, json.dumps(content, ensure_ascii=False), position),
        )

    async def get(self, user_id: str, room_id: str | None, data_type: str) -> dict | None:
        row = await self._db.fetch_one(
            "SELECT content FROM account_data WHERE user_id = %s AND room_id = %s AND type = %s",
            (user_id, room_id or GLOBAL, data_type),
        )
        return _content(row[0]) if row else None

    async def get_changed(self, user_id: str, after: int, upto: int) -> list[AccountData]:
        """The user's entries (global and per room) stored in C{(after, upto]}."""
        rows = await self._db.fetch_all(
            "SELECT room_id, type, content FROM account_data"
            " WHERE user_id = %s AND stream_position > %s AND stream_position <= %s",
            (user_id, after, upto),
        )
        return [AccountData(room_id or None, data_type, _content(content))
                for room_id, data_type, content in rows]

    async def put_tag(self, user_id: str, room_id: str, tag: str, content: dict, position: int) -> None:
        """
        Set one tag in the room's C{m.tag} entry (created if missing) at
        C{position}, in one statement, so concurrent tag changes of the same
        room all survive.
        """
        await self._db.execute(
            "INSERT INTO account_data (user_id, room_id, type, content, stream_position)"
            " VALUES (%s, %s, 'm.tag', jsonb_build_object('tags', jsonb_build_object(%s, %s::jsonb))::text, %s)"
            " ON CONFLICT (user_id, room_id, type) DO UPDATE SET stream_position = EXCLUDED.stream_position,"
            " content = jsonb_set("
            "   CASE WHEN jsonb_typeof(account_data.content::jsonb -> 'tags') = 'object'"
            "        THEN account_data.content::jsonb"
            "        ELSE account_data.content::jsonb || '{\"tags\": {}}'::jsonb END,"
            "   ARRAY['tags', %s], %s::jsonb)::text",
            (user_id, room_id, tag, json.dumps(content), position, tag, json.dumps(content)),
        )

    async def remove_tag(self, user_id: str, room_id: str, tag: str, position: int) -> bool:
        """
        Remove one tag from the room's C{m.tag} entry at C{position}.

        @return: whether the tag was there.
        """
        row = await self._db.fetch_one(
            "UPDATE account_data SET content = (content::jsonb #- ARRAY['tags', %s])::text,"
            " stream_position = %s"
            " WHERE user_id = %s AND room_id = %s AND type = 'm.tag'"
            " AND jsonb_typeof(content::jsonb -> 'tags') = 'object' AND content::jsonb -> 'tags' ? %s"
            " RETURNING 1",
            (tag, position, user_id, room_id, tag),
        )
        return row is not None


# ---------------------------------------------------------------- presence




_PRESENCE_COLUMNS = "user_id, state, status_msg, last_active_ts, stream_position"


class PresenceStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def put(self, presence: StoredPresence) -> None:
        await self._db.execute(
            f"INSERT INTO presence ({_PRESENCE_COLUMNS}) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (user_id) DO UPDATE SET state = EXCLUDED.state,"
            " status_msg = EXCLUDED.status_msg, last_active_ts = EXCLUDED.last_active_ts,"
            " stream_position = EXCLUDED.stream_position",
            (presence.user_id, presence.state, presence.status_msg, presence.last_active_ts,
             presence.stream_position),
        )

    async def get(self, user_id: str) -> StoredPresence | None:
        row = await self._db.fetch_one(
            f"SELECT {_PRESENCE_COLUMNS} FROM presence WHERE user_id = %s", (user_id,)
        )
        return StoredPresence(*row) if row else None

    async def get_changed_for(
        self, viewer: str, room_ids: list[str], after: int, upto: int, include_offline: bool
    ) -> list[StoredPresence]:
        """
        The presence, stored in C{(after, upto]}, of C{viewer} and of the
        users joined to any of C{room_ids}.
        """
        sql = (
            f"SELECT {_PRESENCE_COLUMNS} FROM presence p"
            " WHERE p.stream_position > %s AND p.stream_position <= %s"
            " AND (p.user_id = %s OR EXISTS (SELECT 1 FROM current_state c"
            "  WHERE c.room_id = ANY(%s) AND c.type = 'm.room.member' AND c.state_key = p.user_id"
            "  AND c.membership = 'join'))"
        )
        if not include_offline:
            sql += " AND p.state <> 'offline'"
        rows = await self._db.fetch_all(sql, (after, upto, viewer, room_ids))
        return [StoredPresence(*row) for row in rows]

    async def get_for_new_room_mates(
        self, viewer: str, new_rooms: list[str], joined_rooms: list[str], after: int, upto: int
    ) -> list[StoredPresence]:
        """
        The presence, whenever stored, of the users C{viewer} started to
        share a room with in C{(after, upto]}: the joined members of
        C{new_rooms} (rooms the viewer joined), and those who joined one of
        C{joined_rooms} in that window. Offline users are left out.
        """
        rows = await self._db.fetch_all(
            f"SELECT {_PRESENCE_COLUMNS} FROM presence p"
            " WHERE p.user_id <> %s AND p.state <> 'offline' AND ("
            "  EXISTS (SELECT 1 FROM current_state c WHERE c.room_id = ANY(%s)"
            "   AND c.type = 'm.room.member' AND c.state_key = p.user_id AND c.membership = 'join')"
            "  OR EXISTS (SELECT 1 FROM events e WHERE e.room_id = ANY(%s)"
            "   AND e.type = 'm.room.member' AND e.state_key = p.user_id AND e.membership = 'join'"
            "   AND e.stream_ordering > %s AND e.stream_ordering <= %s))",
            (viewer, new_rooms, joined_rooms, after, upto),
        )
        return [StoredPresence(*row) for row in rows]

    async def get_room_mates(self, user_id: str) -> list[str]:
        """The users joined to a room the user is joined to (not the user)."""
        rows = await self._db.fetch_all(
            "SELECT DISTINCT b.state_key FROM current_state a JOIN current_state b ON b.room_id = a.room_id"
            " WHERE a.type = 'm.room.member' AND a.state_key = %s AND a.membership = 'join'"
            " AND b.type = 'm.room.member' AND b.membership = 'join' AND b.state_key <> %s",
            (user_id, user_id),
        )
        return [row[0] for row in rows]

    async def get_joined_presence(self, room_id: str) -> list[StoredPresence]:
        """The presence of the room's joined members, those not offline."""
        rows = await self._db.fetch_all(
            f"SELECT {_PRESENCE_COLUMNS} FROM presence p JOIN current_state c ON c.state_key = p.user_id"
            " WHERE c.room_id = %s AND c.type = 'm.room.member' AND c.membership = 'join'"
            " AND p.state <> 'offline'",
            (room_id,),
        )
        return [StoredPresence(*row) for row in rows]

    async def share_a_room(self, user_a: str, user_b: str) -> bool:
        """Whether both users are joined to some room."""
        row = await self._db.fetch_one(
            "SELECT 1 FROM current_state a JOIN current_state b ON b.room_id = a.room_id"
            " WHERE a.type = 'm.room.member' AND a.state_key = %s AND a.membership = 'join'"
            " AND b.type = 'm.room.member' AND b.state_key = %s AND b.membership = 'join' LIMIT 1",
            (user_a, user_b),
        )
        return row is not None
