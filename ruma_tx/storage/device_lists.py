"""
Device lists over federation (schema C{029_federated_e2ee.sql}):
what other servers were told of our users' devices, and what we hold of
theirs. SQL only: the rules live in L{ruma_tx.services.device_list_updates}
and L{ruma_tx.services.remote_device_lists}.
"""
from __future__ import annotations

import json
from typing import Sequence

from ruma_tx.matrix.device_keys import canonical
from ruma_tx.matrix.device_lists import DeviceChange, RemoteDevice, RemoteDeviceList
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.ports.device_lists import AnnouncedDeviceList
from ruma_tx.storage.database import Database, Transaction
from ruma_tx.storage.user_ids import server_of_column

#: Room members (C{theirs}) joined to a room that one of our users (of
#: C{%(server)s}) is joined to; the server part is computed as the index of
#: schema 027 has it.
_JOINED_WITH_OURS = (
    "FROM current_state theirs JOIN current_state ours ON ours.room_id = theirs.room_id"
    " AND ours.type = 'm.room.member' AND ours.membership = 'join'"
    f" AND {server_of_column('ours.state_key')} = %(server)s"
    " WHERE theirs.type = 'm.room.member' AND theirs.membership = 'join'"
)


def _json(value: JsonDict | None) -> str | None:
    return None if value is None else canonical(value)


def _loads(text: str | None) -> JsonDict | None:
    return None if text is None else json.loads(text)


class DeviceListStore:
    """
    @param server_name: ours: which room members are our users.
    """

    def __init__(self, database: Database, server_name: str) -> None:
        self._db = database
        self._server_name = server_name

    # ------------------------------------------------------------- ours

    async def get_announced(self, user_id: str) -> AnnouncedDeviceList:
        version = await self._db.fetch_one(
            "SELECT stream_id, signing_keys_digest FROM device_list_versions WHERE user_id = %s", (user_id,))
        rows = await self._db.fetch_all(
            "SELECT device_id, keys_digest FROM device_list_announced WHERE user_id = %s", (user_id,))
        if version is None:
            return AnnouncedDeviceList(devices=dict(rows))
        return AnnouncedDeviceList(version[0], version[1], dict(rows))

    async def announce(self, user_id: str, changes: Sequence[DeviceChange],
                       signing_keys_digest: str | None) -> int:
        async def write(txn: Transaction) -> int:
            row = await txn.fetch_one(
                "INSERT INTO device_list_versions AS v (user_id, stream_id, signing_keys_digest)"
                " VALUES (%(user)s, %(count)s, %(signing)s) ON CONFLICT (user_id) DO UPDATE"
                " SET stream_id = v.stream_id + %(count)s, signing_keys_digest = EXCLUDED.signing_keys_digest"
                " RETURNING stream_id",
                {"user": user_id, "count": len(changes), "signing": signing_keys_digest})
            await txn.insert_many(
                "device_list_announced", ("user_id", "device_id", "keys_digest"),
                [(user_id, c.device_id, c.keys_digest) for c in changes if c.keys is not None],
                "ON CONFLICT (user_id, device_id) DO UPDATE SET keys_digest = EXCLUDED.keys_digest")
            gone = [c.device_id for c in changes if c.keys is None]
            if gone:
                await txn.execute("DELETE FROM device_list_announced WHERE user_id = %s AND device_id = ANY(%s)",
                                  (user_id, gone))
            assert row is not None
            return int(row[0])

        return await self._db.transaction("announce_device_list", write)

    async def get_stream_id(self, user_id: str) -> int:
        row = await self._db.fetch_one("SELECT stream_id FROM device_list_versions WHERE user_id = %s",
                                       (user_id,))
        return 0 if row is None else int(row[0])

    # ----------------------------------------------------------- theirs

    async def get_remote_stream_id(self, user_id: str) -> int | None:
        row = await self._db.fetch_one("SELECT stream_id FROM remote_device_lists WHERE user_id = %s",
                                       (user_id,))
        return None if row is None else int(row[0])

    async def get_remote_device_lists(self, user_ids: Sequence[str]) -> dict[str, RemoteDeviceList]:
        if not user_ids:
            return {}
        lists = await self._db.fetch_all(
            "SELECT user_id, stream_id, master_key, self_signing_key FROM remote_device_lists"
            " WHERE user_id = ANY(%s)", (list(user_ids),))
        devices = await self._db.fetch_all(
            "SELECT user_id, device_id, keys, display_name FROM remote_devices WHERE user_id = ANY(%s)",
            (list(user_ids),))
        by_user: dict[str, dict[str, RemoteDevice]] = {}
        for user_id, device_id, keys, display_name in devices:
            by_user.setdefault(user_id, {})[device_id] = RemoteDevice(_loads(keys), display_name)
        return {user_id: RemoteDeviceList(stream_id, by_user.get(user_id, {}), _loads(master), _loads(self_signing))
                for user_id, stream_id, master, self_signing in lists}

    async def put_remote_device_list(self, user_id: str, device_list: RemoteDeviceList) -> None:
        async def write(txn: Transaction) -> None:
            await txn.execute("DELETE FROM remote_device_lists WHERE user_id = %s", (user_id,))
            await txn.execute(
                "INSERT INTO remote_device_lists (user_id, stream_id, master_key, self_signing_key)"
                " VALUES (%s, %s, %s, %s)",
                (user_id, device_list.stream_id, _json(device_list.master_key),
                 _json(device_list.self_signing_key)))
            await txn.insert_many(
                "remote_devices", ("user_id", "device_id", "keys", "display_name"),
                [(user_id, device_id, _json(device.keys), device.display_name)
                 for device_id, device in device_list.devices.items()])

        await self._db.transaction("put_remote_device_list", write)

    async def apply_remote_update(self, user_id: str, stream_id: int, device_id: str,
                                  device: RemoteDevice | None) -> None:
        async def write(txn: Transaction) -> None:
            await txn.execute("UPDATE remote_device_lists SET stream_id = %s WHERE user_id = %s",
                              (stream_id, user_id))
            if device is None:
                await txn.execute("DELETE FROM remote_devices WHERE user_id = %s AND device_id = %s",
                                  (user_id, device_id))
            else:
                await txn.execute(
                    "INSERT INTO remote_devices (user_id, device_id, keys, display_name)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (user_id, device_id)"
                    " DO UPDATE SET keys = EXCLUDED.keys, display_name = EXCLUDED.display_name",
                    (user_id, device_id, _json(device.keys), device.display_name))

        await self._db.transaction("apply_remote_device_update", write)

    async def put_remote_signing_keys(self, user_id: str, master_key: JsonDict | None,
                                      self_signing_key: JsonDict | None) -> None:
        await self._db.execute(
            "UPDATE remote_device_lists SET master_key = %s, self_signing_key = %s WHERE user_id = %s",
            (_json(master_key), _json(self_signing_key), user_id))

    async def forget_remote_device_list(self, user_id: str) -> None:
        await self._db.execute("DELETE FROM remote_device_lists WHERE user_id = %s", (user_id,))

    async def get_users_sharing_rooms_with_ours(self, user_ids: Sequence[str]) -> set[str]:
        if not user_ids:
            return set()
        rows = await self._db.fetch_all(
            f"SELECT DISTINCT theirs.state_key {_JOINED_WITH_OURS} AND theirs.state_key = ANY(%(users)s)",
            {"server": self._server_name, "users": list(user_ids)})
        return {row[0] for row in rows}

    async def forget_unshared(self, room_id: str, user_id: str) -> None:
        await self._db.execute(
            "DELETE FROM remote_device_lists r WHERE r.user_id IN ("
            " SELECT %(user)s UNION SELECT state_key FROM current_state"
            " WHERE room_id = %(room)s AND type = 'm.room.member')"
            f" AND NOT EXISTS (SELECT 1 {_JOINED_WITH_OURS} AND theirs.state_key = r.user_id)",
            {"user": user_id, "room": room_id, "server": self._server_name})
