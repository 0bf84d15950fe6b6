"""
Sending our events and EDUs to the other servers of our rooms, durably
(Server-Server API, "Transactions": C{PUT /_matrix/federation/v1/send/{txnId}}).

The queue is the database. A destination's PDUs are not copied anywhere:
they are the events after its acknowledged stream position that this
server originated in rooms where it has a user (see
L{ruma_tx.matrix.federation_sending}); the position moves only once the
destination has answered 200 (or refused the transaction with a 4xx), so
a crash loses nothing acknowledged, and at start every destination with
something pending resumes. The durable EDUs wait in an outbox table until
acknowledged; typing and presence are best effort, kept in memory (the
latest of each), as Synapse does.

Each destination has its own loop: one transaction in flight at a time,
at most 50 PDUs and 100 EDUs in it, retried as it is (same transaction
id) after a failure, with exponential backoff (jittered, from 2 s
doubling to 1 h) reset by a success. A slow or dead destination only
holds one of the C{max_concurrent} request slots, until the client's
timeout, so it never delays local sends or the other destinations.

After an outage, a destination with more than one transaction of events
waiting gets only the latest of each room: it fetches the gap itself with
C{/get_missing_events} when it sees their C{prev_events} (as Synapse
catches up). A destination that makes a request to us is up: its wait is
cut short (L{FederationSender.peer_alive}).
"""
from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

from twisted.internet import defer
from twisted.python.failure import Failure

from ruma_tx.logs import logger
from ruma_tx.matrix.federation_sending import (
    MAX_EDUS,
    MAX_PDUS,
    Batch,
    EventRow,
    MembershipWalk,
    federation_pdu,
    latest_per_room,
    next_batch,
    pdu_errors,
    server_of,
    transaction_body,
)
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.ports.events import NewEvent
from ruma_tx.services.ports.federation import (
    FederationClient,
    FederationDenied,
    FederationError,
    RemoteMatrixError,
)
from ruma_tx.services.ports.federation_queue import Destination, FederationQueue
from ruma_tx.services.retrying import RetryingLoop

log = logger(__name__)

#: Error statuses that say "not now" rather than "never": retried like a
#: failure. 401: the destination could not check our signature, as when it
#: has yet to fetch the key we rotated to (it refetches keys at most every
#: few seconds); Synapse drops nothing on an error answer either, its
#: catch-up sends the rooms' latest events later.
_RETRIED_STATUSES = (401, 408, 429)


class StreamPositions(Protocol):
    """What the sender needs of the stream writer (C{ruma_tx.services.streams.StreamWriter})."""

    @property
    def current(self) -> int: ...

    def until_visible(self, position: int) -> defer.Deferred[None]: ...


@dataclass(frozen=True)
class SendingSettings:
    """
    @ivar backoff_initial_s: the first wait after a failure, doubled after each.
    @ivar backoff_max_s: the longest wait between tries.
    @ivar jitter: each wait is drawn in M{backoff * [1 - jitter, 1 + jitter)}.
    @ivar max_concurrent: transactions in flight at once, all destinations together.
    @ivar request_timeout_s: how long one transaction may take.
    @ivar scan_limit: events read from the database at a time.
    @ivar max_ephemeral: best-effort EDUs kept per destination (the oldest go first).
    """

    backoff_initial_s: float = 2.0
    backoff_max_s: float = 3600.0
    jitter: float = 0.2
    max_concurrent: int = 20
    request_timeout_s: float = 60.0
    scan_limit: int = 1000
    max_ephemeral: int = 1000


@dataclass
class _Transaction:
    """A transaction built for a destination, kept as it is until done with."""

    txn_id: str
    pdus: list[JsonDict]
    edus: list[JsonDict]
    upto: int
    edu_positions: list[int]


#: Outbox rows holding another server's PDU we pass on (see L{FederationSender.relay_pdu});
#: never sent as an EDU of that type.
RELAYED_PDU = "ruma.relayed_pdu"


@dataclass
class _Worker:
    """One destination's loop state (in memory; the durable part is its row)."""

    destination: str
    backoff_s: float = 0.0
    failing_since_ms: int | None = None
    catching_up: bool = False
    #: Its transactions, one at a time, retried after failures (set when made).
    loop: RetryingLoop = field(init=False)
    #: When a request of the destination last cut its wait short (L{peer_alive}).
    woken_at: float = float("-inf")
    pending: _Transaction | None = None
    #: Events chosen for catching up, still to send (see L{latest_per_room}).
    catch_up: list[EventRow] = field(default_factory=list)
    catch_up_upto: int = 0
    #: Best-effort EDUs by (type, key): a newer one replaces an older.
    ephemeral: OrderedDict[tuple[str, str], JsonDict] = field(default_factory=OrderedDict)


class FederationSender:
    """
    Tell it of stored events (L{event_stored}, an C{EventStored} hook) and
    of EDUs to send (L{send_edu}, L{send_ephemeral_edu}); L{start} resumes
    what was pending at the last stop.

    @param queue: the destinations' positions and the durable EDUs.
    @param client: signed requests to other servers.
    @param streams: which stream positions are visible.
    @param random: a float in [0, 1) per call, for the backoff's jitter.
    @param server_name: ours: its events are sent, and never to itself.
    """

    def __init__(self, *, queue: FederationQueue, client: FederationClient, streams: StreamPositions,
                 clock: Clock, random: Callable[[], float], server_name: str,
                 settings: SendingSettings = SendingSettings()) -> None:
        self._queue = queue
        self._client = client
        self._streams = streams
        self._clock = clock
        self._random = random
        self._server_name = server_name
        self._settings = settings
        self._workers: dict[str, _Worker] = {}
        self._slots = defer.DeferredSemaphore(settings.max_concurrent)
        self._stopping = False
        # Positions of our events whose servers are being looked up: a
        # server new to us starts before the lowest, so none is skipped.
        self._waking: set[int] = set()
        # Transaction ids: this process's start time, then a counter, so
        # none is reused after a restart.
        self._txn_prefix = str(now_ms(clock))
        self._txn_count = 0

    async def start(self) -> None:
        """Resume every destination with events or EDUs pending, respecting its backoff."""
        now = now_ms(self._clock)
        for row in await self._queue.get_destinations_with_work(self._streams.current):
            worker = self._worker(row.destination)
            self._restore(worker, row)
            if row.retry_at_ms is not None and row.retry_at_ms > now:
                worker.loop.retry_in((row.retry_at_ms - now) / 1000)
            else:
                worker.loop.poke()

    def stop(self) -> None:
        """Stop sending: cancel the waits and the transactions in flight (they are retried at start)."""
        self._stopping = True
        for worker in list(self._workers.values()):
            worker.loop.stop()

    @property
    def backing_off(self) -> int:
        """How many destinations wait out a backoff after failures (for metrics)."""
        return sum(1 for worker in self._workers.values() if worker.backoff_s > 0)

    @property
    def destinations_pending(self) -> int:
        """How many destinations have something still to send: in flight, queued or awaiting a retry."""
        return sum(1 for worker in self._workers.values()
                   if worker.loop.running is not None or worker.loop.backing_off() or worker.pending is not None
                   or worker.catch_up or worker.ephemeral)

    # -- what happens elsewhere ------------------------------------------------

    def event_stored(self, event: NewEvent, position: int) -> None:
        """
        An event was stored: once its position is visible, wake the
        servers of its room (and the server of a remote user it invites,
        kicks or bans). Only our events: others' are their origin's to send.
        """
        if server_of(event.pdu.get("sender", "")) != self._server_name:
            return
        if event.dag is None and event.pdu.get("type") != "m.room.member":
            # A room no other server takes part in (its events carry no DAG
            # update): nobody to wake, and no query on the send path.
            return
        targets = set()
        state_key = event.pdu.get("state_key")
        if event.pdu.get("type") == "m.room.member" and isinstance(state_key, str):
            targets.add(server_of(state_key))
        self._waking.add(position)
        woken = self._streams.until_visible(position)
        woken.addCallback(lambda _: defer.ensureDeferred(self._wake_room(event.room_id, targets)))
        woken.addErrback(lambda f: log.failure("waking the servers of {room_id}", f, room_id=event.room_id))
        woken.addBoth(lambda _: self._waking.discard(position))

    async def send_edu(self, destinations: Iterable[str], edu_type: str, content: JsonDict) -> None:
        """Queue a durable EDU for each destination (sent until acknowledged, across restarts)."""
        remote = sorted(set(destinations) - {self._server_name, ""})
        edu = json.dumps({"edu_type": edu_type, "content": content})
        await self._queue.add_edus([(destination, edu) for destination in remote], self._new_position())
        for destination in remote:
            self._worker(destination).loop.poke()

    async def relay_pdu(self, room_id: str, pdu: JsonDict, origin: str) -> None:
        """
        Pass on a membership event another server sent us through
        send_join, send_leave or send_knock: as the resident server, we tell
        the room's other servers of it (spec: "Joining Rooms"). Durable as
        EDUs are: queued until each acknowledges it.
        """
        servers = set(await self._queue.get_servers_in_rooms([room_id])) - {origin}
        await self.send_edu(servers, RELAYED_PDU, pdu)

    def send_ephemeral_edu(self, destinations: Iterable[str], edu_type: str, key: str,
                           content: JsonDict) -> None:
        """
        Send a best-effort EDU to each destination: kept in memory, and
        replaced by a later one of the same type and C{key} not sent yet.
        """
        for destination in set(destinations) - {self._server_name, ""}:
            worker = self._worker(destination)
            worker.ephemeral.pop((edu_type, key), None)
            worker.ephemeral[(edu_type, key)] = {"edu_type": edu_type, "content": content}
            while len(worker.ephemeral) > self._settings.max_ephemeral:
                worker.ephemeral.popitem(last=False)
            worker.loop.poke()

    def peer_alive(self, destination: str) -> None:
        """
        C{destination} made a signed request to us: it is up again, so what
        waits for its backoff to end is sent now (as Synapse). At most once
        per C{backoff_initial_s}: a server that calls often but that we
        cannot reach is not tried more often than that.
        """
        worker = self._workers.get(destination)
        now = self._clock.seconds()
        if worker is None or not worker.loop.backing_off() \
                or now - worker.woken_at < self._settings.backoff_initial_s:
            return
        worker.woken_at = now
        worker.loop.cancel_retry()
        worker.loop.poke()

    async def reset_backoff(self, destination: str) -> None:
        """
        An admin's "reset connection" (Synapse's admin API): forget the
        destination's failures and send what waits for it now, not when its
        backoff ends. A failure after that starts the backoff over.
        """
        await self._queue.clear_backoff(destination)
        worker = self._worker(destination)
        worker.backoff_s = 0.0
        worker.failing_since_ms = None
        worker.loop.cancel_retry()
        worker.loop.poke()

    async def _wake_room(self, room_id: str, targets: set[str]) -> None:
        servers = (set(await self._queue.get_servers_in_rooms([room_id])) | targets) - {self._server_name}
        await self._queue.add_destinations(servers, self._new_position())
        for destination in sorted(servers):
            self._worker(destination).loop.poke()

    def _new_position(self) -> int:
        """
        Where a server new to us starts: before the first of our events
        still being woken for (its wake may be for this server), else at
        the visible position.
        """
        return min(self._waking) - 1 if self._waking else self._streams.current

    # -- the loops ---------------------------------------------------------------

    def _worker(self, destination: str) -> _Worker:
        worker = self._workers.get(destination)
        if worker is None:
            made = self._workers[destination] = _Worker(destination)
            made.loop = RetryingLoop(self._clock, lambda: self._run(made), lambda f: self._failed(f, made))
            if self._stopping:
                made.loop.stop()
            worker = made
        return worker

    def _restore(self, worker: _Worker, row: Destination) -> None:
        worker.backoff_s = row.backoff_ms / 1000
        worker.failing_since_ms = row.failing_since_ms
        worker.catching_up = row.failing_since_ms is not None

    def _failed(self, failure: Failure, worker: _Worker) -> None:
        if not failure.check(defer.CancelledError):
            log.failure("sending to {destination} failed", failure, destination=worker.destination)
        defer.ensureDeferred(self._retry_later(worker)).addErrback(
            lambda f: log.failure("backing off {destination}", f, destination=worker.destination))

    async def _retry_later(self, worker: _Worker) -> None:
        backoff = self._settings.backoff_initial_s if worker.backoff_s <= 0 else worker.backoff_s * 2
        worker.backoff_s = min(backoff, self._settings.backoff_max_s)
        jitter = self._settings.jitter
        delay = worker.backoff_s * (1 - jitter + 2 * jitter * self._random())
        now = now_ms(self._clock)
        if worker.failing_since_ms is None:
            worker.failing_since_ms = now
        worker.catching_up = True
        worker.loop.retry_in(delay)
        await self._queue.set_backoff(worker.destination, now + int(delay * 1000),
                                      int(worker.backoff_s * 1000), worker.failing_since_ms, now)

    async def _run(self, worker: _Worker) -> None:
        while True:
            worker.loop.again = False
            if worker.pending is None:
                worker.pending = await self._next_transaction(worker)
            if worker.pending is None:
                if worker.loop.again:
                    continue
                return
            if not await self._send(worker, worker.pending):
                await self._retry_later(worker)
                return
            worker.pending = None

    # -- building transactions ---------------------------------------------------

    async def _next_transaction(self, worker: _Worker) -> _Transaction | None:
        """The destination's next transaction, or C{None} when it has nothing pending."""
        destination = worker.destination
        while True:
            row = await self._queue.get_destination(destination)
            batch = Batch([], 0) if row is None else await self._next_batch(worker, row)
            edus = list(worker.ephemeral.values())[:MAX_EDUS]
            queued = [] if row is None else await self._queue.get_edus(destination, MAX_EDUS - len(edus))
            for key in list(worker.ephemeral)[:len(edus)]:
                del worker.ephemeral[key]
            pdus = [federation_pdu(json.loads(event.pdu)) for event in batch.events]
            positions = []
            for edu in queued:
                parsed = json.loads(edu.edu_json)
                if parsed["edu_type"] != RELAYED_PDU:
                    edus.append(parsed)
                elif len(pdus) < MAX_PDUS:
                    pdus.append(federation_pdu(parsed["content"]))
                else:
                    continue  # the next transaction's
                positions.append(edu.position)
            if pdus or edus:
                self._txn_count += 1
                return _Transaction(f"{self._txn_prefix}.{self._txn_count}", pdus, edus, batch.upto, positions)
            if row is None or batch.upto <= row.last_acked_position:
                return None
            # Nothing for it up to there: move on without a request.
            await self._queue.acknowledge(destination, batch.upto, ())

    async def _next_batch(self, worker: _Worker, row: Destination) -> Batch:
        after, upto = row.last_acked_position, self._streams.current
        if worker.catch_up:
            return self._catch_up_batch(worker)
        if upto <= after:
            return Batch([], after)
        rooms = await self._queue.get_candidate_rooms(worker.destination, after, upto)
        if not rooms:
            return Batch([], upto)
        walk = await self._walk(worker.destination, rooms, after)
        rows = await self._queue.get_event_rows(worker.destination, self._server_name, rooms, after, upto,
                                                self._settings.scan_limit)
        scanned_upto = upto if len(rows) < self._settings.scan_limit else rows[-1].position
        batch = next_batch(walk, rows, scanned_upto)
        if batch.upto >= upto:
            worker.catching_up = False
        elif worker.catching_up and len(batch.events) == MAX_PDUS:
            worker.catch_up = await self._latest_events(worker.destination, rooms, after, upto)
            worker.catch_up_upto = upto
            return self._catch_up_batch(worker)
        return batch

    def _catch_up_batch(self, worker: _Worker) -> Batch:
        events, worker.catch_up = worker.catch_up[:MAX_PDUS], worker.catch_up[MAX_PDUS:]
        if worker.catch_up:
            return Batch(events, events[-1].position)
        worker.catching_up = False
        return Batch(events, worker.catch_up_upto)

    async def _walk(self, destination: str, rooms: list[str], after: int) -> MembershipWalk:
        return MembershipWalk(destination, self._server_name,
                              await self._queue.get_joined_at(destination, rooms, after))

    async def _latest_events(self, destination: str, rooms: list[str], after: int, upto: int
                             ) -> list[EventRow]:
        """The latest event of each room the destination gets in C{(after, upto]}."""
        walk = await self._walk(destination, rooms, after)
        latest: dict[str, EventRow] = {}
        while True:
            rows = await self._queue.get_event_rows(destination, self._server_name, rooms, after, upto,
                                                    self._settings.scan_limit)
            for event in latest_per_room(walk, rows):
                latest[event.room_id] = event
            if len(rows) < self._settings.scan_limit:
                return sorted(latest.values(), key=lambda event: event.position)
            after = rows[-1].position

    # -- sending -------------------------------------------------------------------

    async def _send(self, worker: _Worker, txn: _Transaction) -> bool:
        """
        Send the transaction; C{True} once it is done with (acknowledged,
        or refused for good), C{False} to retry it later.
        """
        destination = worker.destination
        body = transaction_body(self._server_name, now_ms(self._clock), txn.pdus, txn.edus)
        try:
            await self._slots.run(self._put, destination, txn.txn_id, body)
        except FederationDenied as e:
            log.info("not sending transaction {txn_id} to {destination}: {reason}",
                     txn_id=txn.txn_id, destination=destination, reason=e.reason)
        except RemoteMatrixError as e:
            if not 400 <= e.code < 500 or e.code in _RETRIED_STATUSES:
                log.info("transaction {txn_id} to {destination} failed: {reason}",
                         txn_id=txn.txn_id, destination=destination, reason=e.reason)
                return False
            # The peer refuses it: sending it again would get the same answer.
            log.warn("{destination} refused transaction {txn_id} ({count} PDUs, {edus} EDUs): {reason};"
                     " dropped", destination=destination, txn_id=txn.txn_id, count=len(txn.pdus),
                     edus=len(txn.edus), reason=e.reason)
        except FederationError as e:
            log.info("transaction {txn_id} to {destination} failed: {reason}",
                     txn_id=txn.txn_id, destination=destination, reason=e.reason)
            return False
        await self._queue.acknowledge(destination, txn.upto, txn.edu_positions)
        worker.backoff_s = 0.0
        worker.failing_since_ms = None
        return True

    async def _put(self, destination: str, txn_id: str, body: JsonDict) -> None:
        answer = await self._client.put_json(destination, f"/_matrix/federation/v1/send/{txn_id}", body,
                                             timeout_s=self._settings.request_timeout_s)
        for event_id, error in sorted(pdu_errors(answer).items()):
            # Spec: the sender must not retry a PDU the destination refused.
            log.info("{destination} refused {event_id}: {error}", destination=destination,
                     event_id=event_id, error=error)
