"""
Fetching the history of rooms shared with other servers from them
(server-server API: "Backfilling and retrieving missing events").

A room joined through another server begins, here, at the join. Where the
room's history here begins is read from the line itself: the prev events
of its oldest events that are not in it (unknown, or known as outliers
only) are its edge. When a client pages back past the oldest event, the
events before the edge are asked of servers in the room (C{/backfill}),
checked (format, signatures, hashes, auth events; this server has no state
there to check them against) and put into the line below every event in
it (storage schema 030), so that /messages shows them in order.
"""
from __future__ import annotations

from typing import Sequence
from urllib.parse import quote

from ruma_tx.logs import logger
from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.federation_membership import server_of
from ruma_tx.matrix.room_versions import ROOM_VERSIONS, referenced_event_ids
from ruma_tx.matrix.stream_token import OUTSIDE_LINE
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.concurrency import KeyedLocks
from ruma_tx.services.federation_events import EventReceiver
from ruma_tx.services.ports.events import Events
from ruma_tx.services.ports.federation import FederationClient, FederationError
from ruma_tx.services.ports.federation_reads import BackfillEvents, DagEvent
from ruma_tx.services.ports.room_dag import OUTLIER, DagEvents

log = logger(__name__)

_V1 = "/_matrix/federation/v1"

#: Events asked for per C{/backfill} request, at least and at most (Synapse asks for 100).
MIN_BACKFILL = 20
MAX_BACKFILL = 100

#: How many of a room's oldest events here are looked at for prev events
#: not here (a batch of backfilled events can have several).
EDGE_SCAN = 20

#: C{timestamp_to_event}: at most this many backfill requests to bring the
#: event another server found into the line.
MAX_BACKFILL_ROUNDS = 5


class Backfiller:
    """
    @param receiver: checks the events fetched.
    @param server_name: ours (never asked).
    """

    def __init__(self, *, events: Events, dag_events: DagEvents, store: BackfillEvents, receiver: EventReceiver,
                 federation: FederationClient, server_name: str) -> None:
        self._events = events
        self._dag_events = dag_events
        self._store = store
        self._receiver = receiver
        self._federation = federation
        self._server_name = server_name
        self._rooms = KeyedLocks()

    async def backfill(self, room_id: str, wanted: int) -> bool:
        """
        Fetch events before the room's oldest here from a server in the
        room (those of the oldest events' senders first), about C{wanted}
        of them; one request at a time per room.

        @return: whether any was added to the line.
        """
        return await self._rooms.run(room_id, self._backfill, room_id, wanted)

    async def _backfill(self, room_id: str, wanted: int) -> bool:
        head = await self._events.get_room_head(room_id)
        if head is None or not head.federated or head.out_of_band:
            return False
        oldest = await self._store.get_oldest_events(room_id, EDGE_SCAN)
        edge = await self._edge(oldest)
        if not edge:
            return False
        version = ROOM_VERSIONS[head.room_version]
        query = {"v": edge, "limit": str(max(MIN_BACKFILL, min(wanted, MAX_BACKFILL)))}
        for server in await self._servers(room_id, [event.pdu.get("sender") for event in oldest]):
            try:
                answer = await self._federation.get_json(server, f"{_V1}/backfill/{quote(room_id, safe='')}",
                                                         query=query)
            except FederationError as e:
                log.info("backfill of {room_id} from {server} failed: {e}", room_id=room_id, server=server, e=e)
                continue
            pdus = answer.get("pdus")
            events = await self._receiver.check_pulled(
                server, room_id, version, pdus[:MAX_BACKFILL] if isinstance(pdus, list) else [])
            newest_first = sorted(events, key=lambda e: (e.depth, e.pdu.get("origin_server_ts", 0)), reverse=True)
            if await self._store.persist_backfilled(room_id, newest_first):
                return True
        return False

    async def closer_event(self, room_id: str, ts: int, *, forwards: bool,
                           local: StoredEvent | None) -> StoredEvent | None:
        """
        When C{ts} is older than the room's history here (and the room's
        history goes on before it), ask servers in the room for their event
        closest to C{ts} (C{/timestamp_to_event}); if closer than C{local},
        backfill until it is in the line (spec: the server "should try to
        backfill this event") and return it.
        """
        oldest = await self._store.get_oldest_events(room_id, EDGE_SCAN)
        if not oldest or ts >= _timestamp(oldest[0].pdu) or not await self._edge(oldest):
            return None
        found = await self._remote_closest(room_id, ts, forwards, [event.pdu.get("sender") for event in oldest])
        if found is None:
            return None
        event_id, found_ts = found
        if local is not None:
            local_ts = _timestamp(local.pdu)
            if (found_ts >= local_ts) if forwards else (found_ts <= local_ts):
                return None
        for _ in range(MAX_BACKFILL_ROUNDS):
            stored = await self._events.get_event(event_id)
            if stored is not None and stored.room_id == room_id and stored.stream_ordering > OUTSIDE_LINE:
                return stored
            if not await self.backfill(room_id, MAX_BACKFILL):
                return None
        return None

    async def _remote_closest(self, room_id: str, ts: int, forwards: bool, senders: Sequence[object]
                              ) -> tuple[str, int] | None:
        """The first answer of a server in the room: C{(event_id, origin_server_ts)} in the right direction."""
        query = {"ts": str(ts), "dir": "f" if forwards else "b"}
        for server in await self._servers(room_id, senders):
            try:
                answer = await self._federation.get_json(
                    server, f"{_V1}/timestamp_to_event/{quote(room_id, safe='')}", query=query)
            except FederationError as e:
                log.info("timestamp_to_event of {room_id} from {server} failed: {e}", room_id=room_id, server=server,
                         e=e)
                continue
            event_id, found_ts = answer.get("event_id"), answer.get("origin_server_ts")
            if isinstance(event_id, str) and isinstance(found_ts, int) and not isinstance(found_ts, bool) \
                    and ((found_ts >= ts) if forwards else (found_ts <= ts)):
                return event_id, found_ts
        return None

    async def _edge(self, oldest: Sequence[DagEvent]) -> list[str]:
        """The prev events of the oldest events that are not in the line (where history here begins)."""
        here = {event.event_id for event in oldest}
        prevs = sorted({p for event in oldest for p in referenced_event_ids(event.pdu, "prev_events")} - here)
        statuses = await self._dag_events.get_statuses(prevs)
        return [p for p in prevs if statuses.get(p, OUTLIER) == OUTLIER]

    async def _servers(self, room_id: str, senders: Sequence[object]) -> list[str]:
        """
        The other servers with users joined to the room, those of C{senders}
        first; none once ours has left (they answer servers in the room only).
        """
        joined = {server_of(user_id) for user_id in await self._events.get_members(room_id, ("join",))}
        if self._server_name not in joined:
            return []
        joined.discard(self._server_name)
        first = [s for s in dict.fromkeys(server_of(u) for u in senders if isinstance(u, str)) if s in joined]
        return [*first, *sorted(joined - set(first))]


def _timestamp(pdu: JsonDict) -> int:
    ts = pdu.get("origin_server_ts")
    return ts if isinstance(ts, int) else 0
