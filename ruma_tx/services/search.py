"""
Server-side search of room events (spec: "Server Side Search"): the rooms
a user has been in, only the events history visibility lets them see,
ranked or newest first, with pagination, groups, highlights, and on
request the context, senders' profiles and room state of each result.
Also the background indexing of events stored before the index existed.
"""
from __future__ import annotations

from typing import Awaitable, Callable, Mapping

from twisted.internet import defer

from ruma_tx.logs import logger
from ruma_tx.matrix.errors import Unavailable
from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.search import (
    RANK,
    Hit,
    RoomEventsCriteria,
    SearchToken,
    event_with_room_id,
    group_results,
    highlight_words,
)
from ruma_tx.matrix.stream_token import StreamToken
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.background_updates import UpdateProgress
from ruma_tx.services.clock import Clock
from ruma_tx.services.history import HistoryReader
from ruma_tx.services.ports.events import Ranges, SyncReads
from ruma_tx.services.ports.search import ContextWindow, SearchHit, SearchIndex, SearchQuery

log = logger(__name__)

class RoomSearch:
    """
    The rooms searched are those the user is joined to, and those they
    left or were banned from (what they could see before; spec: "including
    those that they have left") unless they forgot them. Synapse searches
    only joined rooms.

    @param history: the L{HistoryReader}, for what each user may see.
    @param index: the L{ruma_tx.storage.search.SearchStore}.
    @param state: the L{ruma_tx.storage.sync_reads.SyncReadStore}, for
        C{include_state}.
    @param ignored_users: C{async (user_id) -> the users they ignore},
        whose messages are never shown to them, in results or context (as
        Synapse filters them; their state events are shown).
    @param current_position: the highest stream position clients may be shown.
    """

    def __init__(self, *, history: HistoryReader, index: SearchIndex, state: SyncReads,
                 ignored_users: Callable[[str], Awaitable[frozenset[str]]],
                 current_position: Callable[[], int]) -> None:
        self._history = history
        self._index = index
        self._state = state
        self._ignored_users = ignored_users
        self._current = current_position

    async def search(self, user_id: str, criteria: RoomEventsCriteria, token: SearchToken | None) -> JsonDict:
        """
        The body of C{POST /search}. A C{token} from inside a group goes on
        within that group, and so does the C{next_batch} of its page.
        """
        memberships = await self._index.get_searched_rooms(user_id)
        rooms = await self._visible_rooms(user_id, criteria, token, memberships)
        upto = self._current()
        group = token.group if token is not None else None
        hidden_senders = sorted(await self._ignored_users(user_id))
        page = await self._index.search(SearchQuery(
            search_term=criteria.search_term, keys=criteria.keys, rooms=rooms, upto=upto,
            event_filter=criteria.event_filter, hidden_senders=hidden_senders,
            by_rank=criteria.order_by == RANK, limit=criteria.limit,
            after=(token.rank, token.position) if token is not None else None,
            group=group, group_ends=criteria.group_by,
        ))
        page_hits = page.hits[:criteria.limit]
        # An erased user's messages are not found by those who were not
        # joined when they were sent (they would be served pruned to them).
        unseen = await self._history.erased_unseen(user_id, [hit.event for hit in page_hits])
        hits = [hit for hit in page_hits if hit.event.event_id not in unseen]
        results: list[JsonDict] = [{"rank": hit.rank, "result": event_with_room_id(hit.event)} for hit in hits]
        body: JsonDict = {
            "count": page.count,
            "results": results,
            "highlights": highlight_words(hit.headline for hit in hits if hit.headline),
        }
        if len(page.hits) > criteria.limit:
            last = page_hits[-1]
            body["next_batch"] = SearchToken(criteria.order_by, last.order_rank, last.event.stream_ordering,
                                             group).encode()
        if criteria.group_by:
            body["groups"] = group_results(
                [Hit(h.event.event_id, h.event.room_id, h.event.sender, h.order_rank, h.event.stream_ordering)
                 for h in hits], criteria.group_by, criteria.order_by, page.group_ends)
        if criteria.context is not None and hits:
            contexts = await self._contexts(user_id, criteria, hits, rooms, upto, hidden_senders)
            for result, context in zip(results, contexts):
                result["context"] = context
        if criteria.include_state and hits:
            body["state"] = await self._room_state(hits, memberships)
        return {"search_categories": {"room_events": body}}

    async def _visible_rooms(self, user_id: str, criteria: RoomEventsCriteria, token: SearchToken | None,
                             memberships: Mapping[str, tuple[str, int]]) -> dict[str, Ranges]:
        """The rooms to search, each with the positions the user may see of it."""
        room_ids = [room_id for room_id in memberships if criteria.event_filter.matches_room(room_id)]
        if token is not None and token.group is not None and token.group[0] == "room_id":
            room_ids = [room_id for room_id in room_ids if room_id == token.group[1]]
        views = await self._history.views(user_id, room_ids)
        ranges = {room_id: view.visible_ranges() for room_id, view in views.items()}
        return {room_id: room_ranges for room_id, room_ranges in ranges.items() if room_ranges}

    async def _contexts(self, user_id: str, criteria: RoomEventsCriteria, hits: list[SearchHit],
                        rooms: Mapping[str, Ranges], upto: int, hidden_senders: list[str]) -> list[JsonDict]:
        """
        Each result's context: visible events around it (the stretch of
        history it lies in that the user may see; newest first before it, as
        /context), pagination tokens, and on request its senders' profiles
        as of the last event shown (as Synapse).
        """
        assert criteria.context is not None
        windows = []
        for hit in hits:
            position = hit.event.stream_ordering
            low, high = next(((low, high) for low, high in rooms[hit.event.room_id]
                              if low <= position and (high is None or position <= high)), (position, position))
            windows.append(ContextWindow(hit.event.room_id, position, low, upto if high is None else high,
                                         criteria.context.before_limit, criteria.context.after_limit))
        around = await self._index.get_contexts(windows, hidden_senders)
        unseen = await self._history.erased_unseen(user_id, [e for events in around for side in events for e in side])
        if unseen:
            around = [([e for e in before if e.event_id not in unseen], [e for e in after if e.event_id not in unseen])
                      for before, after in around]
        last_shown = [(after[-1] if after else hit.event) for hit, (_, after) in zip(hits, around)]
        profiles = {}
        if criteria.context.include_profile:
            wanted = {(hit.event.room_id, last.stream_ordering, event.sender)
                      for hit, last, (before, after) in zip(hits, last_shown, around)
                      for event in (*before, hit.event, *after)}
            profiles = await self._index.get_member_profiles(sorted(wanted))
        contexts = []
        for hit, last, (before, after) in zip(hits, last_shown, around):
            first = before[0] if before else hit.event
            context: JsonDict = {
                "events_before": [event_with_room_id(e) for e in reversed(before)],
                "events_after": [event_with_room_id(e) for e in after],
                "start": str(StreamToken(first.stream_ordering - 1)),
                "end": str(StreamToken(last.stream_ordering)),
            }
            if criteria.context.include_profile:
                context["profile_info"] = _profile_info(hit, before, after, last, profiles)
            contexts.append(context)
        return contexts

    async def _room_state(self, hits: list[SearchHit],
                          memberships: Mapping[str, tuple[str, int]]) -> JsonDict:
        """
        The state of each room with results: current for rooms the user is
        in, as it was when they left for the others (nothing after).
        """
        room_ids = sorted({hit.event.room_id for hit in hits})
        joined = [room_id for room_id in room_ids if memberships[room_id][0] == "join"]
        departed = {room_id: memberships[room_id][1] for room_id in room_ids if room_id not in joined}
        states = {**await self._state.get_current_state(joined, pdu=False),
                  **await self._state.get_state_at(departed, pdu=False)}
        return {room_id: [event_with_room_id(e) for e in sorted(state.values(), key=_position)]
                for room_id, state in states.items()}


def _position(event: StoredEvent) -> int:
    return event.stream_ordering


def _profile_info(hit: SearchHit, before: list[StoredEvent], after: list[StoredEvent], last: StoredEvent,
                  profiles: Mapping[tuple[str, int, str], tuple[str | None, str | None]]) -> JsonDict:
    info: JsonDict = {}
    for event in (*before, hit.event, *after):
        displayname, avatar_url = profiles.get((hit.event.room_id, last.stream_ordering, event.sender),
                                               (None, None))
        profile = {key: value for key, value in (("displayname", displayname), ("avatar_url", avatar_url))
                   if value is not None}
        info[event.sender] = profile
    return info


class SearchBackfill:
    """
    Indexes, in the background, the events stored before the search index
    existed: a batch of stream positions at a time with a pause between
    batches, so that a big history is indexed without holding up start-up
    or the requests being served. Stops once none is left; a failed batch
    (the database restarting) is tried again later. A background update
    for the admin API (L{ruma_tx.services.background_updates}): it tells
    its progress, and an admin may pause it.

    @param index: the L{ruma_tx.storage.search.SearchStore}.
    """

    def __init__(self, index: SearchIndex, clock: Clock, *, batch_size: int = 2000,
                 pause_s: float = 0.2, retry_s: float = 10.0) -> None:
        self._index = index
        self._clock = clock
        self._batch_size = batch_size
        self._pause_s = pause_s
        self._retry_s = retry_s
        # Since the start: the stream positions looked through, and the time spent on them.
        self._positions = 0
        self._busy_s = 0.0
        self._done = False
        self._paused = False
        self._parked = False  # a batch fell due while paused: run at resume

    def start(self) -> None:
        self._clock.callLater(0, self._next)

    def progress(self) -> UpdateProgress | None:
        if self._done:
            return None
        return UpdateProgress("event_search_backfill", self._positions, self._busy_s)

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        if self._parked:
            self._parked = False
            self._next()

    def _next(self) -> None:
        if self._paused:
            self._parked = True
            return
        defer.ensureDeferred(self._batch())

    async def _batch(self) -> None:
        began = self._clock.seconds()
        try:
            more = await self._index.backfill(self._batch_size)
        except Unavailable:
            self._clock.callLater(self._retry_s, self._next)
        except Exception:
            log.failure("indexing past events for search failed")
            self._clock.callLater(self._retry_s, self._next)
        else:
            self._positions += self._batch_size
            self._busy_s += self._clock.seconds() - began
            if more:
                self._clock.callLater(self._pause_s, self._next)
            else:
                self._done = True
