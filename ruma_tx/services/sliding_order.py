"""
Users' rooms in list order, kept between requests: a long poll woken by
one message re-sorts the rooms that changed, not all of them, and the
connections a user has (each device's, and each of their lists) share one
ordering and one set of filter verdicts.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Hashable, Mapping

from ruma_tx.matrix.sliding_sync import (
    ListFilters,
    RoomFacts,
    SortKey,
    UserRoomData,
    filter_matches,
    listed_rooms,
    sort_key,
)
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.sliding_lists import OutsideJoin, RoomFactsCache, RoomRecency

@dataclass
class OrderedRooms:
    """
    One user's listed rooms (joined, invited, knocked, and those others
    removed them from), in list order as of stream position C{at}. The
    self-left rooms a connection knew are added per request (L{with_known}).
    """

    memberships: Mapping[str, tuple[str, int]]
    outside: OutsideJoin
    at: int
    membership_of: dict[str, str]
    keys: list[SortKey]
    key_of: dict[str, SortKey]
    #: Joined rooms' last event position and C{bump_stamp}.
    last_positions: dict[str, int]
    bump_stamps: dict[str, int]
    joined: frozenset[str]
    #: Rooms left or banned from that are not listed: listed again only for
    #: a connection that knew them (L{known_left}).
    left_unlisted: tuple[str, ...]
    #: Per filters (and what they read), each room's verdict.
    verdicts: dict[tuple[Hashable, ...], dict[str, bool]] = field(default_factory=dict)

    def rooms(self) -> list[str]:
        return [room_id for _, room_id in self.keys]

    def moved(self, recency: Mapping[str, tuple[int, int]], by_bump: bool) -> None:
        """
        Take rooms' new recency: their last positions, and their place when
        it went up (never down: a late, older read changes nothing).
        """
        for room_id, (last, bump) in recency.items():
            self.last_positions[room_id] = max(self.last_positions.get(room_id, 0), last)
            self.bump_stamps[room_id] = max(self.bump_stamps.get(room_id, 0), bump)
            old = self.key_of.get(room_id)
            new = sort_key(room_id, bump if by_bump else last)
            if old is None or new >= old:
                continue
            del self.keys[bisect.bisect_left(self.keys, old)]
            bisect.insort(self.keys, new)
            self.key_of[room_id] = new

    def known_left(self, sent_before: Mapping[str, object]) -> list[str]:
        """Rooms the user left themselves that the connection knew (MSC4186: still listed)."""
        return [room_id for room_id in self.left_unlisted if room_id in sent_before]

    def with_known(self, known_left: list[str]) -> tuple[list[str], dict[str, str]]:
        """The rooms in order and their memberships, with the known left rooms placed by their leave."""
        if not known_left:
            return self.rooms(), self.membership_of
        keys = list(self.keys)
        memberships = dict(self.membership_of)
        for room_id in known_left:
            bisect.insort(keys, sort_key(room_id, self.memberships[room_id][1]))
            memberships[room_id] = self.memberships[room_id][0]
        return [room_id for _, room_id in keys], memberships


#: Users whose ordered rooms are kept: about 0.5 KB per room each (a user in
#: 1,000 rooms takes 0.5 MB), so fewer than the other per-user caches.
ORDERED_USERS = 1000


class RoomLists:
    """
    L{OrderedRooms} per user and order (last activity, or C{bump_stamp}),
    rebuilt when the user's memberships change, updated by the rooms
    L{RoomRecency} says changed otherwise.
    """

    def __init__(self, *, recency: RoomRecency, facts: RoomFactsCache, max_users: int = ORDERED_USERS) -> None:
        self._recency = recency
        self._facts = facts
        self._kept: LRUCache[tuple[str, bool], OrderedRooms] = LRUCache(max_users)

    async def ordered(self, user_id: str, memberships: Mapping[str, tuple[str, int]], outside: OutsideJoin,
                      by_bump: bool, now: int) -> OrderedRooms:
        kept = self._kept.get((user_id, by_bump))
        if kept is not None and kept.memberships is memberships and kept.outside is outside:
            if kept.at >= now:
                return kept
            changed = self._recency.changed_since(kept.at)
            if changed is not None:
                mine = [r for r in changed if r in kept.joined]
                if mine:
                    kept.moved(await self._recency.get(mine), by_bump)
                kept.at = max(kept.at, now)
                return kept
        built = await self._build(memberships, outside, by_bump, now)
        self._kept[(user_id, by_bump)] = built
        return built

    async def _build(self, memberships: Mapping[str, tuple[str, int]], outside: OutsideJoin, by_bump: bool,
                     now: int) -> OrderedRooms:
        visible = {r: m for r, m in memberships.items() if r not in outside.hidden}
        listed = listed_rooms(visible, sent_before=(), removed_by_others=outside.removed_by_others)
        joined = frozenset(r for r, (membership, _) in visible.items() if membership == "join")
        recency = await self._recency.get(sorted(joined))
        key_of: dict[str, SortKey] = {}
        for room_id in listed:
            if room_id in recency:
                last, bump = recency[room_id]
                key_of[room_id] = sort_key(room_id, bump if by_bump else last)
            else:
                key_of[room_id] = sort_key(room_id, memberships[room_id][1])
        return OrderedRooms(
            memberships=memberships, outside=outside, at=now, membership_of=listed,
            keys=sorted(key_of.values()), key_of=key_of,
            last_positions={r: last for r, (last, _) in recency.items()},
            bump_stamps={r: bump for r, (_, bump) in recency.items()}, joined=joined,
            left_unlisted=tuple(r for r, (membership, _) in visible.items()
                                if membership in ("leave", "ban") and r not in listed))

    async def verdicts(self, rooms: OrderedRooms, filters: ListFilters, data: UserRoomData,
                       known_left: list[str]) -> dict[str, bool]:
        """
        Which rooms pass C{filters}; kept per filters while the rooms' facts
        and the user's DM rooms are those they were made with (not when the
        filters read tags or spaces, which are read per request).
        """
        cacheable = filters.tags is None and not filters.not_tags and filters.spaces is None
        key = (filters, data.direct, self._facts.version)
        found = rooms.verdicts.get(key) if cacheable else None
        if found is None:
            facts: dict[str, RoomFacts] = await self._facts.get(list(rooms.membership_of)) if (
                filters.needs_facts()) else {}
            found = {r: filter_matches(filters, r, m, facts.get(r), data) for r, m in rooms.membership_of.items()}
            if cacheable:
                # Only the verdicts made with the current facts and DM rooms are kept.
                rooms.verdicts = {k: v for k, v in rooms.verdicts.items()
                                  if k[1] is data.direct and k[2] == self._facts.version}
                rooms.verdicts[key] = found
        if known_left:
            facts = await self._facts.get(known_left) if filters.needs_facts() else {}
            found = {**found, **{r: filter_matches(filters, r, rooms.memberships[r][0], facts.get(r), data)
                                 for r in known_left}}
        return found
