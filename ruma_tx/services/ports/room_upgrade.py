"""
Ports: records and protocols shared by services and the storage that implements them.
"""
from __future__ import annotations

from typing import Protocol


class RoomUpgradeStorage(Protocol):
    """What room upgrades need of storage (implemented by C{ruma_tx.storage.room_upgrade.RoomUpgradeStore})."""

    async def find_replacement(self, old_room_id: str, creator: str, room_version: str) -> str | None: ...
    async def move_directory(self, old_room_id: str, new_room_id: str) -> None: ...
