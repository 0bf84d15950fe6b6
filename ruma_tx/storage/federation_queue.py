"""
The durable state of sending to other homeservers (schema
C{027_federation_sending.sql}): each destination's acknowledged position
in the events table, its backoff, and its durable EDUs. SQL only: which
events a destination gets is decided by L{ruma_tx.matrix.federation_sending}.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from ruma_tx.matrix.federation_sending import EventRow
from ruma_tx.services.ports.federation_queue import Destination, QueuedEdu
from ruma_tx.storage.database import Database, Transaction
from ruma_tx.storage.user_ids import server_of_column

_DESTINATION_COLUMNS = "destination, last_acked_position, retry_at_ms, backoff_ms, failing_since_ms"
#: The columns of a destination that is not failing.
_NO_BACKOFF = "retry_at_ms = NULL, backoff_ms = 0, failing_since_ms = NULL, retry_last_ms = NULL"
_JOINED_SERVERS = (f"SELECT DISTINCT {server_of_column('state_key')} FROM current_state"
                   " WHERE type = 'm.room.member' AND membership = 'join'")


def _destination(row: Sequence[Any]) -> Destination:
    return Destination(*row)


class FederationQueueStore:
    """
    @param database: the L{ruma_tx.storage.database.Database}.
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    # -- destinations ------------------------------------------------------

    async def get_destination(self, destination: str) -> Destination | None:
        row = await self._db.fetch_one(
            f"SELECT {_DESTINATION_COLUMNS} FROM federation_destinations WHERE destination = %s",
            (destination,))
        return None if row is None else _destination(row)

    async def add_destinations(self, destinations: Iterable[str], last_acked_position: int) -> None:
        rows = [(destination, last_acked_position) for destination in sorted(set(destinations))]
        if not rows:
            return

        async def add(txn: Transaction) -> None:
            await txn.insert_many("federation_destinations", ("destination", "last_acked_position"),
                                  rows, "ON CONFLICT (destination) DO NOTHING")

        await self._db.transaction("add_federation_destinations", add)

    async def get_destinations_with_work(self, upto: int) -> list[Destination]:
        rows = await self._db.fetch_all(
            f"SELECT {_DESTINATION_COLUMNS} FROM federation_destinations d"
            " WHERE last_acked_position < %s"
            " OR EXISTS (SELECT 1 FROM federation_edu_outbox o WHERE o.destination = d.destination)"
            " ORDER BY destination", (upto,))
        return [_destination(row) for row in rows]

    async def acknowledge(self, destination: str, upto: int, edu_positions: Sequence[int]) -> None:
        async def ack(txn: Transaction) -> None:
            await txn.execute(
                "UPDATE federation_destinations SET"
                " last_acked_position = GREATEST(last_acked_position, %s),"
                f" {_NO_BACKOFF} WHERE destination = %s", (upto, destination))
            if edu_positions:
                await txn.execute(
                    "DELETE FROM federation_edu_outbox WHERE destination = %s AND position = ANY(%s)",
                    (destination, list(edu_positions)))

        await self._db.transaction("acknowledge_federation_transaction", ack)

    async def set_backoff(self, destination: str, retry_at_ms: int, backoff_ms: int,
                          failing_since_ms: int, failed_at_ms: int) -> None:
        await self._db.execute(
            "UPDATE federation_destinations SET retry_at_ms = %s, backoff_ms = %s, failing_since_ms = %s,"
            " retry_last_ms = %s WHERE destination = %s",
            (retry_at_ms, backoff_ms, failing_since_ms, failed_at_ms, destination))

    async def clear_backoff(self, destination: str) -> None:
        await self._db.execute(f"UPDATE federation_destinations SET {_NO_BACKOFF} WHERE destination = %s",
                               (destination,))

    # -- who is where ------------------------------------------------------

    async def get_servers_in_rooms(self, room_ids: Sequence[str]) -> list[str]:
        rows = await self._db.fetch_all(_JOINED_SERVERS + " AND room_id = ANY(%s)", (list(room_ids),))
        return sorted(row[0] for row in rows)

    async def get_servers_sharing_rooms(self, user_id: str) -> list[str]:
        rows = await self._db.fetch_all(
            _JOINED_SERVERS + " AND room_id IN (SELECT room_id FROM current_state"
            " WHERE type = 'm.room.member' AND state_key = %s AND membership = 'join')", (user_id,))
        return sorted(row[0] for row in rows)

    async def get_candidate_rooms(self, destination: str, after: int, upto: int) -> list[str]:
        rows = await self._db.fetch_all(
            "SELECT room_id FROM current_state WHERE type = 'm.room.member' AND membership = 'join'"
            f" AND {server_of_column('state_key')} = %(d)s"
            " UNION SELECT room_id FROM events WHERE type = 'm.room.member'"
            f" AND {server_of_column('state_key')} = %(d)s"
            " AND stream_ordering > %(after)s AND stream_ordering <= %(upto)s",
            {"d": destination, "after": after, "upto": upto})
        return sorted(row[0] for row in rows)

    async def get_joined_at(self, destination: str, room_ids: Sequence[str], position: int
                            ) -> Mapping[str, list[str]]:
        rows = await self._db.fetch_all(
            "SELECT room_id, state_key FROM ("
            " SELECT DISTINCT ON (room_id, state_key) room_id, state_key, membership FROM events"
            " WHERE room_id = ANY(%(rooms)s) AND type = 'm.room.member'"
            f" AND {server_of_column('state_key')} = %(d)s AND stream_ordering <= %(position)s"
            " ORDER BY room_id, state_key, stream_ordering DESC) latest"
            " WHERE membership = 'join'",
            {"rooms": list(room_ids), "d": destination, "position": position})
        joined: dict[str, list[str]] = {}
        for room_id, user_id in rows:
            joined.setdefault(room_id, []).append(user_id)
        return joined

    async def get_event_rows(self, destination: str, our_server: str, room_ids: Sequence[str],
                             after: int, upto: int, limit: int) -> list[EventRow]:
        rows = await self._db.fetch_all(
            "SELECT stream_ordering, room_id, type, state_key, sender, membership, pdu FROM events"
            " WHERE room_id = ANY(%(rooms)s) AND stream_ordering > %(after)s"
            " AND stream_ordering <= %(upto)s"
            f" AND ({server_of_column('sender')} = %(us)s"
            f"      OR (type = 'm.room.member' AND {server_of_column('state_key')} = %(d)s))"
            " ORDER BY stream_ordering LIMIT %(limit)s",
            {"rooms": list(room_ids), "after": after, "upto": upto, "us": our_server,
             "d": destination, "limit": limit})
        return [EventRow(*row) for row in rows]

    # -- EDUs ----------------------------------------------------------------

    async def get_edus(self, destination: str, limit: int) -> list[QueuedEdu]:
        rows = await self._db.fetch_all(
            "SELECT position, edu_json FROM federation_edu_outbox WHERE destination = %s"
            " ORDER BY position LIMIT %s", (destination, limit))
        return [QueuedEdu(*row) for row in rows]

    async def add_edus(self, edus: Iterable[tuple[str, str]], last_acked_position: int) -> None:
        rows = list(edus)
        if not rows:
            return

        async def add(txn: Transaction) -> None:
            await txn.insert_many("federation_destinations", ("destination", "last_acked_position"),
                                  [(d, last_acked_position) for d in sorted({d for d, _ in rows})],
                                  "ON CONFLICT (destination) DO NOTHING")
            await txn.insert_many("federation_edu_outbox", ("destination", "edu_json"), rows)

        await self._db.transaction("add_federation_edus", add)
