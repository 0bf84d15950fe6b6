"""
The deprecated initial syncs (spec: C{GET /initialSync}, and C{GET
/rooms/{roomId}/initialSync}, still current for peeking: "Room
Previews"): a snapshot of the user's rooms, or of one room, with recent
messages and state, whose C{end} token continues on C{GET /events}.

Built on /sync's reads (all rooms in one query per kind of read), its
sources of account data and presence, and the history reader (who may read
a room, and what of it).
"""
from __future__ import annotations

from typing import Awaitable, Callable, Iterable, Mapping, Sequence

from ruma_tx.matrix.events import StoredEvent, room_event
from ruma_tx.matrix.filters import Filter
from ruma_tx.matrix.stream_token import StreamToken
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.history import HistoryReader
from ruma_tx.services.ports.events import Events, SyncReads
from ruma_tx.services.ports.legacy_events import LegacyEventReads
from ruma_tx.services.reading import RoomReader
from ruma_tx.services.sync import SyncContext, SyncRequest, SyncSource

#: Memberships shown; C{archived} adds the rooms left (or banned from).
_CURRENT = ("join", "invite")
_DEPARTED = ("leave", "ban")


class InitialSync:
    """
    @param reads: /sync's reads of many rooms.
    @param legacy: which rooms are published (their C{visibility}).
    @param rooms: the state a user may read of one room.
    @param account_data: the /sync source of account data.
    @param presence: the /sync source of presence.
    @param current_position: the highest position clients may be shown.
    @param ignored: C{async (user_id) -> frozenset} of ignored users.
    """

    def __init__(self, *, events: Events, reads: SyncReads, legacy: LegacyEventReads,
                 history: HistoryReader, rooms: RoomReader, account_data: SyncSource,
                 presence: SyncSource, current_position: Callable[[], int],
                 ignored: Callable[[str], Awaitable[frozenset[str]]]) -> None:
        self._events = events
        self._reads = reads
        self._legacy = legacy
        self._history = history
        self._rooms = rooms
        self._account_data = account_data
        self._presence = presence
        self._current = current_position
        self._ignored = ignored

    async def snapshot(self, user_id: str, device_id: str, *, limit: int, archived: bool) -> JsonDict:
        """
        The user's rooms (joined and invited; with C{archived}, left and
        banned too, unless forgotten), each with its latest C{limit}
        messages and its state (the current state, or the state when they
        left), their account data and presence.
        """
        now = StreamToken(self._current())
        wanted = _CURRENT + _DEPARTED if archived else _CURRENT
        rooms = {room_id: m for room_id, m in (await self._events.get_rooms_for_user(user_id)).items()
                 if m[0] in wanted}
        departed = {room_id: position for room_id, (membership, position) in rooms.items()
                    if membership in _DEPARTED}
        if departed:
            forgotten = await self._events.get_forgotten_rooms(user_id)
            for room_id in [r for r, position in departed.items() if forgotten.get(r) == position]:
                del departed[room_id], rooms[room_id]
        joined = [room_id for room_id, (membership, _) in rooms.items() if membership == "join"]
        invited = [room_id for room_id, (membership, _) in rooms.items() if membership == "invite"]
        ends = {**{room_id: now.stream for room_id in joined}, **departed}
        messages = await self._messages(user_id, ends, limit)
        states = {**await self._reads.get_current_state(joined), **await self._reads.get_state_at(departed)}
        invites = await self._reads.get_current_state_keys(
            {room_id: [("m.room.member", user_id)] for room_id in invited})
        published = await self._legacy.get_published_rooms(list(rooms))
        context = await self._sync_sources(user_id, device_id, now, joined, [self._account_data, self._presence])
        room_sections = context.response.get("rooms", {}).get("join", {})

        snapshot = []
        for room_id, (membership, _) in sorted(rooms.items()):
            room: JsonDict = {"room_id": room_id, "membership": membership,
                              "visibility": "public" if room_id in published else "private"}
            if membership == "invite":
                invite = invites.get(room_id, {}).get(("m.room.member", user_id))
                if invite is not None:
                    room["invite"] = room_event(invite)
            else:
                room["messages"] = messages[room_id]
                room["state"] = [room_event(e) for e in _ordered(states.get(room_id, {}).values())]
                room["account_data"] = room_sections.get(room_id, {}).get("account_data", {}).get("events", [])
            snapshot.append(room)
        return {
            "end": str(now),
            "rooms": snapshot,
            "presence": context.response.get("presence", {}).get("events", []),
            "account_data": context.response.get("account_data", {}).get("events", []),
        }

    async def room_snapshot(self, user_id: str, device_id: str, room_id: str, *, limit: int) -> JsonDict:
        """
        One room as the user may read it: a member (or former member, up to
        when they left), or anyone when it is world-readable (peeking).

        @raise Forbidden: for a room they may not read (spec: 403).
        """
        view = await self._history.readable_view(user_id, room_id)
        membership = view.current_membership
        departed_at = view.current_membership_position if membership in _DEPARTED else None
        page = await self._history.messages(
            user_id, room_id, backwards=True, limit=limit, event_filter=None, to_token=None,
            from_token=StreamToken(departed_at) if departed_at is not None else None)
        messages: JsonDict = {"chunk": list(reversed(page["chunk"])), "end": page["start"]}
        if "end" in page:  # absent: nothing earlier to see
            messages["start"] = page["end"]
        published = await self._legacy.get_published_rooms([room_id])
        room: JsonDict = {
            "room_id": room_id,
            "messages": messages,
            "state": await self._rooms.get_state(user_id, room_id),
            "visibility": "public" if room_id in published else "private",
        }
        if membership in _CURRENT + _DEPARTED:
            room["membership"] = membership  # a peeker has none
        if membership == "join":
            context = await self._sync_sources(user_id, device_id, StreamToken(self._current()), [room_id],
                                               [self._account_data])
            section = context.response.get("rooms", {}).get("join", {}).get(room_id, {})
            room["account_data"] = section.get("account_data", {}).get("events", [])
        return room

    async def _messages(self, user_id: str, ends: Mapping[str, int], limit: int) -> dict[str, JsonDict]:
        """
        Each room's latest C{limit} events the user may see, up to its end
        position (one read for all the rooms), as a pagination chunk.
        """
        windows = {room_id: (0, end) for room_id, end in ends.items()}
        latest = await self._reads.get_latest_events(
            windows, limit=limit, hidden_senders=sorted(await self._ignored(user_id)), pdu=True)
        # The reads return one event more than the limit (is there more?).
        timelines = {room_id: (latest.get(room_id, [])[-limit:] if limit else []) for room_id in ends}
        timelines = await self._history.filter_visible_rooms(user_id, timelines)
        chunks = {}
        for room_id, end in ends.items():
            events = timelines.get(room_id, [])
            chunk: JsonDict = {"chunk": [room_event(e) for e in events], "end": str(StreamToken(end))}
            if events:
                chunk["start"] = str(StreamToken(events[0].stream_ordering - 1))
            chunks[room_id] = chunk
        return chunks

    @staticmethod
    async def _sync_sources(user_id: str, device_id: str, now: StreamToken, joined: list[str],
                            sources: Sequence[SyncSource]) -> SyncContext:
        """What /sync's C{sources} add to an initial sync of the C{joined} rooms."""
        request = SyncRequest(user_id=user_id, device_id=device_id, since=None, timeout_ms=0,
                              filter=Filter(), full_state=False)
        context = SyncContext(request, None, now, joined, {})
        for source in sources:
            await source.add_to_sync(context)
        return context


def _ordered(events: Iterable[StoredEvent]) -> list[StoredEvent]:
    """State events in the order they were sent (the create event first)."""
    return sorted(events, key=lambda e: e.stream_ordering)
