"""
Send-to-device messaging (spec: "Send-to-Device messaging"): queue each
message for its recipient device, hand it to that device's /sync, and
forget it once the device has acknowledged it.

Sending. One request takes one stream position (L{StreamWriter.write}); in
one database transaction it records the transaction id and queues a row per
addressed device at that position, then wakes the recipients' long-polls. A
request gives each device at most one message, so a device's queue is
ordered by stream position, which is the order of arrival.

Delivering and acknowledging. The spec deletes a message once the device
syncs "with the next_batch token from the first response" that carried it.
Comparing the message's own position with C{since} is not enough: when more
than L{BATCH_LIMIT} messages wait, the first response carries only some of
them, yet its next_batch is past every one, so "position <= since" would
drop the rest unseen. So each row also records C{delivered_at}, the
next_batch of the last response that carried it (C{NULL}: never carried).
A sync with C{since} S, building a response that ends at N:

 1. deletes the device's messages with C{delivered_at <= S}: the client
    holds a token at least as new as a response that carried them;
 2. takes the first L{BATCH_LIMIT} of the rest queued at or before N (never
    later: a position above N may not be committed yet, and would break the
    order), in order, and sets their C{delivered_at} to N;
 3. if it delivered any, takes a fresh stream position that wakes the user
    (no database write, as typing does), so that the next sync, with since
    N, computes a response at once instead of long-polling: it then
    acknowledges (step 1) and gets the messages left over by the limit.

Steps 1 and 2 are one SQL statement. Without step 3 a sync with nothing
new for the user answers from the notifier alone (no source runs): left-over
messages would wait for the long-poll's timeout, and acknowledged ones would
stay until the user's next change, coming back to a sync with an old token.
With it, the acknowledging sync computes one empty response and waits on,
as after any change of the user's; it costs a stream position and a wake-up
per delivering response, nothing when no message flows.

A client that lost a response and syncs again with its older since gets the
same messages again (their C{delivered_at} is past that since), so nothing
is lost; a response carrying messages is never empty, so it is returned at
once. An initial sync (no since) acknowledges nothing and delivers the queue
from its start. The acknowledgement uses the token the client sent, also for
a full-state sync. Deleting a device deletes its queue (the table references
C{devices}). After a restart the stream must resume above every queued
message's position, or a message could wait behind later ones:
C{to_device_messages.stream_position} belongs in
L{ruma_tx.storage.positions.STREAM_TABLES}.

Other servers. Messages for other servers' users go to those servers as
C{m.direct_to_device} EDUs, whose C{message_id} is derived from the
request's transaction id: a retried request sends the same id, and the
receiving server delivers it once. Messages other servers send our users
(L{ToDeviceMessages.receive}) are queued like local ones, once per
sender and C{message_id}.
"""
from __future__ import annotations

from typing import Awaitable, Callable, Mapping

from ruma_tx.matrix.to_device import has_remote_recipients, outgoing_messages, remote_message_id
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.concurrency import SingleFlight
from ruma_tx.services.ports.ephemeral import ToDeviceQueue
from ruma_tx.services.streams import StreamWriter
from ruma_tx.services.sync import SyncContext

#: Most messages in one /sync response (the spec's recommended limit).
BATCH_LIMIT = 100

#: How long the message ids received from other servers are remembered
#: (a server retries a transaction for minutes or hours, not weeks).
RECEIVED_KEPT_MS = 7 * 24 * 3600 * 1000

#: C{async (sender, event_type, message_id, messages)}: send on the
#: messages for other servers' users (as C{m.direct_to_device} EDUs).
RemoteDelivery = Callable[[str, str, str, Mapping[str, Mapping[str, JsonDict]]], Awaitable[None]]


class ToDeviceMessages:
    """
    Sends to-device messages and is the /sync source of C{to_device}.

    @param store: the L{ruma_tx.storage.to_device.ToDeviceStore}.
    @param streams: the L{ruma_tx.services.streams.StreamWriter}.
    @param remote: sends on other servers' users' messages; C{None} when
        federation is off (they are then dropped).
    """

    def __init__(self, *, store: ToDeviceQueue, streams: StreamWriter, clock: Clock, server_name: str,
                 batch_limit: int = BATCH_LIMIT, remote: RemoteDelivery | None = None) -> None:
        self._store = store
        self._remote = remote
        self._streams = streams
        self._clock = clock
        self._server_name = server_name
        self._batch_limit = batch_limit
        # Transaction ids being sent right now: concurrent duplicates share one result.
        self._in_flight = SingleFlight()

    async def send(self, sender: str, sender_device: str, event_type: str, txn_id: str,
                   messages: dict) -> None:
        """
        Queue C{messages} (C{{user_id: {device_id or "*": content}}}) of
        type C{event_type} for their devices, once per transaction id:
        ids are scoped to the sender's device and the endpoint, event type
        included, as for C{/send}. A retry, even one running at the same
        time as the first request, delivers nothing again.

        @raise MatrixError: 400 for a malformed C{messages}.
        """
        outgoing = outgoing_messages(messages, self._server_name)
        if self._remote is not None and has_remote_recipients(messages, self._server_name):
            # A retry sends again with the same message_id: the receiving
            # servers deliver it once.
            await self._remote(sender, event_type, remote_message_id(sender, sender_device, event_type, txn_id),
                               messages)
        if not outgoing:
            return  # nothing to deliver, now or on a retry
        txn = (sender, sender_device, f"sendToDevice/{event_type}", txn_id)
        await self._in_flight.run(txn, lambda: self._queue(
            lambda position, now: self._store.queue(txn, sender, event_type, outgoing, position, now)))

    async def receive(self, sender: str, event_type: str, message_id: str, messages: dict) -> None:
        """
        Queue the messages an C{m.direct_to_device} EDU of C{sender}'s
        server brings for our users, once per C{message_id}: a repeated
        EDU (a retried transaction) delivers nothing again.
        """
        outgoing = outgoing_messages(messages, self._server_name)
        if outgoing:
            await self._in_flight.run((sender, message_id), lambda: self._queue(
                lambda position, now: self._store.queue_received(sender, message_id, event_type, outgoing,
                                                                 position, now, RECEIVED_KEPT_MS)))

    async def _queue(self, store: Callable[[int, int], Awaitable[list[str] | None]]) -> None:
        """Run C{store(position, now_ms)} at a new position; wake the users it names."""
        now = now_ms(self._clock)

        async def persist(position: int) -> list[str]:
            return await store(position, now) or []  # None: a repeat, nobody to wake

        await self._streams.write(persist, kind="to_device")

    async def add_to_sync(self, ctx: SyncContext) -> None:
        """
        Acknowledge what the device's C{since} covers, then add the next
        messages of its queue (at most L{BATCH_LIMIT}) as C{to_device}; see
        the module docstring.
        """
        request = ctx.request
        if request.device_id is None:
            return
        since = request.since  # the client's token, also for a full-state sync
        if since is not None and ctx.notifier is not None and not ctx.notifier.touched_since(
                request.user_id, since.stream, "to_device"):
            return  # nothing queued since; acknowledging can wait for the next message
        messages = await self._store.take_batch(
            request.user_id, request.device_id,
            acknowledged=None if since is None else since.stream,
            upto=ctx.now.stream, limit=min(request.to_device_limit or self._batch_limit, self._batch_limit),
        )
        if not messages:
            return
        ctx.response["to_device"] = {"events": [m.as_event() for m in messages]}
        user_id = request.user_id

        async def wake(position: int) -> list[str]:
            return [user_id]

        await self._streams.write(wake, kind="to_device")
