"""
Send-to-device queues (schema C{013_to_device.sql}). SQL only: the
delivery rules are explained in L{ruma_tx.services.to_device}.
"""
from __future__ import annotations

import json

from ruma_tx.matrix.to_device import Outgoing
from ruma_tx.services.ports.ephemeral import QueuedMessage
from ruma_tx.storage.database import Database, Transaction


class ToDeviceStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def queue(self, txn: tuple[str, str, str, str], sender: str, event_type: str,
                    messages: list[Outgoing], position: int, now_ms: int) -> list[str] | None:
        """
        Record the transaction id C{txn} = (user, device, scope, txn_id) and
        queue C{messages} at C{position} for each addressed device that
        exists, in one transaction (one multi-row insert for the messages).

        @return: the users with at least one message queued, or C{None} when
            C{txn} was already used (nothing is queued again).
        """

        async def persist(t: Transaction) -> list[str] | None:
            row = await t.fetch_one(
                "INSERT INTO to_device_txn_ids (user_id, device_id, scope, txn_id, created_ts)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                (*txn, now_ms),
            )
            if row is None:
                return None
            return await _insert_messages(t, sender, event_type, messages, position)

        return await self._db.transaction("queue_to_device", persist)

    async def queue_received(self, sender: str, message_id: str, event_type: str, messages: list[Outgoing],
                             position: int, now_ms: int, kept_ms: int) -> list[str] | None:
        """
        As L{queue}, for an C{m.direct_to_device} of another server's
        C{sender}: once per C{message_id} of theirs (C{None}: a repeat).
        What was received more than C{kept_ms} ago is forgotten.
        """

        async def persist(t: Transaction) -> list[str] | None:
            await t.execute("DELETE FROM to_device_received WHERE received_ts < %s", (now_ms - kept_ms,))
            row = await t.fetch_one(
                "INSERT INTO to_device_received (sender, message_id, received_ts)"
                " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                (sender, message_id, now_ms),
            )
            if row is None:
                return None
            return await _insert_messages(t, sender, event_type, messages, position)

        return await self._db.transaction("queue_received_to_device", persist)

    async def take_batch(self, user_id: str, device_id: str, *, acknowledged: int | None,
                         upto: int, limit: int) -> list[QueuedMessage]:
        """
        In one statement: delete the device's messages delivered at or
        before C{acknowledged} (a position; C{None} acknowledges nothing);
        return the first C{limit} of the rest queued at or before C{upto},
        in order, marking them delivered at C{upto}.
        """
        acked = -1 if acknowledged is None else acknowledged
        rows = await self._db.fetch_all(
            # Every part sees the same snapshot: the DELETE and the UPDATE
            # touch disjoint rows, and the batch excludes what is deleted.
            "WITH acknowledged AS ("
            "  DELETE FROM to_device_messages"
            "  WHERE user_id = %(user)s AND device_id = %(device)s AND delivered_at <= %(acked)s"
            "), batch AS ("
            "  SELECT stream_position, sender, type, content FROM to_device_messages"
            "  WHERE user_id = %(user)s AND device_id = %(device)s AND stream_position <= %(upto)s"
            "  AND (delivered_at IS NULL OR delivered_at > %(acked)s)"
            "  ORDER BY stream_position LIMIT %(limit)s"
            "), delivered AS ("
            "  UPDATE to_device_messages SET delivered_at = %(upto)s"
            "  WHERE user_id = %(user)s AND device_id = %(device)s"
            "  AND stream_position IN (SELECT stream_position FROM batch)"
            ") SELECT stream_position, sender, type, content FROM batch ORDER BY stream_position",
            {"user": user_id, "device": device_id, "acked": acked, "upto": upto, "limit": limit},
        )
        return [QueuedMessage(position, sender, event_type, _content(content))
                for position, sender, event_type, content in rows]


def _content(text: str) -> dict:
    content = json.loads(text)
    return content if isinstance(content, dict) else {}


async def _insert_messages(t: Transaction, sender: str, event_type: str, messages: list[Outgoing],
                           position: int) -> list[str]:
    """Queue C{messages} at C{position}; return the users with one queued."""
    if not messages:
        return []
    # Unknown users and devices find no row to join: silently skipped.
    values = ", ".join(["(%s, %s::TEXT, %s)"] * len(messages))
    rows = await t.fetch_all(
        "INSERT INTO to_device_messages"
        " (user_id, device_id, stream_position, sender, type, content)"
        " SELECT d.user_id, d.device_id, %s, %s, %s, m.content"
        f" FROM (VALUES {values}) AS m (user_id, device_id, content)"
        " JOIN devices AS d ON d.user_id = m.user_id"
        " AND (m.device_id IS NULL OR d.device_id = m.device_id)"
        " RETURNING user_id",
        [position, sender, event_type,
         *(v for m in messages for v in (m.user_id, m.device_id, m.content_json))],
    )
    return list(dict.fromkeys(row[0] for row in rows))
