"""
Ports of finding things: the room event search index and the user
directory (implemented by C{ruma_tx.storage.search.SearchStore} and
C{ruma_tx.storage.user_directory.UserDirectoryStore}).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.filters import RoomEventFilter
from ruma_tx.services.ports.events import Ranges


@dataclass(frozen=True)
class SearchQuery:
    """
    One page of a room event search.

    @ivar rooms: the rooms searched, each with the stream ranges the user
        may see of it (history visibility).
    @ivar upto: the highest stream position shown (later ones are in flight).
    @ivar event_filter: types, senders and C{contains_url} (its rooms are
        already in C{rooms}).
    @ivar hidden_senders: senders whose messages are never shown (the
        user's ignored users; their state events are).
    @ivar by_rank: order by rank, else by recency; the sort key of a result
        is C{(rank, position)}, rank 0 when ordered by recency.
    @ivar after: the sort key of the last result of the previous page.
    @ivar group: only results whose C{room_id} or C{sender} (the first) is
        the second.
    @ivar limit: results wanted (one more is read, to know if there are more).
    @ivar group_ends: group keys for which to return each group's last sort key.
    """

    search_term: str
    keys: tuple[str, ...]
    rooms: Mapping[str, Ranges]
    upto: int
    event_filter: RoomEventFilter
    hidden_senders: Sequence[str]
    by_rank: bool
    limit: int
    after: tuple[float, int] | None = None
    group: tuple[str, str] | None = None
    group_ends: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchHit:
    """
    A result.

    @ivar rank: how well it matched (higher is better).
    @ivar order_rank: the rank part of its sort key (0 when ordered by recency).
    @ivar headline: its searched text with the matched words marked
        (see L{ruma_tx.matrix.search.highlight_words}).
    """

    event: StoredEvent
    rank: float
    order_rank: float
    headline: str | None


@dataclass(frozen=True)
class SearchPage:
    """
    @ivar count: how many events match in all (not only this page).
    @ivar hits: up to C{limit + 1} results, best (or newest) first.
    @ivar group_ends: per group key, per group, the sort key of its last result.
    """

    count: int
    hits: list[SearchHit]
    group_ends: dict[str, dict[str, tuple[float, int]]]


@dataclass(frozen=True)
class ContextWindow:
    """
    The events around a result to read: up to C{before} events in
    C{[low, position)} and up to C{after} in C{(position, high]}, of its room.
    """

    room_id: str
    position: int
    low: int
    high: int
    before: int
    after: int


class SearchIndex(Protocol):
    """The room event search index."""

    async def get_searched_rooms(self, user_id: str) -> dict[str, tuple[str, int]]: ...
    async def search(self, query: SearchQuery) -> SearchPage: ...
    async def get_contexts(self, windows: Sequence[ContextWindow], hidden_senders: Sequence[str]
                           ) -> list[tuple[list[StoredEvent], list[StoredEvent]]]: ...
    async def get_member_profiles(self, wanted: Sequence[tuple[str, int, str]]
                                  ) -> dict[tuple[str, int, str], tuple[str | None, str | None]]: ...
    async def backfill(self, batch_size: int) -> bool: ...


@dataclass(frozen=True)
class DirectoryUser:
    user_id: str
    display_name: str | None
    avatar_url: str | None


class UserDirectoryIndex(Protocol):
    """The user directory: users (local, and other servers' in our rooms) by localpart and display name."""

    async def search_users(self, searcher: str, text: str, limit: int, *,
                           search_all_users: bool) -> list[DirectoryUser]: ...
