"""
Cross-signing keys, their signatures and the device-list change stream
(schema C{011_cross_signing.sql}). SQL only: the rules live in
L{ruma_tx.services.cross_signing}.
"""
from __future__ import annotations

import json
from typing import Sequence

from canonicaljson import encode_canonical_json

from ruma_tx.matrix.cross_signing import (
    CrossSigningKey,
    DeviceSignature,
    MasterKeySignature,
)
from ruma_tx.services.ports.keys import USAGES, DeviceListChange
from ruma_tx.storage.database import Database, Transaction

#: The usages of cross-signing keys, as stored.










def _json(value: dict) -> str:
    return encode_canonical_json(value).decode("utf-8")


class CrossSigningStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    # ------------------------------------------------ cross-signing keys

    async def get_keys(self, user_ids: list[str], usages: Sequence[str] = USAGES
                       ) -> dict[str, dict[str, CrossSigningKey]]:
        """C{user_id -> usage -> key} for those of C{user_ids} who have keys."""
        if not user_ids:
            return {}
        rows = await self._db.fetch_all(
            "SELECT user_id, usage, key_id, public_key, key_json FROM cross_signing_keys"
            " WHERE user_id = ANY(%s) AND usage = ANY(%s)",
            (list(user_ids), list(usages)),
        )
        found: dict[str, dict[str, CrossSigningKey]] = {}
        for user_id, usage, key_id, public_key, key_json in rows:
            found.setdefault(user_id, {})[usage] = CrossSigningKey(
                user_id, usage, key_id, public_key, json.loads(key_json))
        return found

    async def put_keys(self, user_id: str, keys: list[CrossSigningKey], position: int) -> None:
        """Store (replace) C{keys} of C{user_id} and record a device-list change at C{position}."""

        async def put(txn: Transaction) -> None:
            await txn.insert_many(
                "cross_signing_keys", ("user_id", "usage", "key_id", "public_key", "key_json"),
                [(user_id, k.usage, k.key_id, k.public_key, _json(k.key_json)) for k in keys],
                "ON CONFLICT (user_id, usage) DO UPDATE SET key_id = EXCLUDED.key_id,"
                " public_key = EXCLUDED.public_key, key_json = EXCLUDED.key_json",
            )
            await _record_changes(txn, [(user_id, None)], position)

        await self._db.transaction("put_cross_signing_keys", put)

    # ------------------------------------------------------- signatures

    async def get_device_signatures(self, user_ids: list[str]) -> dict[tuple[str, str], dict[str, str]]:
        """C{(user_id, device_id) -> signing key id -> signature} for the users' devices."""
        if not user_ids:
            return {}
        rows = await self._db.fetch_all(
            "SELECT user_id, device_id, signing_key_id, signature FROM device_signatures"
            " WHERE user_id = ANY(%s)",
            (list(user_ids),),
        )
        found: dict[tuple[str, str], dict[str, str]] = {}
        for user_id, device_id, signing_key_id, signature in rows:
            found.setdefault((user_id, device_id), {})[signing_key_id] = signature
        return found

    async def get_master_key_signatures(self, user_ids: list[str], viewer: str | None
                                        ) -> list[MasterKeySignature]:
        """
        The signatures on the users' current master keys that C{viewer}
        may see: those by the key's own user (their devices) and those by
        C{viewer} (C{None}: another server, which sees only the former);
        never another user's user-signing key's.
        """
        if not user_ids:
            return []
        rows = await self._db.fetch_all(
            "SELECT s.user_id, s.master_key_id, s.signer_id, s.signing_key_id, s.signature"
            " FROM master_key_signatures s JOIN cross_signing_keys k"
            " ON k.user_id = s.user_id AND k.usage = 'master' AND k.key_id = s.master_key_id"
            " WHERE s.user_id = ANY(%s) AND (s.signer_id = s.user_id OR s.signer_id = %s)",
            (list(user_ids), viewer),
        )
        return [MasterKeySignature(*row) for row in rows]

    async def put_signatures(
        self, device_signatures: list[DeviceSignature], master_signatures: list[MasterKeySignature],
        changes: list[tuple[str, str | None]], position: int,
    ) -> None:
        """
        Store signatures (a new one replaces the same key's older one) and
        record the device-list C{changes} C{(user_id, viewer or None)} at
        C{position}, in one transaction. A device deleted meanwhile loses
        its signature (nothing is stored for it).
        """

        async def put(txn: Transaction) -> None:
            if device_signatures:
                values = ", ".join(["(%s, %s, %s, %s)"] * len(device_signatures))
                await txn.execute(
                    "INSERT INTO device_signatures (user_id, device_id, signing_key_id, signature)"
                    f" SELECT v.* FROM (VALUES {values}) AS v (user_id, device_id, signing_key_id, signature)"
                    " JOIN devices d ON d.user_id = v.user_id AND d.device_id = v.device_id"
                    " ON CONFLICT (user_id, device_id, signing_key_id)"
                    " DO UPDATE SET signature = EXCLUDED.signature",
                    [value for s in device_signatures
                     for value in (s.user_id, s.device_id, s.signing_key_id, s.signature)],
                )
            await txn.insert_many(
                "master_key_signatures",
                ("user_id", "master_key_id", "signer_id", "signing_key_id", "signature"),
                [(s.user_id, s.master_key_id, s.signer_id, s.signing_key_id, s.signature)
                 for s in master_signatures],
                "ON CONFLICT (user_id, master_key_id, signer_id, signing_key_id)"
                " DO UPDATE SET signature = EXCLUDED.signature",
            )
            await _record_changes(txn, changes, position)

        await self._db.transaction("put_cross_signing_signatures", put)

    # ------------------------------------------------ device-list changes

    async def record_changes(self, changes: list[tuple[str, str | None]], position: int) -> None:
        """Record device-list changes C{(user_id, viewer or None)} at C{position}."""
        await self._db.transaction("record_device_list_changes", _record_changes, changes, position)

    async def get_changes(self, viewer: str, after: int, upto: int) -> list[DeviceListChange]:
        """
        The users whose device lists changed in C{(after, upto]}, as seen
        by C{viewer}: the public changes, and the private ones for them.
        """
        if after >= upto:
            return []
        rows = await self._db.fetch_all(
            "SELECT DISTINCT user_id, viewer IS NOT NULL FROM device_list_changes"
            " WHERE stream_position > %s AND stream_position <= %s"
            " AND (viewer IS NULL OR viewer = %s)",
            (after, upto, viewer),
        )
        return [DeviceListChange(user_id, private) for user_id, private in rows]

    # ---------------------------------------------------------- devices

    async def get_device_names(self, user_ids: list[str]) -> dict[tuple[str, str], str | None]:
        """C{(user_id, device_id) -> display name} of every device of C{user_ids}."""
        if not user_ids:
            return {}
        rows = await self._db.fetch_all(
            "SELECT user_id, device_id, display_name FROM devices WHERE user_id = ANY(%s)",
            (list(user_ids),),
        )
        return {(user_id, device_id): name for user_id, device_id, name in rows}

    # -------------------------------------------- who shares rooms with whom

    async def get_users_sharing_rooms(self, user_id: str,
                                      memberships: Sequence[str] = ("join",)) -> set[str]:
        """
        The users who, like C{user_id}, have one of C{memberships} in some
        room (C{user_id} included when they have any such room).
        """
        rows = await self._db.fetch_all(
            "SELECT DISTINCT other.state_key FROM current_state mine"
            " JOIN current_state other ON other.room_id = mine.room_id AND other.type = 'm.room.member'"
            " WHERE mine.type = 'm.room.member' AND mine.state_key = %s"
            " AND mine.membership = ANY(%s) AND other.membership = ANY(%s)",
            (user_id, list(memberships), list(memberships)),
        )
        return {row[0] for row in rows}

    async def get_joined_members(self, room_ids: list[str]) -> dict[str, set[str]]:
        """C{room_id -> joined members} of several rooms in one query."""
        if not room_ids:
            return {}
        rows = await self._db.fetch_all(
            "SELECT room_id, state_key FROM current_state"
            " WHERE room_id = ANY(%s) AND type = 'm.room.member' AND membership = 'join'",
            (list(room_ids),),
        )
        members: dict[str, set[str]] = {room_id: set() for room_id in room_ids}
        for room_id, member in rows:
            members[room_id].add(member)
        return members

    async def get_membership_events(self, user_id: str, after: int, upto: int
                                    ) -> list[tuple[str, str, str, str | None, bool]]:
        """
        The member events in C{(after, upto]} of the rooms C{user_id} is
        joined to now or left (or was banned from) in that window: C{(room_id,
        user_id, membership, previous membership or None, whether C{user_id}
        is joined now)}, in stream order.
        """
        if after >= upto:
            return []
        rows = await self._db.fetch_all(
            "SELECT e.room_id, e.state_key, e.membership,"
            " (SELECT p.membership FROM events p WHERE p.room_id = e.room_id"
            "  AND p.type = 'm.room.member' AND p.state_key = e.state_key"
            "  AND p.stream_ordering < e.stream_ordering"
            "  ORDER BY p.stream_ordering DESC LIMIT 1),"
            " mine.membership = 'join'"
            " FROM current_state mine JOIN events e ON e.room_id = mine.room_id"
            " WHERE mine.type = 'm.room.member' AND mine.state_key = %(user)s"
            " AND (mine.membership = 'join' OR (mine.membership IN ('leave', 'ban')"
            "      AND mine.stream_ordering > %(after)s AND mine.stream_ordering <= %(upto)s))"
            " AND e.type = 'm.room.member'"
            " AND e.stream_ordering > %(after)s AND e.stream_ordering <= %(upto)s"
            " ORDER BY e.stream_ordering",
            {"user": user_id, "after": after, "upto": upto},
        )
        return [tuple(row) for row in rows]


async def _record_changes(txn: Transaction, changes: list[tuple[str, str | None]], position: int) -> None:
    await txn.insert_many(
        "device_list_changes", ("stream_position", "user_id", "viewer"),
        [(position, user_id, viewer) for user_id, viewer in dict.fromkeys(changes)],
    )
