"""What room upgrades read and move besides events: replacement rooms, aliases, publication. SQL only."""
from __future__ import annotations

from ruma_tx.storage.database import Database, Transaction


class RoomUpgradeStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def find_replacement(self, old_room_id: str, creator: str, room_version: str) -> str | None:
        """
        The newest room of C{room_version} that C{creator} made to replace
        C{old_room_id} (its C{m.room.create} names it as C{predecessor}).
        """
        row = await self._db.fetch_one(
            "SELECT e.room_id FROM events e JOIN rooms r ON r.room_id = e.room_id"
            " WHERE e.type = 'm.room.create'"
            " AND (e.pdu::jsonb #>> '{content,predecessor,room_id}') = %s"
            " AND e.sender = %s AND r.room_version = %s"
            " ORDER BY e.stream_ordering DESC LIMIT 1",
            (old_room_id, creator, room_version),
        )
        return row[0] if row else None

    async def move_directory(self, old_room_id: str, new_room_id: str) -> None:
        """
        Point the old room's aliases at the new room, and move its place
        in the published room directory, together.
        """
        async def move(txn: Transaction) -> None:
            await txn.execute("UPDATE room_aliases SET room_id = %s WHERE room_id = %s",
                              (new_room_id, old_room_id))
            await txn.execute(
                "UPDATE rooms SET published = (room_id = %s) WHERE room_id IN (%s, %s)"
                " AND EXISTS (SELECT 1 FROM rooms WHERE room_id = %s AND published)",
                (new_room_id, old_room_id, new_room_id, old_room_id),
            )

        await self._db.transaction("move_directory", move)
