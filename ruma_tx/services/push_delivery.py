"""
Delivering notifications to push gateways (Push Gateway API,
C{POST /_matrix/push/v1/notify}), off the send path.

The queue is the database: each pusher stores the stream position up to
which it has delivered, and its notifications are the push actions stored
with each event (in the event's transaction). A pusher's delivery reads
those after its position, sends them one at a time, in order, and moves
its position past each one the gateway took. Nothing is lost across a
restart or a crash: at start every pusher resumes from its position (a
notification sent just before a crash may go twice; gateways drop
duplicates by C{event_id}, as the spec asks them to).

Sending an event only pokes the pushers of the users it notifies, once its
stream position is visible (so a pusher never reads past a position whose
lower neighbours are still being written). A gateway that fails (no
answer, an error status, a timeout) is retried with exponential backoff
(as Synapse: from 1 s, doubling, up to 1 h), the pusher's later
notifications waiting behind the failed one; after a day of failures the
notification is given up (as Synapse, so a gateway fixed after a long
outage does not get a flood of stale pushes). At most
C{max_concurrent} requests to gateways are in flight at once; a gateway
that hangs holds one of them until the outbound client's timeout.

Badge updates (as Synapse): when a receipt moves a user's read position,
or they send an event, each of their pushers sends the new unread count by
itself, if it changed since the last count it sent. A failed badge update
is not retried: the next one, or the next notification's counts, carry it.
"""
from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Iterable

from twisted.internet import defer
from twisted.python.failure import Failure

from ruma_tx.logs import logger
from ruma_tx.matrix.pushers import (
    Pusher,
    RoomContext,
    badge_notification,
    event_notification,
    rejected_pushkeys,
    stored_actions,
)
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.ports.events import NewEvent
from ruma_tx.services.ports.outbound import OutboundError, OutboundHttp
from ruma_tx.services.ports.pushers import PendingNotification, PushDeliveryStorage
from ruma_tx.services.retrying import RetryingLoop
from ruma_tx.services.streams import StreamWriter

log = logger(__name__)

#: The largest answer read from a gateway (it only lists rejected pushkeys).
_MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class DeliverySettings:
    """
    @ivar include_content: send events' content to gateways (Synapse's
        C{push.include_content}); without it they get the ids, type and sender.
    @ivar backoff_initial_s: the first wait after a failure, doubled after each.
    @ivar backoff_max_s: the longest wait between tries.
    @ivar give_up_after_s: a notification that has failed this long is skipped.
    @ivar max_concurrent: requests to gateways in flight at once.
    @ivar batch_size: notifications read from the database at a time.
    """

    include_content: bool = True
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 3600.0
    give_up_after_s: float = 86400.0
    max_concurrent: int = 10
    batch_size: int = 50


class _Sent(enum.Enum):
    DELIVERED = "delivered"
    FAILED = "failed"
    REJECTED = "rejected"      # the gateway rejected the pushkey: the pusher is removed


class _Outcome(enum.Enum):
    DONE = "done"              # nothing left to send
    RETRY = "retry"            # the gateway failed: try again after a backoff
    GONE = "gone"              # the pusher no longer exists


class _Worker:
    """
    One pusher's delivery, in memory (its position is in the database).

    @ivar loop: its deliveries, one at a time, retried after failures.
    @ivar badge_wanted: the user read something: send the unread count.
    @ivar last_badge: the unread count last sent (C{None}: none since start).
    """

    def __init__(self, pusher_id: int, user_id: str, backoff_s: float, loop: RetryingLoop) -> None:
        self.pusher_id = pusher_id
        self.user_id = user_id
        self.backoff_s = backoff_s
        self.loop = loop
        self.badge_wanted = False
        self.last_badge: int | None = None


class PushDelivery:
    """
    Sends every pusher's notifications to its gateway (see the module's
    docstring). Tell it of stored events (L{event_stored}), moved read
    positions (L{read_moved}) and changed pushers (L{pushers_changed}).

    @param store: pushers, their positions and the push actions.
    @param http: the outbound HTTP client (it never reaches blocked ranges).
    @param streams: the stream writer (what is visible, and when).
    """

    def __init__(self, *, store: PushDeliveryStorage, http: OutboundHttp, streams: StreamWriter,
                 clock: Clock, settings: DeliverySettings) -> None:
        self._store = store
        self._http = http
        self._streams = streams
        self._clock = clock
        self._settings = settings
        self._workers: dict[int, _Worker] = {}
        self._by_user: dict[str, set[int]] = {}
        self._slots = defer.DeferredSemaphore(settings.max_concurrent)
        self._stopping = False

    async def start(self) -> None:
        """Resume every pusher from its stored position."""
        for pusher_id, user_id in await self._store.get_all_pusher_ids():
            self._add(pusher_id, user_id)
        for worker in list(self._workers.values()):
            worker.loop.poke()

    def stop(self) -> None:
        """Stop delivering: cancel the waits and the requests in flight."""
        self._stopping = True
        for worker in list(self._workers.values()):
            worker.loop.stop()

    # -- what happens elsewhere ------------------------------------------------

    def event_stored(self, event: NewEvent, position: int) -> None:
        """
        An event was stored (an L{ruma_tx.services.events.EventStored}
        hook): once its position is visible, poke the pushers of the users
        it notifies, and the badge of its sender.
        """
        if not self._by_user:
            return
        push = event.push
        users = [user_id for user_id, notify, _ in push.actions if notify and user_id in self._by_user]
        reader = push.read_by if push.read_by in self._by_user else None
        if users or reader is not None:
            self._streams.until_visible(position).addCallback(lambda _: self._wake(users, reader))

    def read_moved(self, user_id: str) -> None:
        """A receipt moved the user's read position: update their badge."""
        if user_id in self._by_user:
            self._wake((), user_id)

    async def pushers_changed(self, user_id: str) -> None:
        """
        The user's pushers were set or removed: deliver for those they have
        now, a pusher that was set again trying its gateway at once.
        """
        pusher_ids = set(await self._store.get_pusher_ids(user_id))
        for pusher_id in self._by_user.get(user_id, set()) - pusher_ids:
            self._remove(pusher_id)
        for pusher_id in sorted(pusher_ids):
            worker = self._workers.get(pusher_id) or self._add(pusher_id, user_id)
            worker.loop.cancel_retry()
            worker.backoff_s = self._settings.backoff_initial_s
            worker.loop.poke()

    # -- the pushers' state ----------------------------------------------------

    def _add(self, pusher_id: int, user_id: str) -> _Worker:
        worker = _Worker(pusher_id, user_id, self._settings.backoff_initial_s,
                         RetryingLoop(self._clock, lambda: self._run(worker), lambda f: self._failed(f, worker)))
        self._workers[pusher_id] = worker
        self._by_user.setdefault(user_id, set()).add(pusher_id)
        return worker

    def _remove(self, pusher_id: int) -> None:
        worker = self._workers.pop(pusher_id, None)
        if worker is None:
            return
        worker.loop.stop(cancel_running=False)   # its own run may be removing it
        ids = self._by_user.get(worker.user_id)
        if ids is not None:
            ids.discard(pusher_id)
            if not ids:
                del self._by_user[worker.user_id]

    def _wake(self, users: Iterable[str], reader: str | None) -> None:
        for user_id in users:
            for pusher_id in list(self._by_user.get(user_id, ())):
                self._workers[pusher_id].loop.poke()
        if reader is not None:
            for pusher_id in list(self._by_user.get(reader, ())):
                worker = self._workers[pusher_id]
                worker.badge_wanted = True
                worker.loop.poke()

    def _failed(self, failure: Failure, worker: _Worker) -> None:
        if not failure.check(defer.CancelledError):
            log.failure("push delivery for {user_id} failed", failure, user_id=worker.user_id)
        self._retry_later(worker)

    def _retry_later(self, worker: _Worker) -> None:
        delay = worker.backoff_s
        worker.backoff_s = min(delay * 2, self._settings.backoff_max_s)
        worker.loop.retry_in(delay)

    # -- delivering --------------------------------------------------------------

    async def _run(self, worker: _Worker) -> None:
        while True:
            worker.loop.again = False
            pusher = await self._store.get_pusher(worker.pusher_id)
            outcome = _Outcome.GONE if pusher is None else await self._deliver_pending(worker, pusher)
            if outcome is _Outcome.DONE and worker.badge_wanted:
                assert pusher is not None
                worker.badge_wanted = False
                outcome = await self._send_badge(worker, pusher)
            if outcome is _Outcome.GONE:
                self._remove(worker.pusher_id)
                return
            if outcome is _Outcome.RETRY:
                self._retry_later(worker)
                return
            if not worker.loop.again:
                return

    async def _deliver_pending(self, worker: _Worker, pusher: Pusher) -> _Outcome:
        """Send the pusher's notifications up to the visible stream position, in order."""
        after, failing_since = pusher.last_stream_ordering, pusher.failing_since
        upto = self._streams.current
        batch = self._settings.batch_size
        while True:
            pending = await self._store.get_pending(pusher.user_id, after=after, upto=upto, limit=batch)
            for notification in pending:
                position = notification.action.stream_ordering
                unread = await self._store.get_unread_count(pusher.user_id, position)
                sent = await self._post(pusher, await self._event_body(pusher, notification, unread))
                if sent is _Sent.REJECTED:
                    return _Outcome.GONE
                if sent is _Sent.FAILED:
                    now = now_ms(self._clock)
                    if failing_since is None:
                        failing_since = now
                        await self._store.set_failing_since(pusher.pusher_id, now)
                    if now - failing_since < self._settings.give_up_after_s * 1000:
                        return _Outcome.RETRY
                    log.warn("giving up on a notification for {user_id} (event {event_id}):"
                             " the gateway at {url} has failed since {since}",
                             user_id=pusher.user_id, event_id=notification.event.get("event_id"),
                             url=pusher.url, since=failing_since)
                else:
                    worker.last_badge = unread
                worker.backoff_s = self._settings.backoff_initial_s
                failing_since = None
                if not await self._store.mark_delivered(pusher.pusher_id, position):
                    return _Outcome.GONE
                after = position
            if len(pending) < batch:
                return _Outcome.DONE

    async def _event_body(self, pusher: Pusher, notification: PendingNotification,
                          unread: int) -> JsonDict:
        action, event = notification.action, notification.event
        context = RoomContext()
        if not pusher.event_id_only:
            context = await self._store.get_room_context(action.room_id, str(event.get("sender")))
        return event_notification(
            user_id=pusher.user_id, event=event, room_id=action.room_id,
            actions=stored_actions(action.notify, action.highlight, action.actions_json),
            unread=unread, pusher=pusher, context=context,
            include_content=self._settings.include_content,
        )

    async def _send_badge(self, worker: _Worker, pusher: Pusher) -> _Outcome:
        unread = await self._store.get_unread_count(pusher.user_id, self._streams.current)
        if unread == worker.last_badge:
            return _Outcome.DONE
        sent = await self._post(pusher, badge_notification(unread, pusher))
        if sent is _Sent.REJECTED:
            return _Outcome.GONE
        if sent is _Sent.DELIVERED:
            worker.last_badge = unread
        return _Outcome.DONE

    async def _post(self, pusher: Pusher, body: JsonDict) -> _Sent:
        """POST one notification to the pusher's gateway; remove the pusher if it rejects the pushkey."""
        encoded = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        await self._slots.acquire()
        try:
            response = await self._http.request(
                "POST", pusher.url, headers={"Content-Type": "application/json"}, body=encoded,
                max_bytes=_MAX_ANSWER_BYTES)
        except OutboundError as e:
            if self._stopping:
                raise defer.CancelledError() from None
            log.info("push to {url} for {user_id} failed: {reason}",
                     url=pusher.url, user_id=pusher.user_id, reason=e.reason)
            return _Sent.FAILED
        finally:
            self._slots.release()
        if not 200 <= response.code < 300:
            log.info("push to {url} for {user_id} failed: HTTP {code}",
                     url=pusher.url, user_id=pusher.user_id, code=response.code)
            return _Sent.FAILED
        try:
            answer = json.loads(response.body)
        except ValueError:
            answer = None  # delivered all the same: sending it again would not help
        if pusher.pushkey in rejected_pushkeys(answer):
            log.info("the gateway at {url} rejected a pushkey of {user_id}: pusher removed",
                     url=pusher.url, user_id=pusher.user_id)
            await self._store.remove_pusher(pusher.pusher_id)
            return _Sent.REJECTED
        return _Sent.DELIVERED
