"""
Accepting events from other servers into rooms shared with them, in the
order of the spec's "Checks performed on receipt of a PDU"
(server-server-api.md):

  1-3. format, signatures (keys from the L{KeyRing}), content hash (an
       event whose hash does not match is redacted and goes on);
  4.   its auth events: fetched from the sending server when unknown
       (C{GET /event/{id}}, each checked the same way and stored as an
       outlier); the event is rejected if one is rejected or missing, or
       if it fails the auth rules against them;
  5.   the state before it: its prev events' snapshots, resolved; prev
       events we lack are asked for first (C{POST /get_missing_events}),
       and if a gap remains, the state at each missing one is fetched
       (C{GET /state_ids}, then C{/event} for what is unknown); rejected
       if it fails the auth rules against that state;
  6.   the current state: if that does not allow it, it is soft-failed
       (L{EventCreator.accept_received} decides and stores).

A rejected event is kept with its reason and used for nothing; a dropped
one (steps 1-2) is not kept. A room's events are handled one at a time,
in the order received.

Only room versions 10-12 are handled, as in L{ruma_tx.matrix.pdu_checks}.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence
from urllib.parse import quote

from twisted.internet.interfaces import IReactorThreads

from ruma_tx.logs import logger
from ruma_tx.matrix.auth_rules import AuthError, auth_types_for_event, check_event_auth
from ruma_tx.matrix.events import room_id_for_create_event
from ruma_tx.matrix.pdu_checks import InvalidPdu, ReceivedPdu, received_event_id
from ruma_tx.matrix.power_levels import CREATE
from ruma_tx.matrix.room_versions import ROOM_VERSIONS, RoomVersion, auth_event_ids, referenced_event_ids
from ruma_tx.matrix.sync import sync_event_json
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.concurrency import KeyedLocks
from ruma_tx.services.events import EventCreator, encode_pdu
from ruma_tx.services.ports.events import Events, NewEvent, NewRoom
from ruma_tx.services.ports.federation import FederationClient, FederationError, KeyRing
from ruma_tx.services.ports.room_dag import (
    OUTLIER,
    REJECTED,
    DagEvents,
    Outlier,
    StateAfter,
    StateKey,
)
from ruma_tx.services.received_pdus import OutliersAsText, PduChecker, Stored
from ruma_tx.services.room_dag import RoomDag, state_changes, without_auth_events
from ruma_tx.services.server_acls import ServerAcls

log = logger(__name__)

_V1 = "/_matrix/federation/v1"

#: C{get_missing_events}: how many events to ask for at a time (Synapse
#: answers at most 20).
MISSING_EVENTS_LIMIT = 20

#: At most this many missing events fetched before one received event, in
#: several requests: a sender catching up after an outage sends only its
#: latest event, so the gap is the messages sent meanwhile (Synapse asks
#: once, for 10). A longer gap is left to the state at its edge, and backfill.
MAX_MISSING_EVENTS = 100

#: At most this many events fetched for one received event (auth events
#: and state): a bound on what one PDU can make us do.
MAX_FETCHED_EVENTS = 1_000


class Rejected(Exception):
    """The event fails the auth rules (or one of its auth events does): stored as rejected."""


@dataclass
class _Fetching:
    """What fetching events for one received event has done so far."""

    origin: str
    room_id: str
    version: RoomVersion
    fetched: int = 0


class EventReceiver:
    """
    @param creator: stores accepted events like local ones (same locks,
        caches, push rules and wake-ups).
    @param federation: requests to other servers.
    @param key_ring: their signing keys.
    @param acls: the rooms' server ACLs: the PDUs of a denied origin (or
        sender's server) are refused.
    @param reactor: checks the many PDUs of a join in its threads.
    """

    def __init__(self, *, creator: EventCreator, events: Events, dag_events: DagEvents, dag: RoomDag,
                 federation: FederationClient, key_ring: KeyRing, acls: ServerAcls,
                 reactor: IReactorThreads) -> None:
        self._creator = creator
        self._acls = acls
        self._events = events
        self._dag_events = dag_events
        self._dag = dag
        self._federation = federation
        self._pdus = PduChecker(key_ring=key_ring, reactor=reactor)
        self._rooms = KeyedLocks()

    # -- entry points ----------------------------------------------------

    async def receive_pdus(self, origin: str, room_id: str, pdus: Sequence[JsonDict]
                           ) -> Mapping[str, str | None]:
        """
        Accept a room's PDUs from a transaction of C{origin}, in order
        (C{services.federation_inbound.RoomPdus}).

        @return: C{event_id -> None} for each PDU accepted, soft-failed or
            already known, or why it was dropped, rejected or refused (the
            room's server ACL denies C{origin} or the sender's server). PDUs
            of a room this server is not in are left out (their event id
            needs the room version).
        """
        return await self._rooms.run(room_id, self._receive_all, origin, room_id, pdus)

    async def _receive_all(self, origin: str, room_id: str, pdus: Sequence[JsonDict]) -> dict[str, str | None]:
        head = await self._events.get_room_head(room_id)
        if head is None or head.out_of_band:
            log.info("ignoring {count} PDUs from {origin} for unknown room {room_id}",
                     count=len(pdus), origin=origin, room_id=room_id)
            return {}
        version = ROOM_VERSIONS[head.room_version]
        acl = await self._acls.of_room(room_id)
        if not acl.allows(origin):
            log.info("refusing {count} PDUs of {room_id} from {origin}: denied by the room's server ACL",
                     count=len(pdus), origin=origin, room_id=room_id)
            return {e: f"{origin} is denied by the room's server ACL" for pdu in pdus
                    if (e := _event_id_of(pdu, version)) is not None}
        if not head.federated:
            # A remote server takes part: snapshots from now on (before the
            # state at the events it builds on is read).
            await self._creator.federate(room_id)
        outcomes: dict[str, str | None] = {}
        for pdu in pdus:
            sender_server = _server_of_sender(pdu)
            if sender_server is not None and not acl.allows(sender_server):
                # Not asked by the spec (it names the sending server only),
                # but an ACL that let a denied server's users in through a
                # relaying server would deny nothing.
                if (event_id := _event_id_of(pdu, version)) is not None:
                    outcomes[event_id] = f"{sender_server} is denied by the room's server ACL"
                continue
            event_id, error = await self._receive(_Fetching(origin, room_id, version), pdu, fetch_missing=True)
            if event_id is not None:
                outcomes[event_id] = error
        return outcomes

    async def join_room(self, origin: str, room_version: RoomVersion, join: JsonDict,
                        state: list[object], auth_chain: list[object]) -> str:
        """
        Store a room this server joined through C{origin}: call it with the
        join event as sent (signed by both servers) and the C{state} and
        C{auth_chain} of the C{send_join} answer, their PDUs as objects or
        as JSON text. Every event is checked (format, signatures, hashes,
        auth rules against its auth events), each once however often the
        answer repeats it; the state and auth chain are stored as outliers
        (never shown to clients), the join becomes the first event of this
        server's line, and the room's current state is C{state} plus the
        join. The room is federated from the start.

        Only a chunk of the answer's events is ever held as objects: the
        checked ones are kept as their JSON text (L{Stored}). Both lists
        are emptied: the answer (the JSON text is a view into its bytes) is
        freed once checked, before its events are stored.

        @return: the room id.
        @raise InvalidPdu: the join event or a state event is malformed or
            badly signed.
        @raise Rejected: the join is not allowed by that state, or a state
            event fails the auth rules.
        @raise RoomExists: this server has the room already.
        """
        joined = await self.checked(join, room_version)
        room_id = joined.pdu["room_id"]
        pdus, state_count = [*state, *auth_chain], len(state)
        state.clear()
        auth_chain.clear()
        distinct = await self._pdus.distinct(pdus)
        checked: dict[str, Stored] = {}
        state_keys: dict[int, tuple[StateKey, str]] = {}
        cited: set[str] = set()

        def take(at: int, outcome: ReceivedPdu | InvalidPdu) -> None:
            index = distinct[at]
            if isinstance(outcome, InvalidPdu):
                log.info("dropping an event of {room_id}'s state from {origin}: {e}",
                         room_id=room_id, origin=origin, e=outcome)
                return
            event_id, pdu = outcome.event_id, outcome.pdu
            if index < state_count and "state_key" in pdu:
                state_keys[index] = ((sys.intern(pdu["type"]), pdu["state_key"]), event_id)
            if event_id not in checked or index < checked[event_id].order:
                checked[event_id] = Stored(outcome.pdu_json, pdu["depth"], index)
                cited.update(auth_event_ids(pdu, room_version))

        await self._pdus.check_many([pdus[i] for i in distinct], room_version, take)
        del pdus, distinct
        rejected = await self._pdus.in_thread(_rejected_by_auth, checked, cited, room_version)
        state_ids = {key: event_id for _, (key, event_id) in sorted(state_keys.items())
                     if event_id not in rejected}
        needed = [CREATE, *auth_types_for_event(joined.pdu["type"], joined.pdu.get("state_key"),
                                                joined.pdu["sender"], joined.pdu["content"], room_version)]
        auth_state = {key: {**checked[state_ids[key]].pdu(), "event_id": state_ids[key]}
                      for key in needed if key in state_ids}
        try:
            check_event_auth({**without_auth_events(joined.pdu), "event_id": joined.event_id}, auth_state,
                             room_version)
        except AuthError as e:
            raise Rejected(f"the join is not allowed by the room's state: {e}") from None
        outliers = OutliersAsText([(e, stored) for e, stored in checked.items() if e not in rejected])
        create = auth_state.get(CREATE)
        creator = create["sender"] if create is not None else joined.pdu["sender"]
        await self._creator.store_joined_room(
            NewRoom(room_id, room_version.identifier, creator), outliers, state_ids,
            received_event(joined.event_id, joined.pdu, pdu_json=joined.pdu_json))
        return room_id

    # -- one event -------------------------------------------------------

    async def _receive(self, fetching: _Fetching, pdu: JsonDict, *, fetch_missing: bool
                       ) -> tuple[str | None, str | None]:
        """Steps 1-6 for one PDU: C{(event_id or None, error or None)}."""
        try:
            received = await self.checked(pdu, fetching.version)
        except InvalidPdu as e:
            log.info("dropping a PDU from {origin}: {e}", origin=fetching.origin, e=e)
            return _event_id_of(pdu, fetching.version), str(e)
        event_id, pdu = received.event_id, received.pdu
        if pdu.get("room_id") != fetching.room_id:
            return event_id, "the event is not in this room"
        if (await self._dag_events.get_statuses([event_id])).get(event_id) is not None:
            return event_id, None  # known already: nothing to do again
        try:
            await self._check_auth_events(fetching, event_id, pdu)
            state_before, base = await self._state_before(fetching, event_id, pdu, fetch_missing)
            try:
                check_event_auth({**without_auth_events(pdu), "event_id": event_id},
                                 await self._state_pdus(state_before), fetching.version)
            except AuthError as e:
                raise Rejected(f"not allowed by the state before it: {e}") from None
        except Rejected as e:
            log.info("rejecting {event_id} from {origin}: {e}", event_id=event_id, origin=fetching.origin, e=e)
            await self._dag_events.store_rejected(fetching.room_id, event_id, received.pdu_json, str(e))
            return event_id, f"rejected: {e}"
        after = dict(state_before)
        if "state_key" in pdu:
            after[(pdu["type"], pdu["state_key"])] = event_id
        if base is None:
            state_after = StateAfter(None, after)
        else:
            base_state = (await self._dag.state_after([base]))[base]
            state_after = StateAfter(base, state_changes(base_state, after))
        accepted = await self._creator.accept_received(received_event(event_id, pdu, pdu_json=received.pdu_json),
                                                       state_after, after)
        if not accepted:
            log.info("soft-failed {event_id} from {origin}", event_id=event_id, origin=fetching.origin)
        return event_id, None

    async def _state_before(self, fetching: _Fetching, event_id: str, pdu: JsonDict, fetch_missing: bool
                            ) -> tuple[dict[StateKey, str], str | None]:
        """
        Step 5: the state before the event, and a prev event with a snapshot
        to store the state after it as a delta on (C{None}: none has one).
        """
        prev_events = list(dict.fromkeys(referenced_event_ids(pdu, "prev_events")))
        missing = await self._without_snapshot(prev_events)
        if missing and fetch_missing:
            await self._fetch_missing(fetching, event_id, pdu)
            missing = await self._without_snapshot(prev_events)
        known = [p for p in prev_events if p not in missing]
        states = list((await self._dag.state_after(known)).values())
        for prev in missing:
            states.append(await self._state_after_remote(fetching, prev))
        resolved = await self._dag.resolve(fetching.version, states)
        return resolved, known[0] if known else None

    async def _without_snapshot(self, event_ids: list[str]) -> list[str]:
        states = await self._dag.state_after(event_ids)
        return [e for e in event_ids if e not in states]

    async def _fetch_missing(self, fetching: _Fetching, event_id: str, pdu: JsonDict) -> None:
        """
        Ask the sender for the events between our extremities and this one
        (again before the oldest received while a gap remains, up to
        L{MAX_MISSING_EVENTS}), and accept them, oldest first.
        """
        extremities = await self._dag_events.get_extremities(fetching.room_id)
        body = {
            "earliest_events": [e for e, _ in extremities],
            "limit": MISSING_EVENTS_LIMIT,
            "min_depth": min((depth for _, depth in extremities), default=0),
        }
        found: dict[str, JsonDict] = {event_id: pdu}
        latest = [event_id]
        for _ in range(MAX_MISSING_EVENTS // MISSING_EVENTS_LIMIT):
            new = await self._missing_events(fetching, {**body, "latest_events": latest}, found)
            if not new:
                break
            found.update(new)
            latest = await self._gap_edges(fetching, new, found)
            if not latest:
                break
        del found[event_id]
        for missing in sorted(found.values(), key=_depth):
            await self._receive(fetching, missing, fetch_missing=False)

    async def _missing_events(self, fetching: _Fetching, body: JsonDict, found: Mapping[str, JsonDict]
                              ) -> dict[str, JsonDict]:
        """One C{get_missing_events} request: the events of its answer not in C{found}, by id."""
        try:
            answer = await self._federation.post_json(
                fetching.origin, f"{_V1}/get_missing_events/{quote(fetching.room_id, safe='')}", body)
        except FederationError as e:
            log.info("get_missing_events from {origin} failed: {e}", origin=fetching.origin, e=e)
            return {}
        events = answer.get("events")
        new: dict[str, JsonDict] = {}
        for event in events if isinstance(events, list) else ():
            event_id = _event_id_of(event, fetching.version)
            if event_id is not None and event_id not in found:
                new[event_id] = event
        return new

    async def _gap_edges(self, fetching: _Fetching, new: Mapping[str, JsonDict], found: Mapping[str, JsonDict]
                         ) -> list[str]:
        """Those of the C{new} events with a prev event neither fetched nor known here (a gap before them)."""
        prevs = {event_id: [p for p in referenced_event_ids(event, "prev_events") if p not in found]
                 for event_id, event in new.items()}
        unknown = set(await self._without_snapshot(sorted({p for ps in prevs.values() for p in ps})))
        return [event_id for event_id, ps in prevs.items() if unknown.intersection(ps)]

    async def _state_after_remote(self, fetching: _Fetching, prev: str) -> dict[StateKey, str]:
        """The state after a prev event we lack, as its sender says (C{/state_ids}, then C{/event})."""
        try:
            answer = await self._federation.get_json(
                fetching.origin, f"{_V1}/state_ids/{quote(fetching.room_id, safe='')}",
                query={"event_id": prev})
        except FederationError as e:
            raise Rejected(f"the state at {prev} could not be fetched: {e}") from None
        pdu_ids = [e for e in answer.get("pdu_ids", []) if isinstance(e, str)]
        auth_chain_ids = [e for e in answer.get("auth_chain_ids", []) if isinstance(e, str)]
        pdus = await self._ensure_events(fetching, [*auth_chain_ids, *pdu_ids, prev])
        state: dict[StateKey, str] = {}
        for event_id in [*pdu_ids, prev]:
            found = pdus.get(event_id)
            if found is not None and "state_key" in found:
                state[(found["type"], found["state_key"])] = event_id
        return state

    # -- fetching and checking events ------------------------------------

    async def _ensure_events(self, fetching: _Fetching, event_ids: Iterable[str]) -> dict[str, JsonDict]:
        """
        The PDUs of those events that are stored or could be fetched and
        not rejected; those fetched are checked (steps 1-4) and stored as
        outliers, or as rejected.
        """
        wanted = list(dict.fromkeys(event_ids))
        statuses = await self._dag_events.get_statuses(wanted)
        found = await self._dag_events.get_pdus([e for e in wanted if statuses.get(e) not in (None, REJECTED)])
        for event_id in wanted:
            if event_id in found or statuses.get(event_id) == REJECTED:
                continue
            fetched = await self._fetch_event(fetching, event_id)
            if fetched is not None:
                found[event_id] = fetched
        return found

    async def _fetch_event(self, fetching: _Fetching, event_id: str) -> JsonDict | None:
        """One event from the sender, checked, its auth events first; stored as an outlier or rejected."""
        fetching.fetched += 1
        if fetching.fetched > MAX_FETCHED_EVENTS:
            return None
        try:
            answer = await self._federation.get_json(fetching.origin, f"{_V1}/event/{quote(event_id, safe='')}")
            pdus = answer.get("pdus")
            received = await self.checked(pdus[0] if isinstance(pdus, list) and pdus else None,
                                           fetching.version)
        except (FederationError, InvalidPdu) as e:
            log.info("could not fetch {event_id} from {origin}: {e}", event_id=event_id, origin=fetching.origin, e=e)
            return None
        if received.event_id != event_id or received.pdu.get("room_id") != fetching.room_id:
            return None
        pdu = received.pdu
        try:
            await self._check_auth_events(fetching, event_id, pdu)
        except Rejected as e:
            await self._dag_events.store_rejected(fetching.room_id, event_id, received.pdu_json, str(e))
            return None
        await self._dag_events.store_outliers(fetching.room_id, [Outlier(event_id, pdu, received.pdu_json)])
        return pdu

    async def _check_auth_events(self, fetching: _Fetching, event_id: str, pdu: JsonDict) -> None:
        """Step 4: its auth events (fetched when unknown) allow it, else L{Rejected}."""
        auth_ids = auth_event_ids(pdu, fetching.version)
        auth = await self._ensure_events(fetching, auth_ids)
        if len(auth) < len(set(auth_ids)):
            raise Rejected("an auth event is missing or rejected")
        _check_auth(event_id, pdu, auth.items(), fetching.version)

    async def check_pulled(self, origin: str, room_id: str, version: RoomVersion, pdus: Sequence[object]
                           ) -> list[NewEvent]:
        """
        Events of the room's past that C{origin} sent (C{/backfill}), as they
        can be stored: steps 1-4 checked (auth events fetched from C{origin}
        when unknown), not the state before them, which this server does not
        have. Dropped or rejected ones (stored as such) are left out, as are
        those of another room and those known already but as outliers (given
        as stored).
        """
        fetching = _Fetching(origin, room_id, version)
        received: dict[str, JsonDict] = {}
        for pdu in pdus:
            try:
                checked = await self.checked(pdu, version)
            except InvalidPdu as e:
                log.info("dropping a backfilled PDU from {origin}: {e}", origin=origin, e=e)
                continue
            if _room_of(checked.event_id, checked.pdu, version) == room_id:
                received.setdefault(checked.event_id, checked.pdu)
        statuses = await self._dag_events.get_statuses(list(received))
        outliers = await self._dag_events.get_pdus([e for e in received if statuses.get(e) == OUTLIER])
        cited = {a for pdu in received.values() for a in auth_event_ids(pdu, version)}
        events = []
        for event_id, pdu in sorted(received.items(), key=lambda item: _depth(item[1])):
            if event_id in outliers:
                events.append(received_event(event_id, outliers[event_id], room_id))
                continue
            if event_id in statuses:
                continue
            try:
                await self._check_auth_events(fetching, event_id, pdu)
            except Rejected as e:
                log.info("rejecting backfilled {event_id} from {origin}: {e}", event_id=event_id, origin=origin, e=e)
                await self._dag_events.store_rejected(room_id, event_id, encode_pdu(pdu), str(e))
                continue
            if event_id in cited:
                # Known before the deeper events of the batch it authorises are checked.
                await self._dag_events.store_outliers(room_id, [Outlier(event_id, pdu, encode_pdu(pdu))])
            events.append(received_event(event_id, pdu, room_id))
        return events

    async def checked(self, pdu: object, version: RoomVersion) -> ReceivedPdu:
        """Steps 1-3, with the keys of the servers that must have signed it."""
        return await self._pdus.checked(pdu, version)

    async def _state_pdus(self, state: Mapping[StateKey, str]) -> dict[StateKey, JsonDict]:
        pdus = await self._dag_events.get_pdus(list(state.values()))
        return {key: {**pdus[event_id], "event_id": event_id} for key, event_id in state.items() if event_id in pdus}


def received_event(event_id: str, pdu: JsonDict, room_id: str | None = None, *, pdu_json: str | None = None
                   ) -> NewEvent:
    """
    Another server's checked event, ready to store.

    @param room_id: the room, when the PDU does not say (a room version 12 create event).
    @param pdu_json: its canonical JSON, when known already.
    """
    room_id = room_id or pdu["room_id"]
    return NewEvent(event_id, room_id, pdu, pdu_json if pdu_json is not None else encode_pdu(pdu),
                    depth=pdu["depth"], client_json=sync_event_json(pdu, event_id, room_id))


def _rejected_by_auth(checked: Mapping[str, Stored], cited: set[str], version: RoomVersion) -> set[str]:
    """
    Step 4 for the events of a C{send_join} answer (in a thread): the auth
    rules against each one's auth events among them, those rejected before
    left out, by depth. The events others cite stay parsed meanwhile; the
    others are parsed only while checked.
    """
    parsed: dict[str, JsonDict] = {}

    def pdu_of(event_id: str) -> JsonDict:
        pdu = parsed.get(event_id)
        if pdu is None:
            pdu = checked[event_id].pdu()
            if event_id in cited:
                parsed[event_id] = pdu
        return pdu

    rejected: set[str] = set()
    for event_id, _ in sorted(checked.items(), key=lambda item: (item[1].depth, item[1].order)):
        pdu = pdu_of(event_id)
        auth = [(a, pdu_of(a)) for a in dict.fromkeys(auth_event_ids(pdu, version))
                if a in checked and a not in rejected]
        try:
            _check_auth(event_id, pdu, auth, version)
        except Rejected:
            rejected.add(event_id)
    return rejected


def _check_auth(event_id: str, pdu: JsonDict, auth: Iterable[tuple[str, JsonDict]], version: RoomVersion) -> None:
    """Step 4: the auth rules against the event's own auth events."""
    state = {(a["type"], a["state_key"]): {**a, "event_id": a_id} for a_id, a in auth if "state_key" in a}
    try:
        check_event_auth({**pdu, "event_id": event_id}, state, version)
    except AuthError as e:
        raise Rejected(f"not allowed by its auth events: {e}") from None


def _room_of(event_id: str, pdu: JsonDict, version: RoomVersion) -> object:
    """The room of an event: its C{room_id}, or the one a room version 12 create event's id names."""
    if version.room_id_from_create_event and pdu.get("type") == "m.room.create" and "room_id" not in pdu:
        return room_id_for_create_event(event_id)
    return pdu.get("room_id")


def _depth(pdu: JsonDict) -> int:
    depth = pdu.get("depth")
    return depth if isinstance(depth, int) else 0


def _server_of_sender(pdu: JsonDict) -> str | None:
    sender = pdu.get("sender")
    return sender.partition(":")[2] if isinstance(sender, str) else None


def _event_id_of(pdu: object, version: RoomVersion) -> str | None:
    try:
        return received_event_id(pdu, version) if isinstance(pdu, dict) else None
    except Exception:  # a PDU too malformed to hash has no id to answer for
        return None

