"""Other servers' signing keys (schema C{025_server_keys.sql}). SQL only; see L{ruma_tx.services.key_ring}."""
from __future__ import annotations

from typing import Sequence

from ruma_tx.services.ports.server_keys import StoredServerKey
from ruma_tx.storage.database import Database, Transaction


class ServerKeyStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_server_keys(self, server_name: str) -> list[StoredServerKey]:
        rows = await self._db.fetch_all(
            "SELECT key_id, verify_key, valid_until_ts, retired, fetched_ts, key_response"
            " FROM server_keys WHERE server_name = %s",
            (server_name,),
        )
        return [StoredServerKey(*row) for row in rows]

    async def store_server_keys(self, server_name: str, keys: Sequence[StoredServerKey]) -> None:
        if not keys:
            return

        async def store(txn: Transaction) -> None:
            await txn.insert_many(
                "server_keys",
                ("server_name", "key_id", "verify_key", "valid_until_ts", "retired", "fetched_ts",
                 "key_response"),
                [(server_name, *key) for key in keys],
                "ON CONFLICT (server_name, key_id) DO UPDATE SET verify_key = EXCLUDED.verify_key,"
                " valid_until_ts = EXCLUDED.valid_until_ts, retired = EXCLUDED.retired,"
                " fetched_ts = EXCLUDED.fetched_ts, key_response = EXCLUDED.key_response",
            )

        await self._db.transaction("store_server_keys", store)
