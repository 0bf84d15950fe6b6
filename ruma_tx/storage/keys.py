"""
End-to-end encryption keys of devices (schema C{010_device_keys.sql}):
device identity keys, one-time keys, fallback keys, and the stream position
at which each device's key counts last changed. SQL only: the rules live
in L{ruma_tx.services.keys}.

Key objects are kept as canonical JSON text, exactly as signed.
"""
from __future__ import annotations

import json
from typing import Iterable, Sequence

import psycopg2.errors

from ruma_tx.services.ports.keys import (
    ClaimedKey,
    StoredKeys,
    SyncKeyCounts,
    UnknownDevice,
)
from ruma_tx.storage.database import Database, Transaction


def _values(rows: int, columns: int) -> str:
    row = "(" + ", ".join(["%s"] * columns) + ")"
    return ", ".join([row] * rows)


def _flat(rows: Iterable[Sequence[object]]) -> list[object]:
    return [value for row in rows for value in row]


class KeyStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    # ---------------------------------------------------------- device keys

    async def get_device_keys(self, user_id: str, device_id: str) -> dict | None:
        """The device's uploaded C{DeviceKeys} object, or C{None}."""
        row = await self._db.fetch_one(
            "SELECT key_json FROM e2e_device_keys WHERE user_id = %s AND device_id = %s",
            (user_id, device_id),
        )
        return json.loads(row[0]) if row else None

    async def get_device_keys_of_users(self, user_ids: list[str]) -> dict[str, dict[str, dict]]:
        """
        Every uploaded C{DeviceKeys} object of C{user_ids}:
        C{{user_id: {device_id: keys}}} (users without keys absent), for
        C{/keys/query}.
        """
        if not user_ids:
            return {}
        rows = await self._db.fetch_all(
            "SELECT user_id, device_id, key_json FROM e2e_device_keys WHERE user_id = ANY(%s)",
            (list(user_ids),),
        )
        found: dict[str, dict[str, dict]] = {}
        for user_id, device_id, key_json in rows:
            found.setdefault(user_id, {})[device_id] = json.loads(key_json)
        return found

    # ------------------------------------------------------- one-time keys

    async def get_one_time_keys(self, user_id: str, device_id: str,
                                ids: list[tuple[str, str]]) -> dict[tuple[str, str], object]:
        """The stored ones of the C{(algorithm, key_id)} keys of a device."""
        if not ids:
            return {}
        rows = await self._db.fetch_all(
            "SELECT o.algorithm, o.key_id, o.key_json FROM e2e_one_time_keys o"
            f" JOIN (VALUES {_values(len(ids), 2)}) AS w (algorithm, key_id)"
            "   ON o.algorithm = w.algorithm AND o.key_id = w.key_id"
            " WHERE o.user_id = %s AND o.device_id = %s",
            [*_flat(ids), user_id, device_id],
        )
        return {(algorithm, key_id): json.loads(key_json) for algorithm, key_id, key_json in rows}

    async def count_one_time_keys(self, user_id: str, device_id: str) -> dict[str, int]:
        """C{{algorithm: count}} of the device's unclaimed one-time keys."""
        rows = await self._db.fetch_all(_COUNT_SQL, (user_id, device_id))
        return dict(rows)

    async def store_keys(
        self, user_id: str, device_id: str, *, now_ms: int,
        device_keys: str | None = None,
        one_time_keys: Sequence[tuple[str, str, str]] = (),
        fallback_keys: Sequence[tuple[str, str, str]] = (),
        position: int | None = None,
    ) -> StoredKeys:
        """
        Store an upload in one transaction: the device keys (replacing the
        previous ones when they differ), new one-time keys (an id already
        stored is left as it is) and fallback keys (one per algorithm; a
        different key replaces the previous one and is unused; the same key
        again changes nothing, so a used one stays used). When one-time keys
        were added or a fallback key replaced, the device's count-change
        position moves to C{position}.

        @param device_keys: canonical JSON, or C{None} to leave them.
        @param one_time_keys: C{(algorithm, key_id, canonical JSON)} triples.
        @param fallback_keys: the same, at most one per algorithm.
        @raise UnknownDevice: if the device does not exist.
        """

        async def store(txn: Transaction) -> StoredKeys:
            device_keys_changed = counts_changed = False
            if device_keys is not None:
                device_keys_changed = bool(await txn.execute(
                    "INSERT INTO e2e_device_keys (user_id, device_id, key_json, updated_ts)"
                    " VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT (user_id, device_id) DO UPDATE"
                    " SET key_json = EXCLUDED.key_json, updated_ts = EXCLUDED.updated_ts"
                    " WHERE e2e_device_keys.key_json <> EXCLUDED.key_json",
                    (user_id, device_id, device_keys, now_ms),
                ))
            if one_time_keys:
                # One sequence value for the whole upload: claims go out in
                # upload order, then by key id.
                added = await txn.execute(
                    "WITH this_upload AS (SELECT nextval('e2e_one_time_key_uploads') AS upload)"
                    " INSERT INTO e2e_one_time_keys"
                    " (user_id, device_id, algorithm, key_id, key_json, upload)"
                    " SELECT %s, %s, v.algorithm, v.key_id, v.key_json, this_upload.upload"
                    f" FROM (VALUES {_values(len(one_time_keys), 3)}) AS v (algorithm, key_id, key_json),"
                    " this_upload"
                    " ON CONFLICT DO NOTHING",
                    [user_id, device_id, *_flat(one_time_keys)],
                )
                counts_changed = added > 0
            if fallback_keys:
                replaced = await txn.insert_many(
                    "e2e_fallback_keys", ("user_id", "device_id", "algorithm", "key_id", "key_json"),
                    [(user_id, device_id, *key) for key in fallback_keys],
                    suffix="ON CONFLICT (user_id, device_id, algorithm) DO UPDATE"
                           " SET key_id = EXCLUDED.key_id, key_json = EXCLUDED.key_json, used = FALSE"
                           " WHERE e2e_fallback_keys.key_json <> EXCLUDED.key_json",
                )
                counts_changed = counts_changed or replaced > 0
            if counts_changed and position is not None:
                await self._record_count_change_txn(txn, [(user_id, device_id)], position)
            counts = dict(await txn.fetch_all(_COUNT_SQL, (user_id, device_id)))
            return StoredKeys(counts, device_keys_changed, counts_changed)

        try:
            return await self._db.transaction("store_keys", store)
        except psycopg2.errors.ForeignKeyViolation:
            raise UnknownDevice(device_id) from None

    async def claim_keys(self, claims: list[tuple[str, str, str]],
                         position: int) -> list[ClaimedKey]:
        """
        Hand out one key for each C{(user_id, device_id, algorithm)}: the
        device's oldest one-time key of the algorithm, deleted in the same
        statement (C{FOR UPDATE SKIP LOCKED}: concurrent claims never get
        the same key, nor wait for each other's), else its fallback key,
        marked used. Devices whose counts changed get C{position} as their
        count-change position.

        Devices with no key of the algorithm are absent from the result.
        """
        claims = sorted(set(claims))  # one lock order for every claim: no deadlocks
        if not claims:
            return []

        async def claim(txn: Transaction) -> list[ClaimedKey]:
            rows = await txn.fetch_all(
                f"WITH wanted (user_id, device_id, algorithm) AS (VALUES {_values(len(claims), 3)}),"
                " picked AS ("
                "   SELECT k.user_id, k.device_id, k.algorithm, k.key_id FROM wanted w"
                "   CROSS JOIN LATERAL ("
                "     SELECT o.user_id, o.device_id, o.algorithm, o.key_id FROM e2e_one_time_keys o"
                "      WHERE o.user_id = w.user_id AND o.device_id = w.device_id"
                "        AND o.algorithm = w.algorithm"
                "      ORDER BY o.upload, o.key_id LIMIT 1 FOR UPDATE SKIP LOCKED) AS k)"
                " DELETE FROM e2e_one_time_keys o USING picked p"
                " WHERE o.user_id = p.user_id AND o.device_id = p.device_id"
                "   AND o.algorithm = p.algorithm AND o.key_id = p.key_id"
                " RETURNING o.user_id, o.device_id, o.algorithm, o.key_id, o.key_json",
                _flat(claims),
            )
            claimed = [ClaimedKey(u, d, a, k, json.loads(j)) for u, d, a, k, j in rows]
            served = {(c.user_id, c.device_id, c.algorithm) for c in claimed}
            missing = [c for c in claims if c not in served]
            if missing:
                # The lock is taken first, so a concurrent claim's update is
                # seen: only the first claim of a fallback key marks it used.
                rows = await txn.fetch_all(
                    f"WITH wanted (user_id, device_id, algorithm) AS (VALUES {_values(len(missing), 3)}),"
                    " previous AS ("
                    "   SELECT f.user_id, f.device_id, f.algorithm, f.used FROM e2e_fallback_keys f"
                    "   JOIN wanted w ON f.user_id = w.user_id AND f.device_id = w.device_id"
                    "    AND f.algorithm = w.algorithm"
                    "   ORDER BY f.user_id, f.device_id, f.algorithm FOR UPDATE OF f)"
                    " UPDATE e2e_fallback_keys f SET used = TRUE FROM previous p"
                    " WHERE f.user_id = p.user_id AND f.device_id = p.device_id"
                    "   AND f.algorithm = p.algorithm"
                    " RETURNING f.user_id, f.device_id, f.algorithm, f.key_id, f.key_json, p.used",
                    _flat(missing),
                )
                claimed += [ClaimedKey(u, d, a, k, json.loads(j), fallback=True, newly_used=not used)
                            for u, d, a, k, j, used in rows]
            changed = sorted({(c.user_id, c.device_id) for c in claimed
                              if not c.fallback or c.newly_used})
            if changed:
                await self._record_count_change_txn(txn, changed, position)
            return claimed

        return await self._db.transaction("claim_keys", claim)

    # ---------------------------------------------------------------- sync

    async def get_sync_counts(self, user_id: str, device_id: str) -> SyncKeyCounts:
        """The device's one-time key counts, unused fallback key types and
        the position of their last change, in one query."""
        rows = await self._db.fetch_all(
            "SELECT 'o', algorithm, count(*) FROM e2e_one_time_keys"
            "  WHERE user_id = %s AND device_id = %s GROUP BY algorithm"
            " UNION ALL SELECT 'f', algorithm, 0 FROM e2e_fallback_keys"
            "  WHERE user_id = %s AND device_id = %s AND NOT used"
            " UNION ALL SELECT 'p', '', stream_position FROM e2e_key_count_changes"
            "  WHERE user_id = %s AND device_id = %s",
            (user_id, device_id) * 3,
        )
        one_time_key_counts, unused_fallback_key_types, changed_at = {}, [], None
        for kind, algorithm, value in rows:
            if kind == "o":
                one_time_key_counts[algorithm] = value
            elif kind == "f":
                unused_fallback_key_types.append(algorithm)
            else:
                changed_at = value
        return SyncKeyCounts(one_time_key_counts, sorted(unused_fallback_key_types), changed_at)

    async def _record_count_change_txn(self, txn: Transaction, devices: list[tuple[str, str]],
                                       position: int) -> None:
        await txn.insert_many(
            "e2e_key_count_changes", ("user_id", "device_id", "stream_position"),
            [(user_id, device_id, position) for user_id, device_id in devices],
            suffix="ON CONFLICT (user_id, device_id) DO UPDATE SET stream_position ="
                   " GREATEST(e2e_key_count_changes.stream_position, EXCLUDED.stream_position)",
        )


_COUNT_SQL = (
    "SELECT algorithm, count(*) FROM e2e_one_time_keys"
    " WHERE user_id = %s AND device_id = %s GROUP BY algorithm"
)
