"""
Receiving transactions (C{PUT /_matrix/federation/v1/send/{txnId}}): the
PDUs go to their rooms, each room's in order, and the EDUs to the services
that keep typing, receipts, presence, to-device messages and device lists.

A transaction id is answered once per origin: a retry (or the same
transaction arriving twice at once) gets the first answer. The answers are
remembered in a bounded cache only, because receiving is idempotent: a PDU
already stored is not stored again and a to-device message is delivered
once per C{message_id}, so a retry after a restart changes nothing either.
One transaction per origin is handled at a time (servers send one at a
time; a second one waits), which also bounds what one origin can make us do.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Awaitable, Callable, Mapping, Protocol, Sequence

from ruma_tx.logs import logger
from ruma_tx.matrix.errors import MatrixError
from ruma_tx.matrix.ephemeral import READ
from ruma_tx.matrix.federation_membership import server_of
from ruma_tx.matrix.federation_transactions import (
    DeviceListUpdate,
    DirectToDevice,
    Edu,
    PresenceUpdate,
    ReceiptUpdate,
    SigningKeyUpdate,
    Typing,
    parse_edus,
    parse_transaction,
)
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.concurrency import KeyedLocks, SingleFlight, concurrently
from ruma_tx.services.server_acls import ServerAcls

log = logger(__name__)

#: How long a remote user types unless told otherwise (as Synapse: 30 s;
#: the typing EDU carries no timeout).
REMOTE_TYPING_TIMEOUT_MS = 30_000

#: C{(origin, room_id, pdus) -> event_id -> error or None}: accept a room's
#: PDUs, in order; an error is what the transaction's answer says of a PDU.
RoomPdus = Callable[[str, str, Sequence[JsonDict]], Awaitable[Mapping[str, str | None]]]


class EduTargets(Protocol):
    """The services that keep what EDUs change."""

    async def typing(self, update: Typing) -> None: ...

    async def receipt(self, update: ReceiptUpdate) -> None: ...

    async def presence(self, update: PresenceUpdate) -> None: ...

    async def to_device(self, message: DirectToDevice) -> None: ...

    async def device_list(self, update: DeviceListUpdate | SigningKeyUpdate) -> None: ...


class TransactionReceiver:
    """
    @param room_pdus: accepts one room's PDUs (see L{RoomPdus}).
    @param edus: where EDUs go.
    @param origin_up: told of each origin that sends a transaction: it is
        up, so what waits to be sent to it can go now (must not wait).
    """

    def __init__(self, *, room_pdus: RoomPdus, edus: EduTargets, answers_kept: int = 10_000,
                 origin_up: Callable[[str], None] | None = None) -> None:
        self._room_pdus = room_pdus
        self._edus = edus
        self._origin_up = origin_up
        self._answers: LRUCache[tuple[str, str], JsonDict] = LRUCache(answers_kept)
        self._in_flight = SingleFlight()
        self._origins = KeyedLocks()

    async def receive(self, origin: str, txn_id: str, body: JsonDict) -> JsonDict:
        """
        @raise BadRequest: 400 for a body that is not a transaction of C{origin}.
        """
        if self._origin_up is not None:
            self._origin_up(origin)
        key = (origin, txn_id)
        answered = self._answers.get(key)
        if answered is not None:
            return answered
        transaction = parse_transaction(body, origin)  # a bad body is refused before any wait

        async def handle() -> JsonDict:
            answer = await self._origins.run(origin, self._handle, origin, transaction.pdus, transaction.edus)
            self._answers[key] = answer
            return answer

        return await self._in_flight.run(key, handle)

    async def _handle(self, origin: str, pdus: list[JsonDict], edus: list[JsonDict]) -> JsonDict:
        by_room: dict[str, list[JsonDict]] = defaultdict(list)
        for pdu in pdus:
            room_id = pdu.get("room_id")
            if isinstance(room_id, str):
                by_room[room_id].append(pdu)
        outcomes = await concurrently(*(self._room_pdus(origin, room_id, room_pdus)
                                        for room_id, room_pdus in by_room.items()))
        results: dict[str, JsonDict] = {}
        for outcome in outcomes:
            for event_id, error in outcome.items():
                results[event_id] = {} if error is None else {"error": error}
        # After the PDUs: a receipt may point at an event of this transaction.
        for edu in parse_edus(edus, origin):
            await self._apply(edu)
        return {"pdus": results}

    async def _apply(self, edu: Edu) -> None:
        """One EDU; a refused or failing one is logged and skipped (EDUs are not answered)."""
        try:
            if isinstance(edu, Typing):
                await self._edus.typing(edu)
            elif isinstance(edu, ReceiptUpdate):
                await self._edus.receipt(edu)
            elif isinstance(edu, PresenceUpdate):
                await self._edus.presence(edu)
            elif isinstance(edu, DirectToDevice):
                await self._edus.to_device(edu)
            else:
                await self._edus.device_list(edu)
        except MatrixError as e:
            log.debug("EDU {edu} refused: {error}", edu=type(edu).__name__, error=e)
        except Exception:
            log.failure("EDU {edu} failed", edu=type(edu).__name__)


class Typers(Protocol):
    async def set_typing(self, requester_id: str, room_id: str, user_id: str, typing: bool,
                         timeout_ms: int | None = None) -> None: ...


class Receipts(Protocol):
    async def send_receipt(self, user_id: str, room_id: str, receipt_type: str, event_id: str,
                           thread_id: object = None) -> None: ...


class Presences(Protocol):
    async def set_status(self, requester_id: str, user_id: str, state: str,
                         status_msg: str | None) -> None: ...


class ToDevice(Protocol):
    async def receive(self, sender: str, event_type: str, message_id: str, messages: dict) -> None: ...


class DeviceLists(Protocol):
    """Other servers' users' device lists (L{ruma_tx.services.remote_device_lists.RemoteDeviceLists})."""

    async def update(self, update: DeviceListUpdate) -> None: ...

    async def signing_keys(self, update: SigningKeyUpdate) -> None: ...


class EduServices:
    """
    L{EduTargets} over the services clients use: a remote user's typing,
    receipt or presence is checked as a local user's would be (joined to
    the room, an event of that room), so a server cannot set them for a
    room its users are not in.

    @param device_lists: keeps remote users' device lists; local users who
        share a room with them see a change in C{device_lists} and query
        their keys again.
    @param acls: the rooms' server ACLs: typing and receipts of a denied
        server are dropped (spec: "Server Access Control Lists").
    """

    def __init__(self, *, typing: Typers, receipts: Receipts, presence: Presences, to_device: ToDevice,
                 device_lists: DeviceLists, acls: ServerAcls) -> None:
        self._acls = acls
        self._typing = typing
        self._receipts = receipts
        self._presence = presence
        self._to_device = to_device
        self._device_lists = device_lists

    async def typing(self, update: Typing) -> None:
        await self._acls.check(update.room_id, server_of(update.user_id))
        await self._typing.set_typing(update.user_id, update.room_id, update.user_id, update.typing,
                                      REMOTE_TYPING_TIMEOUT_MS)

    async def receipt(self, update: ReceiptUpdate) -> None:
        if update.receipt_type != READ:
            return  # the only shared receipt type; a private one never leaves its server
        await self._acls.check(update.room_id, server_of(update.user_id))
        # Several event ids are allowed; the read position is the last one.
        await self._receipts.send_receipt(update.user_id, update.room_id, update.receipt_type,
                                          update.event_ids[-1], update.thread_id)

    async def presence(self, update: PresenceUpdate) -> None:
        await self._presence.set_status(update.user_id, update.user_id, update.presence, update.status_msg)

    async def to_device(self, message: DirectToDevice) -> None:
        # message_id is unique per sending server; the sender is of that server.
        await self._to_device.receive(message.sender, message.event_type, message.message_id,
                                      dict(message.messages))

    async def device_list(self, update: DeviceListUpdate | SigningKeyUpdate) -> None:
        if isinstance(update, DeviceListUpdate):
            await self._device_lists.update(update)
        else:
            await self._device_lists.signing_keys(update)
