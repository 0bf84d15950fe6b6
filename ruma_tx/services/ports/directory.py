"""
Ports: records and protocols shared by services and the storage that implements them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class AliasExists(Exception):
    """The alias already names a room."""


@dataclass(frozen=True)
class ListedRoom:
    """
    A published room as the directory sees it.

    @ivar joined: its number of joined members.
    @ivar state: C{type -> content} of its L{DIRECTORY_STATE_TYPES} events.
    """

    room_id: str
    joined: int
    state: dict


@dataclass(frozen=True)
class DirectoryPage:
    """
    @ivar total: how many published rooms match the filter, on every page.
    @ivar rooms: the page, in directory order (most joined members first,
        then by room id).
    """

    total: int
    rooms: list[ListedRoom]


class DirectoryStorage(Protocol):
    """What the services need of directory storage (implemented by C{ruma_tx.storage.directory.DirectoryStore})."""

    async def get_alias(self, room_alias: str) -> tuple[str, str] | None: ...
    async def get_alias_rooms(self, room_aliases: list[str]) -> dict[str, str]: ...
    async def create_alias(self, room_alias: str, room_id: str, creator: str) -> None: ...
    async def delete_alias(self, room_alias: str) -> str | None: ...
    async def get_aliases_for_room(self, room_id: str) -> list[str]: ...
    async def set_published(self, room_id: str, published: bool) -> bool: ...
    async def is_published(self, room_id: str) -> bool | None: ...
    async def get_public_rooms(self, *, limit: int, bound: tuple[int, str] | None=None, forwards: bool=True, search_term: str | None=None, room_types: list[str | None] | None=None) -> DirectoryPage: ...
