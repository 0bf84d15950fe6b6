"""
The receipts step of C{ruma-admin import-synapse}: Synapse's read receipts
(C{receipts_linearized}, public and private, threaded or not) of the
imported events, stored as a receipt sent here is (the reader's
notifications up to it marked read), at new stream positions in Synapse's
order.
"""
from __future__ import annotations

import json
from typing import AsyncIterator

from ruma_tx.matrix.ephemeral import Receipt
from ruma_tx.storage.ephemeral import READ_TYPES, ReceiptStore
from ruma_tx.storage.positions import max_stream_position
from ruma_tx.storage.synapse_import import StepContext, count, keyset_batches

_TYPES = ", ".join(f"'{receipt_type}'" for receipt_type in READ_TYPES)

#: Receipts of the read types pointing at an event of the room that Synapse did not reject.
_IMPORTED = (
    f"receipt_type IN ({_TYPES}) AND room_id IN (SELECT room_id FROM rooms)"
    " AND EXISTS (SELECT 1 FROM events e WHERE e.event_id = receipts_linearized.event_id"
    "  AND e.room_id = receipts_linearized.room_id)"
    " AND NOT EXISTS (SELECT 1 FROM rejections x WHERE x.event_id = receipts_linearized.event_id)"
)


class ReceiptsStep:
    name = "receipts"

    def __init__(self, context: StepContext) -> None:
        self._context = context
        self._receipts = ReceiptStore(context.database)

    async def source_count(self) -> int:
        return await count(self._context.source, "receipts_linearized", _IMPORTED)

    async def imported_count(self) -> int:
        row = await self._context.database.fetch_one("SELECT COUNT(*) FROM receipts")
        return int(row[0]) if row else 0

    async def batches(self, checkpoint: str | None) -> AsyncIterator[tuple[int, str]]:
        context = self._context
        position = await max_stream_position(context.database)
        async for rows, after in keyset_batches(
                context.source,
                "stream_id, room_id, receipt_type, user_id, thread_id, event_id, data FROM receipts_linearized",
                _IMPORTED, ["stream_id", "room_id", "receipt_type", "user_id"], checkpoint, context.batch_size):
            positions = dict(await context.database.fetch_all(
                "SELECT event_id, stream_ordering FROM events WHERE event_id = ANY(%s)", ([row[5] for row in rows],)))
            for _, room_id, receipt_type, user_id, thread_id, event_id, data in rows:
                if event_id not in positions:
                    continue
                ts = json.loads(data).get("ts") if data else None
                position += 1
                # Each stored at once; storing one again moves nothing (receipts only move forward).
                await self._receipts.put_receipt(
                    Receipt(room_id, user_id, receipt_type, thread_id, event_id, ts if isinstance(ts, int) else 0),
                    positions[event_id], position)
            yield len(rows), after
