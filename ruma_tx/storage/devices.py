"""Devices and their last-seen activity. SQL only."""
from __future__ import annotations

from ruma_tx.services.ports.accounts import Device
from ruma_tx.storage.database import Database, Transaction

_COLUMNS = "user_id, device_id, display_name, last_seen_ts, last_seen_ip"


class DeviceStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_devices(self, user_id: str) -> list[Device]:
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM devices WHERE user_id = %s ORDER BY device_id", (user_id,)
        )
        return [Device(*row) for row in rows]

    async def get_device(self, user_id: str, device_id: str) -> Device | None:
        row = await self._db.fetch_one(
            f"SELECT {_COLUMNS} FROM devices WHERE user_id = %s AND device_id = %s",
            (user_id, device_id),
        )
        return Device(*row) if row else None

    async def set_display_name(self, user_id: str, device_id: str, display_name: str | None) -> bool:
        rows = await self._db.fetch_all(
            "UPDATE devices SET display_name = %s WHERE user_id = %s AND device_id = %s"
            " RETURNING device_id",
            (display_name, user_id, device_id),
        )
        return bool(rows)

    async def delete_devices(self, user_id: str, device_ids: list[str]) -> list[str]:
        """Delete devices with their tokens; return the revoked token ids."""

        async def delete(txn: Transaction) -> list[str]:
            rows = await txn.fetch_all(
                "DELETE FROM access_tokens WHERE user_id = %s AND device_id = ANY(%s) RETURNING token_id",
                (user_id, device_ids),
            )
            await txn.execute(
                "DELETE FROM devices WHERE user_id = %s AND device_id = ANY(%s)", (user_id, device_ids)
            )
            return [row[0] for row in rows]

        return await self._db.transaction("delete_devices", delete)

    async def record_last_seen(self, seen: list[tuple[str, str, int, str]]) -> None:
        """Store a batch of C{(user_id, device_id, ts, ip)} in one statement."""
        if not seen:
            return
        values = ", ".join(["(%s, %s, %s::BIGINT, %s)"] * len(seen))
        await self._db.execute(
            f"UPDATE devices AS d SET last_seen_ts = v.ts, last_seen_ip = v.ip"
            f" FROM (VALUES {values}) AS v (user_id, device_id, ts, ip)"
            f" WHERE d.user_id = v.user_id AND d.device_id = v.device_id",
            [value for row in seen for value in row],
        )
