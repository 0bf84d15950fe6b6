"""
The records behind the admin API's media endpoints (C{AdminMediaStore},
implemented by C{ruma_tx.storage.admin_media}): quarantine and protection
flags, listings of a user's media and of media usage per user, and the
media a room's events refer to.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Generic, Protocol, Sequence, TypeVar

T = TypeVar("T")

#: What a user's media list may be ordered by (Synapse's names).
USER_MEDIA_ORDERS = ("media_id", "upload_name", "created_ts", "last_access_ts", "media_length",
                     "media_type", "quarantined_by", "safe_from_quarantine")
#: What the media usage statistics may be ordered by (Synapse's names).
MEDIA_USAGE_ORDERS = ("user_id", "displayname", "media_length", "media_count")


@dataclass(frozen=True)
class Paging:
    """
    A page of a listing: C{limit} rows from row C{offset}, ordered by
    C{order_by} (one of the listing's names), reversed when C{backwards}.
    """

    offset: int
    limit: int
    order_by: str
    backwards: bool


@dataclass(frozen=True)
class Listing(Generic[T]):
    """Rows of a listing, and how many rows the whole listing has."""

    rows: list[T]
    total: int


@dataclass(frozen=True)
class UserMedia:
    """One uploaded media of a user, as the admin API lists it."""

    media_id: str
    media_type: str
    media_length: int
    upload_name: str | None
    created_ts: int
    last_access_ts: int | None
    quarantined_by: str | None
    safe_from_quarantine: bool


@dataclass(frozen=True)
class MediaUsage:
    """How much local media one user has uploaded."""

    user_id: str
    displayname: str | None
    media_count: int
    media_length: int


@dataclass(frozen=True)
class UsageFilter:
    """
    Which uploads the statistics count: created in C{[from_ts, until_ts]},
    by users whose ID or display name contains C{search_term}.
    """

    from_ts: int | None = None
    until_ts: int | None = None
    search_term: str | None = None


class AdminMediaStore(Protocol):
    async def room_exists(self, room_id: str) -> bool: ...

    async def media_uris_in_room(self, room_id: str, paths: Sequence[Sequence[str]]) -> list[str]:
        """
        The distinct strings at C{paths} (paths into an event's content) of
        the room's events, that look like C{mxc://} URIs (check them).
        """
        ...

    async def quarantine(self, local: Collection[str], remote: Collection[tuple[str, str]], by: str,
                         now_ms: int) -> int:
        """
        Quarantine local media ids and cached remote media (C{(origin,
        media_id)}), but protected ones.

        @return: how many media are quarantined by this call (those already
            quarantined count again, as in Synapse).
        """
        ...

    async def quarantine_media_of_user(self, user_id: str, by: str, now_ms: int) -> int:
        """As L{quarantine}, for every media id the user created."""
        ...

    async def unquarantine(self, local: Collection[str], remote: Collection[tuple[str, str]]) -> None: ...

    async def set_protected(self, media_id: str, protected: bool) -> None: ...

    async def media_of_user(self, user_id: str, paging: Paging) -> Listing[UserMedia]:
        """The user's uploaded media (not pending ids), one page."""
        ...

    async def media_usage(self, usage: UsageFilter, paging: Paging) -> Listing[MediaUsage]:
        """Per user with uploads matching C{usage}: their count and total size, one page."""
        ...

    async def avatar_media_ids(self, mxc_prefix: str) -> set[str]:
        """
        Media ids (of URIs starting with C{mxc_prefix}) in use as a user's
        profile picture, a room's avatar or a member's avatar in a room.
        """
        ...
