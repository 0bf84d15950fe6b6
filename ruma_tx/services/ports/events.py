"""
Ports: records and protocols shared by services and the storage that implements them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.filters import RoomEventFilter
from ruma_tx.matrix.relations import EventRelation
from ruma_tx.matrix.sync import MemberCounts
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.ports.room_dag import DagUpdate, Outlier

#: Rooms' state: C{room_id -> (type, state_key) -> event}.
StateByRoom = dict[str, dict[tuple[str, str], StoredEvent]]

#: Per room, per key: the position state resolution set it at, and the event it chose.
ResolvedByRoom = dict[str, dict[tuple[str, str], tuple[int, StoredEvent]]]

#: Stream ranges C{(after, upto)} a user may see (C{upto} None: open).
Ranges = Sequence[tuple[int, int | None]]


@dataclass(frozen=True)
class RoomHead:
    """What a new event of the room builds on."""

    room_version: str
    last_event_id: str | None
    depth: int
    #: Shared with other servers (its events form a DAG: see ports.room_dag).
    federated: bool = False
    #: Known only by memberships other servers told of (schema 028): this
    #: server is not in it and holds none of its state.
    out_of_band: bool = False


@dataclass(frozen=True)
class PushOutcome:
    """
    What storing an event records for push notifications, in the same
    transaction as the event.

    @ivar actions: C{(user_id, notify, highlight)} of each local user the
        event notifies or highlights.
    @ivar read_by: the local sender, whose read position moves to the event
        (spec, "Marking notifications as read": "by sending an event").
    @ivar detailed: C{user_id -> actions as JSON} for the users whose
        actions say more than notify and highlight (a sound, say): push
        gateways get them as tweaks, C{/notifications} as actions.
    """

    actions: tuple[tuple[str, bool, bool], ...] = ()
    read_by: str | None = None
    detailed: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NewEvent:
    """An event ready to persist (built, signed and authorised)."""

    event_id: str
    room_id: str
    pdu: JsonDict
    pdu_json: str
    txn: tuple[str, str, str, str] | None = None   # (user_id, device_id, scope, txn_id)
    #: For a redaction: the redacted event's pruned PDU (with
    #: unsigned.redacted_because), which replaces its stored PDU.
    redacted_pdu_json: str | None = None
    depth: int = 0
    #: For a redaction: the id of the event it redacts.
    redacts: str | None = None
    #: The event in /sync's client format (see C{StoredEvent.client_json});
    #: for a redaction, C{redacted_client_json} is the redacted event's.
    client_json: str | None = None
    redacted_client_json: str | None = None
    push: PushOutcome = PushOutcome()
    #: Its relation to another event (C{content["m.relates_to"]}), if valid.
    relation: EventRelation | None = None
    #: In a federated room: its snapshot and extremities (None in a local room).
    dag: DagUpdate | None = None


@dataclass(frozen=True)
class NewRoom:
    """
    A room being created, stored with its initial events in one transaction.

    @ivar alias: a local alias to point at it, or C{None}.
    @ivar published: whether it is in the published room directory.
    """

    room_id: str
    room_version: str
    creator: str
    alias: str | None = None
    published: bool = False


class RoomExists(Exception):
    """
    A room with this id is stored already: in room version 12 the id is the
    create event's hash, so two identical createRoom requests in the same
    millisecond make the same id.
    """


class DuplicateTransaction(Exception):
    """The transaction id was used meanwhile; C{event_id} is its event."""

    def __init__(self, event_id: str):
        super().__init__(event_id)
        self.event_id = event_id


class Events(Protocol):
    """What the services need of event storage (implemented by C{ruma_tx.storage.events.EventStore})."""

    async def get_room_head(self, room_id: str) -> RoomHead | None: ...
    async def persist_event(self, event: NewEvent, position: int, now_ms: int) -> None: ...
    async def persist_room(self, room: NewRoom, events: Sequence[NewEvent], positions: Sequence[int],
                           now_ms: int) -> None: ...
    async def persist_out_of_band(self, room: NewRoom, event: NewEvent, position: int) -> None: ...
    async def persist_joined_room(self, room: NewRoom, outliers: Sequence[Outlier], state: Mapping[tuple[str, str], str],
                                  join: NewEvent, position: int) -> None: ...
    async def get_txn_event(self, user_id: str, device_id: str, scope: str, txn_id: str) -> str | None: ...
    async def get_txn_ids(self, user_id: str, device_id: str, event_ids: list[str]) -> dict[str, str]: ...
    async def get_event(self, event_id: str) -> StoredEvent | None: ...
    async def get_state(self, room_id: str, keys: list[tuple[str, str]] | None=None, *,
                        types: list[str] | None = None) -> dict: ...
    async def get_state_at(self, room_id: str, position: int, types: list[str] | None=None) -> dict: ...
    async def get_members(self, room_id: str,
                          memberships: Sequence[str] = ('join', 'invite')) -> dict[str, str]: ...
    async def get_rooms_for_user(self, user_id: str) -> dict[str, tuple[str, int]]: ...
    async def forget_room(self, user_id: str, room_id: str, membership_position: int) -> None: ...
    async def get_forgotten_rooms(self, user_id: str) -> dict[str, int]: ...
    async def get_membership_changes(self, user_id: str, after: int, upto: int) -> list[StoredEvent]: ...
    async def get_room_events(self, room_id: str, *, after: int | None, upto: int, limit: int, backwards: bool=True) -> list[StoredEvent]: ...


class Filters(Protocol):
    """What the services need of filter storage (implemented by C{ruma_tx.storage.filters.FilterStore})."""

    async def add_filter(self, user_id: str, filter_json: str) -> str: ...
    async def get_filter(self, user_id: str, filter_id: str) -> str | None: ...


class SyncReads(Protocol):
    """What /sync reads of many rooms at once (C{ruma_tx.storage.sync_reads.SyncReadStore})."""

    async def get_latest_events(
        self, windows: Mapping[str, tuple[int, int]], *, limit: int,
        event_filter: RoomEventFilter | None = None, hidden_senders: Sequence[str] = (), pdu: bool = True,
    ) -> dict[str, list[StoredEvent]]: ...
    async def get_current_state(self, room_ids: Sequence[str], *, pdu: bool = True) -> StateByRoom: ...
    async def get_member_counts(self, room_ids: Sequence[str]) -> dict[str, MemberCounts]: ...
    async def get_current_state_keys(self, keys: Mapping[str, Sequence[tuple[str, str]]], *,
                                     pdu: bool = True) -> StateByRoom: ...
    async def get_current_state_of_keys(self, room_ids: Sequence[str], keys: Sequence[tuple[str, str]], *,
                                        pdu: bool = True) -> StateByRoom: ...
    async def get_current_state_of_types(self, types: Mapping[str, Sequence[str]], *,
                                         pdu: bool = True) -> StateByRoom: ...
    async def get_state_at(self, positions: Mapping[str, int], *, pdu: bool = True) -> StateByRoom: ...
    async def get_state_changes(self, windows: Mapping[str, tuple[int, int]], *,
                                pdu: bool = True) -> StateByRoom: ...
    async def get_resolved_state(self, windows: Mapping[str, tuple[int, int]], *,
                                 pdu: bool = True) -> ResolvedByRoom: ...


class History(Protocol):
    """What the services need of history storage (implemented by C{ruma_tx.storage.history.HistoryStore})."""

    async def get_timelines(self, room_id: str, user_id: str) -> tuple[list, list]: ...
    async def get_timelines_many(
        self, room_ids: list[str], user_id: str
    ) -> dict[str, tuple[list[tuple[int, str | None]], list[tuple[int, str | None]]]]: ...
    async def get_page(self, room_id: str, *, after: int, upto: int, ranges: Ranges, limit: int,
                       backwards: bool, event_filter: RoomEventFilter | None = None) -> list[StoredEvent]: ...
    async def get_state_keys_at(self, room_id: str, position: int, keys: list[tuple[str, str]]) -> dict: ...
    async def get_joined_member_events(self, room_id: str) -> list[StoredEvent]: ...
    async def find_by_timestamp(self, room_id: str, ts: int, *, forwards: bool, upto: int, ranges: Ranges) -> StoredEvent | None: ...
