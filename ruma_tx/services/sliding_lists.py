"""
What sliding-sync lists are made of, read once and kept: rooms' recency
(their last event and last bumping event), the facts filters ask of rooms
(type, encryption), and per user which of their rooms outside C{join} a
list may show.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Awaitable, Callable, Mapping, Protocol, Sequence

from ruma_tx.matrix.sliding_sync import BUMP_EVENT_TYPES, RoomFacts
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.ports.events import Events, NewEvent, SyncReads

#: Rooms whose recency and facts are kept in memory.
CACHED_ROOMS = 100_000

#: Users whose list memberships are kept.
CACHED_USERS = 10_000


class ListStorage(Protocol):
    async def get_room_recency(self, room_ids: Sequence[str]) -> dict[str, tuple[int, int]]: ...
    async def get_room_facts(self, room_ids: Sequence[str]) -> dict[str, RoomFacts]: ...
    async def get_rooms_ever_joined(self, user_id: str, room_ids: Sequence[str]) -> set[str]: ...


#: Rooms' changes remembered in order, to tell which rooms changed since a position.
CHANGES_KEPT = 50_000


class RoomRecency:
    """
    Per room, C{(last event position, last bumping event position)}. Told
    of every stored event, so a kept entry is never stale; a room not kept
    is read. An entry an event created without its bump (C{-1}) is
    completed by a read; reads and events merge by maximum, so a read that
    raced with an event never brings an older position back.

    It also keeps the last L{CHANGES_KEPT} changes in position order, so
    a user's ordered rooms are brought up to date by the few that changed
    (L{changed_since}) instead of by reading all of them again.
    """

    def __init__(self, store: ListStorage, max_rooms: int = CACHED_ROOMS, changes_kept: int = CHANGES_KEPT) -> None:
        self._store = store
        self._kept: LRUCache[str, tuple[int, int]] = LRUCache(max_rooms)
        self._changes_kept = changes_kept
        self._change_positions: list[int] = []
        self._changed_rooms: list[str] = []
        #: Changes at or before this position are no longer all kept.
        self._forgotten_before = -1

    def event_stored(self, event: NewEvent, position: int) -> None:
        bump = position if event.pdu.get("type") in BUMP_EVENT_TYPES else -1
        kept = self._kept.get(event.room_id)
        self._kept[event.room_id] = (position, bump) if kept is None else (position, max(kept[1], bump))
        # Events are stored concurrently: insert in position order.
        index = bisect.bisect(self._change_positions, position)
        self._change_positions.insert(index, position)
        self._changed_rooms.insert(index, event.room_id)
        if len(self._change_positions) > self._changes_kept:
            dropped = len(self._change_positions) - self._changes_kept // 2
            self._forgotten_before = self._change_positions[dropped - 1]
            del self._change_positions[:dropped], self._changed_rooms[:dropped]

    def changed_since(self, since: int) -> set[str] | None:
        """The rooms with an event after C{since}; C{None} when that is no longer known."""
        if since < self._forgotten_before:
            return None
        return set(self._changed_rooms[bisect.bisect(self._change_positions, since):])

    async def get(self, room_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        found = {}
        for room_id in room_ids:
            kept = self._kept.get(room_id)
            if kept is not None and kept[1] >= 0:
                found[room_id] = kept
        missing = [r for r in room_ids if r not in found]
        if missing:
            for room_id, (last, bump) in (await self._store.get_room_recency(missing)).items():
                kept = self._kept.get(room_id, (0, -1))
                found[room_id] = self._kept[room_id] = (max(kept[0], last), max(kept[1], bump))
        return found


class RoomFactsCache:
    """
    Rooms' type and encryption. The type never changes; encryption is only
    ever turned on, and its event drops the entry. Reads that overlapped
    such an event keep what they read out of the cache.
    """

    def __init__(self, store: ListStorage, max_rooms: int = CACHED_ROOMS) -> None:
        self._store = store
        self._kept: LRUCache[str, RoomFacts] = LRUCache(max_rooms)
        self._encryptions = 0

    def event_stored(self, event: NewEvent, position: int) -> None:
        if event.pdu.get("type") == "m.room.encryption" and event.pdu.get("state_key") == "":
            self._kept.pop(event.room_id, None)
            self._encryptions += 1

    @property
    def version(self) -> int:
        """Changes when a room's facts change (filter verdicts are then stale)."""
        return self._encryptions

    async def get(self, room_ids: Sequence[str]) -> dict[str, RoomFacts]:
        found = {}
        for room_id in room_ids:
            kept = self._kept.get(room_id)
            if kept is not None:
                found[room_id] = kept
        missing = [r for r in room_ids if r not in found]
        if missing:
            encryptions = self._encryptions
            read = await self._store.get_room_facts(missing)
            found.update(read)
            if encryptions == self._encryptions:
                self._kept.update(read)
        return found


@dataclass(frozen=True)
class OutsideJoin:
    """
    Of a user's rooms they are not joined to: those someone else removed
    them from after they had joined (always listed, MSC4186), and those
    no list shows (forgotten, or an invite from an ignored user).
    """

    removed_by_others: frozenset[str]
    hidden: frozenset[str]


class UserRooms:
    """
    L{OutsideJoin} per user, kept while their memberships and ignored users
    are those it was read for (the memberships cache replaces its entry on
    any change of theirs).

    @param forgotten: C{async (user_id) -> {room_id: membership position}}.
    """

    def __init__(self, *, store: ListStorage, reads: SyncReads, events: Events,
                 max_users: int = CACHED_USERS) -> None:
        self._store = store
        self._reads = reads
        self._forgotten: Callable[[str], Awaitable[dict[str, int]]] = events.get_forgotten_rooms
        self._kept: LRUCache[str, tuple[Mapping[str, tuple[str, int]], frozenset[str], OutsideJoin]] = LRUCache(
            max_users)

    async def outside_join(self, user_id: str, memberships: Mapping[str, tuple[str, int]],
                           ignored: frozenset[str]) -> OutsideJoin:
        kept = self._kept.get(user_id)
        if kept is not None and kept[0] is memberships and kept[1] == ignored:
            return kept[2]
        others = {r: m for r, (m, _) in memberships.items() if m != "join"}
        own = await self._reads.get_current_state_keys({r: [("m.room.member", user_id)] for r in others})
        senders = {r: state[("m.room.member", user_id)].sender for r, state in own.items()
                   if ("m.room.member", user_id) in state}
        removed = [r for r, m in others.items() if m in ("leave", "ban") and senders.get(r, user_id) != user_id]
        ever_joined = await self._store.get_rooms_ever_joined(user_id, removed)
        forgotten = await self._forgotten(user_id) if any(m in ("leave", "ban") for m in others.values()) else {}
        hidden = {r for r, m in others.items() if m in ("leave", "ban") and forgotten.get(r) == memberships[r][1]}
        hidden |= {r for r, m in others.items() if m == "invite" and senders.get(r) in ignored}
        result = OutsideJoin(frozenset(r for r in removed if r in ever_joined) - hidden, frozenset(hidden))
        self._kept[user_id] = (memberships, ignored, result)
        return result
