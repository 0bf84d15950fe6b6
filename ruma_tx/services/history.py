"""
Reading a room's history as a user may see it (spec: "Getting events for a
room", "Event Context", "Room History Visibility", "Lazy-loading room
members"): paginating /messages, the context of an event, one event, the
member lists and finding an event by timestamp.

Pagination tokens are L{StreamToken}s, the same as /sync's: a token
C{s<N>_0} stands *between* the event at stream position N and the next
one. Paginating backwards from it returns events at positions <= N, newest
first, and C{end} is the token just before the oldest event returned;
forwards returns events at positions > N, oldest first, and C{end} is the
token just after the newest event returned. So a /sync C{prev_batch}
(just before the first timeline event) pages back into older history, and
an C{end} pages on from where the previous page stopped.
"""
from __future__ import annotations

from typing import Callable, Mapping, Protocol

from ruma_tx.matrix.erasure import erased_event, sees_whole
from ruma_tx.matrix.errors import forbidden, not_found
from ruma_tx.matrix.events import StoredEvent, room_event
from ruma_tx.matrix.filters import RoomEventFilter
from ruma_tx.matrix.stream_token import OUTSIDE_LINE, StreamToken, pagination_window
from ruma_tx.matrix.visibility import WORLD_READABLE, HistoryView
from ruma_tx.services.aggregations import Aggregator
from ruma_tx.services.erasure import ErasedUsers
from ruma_tx.services.ports.events import Events, History

#: What a server admin sees of a room's history: all of it.
SEES_EVERYTHING = HistoryView(visibilities=((OUTSIDE_LINE, WORLD_READABLE),))

#: Memberships that let a user read a room they are not joined to (what
#: they saw before leaving), as Synapse's C{allow_departed_users}.
_DEPARTED = ("leave", "ban")


class RemoteHistory(Protocol):
    """Other servers' history of rooms shared with them (L{ruma_tx.services.federation_backfill})."""

    async def backfill(self, room_id: str, wanted: int) -> bool:
        """Fetch up to about C{wanted} events before the room's oldest here; whether any was added."""

    async def closer_event(self, room_id: str, ts: int, *, forwards: bool,
                           local: StoredEvent | None) -> StoredEvent | None:
        """An event of another server closer to C{ts} than C{local}, now stored here; or C{None}."""


class HistoryReader:
    """
    @param events: the L{ruma_tx.storage.events.EventStore}.
    @param history: the L{ruma_tx.storage.history.HistoryStore}.
    @param current_position: returns the highest stream position clients
        may be shown (C{StreamWriter.current}); later events are in flight.
    @param aggregations: the bundled aggregations of the events served.
    @param remote: returns other servers' history, asked when a room's
        history here ends before the room's does (C{None}: federation is
        off); a function, as it is built after this reader.
    @param erased: which senders are erased: their events are served pruned
        to those not joined when they were sent (L{ruma_tx.matrix.erasure}).
    """

    def __init__(self, *, events: Events, history: History, current_position: Callable[[], int],
                 aggregations: Aggregator, erased: ErasedUsers,
                 remote: Callable[[], RemoteHistory] | None = None) -> None:
        self._events = events
        self._history = history
        self._current = current_position
        self._aggregations = aggregations
        self._erased = erased
        self._remote = remote

    # ------------------------------------------------------------ visibility

    async def view(self, user_id: str, room_id: str) -> HistoryView:
        """What C{user_id} may see of C{room_id}'s history."""
        memberships, visibilities = await self._history.get_timelines(room_id, user_id)
        return HistoryView(tuple(memberships), tuple(visibilities))

    async def views(self, user_id: str, room_ids: list[str]) -> dict[str, HistoryView]:
        """What C{user_id} may see of each room's history; one read for all the rooms."""
        timelines = await self._history.get_timelines_many(room_ids, user_id) if room_ids else {}
        return {room_id: HistoryView(*map(tuple, timelines[room_id])) for room_id in room_ids}

    async def filter_visible_rooms(self, user_id: str,
                                   events: Mapping[str, list[StoredEvent]]) -> dict[str, list[StoredEvent]]:
        """
        Keep, of each room's events, those the user may see (history
        visibility), in their order; one read for all the rooms.
        """
        views = await self.views(user_id, [room_id for room_id, room_events in events.items() if room_events])
        visible: dict[str, list[StoredEvent]] = {room_id: [] for room_id in events}
        for room_id, view in views.items():
            visible[room_id] = await self.with_erasure(
                view, room_id, [e for e in events[room_id] if view.can_see(e.stream_ordering)])
        return visible

    async def with_erasure(self, view: HistoryView, room_id: str, events: list[StoredEvent]) -> list[StoredEvent]:
        """
        C{events} (of C{room_id}, which the viewer may see) as served to the
        viewer: those of erased senders sent before the viewer joined pruned.
        No query unless some account is erased (and then mostly none).
        """
        if view is SEES_EVERYTHING or not events:
            return events  # as Synapse's admin API, which skips client filtering
        erased = await self._erased.among({event.sender for event in events})
        pruned = {event.event_id for event in events if event.sender in erased and not sees_whole(view, event)}
        if not pruned:
            return events
        head = await self._events.get_room_head(room_id)
        if head is None:
            return events
        return [erased_event(event, head.room_version) if event.event_id in pruned else event
                for event in events]

    async def erased_unseen(self, user_id: str, events: list[StoredEvent]) -> set[str]:
        """
        The ids of those of C{events} (of any rooms) whose senders are
        erased and which the user was not joined to see when they were sent.
        """
        erased = await self._erased.among({event.sender for event in events})
        if not erased:
            return set()
        of_erased = [event for event in events if event.sender in erased]
        views = await self.views(user_id, sorted({event.room_id for event in of_erased}))
        return {event.event_id for event in of_erased if not sees_whole(views[event.room_id], event)}

    async def readable_view(self, user_id: str, room_id: str) -> HistoryView:
        """
        The user's view of a room they may read: they are joined, have
        left or been banned (and see what they could before), or the room
        is world-readable.

        @raise MatrixError: 403 M_FORBIDDEN otherwise, whether or not the
            room exists (as Synapse).
        """
        view = await self.view(user_id, room_id)
        if view.current_membership == "join" or view.current_membership in _DEPARTED:
            return view
        if view.current_visibility == WORLD_READABLE:
            return view
        raise forbidden(f"User {user_id} is not in room {room_id}")

    # ------------------------------------------------------------- /messages

    async def messages(
        self, user_id: str, room_id: str, *, backwards: bool, from_token: StreamToken | None,
        to_token: StreamToken | None, limit: int, event_filter: RoomEventFilter | None, as_admin: bool = False,
    ) -> dict:
        """
        One page of the room's events (the body of C{GET /messages}); for a
        server admin (C{as_admin}, Synapse's admin API), every event of the
        room, whatever their membership.
        C{start} is C{from_token}, or where a pagination without one
        starts: the current position backwards, the room's start forwards.

        C{end} is left out when paginating backwards has reached the start
        of what the user may see. Paginating forwards, it is given whenever
        the page is not empty (as Synapse: the room goes on growing, and the
        client continues from it), and left out for an empty page.

        Paginating backwards past the oldest event here of a room shared
        with other servers fetches older events from them first (backfill).
        """
        view = SEES_EVERYTHING if as_admin else await self.readable_view(user_id, room_id)
        after, upto = pagination_window(backwards=backwards, from_token=from_token, to_token=to_token,
                                        current=self._current())
        page = await self._page(view, room_id, after, upto, limit + 1, backwards, event_filter)
        if (backwards and 0 < limit and len(page) <= limit and after == OUTSIDE_LINE and self._remote is not None
                and await self._remote().backfill(room_id, limit + 1 - len(page))):
            # Read again: the history fetched may also change what the user may see.
            view = SEES_EVERYTHING if as_admin else await self.readable_view(user_id, room_id)
            page = await self._page(view, room_id, after, upto, limit + 1, backwards, event_filter)
        more, page = len(page) > limit, await self.with_erasure(view, room_id, page[:limit])
        start = from_token if from_token is not None else StreamToken(upto if backwards else OUTSIDE_LINE)
        response: dict = {"start": str(start), "chunk": await self._aggregations.serve(user_id, page)}
        if backwards:
            if more:
                response["end"] = str(StreamToken(page[-1].stream_ordering - 1 if page else upto))
            elif to_token is not None and after < upto:
                response["end"] = str(StreamToken(after))  # stopped at `to`, not the start
        elif page:
            response["end"] = str(StreamToken(page[-1].stream_ordering))
        elif more:
            response["end"] = str(StreamToken(after))  # limit=0
        if event_filter is not None and event_filter.lazy_load_members and page:
            # As Synapse: the senders' membership at the page's first event.
            response["state"] = await self._member_state(room_id, page[0].stream_ordering, page)
        return response

    # -------------------------------------------------------------- /context

    async def context(
        self, user_id: str, room_id: str, event_id: str, *, limit: int,
        event_filter: RoomEventFilter | None,
    ) -> dict:
        """
        The events around an event: C{limit} split as Synapse does (the
        smaller half before), the filter applied to all but the event, and
        the state at the last event returned (spec), only the senders'
        members when lazy-loading.

        @raise MatrixError: 404 for an event not in the room, 403 for one
            the user may not see (as Synapse), 403 for a room they may not read.
        """
        view = await self.readable_view(user_id, room_id)
        event = await self._events.get_event(event_id)
        if event is None or event.room_id != room_id:
            raise not_found("Event not found")
        if not view.can_see(event.stream_ordering):
            raise forbidden("You don't have permission to access that event")
        ranges = _ranges(view, room_id, event_filter)
        position = event.stream_ordering
        before_limit = limit // 2
        before = await self._history.get_page(
            room_id, after=OUTSIDE_LINE, upto=position - 1, ranges=ranges, limit=before_limit,
            backwards=True, event_filter=event_filter,
        )
        after = await self._history.get_page(
            room_id, after=position, upto=self._current(), ranges=ranges,
            limit=limit - before_limit, backwards=False, event_filter=event_filter,
        )
        last = after[-1] if after else event
        shown = await self.with_erasure(view, room_id, [*before, event, *after])
        if event_filter is not None and event_filter.lazy_load_members:
            state = await self._member_state(room_id, last.stream_ordering, shown)
        else:
            state = _serve(list((await self._events.get_state_at(room_id, last.stream_ordering)).values())
            )
        if event_filter is not None:
            state = [e for e in state if event_filter.matches(e)]
        served = await self._aggregations.serve(user_id, shown)
        return {
            "start": str(StreamToken((before[-1].stream_ordering if before else position) - 1)),
            "end": str(StreamToken(last.stream_ordering)),
            "events_before": served[:len(before)],
            "event": served[len(before)],
            "events_after": served[len(before) + 1:],
            "state": state,
        }

    # ---------------------------------------------------------------- /event

    async def event(self, user_id: str, room_id: str, event_id: str) -> dict:
        """
        One event, if the user may see it.

        @raise MatrixError: 404 M_NOT_FOUND when it is unknown, in another
            room, or not visible to the user (spec).
        """
        event, view = await self.visible_event(user_id, room_id, event_id)
        return (await self._aggregations.serve(user_id, await self.with_erasure(view, room_id, [event])))[0]

    async def visible_event(self, user_id: str, room_id: str, event_id: str) -> tuple[StoredEvent, HistoryView]:
        """
        An event of the room the user may see, with their view of the room.

        @raise MatrixError: 404 M_NOT_FOUND when it is unknown, in another
            room, or not visible to the user.
        """
        event = await self._events.get_event(event_id)
        if event is None or event.room_id != room_id:
            raise not_found("Event not found")
        view = await self.view(user_id, room_id)
        if not view.can_see(event.stream_ordering):
            raise not_found("Event not found")
        return event, view

    # --------------------------------------------------------------- members

    async def members(
        self, user_id: str, room_id: str, *, at: StreamToken | None,
        membership: str | None, not_membership: str | None,
    ) -> list[dict]:
        """
        The room's C{m.room.member} events as of C{at} (default: now), and
        at the latest as of when the user left. With both C{membership} and
        C{not_membership}, an event is kept if either matches (spec: "an
        'or' condition"; Synapse requires both).

        @raise MatrixError: 403 when the user may not read the room, or not
            see it as it was at that position.
        """
        view = await self.readable_view(user_id, room_id)
        position = self._current()
        if at is not None:
            position = min(position, at.stream)
        departed_at = view.current_membership_position
        if view.current_membership in _DEPARTED and departed_at is not None:
            position = min(position, departed_at)
        if not view.can_see(position):
            raise forbidden("You may not see the members of this room at that point")
        if position == self._current():
            # Now: the room's current state, which in a room shared with
            # other servers is what state resolution chose, not the last
            # member event of each user in stream order.
            state = await self._events.get_state(room_id, types=["m.room.member"])
        else:
            state = await self._events.get_state_at(room_id, position, types=["m.room.member"])

        def keep(event: StoredEvent) -> bool:
            value = event.content.get("membership")
            if membership is None and not_membership is None:
                return True
            return ((membership is not None and value == membership)
                    or (not_membership is not None and value != not_membership))

        events = sorted((e for e in state.values() if keep(e)), key=lambda e: e.stream_ordering)
        return _serve(events)

    async def joined_members(self, user_id: str, room_id: str) -> dict:
        """
        C{user_id -> {display_name, avatar_url}} of the joined members, from
        their member events (as Synapse); fields absent when unset.

        @raise MatrixError: 403 unless the user is joined (spec).
        """
        view = await self.view(user_id, room_id)
        if view.current_membership != "join":
            raise forbidden(f"User {user_id} is not in room {room_id}")
        joined = {}
        for event in await self._history.get_joined_member_events(room_id):
            content = {} if event.redacted_by else event.content
            profile = {}
            if isinstance(content.get("displayname"), str):
                profile["display_name"] = content["displayname"]
            if isinstance(content.get("avatar_url"), str):
                profile["avatar_url"] = content["avatar_url"]
            joined[event.state_key] = profile
        return joined

    # ----------------------------------------------------- timestamp_to_event

    async def timestamp_to_event(self, user_id: str, room_id: str, ts: int, *, forwards: bool) -> dict:
        """
        The visible event closest to C{ts} in a direction: the first at or
        after it (C{forwards}), or the last at or before it. In a room shared
        with other servers, they may know a closer one (see
        L{RemoteHistory.closer_event}).

        @raise MatrixError: 403 when the user may not read the room, 404
            when there is no such event.
        """
        view = await self.readable_view(user_id, room_id)
        event = await self._history.find_by_timestamp(
            room_id, ts, forwards=forwards, upto=self._current(), ranges=view.visible_ranges(),
        )
        if self._remote is not None:
            closer = await self._remote().closer_event(room_id, ts, forwards=forwards, local=event)
            if closer is not None and (await self.view(user_id, room_id)).can_see(closer.stream_ordering):
                event = closer
        if event is None:
            direction = "forward" if forwards else "backward"
            raise not_found(f"Unable to find event from {ts} in {direction} direction")
        return {"event_id": event.event_id, "origin_server_ts": event.pdu["origin_server_ts"]}

    # --------------------------------------------------------------- helpers

    async def _page(self, view: HistoryView, room_id: str, after: int, upto: int, limit: int, backwards: bool,
                    event_filter: RoomEventFilter | None) -> list[StoredEvent]:
        return await self._history.get_page(
            room_id, after=after, upto=upto, ranges=_ranges(view, room_id, event_filter), limit=limit,
            backwards=backwards, event_filter=event_filter,
        )

    async def _member_state(self, room_id: str, position: int, events: list[StoredEvent]) -> list[dict]:
        """
        Lazy-loading: the member events of the senders of C{events} as of
        C{position}. Always all of them: the spec allows redundant members,
        and this server does not track what each client was sent.
        """
        senders = sorted({event.sender for event in events})
        state = await self._history.get_state_keys_at(
            room_id, position, [("m.room.member", sender) for sender in senders]
        )
        return _serve(sorted(state.values(), key=lambda e: e.stream_ordering))


def _serve(events: list[StoredEvent]) -> list[dict]:
    """
    Events in client format. Redacted events were pruned when redacted and
    carry C{unsigned.redacted_because} already (see handlers/events.py).
    """
    return [room_event(event) for event in events]


def _ranges(view: HistoryView, room_id: str, event_filter: RoomEventFilter | None) -> list:
    """The positions to read: what the user may see, nothing if the filter excludes the room."""
    if event_filter is not None and not event_filter.matches_room(room_id):
        return []
    return view.visible_ranges()
