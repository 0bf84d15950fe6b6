"""
Creating events: build the PDU on the room's head, check it against the
room's auth rules, sign it, evaluate push rules for it, then store it with
its push actions at a stream position and wake the users it concerns.
Every event of a room goes through L{EventCreator}: one at a time per
room, under the room's lock.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Awaitable, Callable, Iterable, Mapping, Sequence

from canonicaljson import encode_canonical_json
from signedjson.types import SigningKey

from ruma_tx.matrix.account_restrictions import user_suspended
from ruma_tx.matrix.auth_rules import AuthError, auth_types_for_event, check_event_auth
from ruma_tx.matrix.errors import MatrixError, TooLarge, forbidden, not_found
from ruma_tx.matrix.events import (
    StoredEvent,
    build_pdu,
    check_canonical_values,
    pdu_with_id,
    redacted_pdu,
    reference_hash,
    room_id_for_create_event,
)
from ruma_tx.matrix.guest_access import GUEST_ACCESS, check_guest_join
from ruma_tx.matrix.redaction import check_redaction, redacted_event_id
from ruma_tx.matrix.room_versions import ROOM_VERSIONS, RoomVersion, referenced_event_ids
from ruma_tx.matrix.sync import sync_event_json
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.canonical_alias import CanonicalAliasCheck
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.concurrency import KeyedLocks, SingleFlight
from ruma_tx.services.event_spec import EventSpec, EventStored, RelationCheck, RemoteInvite, Withheld
from ruma_tx.services.ports.events import (
    DuplicateTransaction,
    Events,
    NewEvent,
    NewRoom,
    RoomExists,
)
from ruma_tx.services.ports.room_dag import DagEvents, DagUpdate, Outlier, StateAfter, StateKey
from ruma_tx.services.push import PushEvaluator, RoomPushState
from ruma_tx.services.room_cache import AUDIENCE_MEMBERSHIPS, RoomCache, touched
from ruma_tx.services.room_dag import MAX_PREV_EVENTS, RoomDag, state_changes, without_auth_events
from ruma_tx.services.streams import StreamWriter

#: Spec: "The size of an event ... MUST NOT exceed 65536 bytes" (the PDU).
MAX_EVENT_BYTES = 65536

CREATE_KEY = ("m.room.create", "")

#: Tries at a room id no other room has (see L{EventCreator.create_room}).
_ROOM_ID_ATTEMPTS = 5


class EventCreator:
    """
    @param events: where events are stored.
    @param streams: the stream writer that positions them.
    @param check_canonical_alias: validates C{m.room.canonical_alias} events.
    @param push: push rule evaluation, run before each event is stored.
    @param relations: checks the relation an event declares, if any.
    @param stored: told of each event once stored (e.g. typing: a member
        who leaves stops typing).
    @param dag_events: the DAG of rooms shared with other servers.
    @param dag: their state, read from it.
    @param remote_invite: countersigns invites of other servers' users
        (C{None}: such invites are refused, federation being off).
    @param withheld: C{async (spec) -> event id or None}: a fake id to
        answer a sent event with, never storing it (a shadow-banned sender's).
    """

    def __init__(self, *, events: Events, streams: StreamWriter, clock: Clock, server_name: str,
                 signing_key: SigningKey, check_canonical_alias: CanonicalAliasCheck,
                 push: PushEvaluator, relations: RelationCheck, dag_events: DagEvents, dag: RoomDag,
                 stored: Sequence[EventStored] = (), remote_invite: RemoteInvite | None = None,
                 withheld: Withheld | None = None,
                 txn_cache_size: int = 10_000, rooms_cache_size: int = 5_000) -> None:
        self._withheld = withheld
        self._events = events
        self._dag_events = dag_events
        self._dag = dag
        self._streams = streams
        self._clock = clock
        # The origin_server_ts of the last room created: the next is later (see create_room).
        self._last_create_ts = 0
        self._server_name = server_name
        self._suffix = ":" + server_name
        self._signing_key = signing_key
        self._check_canonical_alias = check_canonical_alias
        self._push = push
        self._relations = relations
        self._stored_hooks = list(stored)
        self._remote_invite = remote_invite
        self._locks = KeyedLocks()
        # Invalidation: updated after each stored event; dropped when what
        # was stored is uncertain (a failure) or rewritten (a redaction).
        self._rooms: LRUCache[str, RoomCache] = LRUCache(rooms_cache_size)
        # Transaction ids being sent right now: concurrent duplicates share one result.
        self._in_flight = SingleFlight()
        # Recently answered transaction ids (the database has them all;
        # a transaction id never changes its event).
        self._recent_txns: LRUCache[tuple[str, str, str, str], str] = LRUCache(txn_cache_size)

    # -- sending into an existing room -----------------------------------

    async def send(self, spec: EventSpec, *, txn: tuple[str, str, str, str] | None = None) -> str:
        """
        Create the event and return its id. With C{txn} = (user, device,
        scope, txn_id), a retry returns the first event's id and concurrent
        duplicates share one result; a failure is not remembered.
        """
        fake_id = await self._withheld(spec) if self._withheld is not None else None
        if fake_id is not None:
            return fake_id
        if txn is None:
            return (await self._create_locked(spec, None)).event_id
        known = self._recent_txns.get(txn)
        if known is not None:
            return known
        return await self._in_flight.run(txn, lambda: self._send_once(spec, txn))

    async def _send_once(self, spec: EventSpec, txn: tuple[str, str, str, str]) -> str:
        existing = await self._events.get_txn_event(*txn)
        if existing is None:
            try:
                existing = (await self._create_locked(spec, txn)).event_id
            except DuplicateTransaction as e:
                existing = e.event_id
        self._recent_txns[txn] = existing
        return existing

    async def _create_locked(self, spec: EventSpec, txn: tuple[str, str, str, str] | None
                             ) -> NewEvent | StoredEvent:
        assert spec.room_id is not None
        return await self._locks.run(spec.room_id, self._create, spec, txn)

    async def _create(self, spec: EventSpec, txn: tuple[str, str, str, str] | None
                      ) -> NewEvent | StoredEvent:
        assert spec.room_id is not None  # as _create_locked checked
        room = await self._room(spec.room_id)
        if room.extremities is None and spec.event_type == "m.room.member" and spec.state_key is not None \
                and not spec.state_key.endswith(":" + self._server_name):
            room = await self._federate(spec.room_id)
        if spec.sender_is_guest and spec.event_type == "m.room.member" \
                and spec.content.get("membership") == "join":
            guest_access = await self._auth_state(spec.room_id, room, [(GUEST_ACCESS, "")])
            found = guest_access.get((GUEST_ACCESS, ""))
            check_guest_join(found.content if found is not None else None)
        if spec.state_key is not None:
            current = await self._auth_state(spec.room_id, room, [(spec.event_type, spec.state_key)])
            same = current.get((spec.event_type, spec.state_key))
            if same is not None and same.sender == spec.sender and same.content == spec.content:
                # Setting a state key to what it holds already (a retried
                # PUT /state, joining a room one is in): as Synapse, the
                # current event answers and nothing new is sent.
                return same
        event = await self._next_event(room, spec, txn)
        if spec.event_type == "m.room.member" and spec.content.get("membership") == "invite" \
                and spec.state_key is not None and not spec.state_key.endswith(self._suffix):
            event = await self._countersigned(event, room.room_version)
        relation = await self._relations(event)
        if relation is not None:
            event = replace(event, relation=relation)
        return await self._store(room, event)

    async def _countersigned(self, invite: NewEvent, room_version: RoomVersion) -> NewEvent:
        """The invite with the invitee's server's signature (under the room's lock: it is sent next)."""
        if self._remote_invite is None:
            raise forbidden("This server does not federate: users of other servers cannot be invited")
        signed = await self._remote_invite(invite, room_version)
        return replace(invite, pdu=signed, pdu_json=encode_pdu(signed))

    async def _store(self, room: RoomCache, event: NewEvent) -> NewEvent:
        """Evaluate push rules for the event, store it at a stream position and wake its audience."""
        push, push_after = await self._push.evaluate(event, await self._push.state_before(event))
        event = replace(event, push=push)
        audience = await self._audience(event, room)
        now = now_ms(self._clock)

        async def persist(position: int) -> dict[str, Sequence[str]]:
            try:
                await self._events.persist_event(event, position, now)
            except BaseException:
                self._forget(event.room_id)  # unsure what was stored: reread
                raise
            self._push.stored(event, push_after)
            if event.redacted_pdu_json is not None:
                self._rooms.pop(event.room_id, None)  # a cached event may be the redacted one
            elif event.dag is not None and event.dag.current_state is not None:
                self._forget(event.room_id)  # state resolution moved other keys
            else:
                room.apply(event, position)
            for hook in self._stored_hooks:
                hook(event, position)
            return touched(event, audience)

        await self._streams.write(persist)
        return event

    # -- rooms shared with other servers ---------------------------------

    async def federate(self, room_id: str) -> None:
        """
        Make a local room one shared with other servers (a remote server
        takes part): from now on its events get state snapshots and it
        keeps forward extremities. Idempotent.
        """
        await self._locks.run(room_id, self._federate, room_id)

    async def _federate(self, room_id: str) -> RoomCache:
        await self._dag_events.mark_federated(room_id)
        self._rooms.pop(room_id, None)
        return await self._room(room_id)

    async def accept_received(self, event: NewEvent, state_after: StateAfter,
                              state_after_ids: Mapping[StateKey, str]) -> bool:
        """
        Store an event received from another server, already checked against
        its auth events and the state before it (C{state_after} and
        C{state_after_ids} being the state after it), as the spec's last
        steps ask: if the room's current state does not allow it, it is
        soft-failed (stored in the DAG, never shown, not an extremity);
        else it gets a stream position, becomes a forward extremity, the
        current state becomes the resolution of the extremities' states,
        push rules are evaluated and its audience is woken, like a local
        event's. Runs under the room's lock, as local sends do.

        @return: C{False} when it was soft-failed.
        """
        return await self._locks.run(event.room_id, self._accept_received, event, state_after, state_after_ids)

    async def _accept_received(self, event: NewEvent, state_after: StateAfter,
                               state_after_ids: Mapping[StateKey, str]) -> bool:
        room = await self._room(event.room_id)
        if room.extremities is None:
            room = await self._federate(event.room_id)
        assert room.extremities is not None
        pdu = event.pdu
        keys = auth_types_for_event(pdu["type"], pdu.get("state_key"), pdu["sender"], pdu["content"],
                                    room.room_version)
        current = await self._auth_state(event.room_id, room, list({CREATE_KEY, *keys}))
        try:
            # Against the current state, not the auth events it cites (they may differ).
            check_event_auth({**without_auth_events(pdu), "event_id": event.event_id},
                             {k: pdu_with_id(e) for k, e in current.items()}, room.room_version)
        except AuthError:
            await self._dag_events.store_soft_failed(Outlier(event.event_id, pdu, event.pdu_json),
                                                     event.room_id, state_after)
            self._dag.remember(event.event_id, state_after_ids)
            return False
        prev_events = set(referenced_event_ids(pdu, "prev_events"))
        replaced = tuple(e for e in room.extremities if e in prev_events)
        remaining = [e for e in room.extremities if e not in prev_events]
        current_change = None
        if remaining or prev_events != set(room.extremities):
            # Not the state it builds on: the current state becomes the
            # resolution of the new extremities' states.
            states = await self._dag.state_after(remaining)
            resolved = await self._dag.resolve(
                room.room_version, [state_after_ids, *(states[e] for e in remaining if e in states)],
                {event.event_id: pdu})
            change = state_changes(await self._dag_events.get_current_state_ids(event.room_id), resolved)
            own = {(pdu["type"], pdu["state_key"]): event.event_id} if "state_key" in pdu else {}
            current_change = None if change == own else change
        event = replace(event, dag=DagUpdate(state_after, replaced, current_change))
        if pdu["type"] == "m.room.redaction":
            event = await self._received_redaction(event, room, current)
        try:
            event = replace(event, relation=await self._relations(event))
        except MatrixError:
            pass  # a relation we would refuse locally is kept as an event without one
        await self._store(room, event)
        self._dag.remember(event.event_id, state_after_ids)
        return True

    async def _received_redaction(self, event: NewEvent, room: RoomCache,
                                  state: Mapping[StateKey, StoredEvent]) -> NewEvent:
        """
        A redaction from another server, applied to its target when the
        spec lets it (the redacter's power, or the same server as the
        target's sender); one for an event we do not have, or may not
        redact, is kept as an event that redacts nothing (as Synapse).
        """
        redacts = redacted_event_id(event.pdu, room.room_version)
        if redacts is None:
            return event
        spec = EventSpec(event.room_id, event.pdu["sender"], "m.room.redaction", event.pdu["content"],
                         redacts=redacts)
        try:
            pruned = await self._redacted_target(spec, {**event.pdu, "event_id": event.event_id},
                                                 {key: pdu_with_id(e) for key, e in state.items()},
                                                 room.room_version, same_sender_only=False)
        except MatrixError:
            return event
        if pruned is None:
            return event
        return replace(event, redacts=redacts, redacted_pdu_json=encode_pdu(pruned),
                       redacted_client_json=sync_event_json(pruned, redacts, event.room_id))

    async def store_joined_room(self, room: NewRoom, outliers: Sequence[Outlier],
                                state: Mapping[StateKey, str], join: NewEvent) -> None:
        """
        Store a room joined through another server (checked by the caller):
        its C{state} before the join and auth chain as C{outliers}, the
        join at a stream position as the room's first event here, and the
        current state: C{state} with the join. Its audience is woken.

        @raise RoomExists: the room is stored already.
        """
        await self._locks.run(room.room_id, self._store_joined_room, room, outliers, state, join)

    async def _store_joined_room(self, room: NewRoom, outliers: Sequence[Outlier],
                                 state: Mapping[StateKey, str], join: NewEvent) -> None:
        async def persist(position: int) -> dict[str, Sequence[str]]:
            await self._events.persist_joined_room(room, outliers, state, join, position)
            self._forget(room.room_id)
            for hook in self._stored_hooks:
                hook(join, position)
            members = [k for (t, k), e in state.items() if t == "m.room.member" and k.endswith(self._suffix)]
            return touched(join, {join.pdu["sender"], join.pdu["state_key"], *members})

        await self._streams.write(persist)
        self._dag.remember(join.event_id, {**state, (join.pdu["type"], join.pdu["state_key"]): join.event_id})

    async def template(self, spec: EventSpec) -> tuple[RoomVersion, JsonDict]:
        """
        The event C{spec} asks for, built on the room's head and authorised
        by its current state, without hashes or signatures and not stored:
        the template a resident server answers C{make_join} (leave, knock)
        with, for the remote server to sign and send back.

        @raise Forbidden: the room's current state does not allow it.
        """
        assert spec.room_id is not None
        return await self._locks.run(spec.room_id, self._template, spec)

    async def _template(self, spec: EventSpec) -> tuple[RoomVersion, JsonDict]:
        assert spec.room_id is not None
        room = await self._room(spec.room_id)
        event = await self._next_event(room, replace(spec, content=dict(spec.content)), None, built_only=True)
        template = {k: v for k, v in event.pdu.items() if k not in ("hashes", "signatures", "unsigned")}
        return room.room_version, template

    async def store_out_of_band(self, room: NewRoom, event: NewEvent) -> None:
        """
        Store a membership another server told us of in a room this server
        holds no state of (an invite of a local user, or its rejection): at
        a stream position, as the user's membership, so that their /sync
        shows it; the room is known only by it until a join brings its state.
        """
        async def persist(position: int) -> dict[str, Sequence[str]]:
            await self._events.persist_out_of_band(room, event, position)
            self._forget(room.room_id)
            for hook in self._stored_hooks:
                hook(event, position)
            return touched(event, {event.pdu["state_key"]})

        await self._locks.run(room.room_id, self._streams.write, persist)

    # -- creating a room -------------------------------------------------

    async def create_room(self, *, room_version: RoomVersion, create: EventSpec,
                          initial: Sequence[EventSpec], alias: str | None = None,
                          published: bool = False) -> str:
        """
        Create a room with its initial events, stored all or nothing in one
        transaction: a room is never left without its state, whatever
        happens on the way. C{create.room_id} is the room id, or C{None} in
        room version 12, where the create event's hash is the room id (the
        specs in C{initial} then have C{room_id} C{None} too).

        Identical requests in the same millisecond would make the same
        create event, hence the same version-12 room id: each room this
        process creates gets its own millisecond (a later one when needed),
        and another process's room at the same id makes it try the next.

        @param alias: a local alias created with the room, to name it.
        @return: the room id.
        @raise AliasExists: the alias is taken.
        """
        for _ in range(_ROOM_ID_ATTEMPTS):
            origin_ts = self._last_create_ts = max(now_ms(self._clock), self._last_create_ts + 1)
            events, room, push_state = await self._draft_room(
                room_version, create, initial, alias, origin_ts)
            new_room = NewRoom(room.state[CREATE_KEY].room_id, room_version.identifier, create.sender,
                               alias=alias, published=published)
            try:
                await self._persist_room(new_room, events, room, push_state)
            except RoomExists:
                if room_version.room_id_from_create_event:
                    continue
                raise
            return new_room.room_id
        raise RuntimeError("could not find a free room id")  # pragma: no cover

    async def _draft_room(self, room_version: RoomVersion, create: EventSpec,
                          initial: Sequence[EventSpec], alias: str | None, origin_ts: int,
                          ) -> tuple[list[NewEvent], RoomCache, RoomPushState]:
        """Build and authorise a new room's events, each on the one before, without storing any."""
        pdu_room_id = None if room_version.room_id_from_create_event else create.room_id
        event_id, pdu = self._build(create, room_version, pdu_room_id, [], [], 1, origin_ts)
        room_id = room_id_for_create_event(event_id) if pdu_room_id is None else pdu_room_id
        self._authorise(pdu, event_id, {}, room_version)
        first = NewEvent(event_id, room_id, pdu, encode_pdu(pdu), depth=1,
                         client_json=sync_event_json(pdu, event_id, room_id))
        room = RoomCache(room_version, event_id, 0, members={}, complete=True)
        push_state = RoomPushState(room_version.identifier, "")
        push, push_state = await self._push.evaluate(first, push_state)
        events = [replace(first, push=push)]
        room.apply(events[0], 0)
        pending = {alias: room_id} if alias is not None else {}
        for spec in initial:
            event = await self._next_event(room, replace(spec, room_id=room_id), None, pending)
            push, push_state = await self._push.evaluate(event, push_state)
            events.append(replace(event, push=push))
            room.apply(events[-1], 0)
        return events, room, push_state

    async def _persist_room(self, new_room: NewRoom, events: list[NewEvent], room: RoomCache,
                            push_state: RoomPushState) -> None:
        now = now_ms(self._clock)

        async def persist(positions: list[int]) -> dict[str, Iterable[str]]:
            await self._events.persist_room(new_room, events, positions, now)
            stored = RoomCache(room.room_version, "", 0, members={}, complete=True)
            for event, position in zip(events, positions):
                stored.apply(event, position)
                for hook in self._stored_hooks:
                    hook(event, position)
            self._rooms[new_room.room_id] = stored
            self._push.stored(events[-1], push_state)
            audience = set(stored.members or ()) | {new_room.creator}
            return {"events": audience, "membership": audience, "room_membership": audience}

        await self._streams.write_many(len(events), persist)

    # -- building one event ----------------------------------------------

    async def _room(self, room_id: str) -> RoomCache:
        room = self._rooms.get(room_id)
        if room is not None:
            return room
        head = await self._events.get_room_head(room_id)
        if head is None or head.last_event_id is None:
            raise not_found("Unknown room")
        if head.out_of_band:
            raise forbidden("This server is not in the room")
        room = RoomCache(ROOM_VERSIONS[head.room_version], head.last_event_id, head.depth)
        if head.federated:
            extremities = await self._dag_events.get_extremities(room_id)
            room.extremities = [event_id for event_id, _ in extremities]
            room.depth = max((depth for _, depth in extremities), default=head.depth)
        self._rooms[room_id] = room
        return room

    async def _auth_state(self, room_id: str, room: RoomCache,
                          keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredEvent]:
        """The current state under C{keys}, reading only what the cache lacks."""
        missing = [key for key in keys if key not in room.looked_up]
        if missing and not room.complete:
            room.state.update(await self._events.get_state(room_id, missing))
            room.looked_up.update(missing)
        return {key: room.state[key] for key in keys if key in room.state}

    async def _next_event(self, room: RoomCache, spec: EventSpec, txn: tuple[str, str, str, str] | None,
                          pending_aliases: Mapping[str, str] | None = None, *,
                          built_only: bool = False) -> NewEvent:
        """
        The event C{spec} asks for, built on the room's head and authorised
        by its current state; the room is not changed.

        @param pending_aliases: aliases created with a new room, not stored yet.
        @param built_only: the event will not be stored (a template): no
            state snapshot is prepared for it.
        """
        assert spec.room_id is not None
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
        prev_events = [room.last_event_id] if room.extremities is None else room.extremities[:MAX_PREV_EVENTS]
        hashes = await self._reference_hashes(room, [*prev_events, *auth_events], state) \
            if room_version.event_reference_pairs else None
        event_id, pdu = self._build(spec, room_version, spec.room_id, prev_events, auth_events, depth,
                                    reference_hashes=hashes)
        auth_state = {k: pdu_with_id(e) for k, e in state.items()}
        self._authorise(pdu, event_id, auth_state, room_version)
        if spec.event_type == "m.room.canonical_alias" and spec.state_key == "":
            await self._check_canonical_alias(spec.room_id, spec.content, pending_aliases)
        pruned = None
        if spec.event_type == "m.room.redaction":
            pruned = await self._redacted_target(spec, {**pdu, "event_id": event_id},
                                                 auth_state, room_version)
        dag = None
        if room.extremities is not None and not built_only:
            key = (spec.event_type, spec.state_key) if spec.state_key is not None else None
            dag = await self._dag.local_update(spec.room_id, prev_events, event_id, key)
        return NewEvent(
            event_id, spec.room_id, pdu, encode_pdu(pdu), txn, depth=depth, dag=dag,
            client_json=sync_event_json(pdu, event_id, spec.room_id),
            redacts=spec.redacts if spec.event_type == "m.room.redaction" else None,
            redacted_pdu_json=None if pruned is None else encode_pdu(pruned),
            redacted_client_json=None if pruned is None or spec.redacts is None
            else sync_event_json(pruned, spec.redacts, spec.room_id),
        )

    async def _reference_hashes(self, room: RoomCache, event_ids: list[str],
                                state: Mapping[tuple[str, str], StoredEvent]) -> dict[str, str]:
        """Rooms v1-2 cite events with their reference hashes: those of C{event_ids}."""
        known = {e.event_id: e.pdu for e in [*state.values(), *room.state.values()]}
        missing = [event_id for event_id in event_ids if event_id not in known]
        if missing:
            known.update(await self._dag_events.get_pdus(missing))
        return {e: reference_hash(known[e], room.room_version) for e in event_ids if e in known}

    def _build(self, spec: EventSpec, room_version: RoomVersion, pdu_room_id: str | None,
               prev_events: list[str], auth_events: list[str], depth: int,
               origin_server_ts: int | None = None,
               reference_hashes: Mapping[str, str] | None = None) -> tuple[str, JsonDict]:
        check_canonical_values(spec.content)
        event_id, pdu = build_pdu(
            room_version=room_version, room_id=pdu_room_id, sender=spec.sender,
            event_type=spec.event_type, content=spec.content, state_key=spec.state_key,
            prev_events=prev_events, auth_events=auth_events, depth=depth,
            origin_server_ts=origin_server_ts or now_ms(self._clock), redacts=spec.redacts,
            server_name=self._server_name, signing_key=self._signing_key, reference_hashes=reference_hashes,
        )
        if len(encode_pdu(pdu)) > MAX_EVENT_BYTES:
            raise TooLarge("M_TOO_LARGE", "Event is too large")
        return event_id, pdu

    async def _redacted_target(self, spec: EventSpec, redaction: JsonDict,
                               state: Mapping[tuple[str, str], JsonDict],
                               room_version: RoomVersion, *, same_sender_only: bool = True) -> JsonDict | None:
        """
        The pruned PDU that replaces the redacted event's (with
        C{unsigned.redacted_because}), or C{None} when it is already
        redacted (a second redaction changes nothing).

        @raise NotFound: for an event not in this room.
        @raise Forbidden: when the sender may not redact it.
        """
        target = await self._events.get_event(spec.redacts) if spec.redacts else None
        if target is None or target.room_id != spec.room_id:
            raise not_found(f"Cannot redact {spec.redacts}: no such event in room {spec.room_id}")
        if spec.sender_suspended and target.sender != spec.sender:
            raise user_suspended()
        if target.redacted_by is not None:
            return None
        try:
            check_redaction(redaction, pdu_with_id(target), state, room_version,
                            same_sender_only=same_sender_only)
        except AuthError as e:
            raise forbidden(str(e)) from None
        return redacted_pdu(target.pdu, redaction, spec.room_id, room_version)

    @staticmethod
    def _authorise(pdu: JsonDict, event_id: str, state: Mapping[tuple[str, str], JsonDict],
                   room_version: RoomVersion) -> None:
        try:
            check_event_auth({**pdu, "event_id": event_id}, state, room_version)
        except AuthError as e:
            raise forbidden(str(e)) from None

    async def rewrite_room(self, room_id: str, rewrite: Callable[[], Awaitable[None]]) -> None:
        """Change a room's stored events outside event creation (an admin's purge): under its lock, then forget it."""
        try:
            await self._locks.run(room_id, rewrite)
        finally:
            self._forget(room_id)  # whatever it cached since was read after the rewrite: dropping it is harmless

    def _forget(self, room_id: str) -> None:
        self._rooms.pop(room_id, None)
        self._push.forget(room_id)

    async def _audience(self, event: NewEvent, room: RoomCache) -> set[str]:
        """Who hears of the event: members (joined, invited, knocking), its target and sender."""
        if room.members is None:
            room.members = await self._events.get_members(event.room_id, AUDIENCE_MEMBERSHIPS)
        audience = set(room.members)
        audience.add(event.pdu["sender"])
        if event.pdu["type"] == "m.room.member":
            audience.add(event.pdu["state_key"])
        return audience


def encode_pdu(pdu: JsonDict) -> str:
    return encode_canonical_json(pdu).decode("utf-8")
