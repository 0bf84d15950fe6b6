"""
Ports: device lists over federation, ours as announced and other servers'
users' as kept (implemented by C{ruma_tx.storage.device_lists.DeviceListStore}).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

from ruma_tx.matrix.device_lists import DeviceChange, RemoteDevice, RemoteDeviceList
from ruma_tx.matrix.types import JsonDict


@dataclass(frozen=True)
class AnnouncedDeviceList:
    """
    What other servers were last told of a local user's devices.

    @ivar stream_id: of the last update sent (0: none yet).
    @ivar devices: device id to the digest of its keys as announced.
    """

    stream_id: int = 0
    signing_keys_digest: str | None = None
    devices: dict[str, str] = field(default_factory=dict)


class AnnouncedDeviceLists(Protocol):
    async def get_announced(self, user_id: str) -> AnnouncedDeviceList: ...

    async def announce(self, user_id: str, changes: Sequence[DeviceChange],
                       signing_keys_digest: str | None) -> int:
        """Record C{changes}, one stream id each; return the last one."""

    async def get_stream_id(self, user_id: str) -> int: ...


class RemoteDeviceListCache(Protocol):
    async def get_remote_stream_id(self, user_id: str) -> int | None: ...

    async def get_remote_device_lists(self, user_ids: Sequence[str]) -> dict[str, RemoteDeviceList]: ...

    async def put_remote_device_list(self, user_id: str, device_list: RemoteDeviceList) -> None:
        """Replace what is held of C{user_id}'s devices."""

    async def apply_remote_update(self, user_id: str, stream_id: int, device_id: str,
                                  device: RemoteDevice | None) -> None:
        """Replace (C{None}: delete) one device and move the list to C{stream_id}."""

    async def put_remote_signing_keys(self, user_id: str, master_key: JsonDict | None,
                                      self_signing_key: JsonDict | None) -> None:
        """Replace a held list's cross-signing keys."""

    async def forget_remote_device_list(self, user_id: str) -> None: ...

    async def get_users_sharing_rooms_with_ours(self, user_ids: Sequence[str]) -> set[str]:
        """Those of C{user_ids} joined to a room one of our users is joined to."""

    async def forget_unshared(self, room_id: str, user_id: str) -> None:
        """
        After C{user_id} stopped being joined to C{room_id}: forget the lists
        of that user and the room's members that share no room with our
        users any more (their servers stop sending us their updates).
        """
