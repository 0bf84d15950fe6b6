"""
Other servers reading rooms shared with them (server-server API:
"Retrieving events", "Backfilling and retrieving missing events",
"Retrieving event authorisation information", C{timestamp_to_event}).

Every read is refused (403 M_FORBIDDEN) to a server none of whose users
is joined to the room, as Synapse does (whether the room exists is not
told), or that the room's server ACL denies. An event is only ever looked for in the room named: naming an event
of another room finds nothing (another implementation once answered the
state of any room this way).

Within the room, a server sees what any of its users could see (history
visibility, L{ruma_tx.matrix.visibility.server_view}). Events it may not
see are sent redacted by C{/event}, C{/backfill} and
C{/get_missing_events}, so that the DAG stays whole (as Synapse); the
state or auth chain at such an event is refused, and C{timestamp_to_event}
only finds events it may see.
"""
from __future__ import annotations

import heapq
from typing import Callable, Iterable, Sequence

from ruma_tx.matrix.errors import forbidden, not_found
from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.federation_sending import federation_pdu
from ruma_tx.matrix.redaction import redact
from ruma_tx.matrix.room_versions import ROOM_VERSIONS, RoomVersion, auth_event_ids, referenced_event_ids
from ruma_tx.matrix.types import JsonDict
from ruma_tx.matrix.visibility import HistoryView, server_view
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.ports.events import Events, History
from ruma_tx.services.ports.federation_reads import DagEvent, ServerHistory
from ruma_tx.services.ports.room_dag import DagEvents, StateKey
from ruma_tx.services.room_dag import RoomDag
from ruma_tx.services.server_acls import ServerAcls

#: C{/backfill}: at most this many events per request (as Synapse).
MAX_BACKFILL = 100

#: C{/get_missing_events}: at most this many events per request (as Synapse).
MAX_MISSING_EVENTS = 20


class FederationReads:
    """
    @param acls: the rooms' server ACLs.
    @param current_position: the highest stream position shown (events
        above it are being stored).
    """

    def __init__(self, *, events: Events, history: History, store: ServerHistory, dag_events: DagEvents,
                 dag: RoomDag, acls: ServerAcls, clock: Clock, server_name: str,
                 current_position: Callable[[], int]) -> None:
        self._events = events
        self._acls = acls
        self._history = history
        self._store = store
        self._dag_events = dag_events
        self._dag = dag
        self._clock = clock
        self._server_name = server_name
        self._current = current_position

    async def event(self, origin: str, event_id: str) -> JsonDict:
        """C{GET /event/{eventId}}: a transaction of that one PDU."""
        stored = await self._events.get_event(event_id)
        if stored is None:
            raise not_found(f"Could not find event {event_id}")
        version, view = await self._reader(origin, stored.room_id)
        return self._transaction([_shown(view, version, DagEvent(event_id, stored.stream_ordering, stored.pdu))])

    async def state(self, origin: str, room_id: str, event_id: str) -> JsonDict:
        """C{GET /state/{roomId}}: the state before the event, and its auth chain, as PDUs."""
        state, version = await self._state_before(origin, room_id, event_id)
        pdus = await self._dag_events.get_pdus(sorted(state.values()))
        chain = await self._auth_chain(version, pdus.values())
        return {"pdus": [federation_pdu(pdu) for pdu in pdus.values()],
                "auth_chain": [federation_pdu(pdu) for pdu in chain.values()]}

    async def state_ids(self, origin: str, room_id: str, event_id: str) -> JsonDict:
        """C{GET /state_ids/{roomId}}: the same as L{state}, as event ids."""
        state, version = await self._state_before(origin, room_id, event_id)
        pdus = await self._dag_events.get_pdus(sorted(state.values()))
        chain = await self._auth_chain(version, pdus.values())
        return {"pdu_ids": sorted(state.values()), "auth_chain_ids": sorted(chain)}

    async def event_auth(self, origin: str, room_id: str, event_id: str) -> JsonDict:
        """C{GET /event_auth/{roomId}/{eventId}}: the event's auth chain."""
        stored, version = await self._visible_event(origin, room_id, event_id)
        chain = await self._auth_chain(version, [stored.pdu])
        return {"auth_chain": [federation_pdu(pdu) for pdu in chain.values()]}

    async def backfill(self, origin: str, room_id: str, event_ids: Sequence[str], limit: int) -> JsonDict:
        """
        C{GET /backfill/{roomId}}: the events C{event_ids} and those before
        them, the deepest first, up to C{limit} (at most L{MAX_BACKFILL}).
        """
        version, view = await self._reader(origin, room_id)
        limit = max(0, min(limit, MAX_BACKFILL))
        found = await self._store.walk_prev_events(room_id, event_ids, depth_span=limit)
        return self._transaction([_shown(view, version, e) for e in _deepest_first(found, event_ids, limit)])

    async def missing_events(self, origin: str, room_id: str, *, earliest: Sequence[str], latest: Sequence[str],
                             limit: int, min_depth: int) -> JsonDict:
        """
        C{POST /get_missing_events/{roomId}}: the events before C{latest}
        (themselves left out) down to C{earliest} (left out too) and
        C{min_depth}, up to C{limit} (at most L{MAX_MISSING_EVENTS}), the
        closest to C{latest} kept, oldest first.
        """
        version, view = await self._reader(origin, room_id)
        limit = max(0, min(limit, MAX_MISSING_EVENTS))
        found = await self._store.walk_prev_events(room_id, latest, depth_span=limit + 1, stop=earliest)
        starts = [found[e] for e in latest if e in found]
        prevs = {p for start in starts for p in referenced_event_ids(start.pdu, "prev_events")} - set(latest)
        walked = [e for e in _deepest_first(found, sorted(prevs), len(found)) if e.event_id not in latest]
        kept = [e for e in walked if _depth(e) >= min_depth][:limit]
        return {"events": [_shown(view, version, e) for e in sorted(kept, key=_depth)]}

    async def timestamp_to_event(self, origin: str, room_id: str, ts: int, *, forwards: bool) -> JsonDict:
        """C{GET /timestamp_to_event/{roomId}}: the closest event the server may see, in that direction."""
        _, view = await self._reader(origin, room_id)
        event = await self._history.find_by_timestamp(room_id, ts, forwards=forwards, upto=self._current(),
                                                      ranges=view.visible_ranges())
        if event is None:
            direction = "forward" if forwards else "backward"
            raise not_found(f"Unable to find event from {ts} in {direction} direction")
        return {"event_id": event.event_id, "origin_server_ts": event.pdu["origin_server_ts"]}

    # -- helpers ---------------------------------------------------------

    async def _reader(self, origin: str, room_id: str) -> tuple[RoomVersion, HistoryView]:
        """
        The room's version and what C{origin} may see of it.

        @raise MatrixError: 403 M_FORBIDDEN when none of its users is joined
            (or the room is unknown here), or the room's ACL denies it.
        """
        head = await self._events.get_room_head(room_id)
        if head is None or head.out_of_band or not await self._store.server_in_room(room_id, origin):
            raise forbidden(f"{origin} is not in room {room_id}")
        await self._acls.check(room_id, origin)
        members, visibilities = await self._store.get_server_timelines(room_id, origin)
        return ROOM_VERSIONS[head.room_version], server_view(members, visibilities)

    async def _visible_event(self, origin: str, room_id: str, event_id: str) -> tuple[StoredEvent, RoomVersion]:
        """
        An event of the room that C{origin} may see, and the room's version.

        @raise MatrixError: 403 as L{_reader}, or when it may not see the
            event; 404 when the room has no such event.
        """
        version, view = await self._reader(origin, room_id)
        stored = await self._events.get_event(event_id)
        if stored is None or stored.room_id != room_id:
            raise not_found(f"Could not find event {event_id} in room {room_id}")
        if not view.can_see(stored.stream_ordering):
            raise forbidden("You do not have permission to access the state at the requested event.")
        return stored, version

    async def _state_before(self, origin: str, room_id: str, event_id: str
                            ) -> tuple[dict[StateKey, str], RoomVersion]:
        """
        The state before an event that C{origin} may see: the resolution of
        the states after its prev events; for an event from before the
        room was shared (no snapshots), the room's line up to it.

        @raise MatrixError: as L{_visible_event}; 404 when this server does
            not know the state there (outliers, backfilled history).
        """
        stored, version = await self._visible_event(origin, room_id, event_id)
        state = await self._dag.state_before(version, referenced_event_ids(stored.pdu, "prev_events"))
        if state is not None:
            return state, version
        if stored.stream_ordering > 0:
            line = await self._events.get_state_at(room_id, stored.stream_ordering - 1)
            return {key: event.event_id for key, event in line.items()}, version
        raise not_found(f"The state at {event_id} is not known here")

    async def _auth_chain(self, version: RoomVersion, pdus: Iterable[JsonDict]) -> dict[str, JsonDict]:
        """The events the PDUs cite as auth events, and theirs, recursively."""
        cited = {a for pdu in pdus for a in auth_event_ids(pdu, version)}
        return await self._dag_events.get_auth_chain_pdus(sorted(cited))

    def _transaction(self, pdus: list[JsonDict]) -> JsonDict:
        return {"origin": self._server_name, "origin_server_ts": now_ms(self._clock), "pdus": pdus}


def _shown(view: HistoryView, version: RoomVersion, event: DagEvent) -> JsonDict:
    """An event as sent to a server: redacted when it may not see it."""
    pdu = federation_pdu(event.pdu)
    return pdu if view.can_see(event.position) else redact(pdu, version)


def _depth(event: DagEvent) -> int:
    depth = event.pdu.get("depth")
    return depth if isinstance(depth, int) else 0


def _deepest_first(found: dict[str, DagEvent], start: Sequence[str], limit: int) -> list[DagEvent]:
    """Up to C{limit} of the C{found} events reached from C{start} through prev events, deepest first."""
    heap = [(-_depth(found[e]), e) for e in dict.fromkeys(start) if e in found]
    heapq.heapify(heap)
    seen = {e for _, e in heap}
    ordered: list[DagEvent] = []
    while heap and len(ordered) < limit:
        _, event_id = heapq.heappop(heap)
        event = found[event_id]
        ordered.append(event)
        for prev in referenced_event_ids(event.pdu, "prev_events"):
            if prev in found and prev not in seen:
                seen.add(prev)
                heapq.heappush(heap, (-_depth(found[prev]), prev))
    return ordered
