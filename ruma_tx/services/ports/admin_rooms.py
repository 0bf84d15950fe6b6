"""
Ports: what the admin API's room endpoints read and write (schema 037 and
the room tables), as the services see it. Implemented by
C{ruma_tx.storage.admin_rooms} and C{ruma_tx.storage.room_purge}.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

from ruma_tx.matrix.types import JsonDict


@dataclass(frozen=True)
class RoomListQuery:
    """
    A page of the admin room list.

    @ivar order: a key of L{ruma_tx.matrix.room_admin.ROOM_ORDERS}.
    @ivar search_term: kept rooms have it in their name or their canonical
        alias' localpart (ignoring case), or in their room id.
    @ivar public_rooms: only published rooms (C{True}), only unpublished
        ones (C{False}), or both (C{None}).
    @ivar empty_rooms: only rooms nobody is joined to, only the others, or both.
    """

    offset: int
    limit: int
    order: str
    ascending: bool
    search_term: str | None = None
    public_rooms: bool | None = None
    empty_rooms: bool | None = None


@dataclass(frozen=True)
class AdminRoom:
    """What the admin room list and room details show of a room (Synapse's fields)."""

    room_id: str
    name: str | None
    canonical_alias: str | None
    joined_members: int
    joined_local_members: int
    version: str
    creator: str
    encryption: str | None
    federatable: bool
    public: bool
    join_rules: str | None
    guest_access: str | None
    history_visibility: str | None
    state_events: int
    room_type: str | None
    topic: str | None
    avatar: str | None


@dataclass(frozen=True)
class RoomUsage:
    """
    What the room details add to the list's facts.

    @ivar joined_local_devices: the devices of the joined local members.
    @ivar forgotten: every local user with a membership has forgotten the room.
    """

    joined_local_devices: int
    forgotten: bool


@dataclass(frozen=True)
class ForwardExtremity:
    """
    @ivar state_group: its state snapshot (C{None} in a room not shared
        with other servers, whose one extremity is its last event).
    @ivar received_ts: when it was sent (this server does not keep when an
        event arrived).
    """

    event_id: str
    state_group: int | None
    depth: int
    received_ts: int


class AdminRoomStorage(Protocol):
    """The room tables as the admin API reads them (C{ruma_tx.storage.admin_rooms.AdminRoomStore})."""

    async def list_rooms(self, query: RoomListQuery) -> tuple[list[AdminRoom], int]: ...
    async def get_room(self, room_id: str) -> AdminRoom | None: ...
    async def get_usage(self, room_id: str) -> RoomUsage: ...
    async def get_joined_members(self, room_id: str) -> list[str]: ...
    async def get_forward_extremities(self, room_id: str) -> list[ForwardExtremity]: ...
    async def delete_forward_extremities(self, room_id: str) -> int: ...


class RoomBlocks(Protocol):
    """Blocked rooms (C{ruma_tx.storage.admin_rooms.RoomBlockStore})."""

    async def is_blocked(self, room_id: str) -> bool: ...
    async def blocked_by(self, room_id: str) -> str | None: ...
    async def block(self, room_id: str, user_id: str, now_ms: int) -> None: ...
    async def unblock(self, room_id: str) -> None: ...


#: The statuses of a room deletion, in the order they come.
SCHEDULED, ACTIVE, COMPLETE, FAILED = "scheduled", "active", "complete", "failed"


@dataclass(frozen=True)
class ShutdownResult:
    """What a room deletion did to the room's members and aliases (Synapse's C{shutdown_room})."""

    kicked_users: list[str] = field(default_factory=list)
    failed_to_kick_users: list[str] = field(default_factory=list)
    local_aliases: list[str] = field(default_factory=list)
    new_room_id: str | None = None

    def to_json(self) -> JsonDict:
        return {"kicked_users": self.kicked_users, "failed_to_kick_users": self.failed_to_kick_users,
                "local_aliases": self.local_aliases, "new_room_id": self.new_room_id}


@dataclass(frozen=True)
class DeleteJob:
    delete_id: str
    room_id: str
    status: str
    error: str | None
    shutdown: ShutdownResult


class DeleteJobs(Protocol):
    """Room deletions as recorded (C{ruma_tx.storage.admin_rooms.DeleteJobStore})."""

    async def add_job(self, delete_id: str, room_id: str, requester: str, now_ms: int) -> None: ...
    async def update_job(self, delete_id: str, status: str, now_ms: int, *, error: str | None = None,
                         shutdown: ShutdownResult | None = None) -> None: ...
    async def get_job(self, delete_id: str) -> DeleteJob | None: ...
    async def get_jobs_of_room(self, room_id: str) -> list[DeleteJob]: ...


class RoomPurge(Protocol):
    """Removing a room from the database (C{ruma_tx.storage.room_purge.RoomPurgeStore})."""

    async def room_exists(self, room_id: str) -> bool: ...
    async def local_members(self, room_id: str, memberships: Sequence[str]) -> list[str]: ...
    async def purge_room(self, room_id: str, delete_id: str, now_ms: int) -> None:
        """Purge the room and mark the deletion C{delete_id} complete, at once."""
