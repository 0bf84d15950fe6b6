"""
Creating events: build the PDU on the room's head, check it against the
room's auth rules, sign it, persist it at a stream position, wake the users
it concerns. Every event of a room goes through L{EventCreator.create}.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable, Sequence

from canonicaljson import encode_canonical_json
from signedjson.types import SigningKey

from ruma_tx.matrix.auth_rules import AuthError, auth_types_for_event, check_event_auth
from ruma_tx.matrix.errors import TooLarge, forbidden, not_found
from ruma_tx.matrix.events import (
    StoredEvent,
    build_pdu,
    check_canonical_values,
    client_event,
    pdu_with_id,
    room_id_for_create_event,
)
from ruma_tx.matrix.redaction import check_redaction, redact
from ruma_tx.matrix.room_versions import ROOM_VERSIONS, RoomVersion
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.canonical_alias import CanonicalAliasCheck
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.concurrency import KeyedLocks, SingleFlight
from ruma_tx.services.ports.events import DuplicateTransaction, Events, NewEvent
from ruma_tx.services.streams import StreamWriter

#: C{async (event, position, audience)}: run once an event is stored.
AfterPersist = Callable[[NewEvent, int, set[str]], Awaitable[None]]

#: Spec: "The size of an event ... MUST NOT exceed 65536 bytes" (the PDU).
MAX_EVENT_BYTES = 65536

CREATE_KEY = ("m.room.create", "")


@dataclass(frozen=True)
class EventSpec:
    """What a client asks to send."""

    room_id: str | None
    sender: str
    event_type: str
    content: dict
    state_key: str | None = None
    redacts: str | None = None


@dataclass
class RoomCache:
    """
    What creating a room's next event reads, kept between events: its head,
    the state events the auth rules have asked for (and which keys were
    looked up and absent), and its members. Updated under the room's lock
    after each event is stored, so it is exact while this process is the
    room's only writer; dropped on redactions (they rewrite stored events).
    """

    room_version: RoomVersion
    last_event_id: str
    depth: int
    state: dict = field(default_factory=dict)
    looked_up: set = field(default_factory=set)
    members: dict | None = None

    def apply(self, event: NewEvent, stored: StoredEvent, depth: int) -> None:
        self.last_event_id, self.depth = event.event_id, depth
        state_key = event.pdu.get("state_key")
        if state_key is None:
            return
        key = (event.pdu["type"], state_key)
        self.state[key] = stored
        self.looked_up.add(key)
        if key[0] == "m.room.member" and self.members is not None:
            membership = event.pdu["content"].get("membership")
            if membership in AUDIENCE_MEMBERSHIPS:
                self.members[state_key] = membership
            else:
                self.members.pop(state_key, None)


#: Memberships whose holders hear of a room's events.
AUDIENCE_MEMBERSHIPS = ("join", "invite", "knock")


class EventCreator:
    """
    @param events: the L{ruma_tx.storage.events.EventStore}.
    @param streams: the L{ruma_tx.services.streams.StreamWriter} for events.
    """

    def __init__(self, *, events: Events, streams: StreamWriter, clock: Clock, server_name: str,
                 signing_key: SigningKey, check_canonical_alias: CanonicalAliasCheck,
                 after_persist: Sequence[AfterPersist] = (), txn_cache_size: int = 10_000,
                 rooms_cache_size: int = 5_000) -> None:
        """
        @param after_persist: C{async (event: NewEvent, position, audience)}
            callables run once an event is stored, before anyone is woken
            (e.g. push rule evaluation, so /sync's unread counts include it).
        """
        self._after_persist = list(after_persist)
        self._check_canonical_alias = check_canonical_alias
        self._events = events
        self._streams = streams
        self._clock = clock
        self._server_name = server_name
        self._signing_key = signing_key
        self._locks = KeyedLocks()
        self._rooms: LRUCache[str, RoomCache] = LRUCache(rooms_cache_size)
        # Transaction ids being sent right now: concurrent duplicates share one result.
        self._in_flight = SingleFlight()
        # Recently answered transaction ids (the database has them all).
        self._recent_txns: LRUCache[tuple, str] = LRUCache(txn_cache_size)

    async def send(self, spec: EventSpec, *, txn: tuple[str, str, str, str] | None = None) -> str:
        """
        Create the event and return its id. With C{txn} = (user, device,
        scope, txn_id), a retry returns the first event's id and concurrent
        duplicates share one result; a failure is not remembered.
        """
        if txn is None:
            return (await self._create_locked(spec, None)).event_id
        known = self._recent_txns.get(txn)
        if known is not None:
            return known
        return await self._in_flight.run(txn, lambda: self._send_once(spec, txn))

    async def _send_once(self, spec: EventSpec, txn) -> str:
        existing = await self._events.get_txn_event(*txn)
        if existing is None:
            try:
                existing = (await self._create_locked(spec, txn)).event_id
            except DuplicateTransaction as e:
                existing = e.event_id
        self._recent_txns[txn] = existing
        return existing

    async def _create_locked(self, spec: EventSpec, txn) -> NewEvent:
        return await self._locks.run(spec.room_id, self._create, spec, txn)

    async def create_room_event(self, spec: EventSpec, room_version: RoomVersion) -> NewEvent:
        """
        Create a room's first event, C{m.room.create}; for version 12 the
        room id is derived from it (C{spec.room_id} is then C{None}).
        """
        pdu_room_id = None if room_version.room_id_from_create_event else spec.room_id
        event_id, pdu = self._build(spec, room_version, pdu_room_id, [], [], 1)
        room_id = room_id_for_create_event(event_id) if pdu_room_id is None else pdu_room_id
        self._authorise(pdu, event_id, {}, room_version)
        await self._events.create_room(room_id, room_version.identifier, spec.sender, now_ms(self._clock))
        event = NewEvent(event_id, room_id, pdu, _encode(pdu))
        room = RoomCache(room_version, event_id, 0, members={})
        self._rooms[room_id] = room
        await self._persist(event, 1, room)
        return event

    async def _room(self, room_id: str) -> RoomCache:
        room = self._rooms.get(room_id)
        if room is not None:
            return room
        head = await self._events.get_room_head(room_id)
        if head is None:
            raise not_found("Unknown room")
        room = RoomCache(ROOM_VERSIONS[head.room_version], head.last_event_id, head.depth)
        self._rooms[room_id] = room
        return room

    async def _auth_state(self, room_id: str, room: RoomCache, keys) -> dict:
        """The current state under C{keys}, reading only what the cache lacks."""
        missing = [key for key in keys if key not in room.looked_up]
        if missing:
            room.state.update(await self._events.get_state(room_id, missing))
            room.looked_up.update(missing)
        return {key: room.state[key] for key in keys if key in room.state}

    async def _create(self, spec: EventSpec, txn) -> NewEvent:
        room = await self._room(spec.room_id)
        room_version = room.room_version
        keys = auth_types_for_event(
            spec.event_type, spec.state_key, spec.sender, spec.content, room_version
        )
        state = await self._auth_state(spec.room_id, room, list({CREATE_KEY, *keys}))
        auth_events = [
            state[key].event_id for key in keys if key in state
            and not (room_version.room_id_from_create_event and key == CREATE_KEY)
        ]
        depth = room.depth + 1
        event_id, pdu = self._build(
            spec, room_version, spec.room_id, [room.last_event_id], auth_events, depth
        )
        auth_state = {k: pdu_with_id(e) for k, e in state.items()}
        self._authorise(pdu, event_id, auth_state, room_version)
        if spec.event_type == "m.room.canonical_alias" and spec.state_key == "":
            await self._check_canonical_alias(spec.room_id, spec.content)
        redacted = None
        if spec.event_type == "m.room.redaction":
            redacted = await self._redacted_target(spec, {**pdu, "event_id": event_id},
                                                   auth_state, room_version)
        event = NewEvent(event_id, spec.room_id, pdu, _encode(pdu), txn, redacted)
        await self._persist(event, depth, room)
        return event

    def _build(self, spec, room_version, pdu_room_id, prev_events, auth_events, depth):
        check_canonical_values(spec.content)
        event_id, pdu = build_pdu(
            room_version=room_version, room_id=pdu_room_id, sender=spec.sender,
            event_type=spec.event_type, content=spec.content, state_key=spec.state_key,
            prev_events=prev_events, auth_events=auth_events, depth=depth,
            origin_server_ts=now_ms(self._clock), redacts=spec.redacts,
            server_name=self._server_name, signing_key=self._signing_key,
        )
        if len(_encode(pdu)) > MAX_EVENT_BYTES:
            raise TooLarge("M_TOO_LARGE", "Event is too large")
        return event_id, pdu

    async def _redacted_target(self, spec: EventSpec, redaction: dict, state, room_version) -> str | None:
        """
        The pruned PDU that replaces the redacted event's, or C{None} when
        it is already redacted (a second redaction changes nothing).

        @raise MatrixError: 404 for an event not in this room, 403 when the
            sender may not redact it.
        """
        target = await self._events.get_event(spec.redacts) if spec.redacts else None
        if target is None or target.room_id != spec.room_id:
            raise not_found("Event not found")
        if target.redacted_by is not None:
            return None
        try:
            check_redaction(redaction, pdu_with_id(target), state, room_version)
        except AuthError as e:
            raise forbidden(str(e)) from None
        pruned = redact(target.pdu, room_version)
        because = client_event(redaction, redaction["event_id"], spec.room_id)
        pruned["unsigned"] = {"redacted_because": because}
        return _encode(pruned)

    @staticmethod
    def _authorise(pdu: dict, event_id: str, state: dict, room_version) -> None:
        try:
            check_event_auth({**pdu, "event_id": event_id}, state, room_version)
        except AuthError as e:
            raise forbidden(str(e)) from None

    async def _persist(self, event: NewEvent, depth: int, room: RoomCache) -> None:
        now = now_ms(self._clock)

        async def persist(position: int):
            try:
                await self._events.persist_event(event, position, depth, now)
            except BaseException:
                self._rooms.pop(event.room_id, None)  # unsure what was stored: reread
                raise
            if event.redacted_pdu_json is not None:
                self._rooms.pop(event.room_id, None)  # a cached event may be the redacted one
            else:
                room.apply(event, StoredEvent(position, event.event_id, event.room_id, event.pdu), depth)
            audience = await self._audience(event, room)
            for hook in self._after_persist:
                await hook(event, position, audience)
            return self._touched(event, audience)

        await self._streams.write(persist)

    async def _audience(self, event: NewEvent, room: RoomCache) -> set[str]:
        """Who hears of the event: members (joined, invited, knocking), its target and sender."""
        if room.members is None:
            room.members = await self._events.get_members(event.room_id, AUDIENCE_MEMBERSHIPS)
        audience = set(room.members)
        audience.add(event.pdu["sender"])
        if event.pdu["type"] == "m.room.member":
            audience.add(event.pdu["state_key"])
        return audience

    @staticmethod
    def _touched(event: NewEvent, audience: set[str]) -> dict:
        """The kinds of change the event is, per user (a member event also changes the target's rooms)."""
        touched = {"events": audience}
        if event.pdu["type"] == "m.room.member":
            touched["membership"] = [event.pdu["state_key"]]   # the target's own rooms changed
            touched["room_membership"] = audience              # who is in their rooms changed
        return touched


def _encode(pdu: dict) -> str:
    return encode_canonical_json(pdu).decode("utf-8")

