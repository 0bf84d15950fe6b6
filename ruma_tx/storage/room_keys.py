"""
Server-side key backups (schema C{012_room_keys.sql}). SQL only: which
uploaded key wins is decided by L{ruma_tx.services.room_keys}, which hands
its rule to L{RoomKeyStore.put_keys_if_current}.

Every write first takes a transaction-scoped advisory lock on its user, so
the writes to one user's backups (creating or deleting a version, uploading
or deleting keys) happen one at a time: two clients uploading the same new
session at once cannot both insert it, version numbers cannot collide, and
C{key_count} stays exact. Reads take no lock.
"""
from __future__ import annotations

import json
from typing import Callable

from ruma_tx.matrix.key_backup import BackupVersion, Keys, RoomKey
from ruma_tx.services.ports.keys import KeysWritten
from ruma_tx.storage.database import Database, Transaction

#: The first key of the per-user advisory locks (the second is the hash of
#: the user id); two-key advisory locks never collide with one-key ones.
_LOCK_CLASS = 0x726B  # "rk"

_CURRENT_VERSION = (
    "SELECT version, etag, key_count FROM room_key_versions"
    " WHERE user_id = %s AND NOT deleted ORDER BY version DESC LIMIT 1"
)








#: The keys of one upload: C{(room_id, session_id) -> RoomKey}.


class RoomKeyStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    @staticmethod
    async def _lock(txn: Transaction, user_id: str) -> None:
        await txn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, user_id))

    # ------------------------------------------------------------ versions

    async def create_version(self, user_id: str, algorithm: str, auth_data: dict) -> int:
        """
        Create the user's next backup version (one above every version they
        ever had, deleted ones included), which becomes the current one.

        @return: its number.
        """

        async def create(txn: Transaction) -> int:
            await self._lock(txn, user_id)
            row = await txn.fetch_one(
                "INSERT INTO room_key_versions (user_id, version, algorithm, auth_data)"
                " SELECT %s, COALESCE(MAX(version), 0) + 1, %s, %s"
                " FROM room_key_versions WHERE user_id = %s RETURNING version",
                (user_id, algorithm, json.dumps(auth_data), user_id),
            )
            assert row is not None  # an aggregate: the INSERT always returns one row
            return row[0]

        return await self._db.transaction("create_room_key_version", create)

    async def get_version(self, user_id: str, version: int | None = None) -> BackupVersion | None:
        """
        The given version of the user's backup, or their current one (the
        highest one not deleted) when C{version} is C{None}.

        @return: C{None} when there is no such version or it was deleted.
        """
        sql = (
            "SELECT version, algorithm, auth_data, etag, key_count FROM room_key_versions"
            " WHERE user_id = %s AND NOT deleted"
        )
        args: list = [user_id]
        if version is not None:
            sql += " AND version = %s"
            args.append(version)
        row = await self._db.fetch_one(sql + " ORDER BY version DESC LIMIT 1", args)
        if row is None:
            return None
        number, algorithm, auth_data, etag, count = row
        return BackupVersion(number, algorithm, json.loads(auth_data), etag, count)

    async def update_auth_data(
        self, user_id: str, version: int, algorithm: str, auth_data: dict
    ) -> bool:
        """
        Replace the C{auth_data} of a version that exists, is not deleted
        and has the given algorithm.

        @return: whether it did.
        """

        async def update(txn: Transaction) -> int:
            return await txn.execute(
                "UPDATE room_key_versions SET auth_data = %s"
                " WHERE user_id = %s AND version = %s AND NOT deleted AND algorithm = %s",
                (json.dumps(auth_data), user_id, version, algorithm),
            )

        return bool(await self._db.transaction("update_room_key_version", update))

    async def delete_version(self, user_id: str, version: int) -> bool:
        """
        Mark a version deleted and delete its keys; a version deleted before
        stays deleted.

        @return: whether the user ever had this version.
        """

        async def delete(txn: Transaction) -> bool:
            await self._lock(txn, user_id)
            found = await txn.execute(
                "UPDATE room_key_versions SET deleted = TRUE, key_count = 0, etag = etag + 1"
                " WHERE user_id = %s AND version = %s",
                (user_id, version),
            )
            if found:
                await txn.execute(
                    "DELETE FROM room_keys WHERE user_id = %s AND version = %s", (user_id, version)
                )
            return bool(found)

        return await self._db.transaction("delete_room_key_version", delete)

    async def delete_all_for_user(self, user_id: str) -> None:
        """
        Delete every backup version of a user and all their keys, for
        account deactivation (Synapse deletes a deactivated user's backups).
        """

        async def delete(txn: Transaction) -> None:
            await self._lock(txn, user_id)
            await txn.execute("DELETE FROM room_key_versions WHERE user_id = %s", (user_id,))

        await self._db.transaction("delete_user_room_keys", delete)

    # ---------------------------------------------------------------- keys

    async def get_keys(
        self, user_id: str, version: int, room_id: str | None = None, session_id: str | None = None
    ) -> dict[str, dict[str, RoomKey]] | None:
        """
        The keys of a version, all of them or those of one room or one
        session, as C{{room_id: {session_id: RoomKey}}}.

        @return: C{None} when the version does not exist or was deleted.
        """
        # One round trip: the version row, left-joined with its keys, so an
        # existing version without (matching) keys gives one row of NULLs.
        sql = (
            "SELECT k.room_id, k.session_id, k.first_message_index, k.forwarded_count,"
            " k.is_verified, k.session_data FROM room_key_versions v"
            " LEFT JOIN room_keys k ON k.user_id = v.user_id AND k.version = v.version"
        )
        args: list = []
        if room_id is not None:
            sql += " AND k.room_id = %s"
            args.append(room_id)
        if session_id is not None:
            sql += " AND k.session_id = %s"
            args.append(session_id)
        sql += " WHERE v.user_id = %s AND v.version = %s AND NOT v.deleted"
        rows = await self._db.fetch_all(sql, [*args, user_id, version])
        if not rows:
            return None
        keys: dict[str, dict[str, RoomKey]] = {}
        for room, session, first_index, forwarded, verified, data in rows:
            if room is not None:
                keys.setdefault(room, {})[session] = RoomKey(
                    first_index, forwarded, verified, json.loads(data)
                )
        return keys

    async def put_keys_if_current(
        self, user_id: str, version: int, keys: Keys,
        replaces: Callable[[RoomKey, RoomKey], bool],
    ) -> KeysWritten:
        """
        If C{version} is the user's current version, store each of C{keys}
        that is new to it or that C{replaces(stored, uploaded)} prefers to
        the stored one, and bump the version's etag if anything was stored.

        One transaction: one read of the stored keys of these sessions, one
        multi-row upsert, one update of the version row.
        """

        async def put(txn: Transaction) -> KeysWritten:
            await self._lock(txn, user_id)
            row = await txn.fetch_one(_CURRENT_VERSION, (user_id,))
            if row is None or row[0] != version:
                return KeysWritten(current=row[0] if row else None, written=False)
            _, etag, count = row
            stored = await self._stored_metadata(txn, user_id, version, list(keys))
            chosen = [
                (where, key) for where, key in keys.items()
                if where not in stored or replaces(stored[where], key)
            ]
            if not chosen:
                return KeysWritten(current=version, written=True, etag=etag, count=count)
            await txn.insert_many(
                "room_keys",
                ("user_id", "version", "room_id", "session_id", "first_message_index",
                 "forwarded_count", "is_verified", "session_data"),
                [
                    (user_id, version, room, session, key.first_message_index,
                     key.forwarded_count, key.is_verified, json.dumps(key.session_data))
                    for (room, session), key in chosen
                ],
                suffix="ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET"
                " first_message_index = EXCLUDED.first_message_index,"
                " forwarded_count = EXCLUDED.forwarded_count,"
                " is_verified = EXCLUDED.is_verified, session_data = EXCLUDED.session_data",
            )
            added = sum(1 for where, _ in chosen if where not in stored)
            updated = await txn.fetch_one(
                "UPDATE room_key_versions SET etag = etag + 1, key_count = key_count + %s"
                " WHERE user_id = %s AND version = %s RETURNING etag, key_count",
                (added, user_id, version),
            )
            assert updated is not None  # the current version, read under the lock
            etag, count = updated
            return KeysWritten(current=version, written=True, etag=etag, count=count)

        return await self._db.transaction("put_room_keys", put)

    @staticmethod
    async def _stored_metadata(txn: Transaction, user_id: str, version: int,
                               where: list[tuple[str, str]]) -> Keys:
        """The stored keys (without their data) of the given sessions."""
        if not where:
            return {}
        rows = await txn.fetch_all(
            "SELECT k.room_id, k.session_id, k.first_message_index, k.forwarded_count, k.is_verified"
            " FROM room_keys k JOIN unnest(%s::text[], %s::text[]) AS w (room_id, session_id)"
            " ON k.room_id = w.room_id AND k.session_id = w.session_id"
            " WHERE k.user_id = %s AND k.version = %s",
            ([room for room, _ in where], [session for _, session in where], user_id, version),
        )
        return {(room, session): RoomKey(first, forwarded, verified)
                for room, session, first, forwarded, verified in rows}

    async def delete_keys(
        self, user_id: str, version: int, room_id: str | None = None, session_id: str | None = None
    ) -> tuple[int, int] | None:
        """
        Delete the keys of a version: all of them, those of one room or one
        session; bump its etag if any were deleted.

        @return: the version's C{(etag, count)} afterwards, or C{None} when
            it does not exist or was deleted.
        """

        async def delete(txn: Transaction) -> tuple[int, int] | None:
            await self._lock(txn, user_id)
            row = await txn.fetch_one(
                "SELECT etag, key_count FROM room_key_versions"
                " WHERE user_id = %s AND version = %s AND NOT deleted",
                (user_id, version),
            )
            if row is None:
                return None
            sql = "DELETE FROM room_keys WHERE user_id = %s AND version = %s"
            args: list = [user_id, version]
            if room_id is not None:
                sql += " AND room_id = %s"
                args.append(room_id)
            if session_id is not None:
                sql += " AND session_id = %s"
                args.append(session_id)
            removed = await txn.execute(sql, args)
            if not removed:
                return tuple(row)
            updated = await txn.fetch_one(
                "UPDATE room_key_versions SET etag = etag + 1, key_count = key_count - %s"
                " WHERE user_id = %s AND version = %s RETURNING etag, key_count",
                (removed, user_id, version),
            )
            assert updated is not None  # the version, read under the lock
            return tuple(updated)

        return await self._db.transaction("delete_room_keys", delete)
