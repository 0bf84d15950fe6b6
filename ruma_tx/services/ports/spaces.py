"""
Ports: records and protocols shared by services and the storage that implements them.
"""
from __future__ import annotations

from typing import Protocol, Sequence

from ruma_tx.matrix.spaces import RoomSummaryState, SpaceChild


class RoomSummaryStorage(Protocol):
    """
    What room summaries, the space hierarchy and mutual rooms read
    (implemented by C{ruma_tx.storage.room_summaries.RoomSummaryStore}).
    """

    async def get_room_summaries(self, room_ids: Sequence[str]) -> dict[str, RoomSummaryState]: ...
    async def get_space_children(self, room_id: str) -> list[SpaceChild]: ...
    async def get_mutual_rooms(self, user_id: str, other_user_id: str) -> list[str]: ...
    async def get_rooms_with_server(self, server_name: str, room_ids: Sequence[str]) -> set[str]: ...
