"""
Import steps for end-to-end encryption: device keys, one-time and fallback
keys, cross-signing keys and signatures, and server-side key backups.

Key objects are stored again as canonical JSON; their signatures do not
change (they cover the canonical form whatever the text), so clients keep
trusting the devices they verified.
"""
from __future__ import annotations

import json

from ruma_tx.matrix.device_keys import canonical
from ruma_tx.storage.database import Transaction
from ruma_tx.storage.synapse_import import CopyStep


def _of_device(table: str) -> str:
    """The rows of C{table} that belong to a device the devices step imports (not a hidden one)."""
    return (f"EXISTS (SELECT 1 FROM devices d WHERE d.user_id = {table}.user_id"
            f" AND d.device_id = {table}.device_id AND NOT COALESCE(d.hidden, FALSE))")


def _canonical(text: str) -> str:
    return canonical(json.loads(text))


class DeviceKeysStep(CopyStep):
    """The signed identity keys each device uploaded."""

    name = "device_keys"
    select = "user_id, device_id, key_json, ts_added_ms FROM e2e_device_keys_json"
    where = _of_device("e2e_device_keys_json")
    key = ("user_id", "device_id")
    imported = "SELECT COUNT(*) FROM e2e_device_keys"

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        await txn.insert_many(
            "e2e_device_keys", ("user_id", "device_id", "key_json", "updated_ts"),
            [(user_id, device_id, _canonical(key_json), added) for user_id, device_id, key_json, added in rows],
            "ON CONFLICT (user_id, device_id) DO NOTHING")


class OneTimeKeysStep(CopyStep):
    """
    Unclaimed one-time keys. They go out in upload order: an upload's time
    stands for ruma_tx's upload number, and the numbering of new uploads
    continues above it.
    """

    name = "one_time_keys"
    select = "user_id, device_id, algorithm, key_id, key_json, ts_added_ms FROM e2e_one_time_keys_json"
    where = _of_device("e2e_one_time_keys_json")
    key = ("user_id", "device_id", "algorithm", "key_id")
    imported = "SELECT COUNT(*) FROM e2e_one_time_keys"

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        await txn.insert_many(
            "e2e_one_time_keys", ("user_id", "device_id", "algorithm", "key_id", "key_json", "upload"),
            [(user_id, device_id, algorithm, key_id, _canonical(key_json), added)
             for user_id, device_id, algorithm, key_id, key_json, added in rows],
            "ON CONFLICT (user_id, device_id, algorithm, key_id) DO NOTHING")
        await txn.execute(
            "SELECT setval('e2e_one_time_key_uploads',"
            " GREATEST(%s, (SELECT last_value FROM e2e_one_time_key_uploads)))",
            (max(row[5] for row in rows),))


class FallbackKeysStep(CopyStep):
    """Each device's fallback key per algorithm, with whether it was handed out."""

    name = "fallback_keys"
    select = "user_id, device_id, algorithm, key_id, key_json, used FROM e2e_fallback_keys_json"
    where = _of_device("e2e_fallback_keys_json")
    key = ("user_id", "device_id", "algorithm")
    imported = "SELECT COUNT(*) FROM e2e_fallback_keys"

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        await txn.insert_many(
            "e2e_fallback_keys", ("user_id", "device_id", "algorithm", "key_id", "key_json", "used"),
            [(user_id, device_id, algorithm, key_id, _canonical(key_json), bool(used))
             for user_id, device_id, algorithm, key_id, key_json, used in rows],
            "ON CONFLICT (user_id, device_id, algorithm) DO NOTHING")


class CrossSigningKeysStep(CopyStep):
    """Each user's current master, self-signing and user-signing key (Synapse keeps every upload)."""

    name = "cross_signing_keys"
    select = "user_id, keytype, keydata FROM e2e_cross_signing_keys"
    where = ("stream_id = (SELECT MAX(m.stream_id) FROM e2e_cross_signing_keys m"
             " WHERE m.user_id = e2e_cross_signing_keys.user_id AND m.keytype = e2e_cross_signing_keys.keytype)")
    key = ("user_id", "keytype")
    imported = "SELECT COUNT(*) FROM cross_signing_keys"

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        keys = []
        for user_id, usage, keydata in rows:
            key = json.loads(keydata)
            # A cross-signing key object names exactly one key: "ed25519:<public key>".
            key_id, public_key = next(iter(key["keys"].items()))
            keys.append((user_id, usage, key_id, public_key, canonical(key)))
        await txn.insert_many(
            "cross_signing_keys", ("user_id", "usage", "key_id", "public_key", "key_json"), keys,
            "ON CONFLICT (user_id, usage) DO NOTHING")


#: The current master key of the signature's target user holds the signed key id.
_ON_MASTER_KEY = (
    "EXISTS (SELECT 1 FROM e2e_cross_signing_keys k WHERE k.user_id = e2e_cross_signing_signatures.target_user_id"
    " AND k.keytype = 'master' AND k.keydata LIKE '%%\"ed25519:' || e2e_cross_signing_signatures.target_device_id"
    " || '\"%%' AND k.stream_id = (SELECT MAX(m.stream_id) FROM e2e_cross_signing_keys m"
    " WHERE m.user_id = k.user_id AND m.keytype = 'master'))")
_ON_OWN_DEVICE = (
    "e2e_cross_signing_signatures.user_id = e2e_cross_signing_signatures.target_user_id"
    " AND EXISTS (SELECT 1 FROM devices d WHERE d.user_id = e2e_cross_signing_signatures.target_user_id"
    " AND d.device_id = e2e_cross_signing_signatures.target_device_id AND NOT COALESCE(d.hidden, FALSE))")


class CrossSigningSignaturesStep(CopyStep):
    """
    Signatures Synapse keeps apart from the keys they sign: a user's
    self-signing key on their devices, and devices or other users'
    user-signing keys on a master key (Synapse names the master key by its
    public key in C{target_device_id}). Signatures on keys that are gone
    (a replaced master key, a deleted device) are not moved.
    """

    name = "cross_signing_signatures"
    select = (f"user_id, target_user_id, target_device_id, key_id, signature, ({_ON_OWN_DEVICE})"
              " FROM e2e_cross_signing_signatures")
    where = f"({_ON_OWN_DEVICE}) OR {_ON_MASTER_KEY}"
    key = ("user_id", "target_user_id", "target_device_id", "key_id")
    imported = "SELECT (SELECT COUNT(*) FROM device_signatures) + (SELECT COUNT(*) FROM master_key_signatures)"

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        on_devices = [(target_user, device_id, key_id, signature)
                      for _, target_user, device_id, key_id, signature, own_device in rows if own_device]
        on_masters = [(target_user, f"ed25519:{master}", signer, key_id, signature)
                      for signer, target_user, master, key_id, signature, own_device in rows if not own_device]
        await txn.insert_many("device_signatures", ("user_id", "device_id", "signing_key_id", "signature"),
                              on_devices, "ON CONFLICT DO NOTHING")
        await txn.insert_many(
            "master_key_signatures", ("user_id", "master_key_id", "signer_id", "signing_key_id", "signature"),
            on_masters, "ON CONFLICT DO NOTHING")


class KeyBackupVersionsStep(CopyStep):
    """Backup versions (deleted ones too: their numbers are never reused)."""

    name = "key_backup_versions"
    select = "user_id, version, algorithm, auth_data, deleted, etag FROM e2e_room_keys_versions"
    key = ("user_id", "version")
    imported = "SELECT COUNT(*) FROM room_key_versions"

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        await txn.insert_many(
            "room_key_versions", ("user_id", "version", "algorithm", "auth_data", "deleted", "etag"),
            [(user_id, int(version), algorithm, auth_data, bool(deleted), etag or 0)
             for user_id, version, algorithm, auth_data, deleted, etag in rows],
            "ON CONFLICT (user_id, version) DO NOTHING")


class KeyBackupKeysStep(CopyStep):
    """The encrypted room keys in the backups; each version's key count is brought up to date."""

    name = "key_backup_keys"
    select = ("user_id, version, room_id, session_id, first_message_index, forwarded_count, is_verified,"
              " session_data FROM e2e_room_keys")
    where = ("EXISTS (SELECT 1 FROM e2e_room_keys_versions v WHERE v.user_id = e2e_room_keys.user_id"
             " AND v.version = e2e_room_keys.version)")
    key = ("user_id", "version", "room_id", "session_id")
    imported = "SELECT COUNT(*) FROM room_keys"

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        await txn.insert_many(
            "room_keys", ("user_id", "version", "room_id", "session_id", "first_message_index", "forwarded_count",
                          "is_verified", "session_data"),
            [(user_id, int(version), room_id, session_id, first or 0, forwarded or 0, bool(verified), data)
             for user_id, version, room_id, session_id, first, forwarded, verified, data in rows],
            "ON CONFLICT (user_id, version, room_id, session_id) DO NOTHING")
        versions = sorted({(row[0], int(row[1])) for row in rows})
        await txn.execute(
            "UPDATE room_key_versions v SET key_count = (SELECT COUNT(*) FROM room_keys k"
            " WHERE k.user_id = v.user_id AND k.version = v.version)"
            " WHERE (v.user_id, v.version) IN (SELECT * FROM unnest(%s::text[], %s::bigint[]))",
            ([user for user, _ in versions], [version for _, version in versions]))
