"""
Account data (spec: "Client Config"), room tags ("Room Tagging"), the fully
read marker ("Read and unread markers") and ignored users ("Ignoring
Users"): per-user data, global or per room, visible only to its user.

Every change is stored at a stream position and wakes only its user; the
L{AccountDataKeeper} is also the /sync source of the top-level
C{account_data} and of each joined room's C{account_data}.
"""
from __future__ import annotations

from typing import Awaitable, Callable, Mapping

from ruma_tx.matrix.account_data import (
    FULLY_READ,
    account_data_event,
    check_room_id,
    check_self,
    check_settable,
    check_tag,
    ignored_users_in,
)
from ruma_tx.matrix.errors import (
    not_found,
)
from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.sliding_sync import direct_rooms
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.ports.ephemeral import AccountDataStorage
from ruma_tx.services.ports.events import Events
from ruma_tx.services.streams import StreamWriter
from ruma_tx.services.sync import SyncContext

TAG = "m.tag"
DIRECT = "m.direct"
IGNORED_USER_LIST = "m.ignored_user_list"


class AccountDataKeeper:
    """
    @param store: the L{ruma_tx.storage.ephemeral.AccountDataStore}.
    @param streams: the L{ruma_tx.services.streams.StreamWriter}.
    @param events: the L{ruma_tx.storage.events.EventStore} (for the order
        of read-marker events).
    @param managed_readers: C{type -> async (user_id) -> content} for global
        types another component keeps (C{m.push_rules}): C{GET} answers
        them from it, since "servers must allow clients to read" them.
    @param ignored_cache_size: users whose ignored-user list is kept in memory.
    """

    def __init__(self, *, store: AccountDataStorage, streams: StreamWriter, events: Events,
                 managed_readers: Mapping[str, Callable[[str], Awaitable[JsonDict]]] | None = None,
                 ignored_cache_size: int = 10_000) -> None:
        self._store = store
        self._managed_readers = dict(managed_readers or {})
        self._streams = streams
        self._events = events
        self._ignored: LRUCache[str, frozenset[str]] = LRUCache(ignored_cache_size)
        # Bumped by every write of an ignored-user list, so a read that
        # raced with a write does not cache what it read.
        self._ignored_writes = 0

    # ------------------------------------------------------ account data

    async def get(self, requester_id: str, user_id: str, data_type: str,
                  room_id: str | None = None) -> dict:
        """
        The content of one entry (global when C{room_id} is C{None}).

        @raise MatrixError: 403 for another user's, 400 for a malformed room
            id, 404 M_NOT_FOUND when not set.
        """
        check_self(requester_id, user_id)
        if room_id is not None:
            check_room_id(room_id)
        reader = self._managed_readers.get(data_type) if room_id is None else None
        if reader is not None:
            return await reader(user_id)
        content = await self._store.get(user_id, room_id, data_type)
        if content is None:
            raise not_found("Room account data not found." if room_id else "Account data not found.")
        return content

    async def put(self, requester_id: str, user_id: str, data_type: str, content: dict,
                  room_id: str | None = None) -> None:
        """
        Set one entry (global when C{room_id} is C{None}). As Synapse, the
        user need not be in the room.

        @raise MatrixError: 403 for another user's, 400 for a malformed room
            id, 405 for a type the server manages.
        """
        check_self(requester_id, user_id)
        if room_id is not None:
            check_room_id(room_id)
        check_settable(data_type)
        await self.put_managed(user_id, data_type, content, room_id)

    async def put_managed(self, user_id: str, data_type: str, content: dict,
                          room_id: str | None = None) -> None:
        """
        Set one entry with no checks: for the server's own types (the
        fully read marker; C{m.push_rules} should the push rules keeper
        want it in /sync).
        """

        async def persist(position: int) -> list[str]:
            await self._store.put(user_id, room_id, data_type, content, position)
            if data_type == IGNORED_USER_LIST and room_id is None:
                self._ignored_writes += 1
                self._ignored.pop(user_id, None)
            return [user_id]

        await self._streams.write(persist, kind="account_data")

    async def direct_rooms(self, user_id: str) -> frozenset[str]:
        """The rooms the user's C{m.direct} names (their DMs)."""
        return direct_rooms(await self._store.get(user_id, None, DIRECT))

    async def all_tags(self, user_id: str, upto: int) -> dict[str, frozenset[str]]:
        """Per room, the names of the user's tags on it."""
        tags: dict[str, frozenset[str]] = {}
        for entry in await self._store.get_changed(user_id, 0, upto):
            names = entry.content.get("tags") if entry.type == TAG and entry.room_id else None
            if isinstance(names, dict) and entry.room_id is not None:
                tags[entry.room_id] = frozenset(names)
        return tags

    # --------------------------------------------------------------- tags

    async def get_tags(self, requester_id: str, user_id: str, room_id: str) -> dict:
        """The room's tags, C{{"tags": {name: {"order": ...}}}}."""
        check_self(requester_id, user_id)
        check_room_id(room_id)
        content = await self._store.get(user_id, room_id, TAG) or {}
        tags = content.get("tags")
        return {"tags": tags if isinstance(tags, dict) else {}}

    async def put_tag(self, requester_id: str, user_id: str, room_id: str, tag: str,
                      content: dict) -> None:
        check_self(requester_id, user_id)
        check_room_id(room_id)
        check_tag(tag, content)

        async def persist(position: int) -> list[str]:
            await self._store.put_tag(user_id, room_id, tag, content, position)
            return [user_id]

        await self._streams.write(persist, kind="account_data")

    async def delete_tag(self, requester_id: str, user_id: str, room_id: str, tag: str) -> None:
        """Remove a tag; removing a tag the room does not have succeeds (as Synapse)."""
        check_self(requester_id, user_id)
        check_room_id(room_id)

        async def persist(position: int) -> list[str]:
            removed = await self._store.remove_tag(user_id, room_id, tag, position)
            return [user_id] if removed else []

        await self._streams.write(persist, kind="account_data")

    # ------------------------------------------------ the fully read marker

    async def set_fully_read(self, user_id: str, room_id: str, event: StoredEvent) -> None:
        """
        Move the user's fully read marker in the room to C{event} (a
        L{ruma_tx.storage.events.StoredEvent} of that room), unless it is
        already at a later event: Synapse only moves it forward.
        """
        current = await self._store.get(user_id, room_id, FULLY_READ)
        current_id = (current or {}).get("event_id")
        if current_id == event.event_id:
            return
        if isinstance(current_id, str):
            current_event = await self._events.get_event(current_id)
            if (current_event is not None and current_event.room_id == room_id
                    and current_event.stream_ordering > event.stream_ordering):
                return
        await self.put_managed(user_id, FULLY_READ, {"event_id": event.event_id}, room_id)

    # ------------------------------------------------------ ignored users

    async def ignored_users(self, user_id: str) -> frozenset[str]:
        """
        The users C{user_id} ignores (their global C{m.ignored_user_list}),
        from memory after the first read; this process is the only writer.
        """
        ignored = self._ignored.get(user_id)
        if ignored is None:
            writes = self._ignored_writes
            ignored = ignored_users_in(await self._store.get(user_id, None, IGNORED_USER_LIST))
            if writes == self._ignored_writes:
                self._ignored[user_id] = ignored
        return ignored

    # --------------------------------------------------------------- sync

    async def add_to_sync(self, ctx: SyncContext) -> None:
        """
        Add the entries changed in C{(since, now]} (all of them for an
        initial sync): global ones to the top-level C{account_data}, those
        of joined rooms to each room's C{account_data}.
        """
        user_id = ctx.request.user_id
        after = 0 if ctx.since is None else ctx.since.stream
        if after >= ctx.now.stream or not ctx.touched("account_data"):
            return
        changed = await self._store.get_changed(user_id, after, ctx.now.stream)
        joined = set(ctx.joined)
        global_filter = ctx.request.filter.account_data
        room_filter = ctx.request.filter.room.account_data
        global_events = []
        for entry in sorted(changed, key=lambda e: (e.room_id or "", e.type)):
            event = account_data_event(entry.type, entry.content)
            if entry.room_id is None:
                if global_filter.matches(event):
                    global_events.append(event)
            elif entry.room_id in joined and room_filter.matches(event, entry.room_id):
                ctx.joined_room(entry.room_id)["account_data"]["events"].append(event)
        if global_events:
            ctx.response.setdefault("account_data", {"events": []})["events"].extend(global_events)
