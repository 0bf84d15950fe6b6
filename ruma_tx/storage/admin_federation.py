"""
The federation destinations (schemas 027 and 039) as the admin API lists
them: their sending state and the rooms shared with them. SQL only.
"""
from __future__ import annotations

from ruma_tx.services.ports.admin_federation import DestinationStatus
from ruma_tx.storage.database import Database
from ruma_tx.storage.user_ids import server_of_column

#: Each of the admin API's fields as an expression over federation_destinations.
_FIELDS = {
    "destination": "destination",
    "retry_last_ts": "COALESCE(retry_last_ms, 0)",
    "retry_interval": "COALESCE(retry_at_ms - retry_last_ms, 0)",
    "failure_ts": "failing_since_ms",
    "last_successful_stream_ordering": "last_acked_position",
}
_COLUMNS = ", ".join(_FIELDS.values())
#: The rooms the destination has a user joined to (as schema 027's index has it).
_JOINED_ROOMS = ("SELECT DISTINCT room_id FROM current_state WHERE type = 'm.room.member'"
                 f" AND membership = 'join' AND {server_of_column('state_key')} = %(d)s")


class AdminFederationStore:
    """@param server_name: ours: the rooms' positions are those of our events."""

    def __init__(self, database: Database, server_name: str) -> None:
        self._db = database
        self._server_name = server_name

    async def get_destinations(self, *, start: int, limit: int, order_by: str, descending: bool,
                               name_contains: str | None) -> tuple[list[DestinationStatus], int]:
        where = " WHERE %(name)s::text IS NULL OR strpos(lower(destination), lower(%(name)s)) > 0"
        args = {"name": name_contains, "limit": limit, "start": start}
        order = "DESC" if descending else "ASC"
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM federation_destinations{where}"
            f" ORDER BY {_FIELDS[order_by]} {order}, destination {order} LIMIT %(limit)s OFFSET %(start)s", args)
        total = await self._db.fetch_one(f"SELECT count(*) FROM federation_destinations{where}", args)
        assert total is not None  # an aggregate: always one row
        return [DestinationStatus(*row) for row in rows], int(total[0])

    async def get_destination(self, destination: str) -> DestinationStatus | None:
        row = await self._db.fetch_one(
            f"SELECT {_COLUMNS} FROM federation_destinations WHERE destination = %s", (destination,))
        return None if row is None else DestinationStatus(*row)

    async def get_destination_rooms(self, destination: str, *, start: int, limit: int, descending: bool
                                    ) -> tuple[list[tuple[str, int]], int]:
        args = {"d": destination, "us": self._server_name, "limit": limit, "start": start}
        rows = await self._db.fetch_all(
            "SELECT r.room_id, COALESCE((SELECT max(e.stream_ordering) FROM events e"
            "  WHERE e.room_id = r.room_id AND e.stream_ordering <= d.last_acked_position"
            f"  AND {server_of_column('e.sender')} = %(us)s), 0)"
            f" FROM ({_JOINED_ROOMS}) r, federation_destinations d WHERE d.destination = %(d)s"
            f" ORDER BY r.room_id {'DESC' if descending else 'ASC'} LIMIT %(limit)s OFFSET %(start)s", args)
        total = await self._db.fetch_one(f"SELECT count(*) FROM ({_JOINED_ROOMS}) r", args)
        assert total is not None  # an aggregate: always one row
        return [(room_id, position) for room_id, position in rows], int(total[0])
