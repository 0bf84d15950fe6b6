"""
Removing a room from the database (the admin API's room deletion). SQL only.

A purge is one transaction: a crash or a failure leaves the room whole,
never half removed, and running it again finishes it.

What stays of a purged room is each local user's last membership event
(after a deletion, their leave) and what hangs on it (the room they
forgot): /sync tells their clients they left the room, and nothing else of
it is left to show. The room itself is gone: unknown to every endpoint
and to the room lists.
"""
from __future__ import annotations

from typing import Sequence

from ruma_tx.storage.database import Database, Transaction
from ruma_tx.storage.user_ids import server_of_column

_LOCAL_MEMBER = (
    f"type = 'm.room.member' AND {server_of_column('state_key')} = %(server)s")

#: Rows of the room outside its events and state, by room id (the DAG's
#: state snapshots before their groups, which they reference).
_ROOM_TABLES = (
    "room_extremities", "event_dag_status", "rejected_events", "resolved_state", "event_search",
    "event_relations", "threads", "receipts", "event_push_actions", "push_read_position",
    "push_thread_read_position", "account_data", "room_aliases",
)

_PURGE = (
    # Transaction ids of events that go (by event: see schema 009).
    "DELETE FROM event_txn_ids t USING events e WHERE e.room_id = %(room)s AND t.event_id = e.event_id"
    " AND e.event_id <> ALL(%(kept)s)",
    "DELETE FROM event_state WHERE group_id IN (SELECT group_id FROM state_groups WHERE room_id = %(room)s)",
    "DELETE FROM state_group_entries WHERE group_id IN (SELECT group_id FROM state_groups WHERE room_id = %(room)s)",
    "DELETE FROM state_groups WHERE room_id = %(room)s",
    *(f"DELETE FROM {table} WHERE room_id = %(room)s" for table in _ROOM_TABLES),
    "DELETE FROM current_state WHERE room_id = %(room)s AND event_id <> ALL(%(kept)s)",
    "DELETE FROM user_directory_rooms WHERE room_id = %(room)s",
    "DELETE FROM events WHERE room_id = %(room)s AND event_id <> ALL(%(kept)s)",
    "DELETE FROM rooms WHERE room_id = %(room)s",
)


class RoomPurgeStore:
    def __init__(self, database: Database, server_name: str) -> None:
        self._db = database
        self._server_name = server_name

    async def room_exists(self, room_id: str) -> bool:
        return await self._db.fetch_one("SELECT 1 FROM rooms WHERE room_id = %s", (room_id,)) is not None

    async def local_members(self, room_id: str, memberships: Sequence[str]) -> list[str]:
        """The room's users of this server whose membership is one of C{memberships}."""
        rows = await self._db.fetch_all(
            f"SELECT state_key FROM current_state WHERE room_id = %(room)s AND {_LOCAL_MEMBER}"
            " AND membership = ANY(%(memberships)s) ORDER BY state_key",
            {"room": room_id, "server": self._server_name, "memberships": list(memberships)})
        return [row[0] for row in rows]

    async def purge_room(self, room_id: str, delete_id: str, now_ms: int) -> None:
        """
        Remove the room, its events, state and what refers to them, but its
        local users' memberships; the deletion C{delete_id} is complete in
        the same transaction (after a crash, it says complete if and only
        if the room is gone).
        """
        async def purge(txn: Transaction) -> None:
            kept = [row[0] for row in await txn.fetch_all(
                f"SELECT event_id FROM current_state WHERE room_id = %(room)s AND {_LOCAL_MEMBER}",
                {"room": room_id, "server": self._server_name})]
            for sql in _PURGE:
                await txn.execute(sql, {"room": room_id, "kept": kept})
            await txn.execute("UPDATE room_delete_jobs SET status = 'complete', updated_ts = %s WHERE delete_id = %s",
                              (now_ms, delete_id))

        await self._db.transaction("purge_room", purge)
