"""
Presence (spec: "Presence"): each user's last state, status message and
last active time, kept cheaply.

A change is stored at a stream position and wakes the syncs of the user
and of everyone sharing a room with them (as Synapse): their next sync
response includes the presence of each user sharing a room with them whose
position is in C{(since, now]}. Changes are rare (a state or status
message that others see changing, never mere activity), so the fan-out is
one wake-up per room-mate per change. Other servers' users' presence
arrives the same way (C{m.presence} EDUs applied through L{set_status}).

Idleness is derived when presence is read, not by timers: an C{online} user
last active more than L{IDLE_AFTER_MS} ago shows as C{unavailable} (the
spec's "Idle timeout"), with no write.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Collection, Sequence

from twisted.internet import defer

from ruma_tx.logs import logger
from ruma_tx.matrix.errors import Forbidden, forbidden, invalid_param
from ruma_tx.matrix.federation_sending import server_of
from ruma_tx.matrix.presence import (
    OFFLINE,
    ONLINE,
    PRESENCE_STATES,
    Presence,
    after_sync,
    effective_state,
    presence_content,
    presence_event,
)
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.ports.ephemeral import PresenceStorage, StoredPresence
from ruma_tx.services.ports.events import NewEvent
from ruma_tx.services.streams import StreamWriter
from ruma_tx.services.sync import SyncContext

log = logger(__name__)

NEVER_SEEN = Presence(OFFLINE)

#: C{(user_id, m.presence content, servers)}: a local user's presence to
#: send on to C{servers}, or (C{None}) to the servers sharing a room with
#: them; must not wait.
PresenceChanged = Callable[[str, JsonDict, Collection[str] | None], None]


class PresenceTracker:
    """
    @param store: the L{ruma_tx.storage.ephemeral.PresenceStore}.
    @param streams: the L{ruma_tx.services.streams.StreamWriter}.
    @param clock: an C{IReactorTime}.
    @param cache_size: users whose presence is kept in memory; this
        process is the only writer, so memory is the freshest copy (an
        C{online} sync's activity time is only kept there).
    @param changed: told of each change of a local user's presence, and
        of what a room's new member does not know (see L{event_stored}):
        federation sends it on.
    @param server_name: ours: whose users are local.
    """

    def __init__(self, *, store: PresenceStorage, streams: StreamWriter, clock: Clock, server_name: str,
                 cache_size: int = 100_000, changed: Sequence[PresenceChanged] = ()) -> None:
        self._store = store
        self._changed = list(changed)
        self._suffix = ":" + server_name
        self._streams = streams
        self._clock = clock
        self._cache: LRUCache[str, Presence] = LRUCache(cache_size)
        # The position of the latest presence change (from this process's
        # start on): a sync past it has no presence to look up. Room-mates
        # are not woken by each other's presence, so this global mark is
        # what spares every sync a query.
        self._last_change = streams.current

    async def set_status(self, requester_id: str, user_id: str, state: str,
                         status_msg: str | None) -> None:
        """
        C{PUT /presence/{userId}/status}: set the state and status message
        (an omitted message clears it, as Synapse) and, as the spec says,
        refresh the activity time.

        @raise MatrixError: 403 for another user, 400 for an unknown state.
        """
        if requester_id != user_id:
            raise forbidden("You cannot set the presence state of another user")
        if state not in PRESENCE_STATES:
            raise invalid_param(f"presence must be one of {', '.join(PRESENCE_STATES)}")
        current = await self._current(user_id)
        now = now_ms(self._clock)
        updated = Presence(state, status_msg, now)
        self._remember(user_id, updated)
        if (effective_state(current, now), current.status_msg) == (state, status_msg):
            return  # only the activity time changed: nobody needs telling
        await self._write(user_id, updated)

    async def set_from_sync(self, user_id: str, set_presence: str = ONLINE) -> None:
        """
        Apply /sync's C{set_presence} (C{online} when omitted); writes only
        when the state others see changes, so it is cheap to call on every
        sync.
        """
        current = await self._current(user_id)
        now = now_ms(self._clock)
        updated = after_sync(current, set_presence, now)
        if updated is None:
            if set_presence == ONLINE:
                self._remember(user_id, replace(current, last_active_ts=now))
            return
        self._remember(user_id, updated)  # before the write: concurrent syncs see it
        await self._write(user_id, updated)

    async def get_status(self, requester_id: str, user_id: str) -> dict:
        """
        C{GET /presence/{userId}/status}: one's own, or that of a user one
        shares a room with (the spec publishes presence to those; Synapse
        answers for any user). A user with no presence yet is C{offline}.

        @raise MatrixError: 403 M_FORBIDDEN for anyone else.
        """
        if requester_id != user_id and not await self._store.share_a_room(requester_id, user_id):
            raise Forbidden("M_FORBIDDEN", "You are not allowed to see their presence")
        return presence_content(await self._current(user_id), now_ms(self._clock))

    async def _current(self, user_id: str) -> Presence:
        presence = self._cache.get(user_id)
        if presence is not None:
            return presence
        stored = await self._store.get(user_id)
        written = self._cache.get(user_id)
        if written is not None:  # written while we read
            return written
        presence = NEVER_SEEN if stored is None else _presence(stored)
        self._remember(user_id, presence)
        return presence

    def _remember(self, user_id: str, presence: Presence) -> None:
        self._cache[user_id] = presence

    async def _write(self, user_id: str, presence: Presence) -> None:
        room_mates = await self._store.get_room_mates(user_id)

        async def persist(position: int) -> list[str]:
            await self._store.put(StoredPresence(
                user_id, presence.state, presence.status_msg, presence.last_active_ts, position))
            self._last_change = max(self._last_change, position)
            return [user_id, *room_mates]

        await self._streams.write(persist, kind="presence")
        if user_id.endswith(self._suffix):
            self._tell(user_id, presence, None)

    def _tell(self, user_id: str, presence: Presence, servers: Collection[str] | None) -> None:
        content = presence_content(presence, now_ms(self._clock))
        for hook in self._changed:
            hook(user_id, content, servers)

    def event_stored(self, event: NewEvent, position: int) -> None:
        """
        An C{EventStored} hook: a join makes presence news to others (as
        Synapse). A local user's goes to the servers of their rooms; when
        another server's user joins, that server gets the presence of our
        users in the room. Offline users are left out (the default).
        """
        pdu = event.pdu
        if not self._changed or pdu.get("type") != "m.room.member" \
                or pdu.get("content", {}).get("membership") != "join" or not isinstance(pdu.get("state_key"), str):
            return
        defer.ensureDeferred(self._joined(event.room_id, pdu["state_key"])).addErrback(
            lambda f: log.failure("telling of presence in {room_id}", f, room_id=event.room_id))

    async def _joined(self, room_id: str, joiner: str) -> None:
        if joiner.endswith(self._suffix):
            presence = await self._current(joiner)
            if presence.state != OFFLINE:
                self._tell(joiner, presence, None)
            return
        server = server_of(joiner)
        for row in await self._store.get_joined_presence(room_id):
            if row.user_id.endswith(self._suffix):
                self._tell(row.user_id, self._cache.get(row.user_id) or _presence(row), [server])

    async def add_to_sync(self, ctx: SyncContext) -> None:
        """
        Add to the top-level C{presence} the presence changed in
        C{(since, now]} of the user and of everyone joined to one of their
        joined rooms; an initial sync gets all of theirs except C{offline}
        ones (as Synapse). Users who started to share a room with the user
        in C{(since, now]} come with their current presence, whenever it
        was set (as Synapse: a new room mate's presence is news).
        """
        after = 0 if ctx.since is None else ctx.since.stream
        if after >= ctx.now.stream:
            return
        user_id = ctx.request.user_id
        rows = []
        if after < self._last_change:
            rows = await self._store.get_changed_for(
                user_id, list(ctx.joined), after, ctx.now.stream, include_offline=ctx.since is not None)
        if ctx.since is not None and ctx.touched("room_membership"):
            new_rooms = [room_id for room_id, change in ctx.membership_changes.items()
                         if change.content.get("membership") == "join"]
            seen = {row.user_id for row in rows}
            rows += [row for row in await self._store.get_for_new_room_mates(
                user_id, new_rooms, list(ctx.joined), after, ctx.now.stream) if row.user_id not in seen]
        now = now_ms(self._clock)
        presence_filter = ctx.request.filter.presence
        events = []
        for row in sorted(rows, key=lambda r: r.user_id):
            presence = self._cache.get(row.user_id) or _presence(row)
            event = presence_event(row.user_id, presence, now)
            if presence_filter.matches(event):
                events.append(event)
        if events:
            ctx.response.setdefault("presence", {"events": []})["events"].extend(events)


def _presence(stored: StoredPresence) -> Presence:
    return Presence(stored.state, stored.status_msg, stored.last_active_ts)
