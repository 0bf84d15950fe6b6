"""
/sync's pure parts (spec: "Syncing"): how events are shown, the room
summary, lazy-loaded members, and what an empty response is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence, TypeAlias

import orjson

from ruma_tx.matrix.events import StoredEvent, client_event, pdu_with_id, room_event
from ruma_tx.matrix.filters import Filter, apply_event_fields
from ruma_tx.matrix.stream_token import StreamToken
from ruma_tx.matrix.types import JsonDict


class StoredJson:
    """
    An event's JSON as stored: the HTTP layer writes it into a response as
    it is (it is valid JSON already), never parsing it.
    """

    __slots__ = ("json",)

    def __init__(self, json: str) -> None:
        self.json = json

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoredJson) and other.json == self.json

    def __hash__(self) -> int:
        return hash(self.json)

    def __repr__(self) -> str:
        return f"StoredJson({self.json!r})"


def stored_fragment(value: object) -> object:
    """For orjson's C{default}: an event's stored JSON, written as it is."""
    if isinstance(value, StoredJson):
        return orjson.Fragment(value.json)
    raise TypeError(f"{type(value).__name__} is not JSON")


#: How /sync shows one event (see L{event_serializer}): a JSON object, or
#: the event's stored JSON.
EventSerializer: TypeAlias = Callable[[StoredEvent], "JsonDict | StoredJson"]

#: A room's state as stored events: C{(type, state_key) -> event}.
StoredState: TypeAlias = Mapping[tuple[str, str], StoredEvent]

#: Events in an invite's stripped state (spec: "Stripped state").
STRIPPED_STATE_TYPES = (
    "m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar",
    "m.room.canonical_alias", "m.room.encryption", "m.room.topic",
)


#: At most this many heroes in a room summary (spec: 5).
MAX_HEROES = 5


#: Changes that can change a room's summary (member counts, heroes).
SUMMARY_TYPES = {"m.room.member", "m.room.name", "m.room.canonical_alias"}


def state_section(state_after: bool) -> str:
    """
    Where a room's state goes in /sync: C{state_after} when the client asked
    with C{use_state_after} (spec v1.16; C{state} must then be left out).
    """
    return "state_after" if state_after else "state"


def empty_joined_room(now: StreamToken, state_after: bool = False) -> JsonDict:
    return {
        "timeline": {"events": [], "limited": False, "prev_batch": str(now)},
        state_section(state_after): {"events": []},
        "ephemeral": {"events": []},
        "account_data": {"events": []},
        "unread_notifications": {"notification_count": 0, "highlight_count": 0},
    }


def sync_event(event: StoredEvent) -> JsonDict:
    """An event as /sync shows it (no C{room_id} inside a room's section)."""
    return room_event(event, include_room_id=False)


def sync_event_json(pdu: JsonDict, event_id: str, room_id: str) -> str:
    """
    L{sync_event} of an event not stored yet, as JSON: stored beside the
    PDU, so /sync shows the event without parsing it.
    """
    shown = client_event(pdu, event_id, room_id, include_room_id=False, unsigned=pdu.get("unsigned"))
    return orjson.dumps(shown).decode("utf-8")


def event_serializer(sync_filter: Filter) -> EventSerializer:
    """
    How the filter wants events: client format (default) or the PDU as
    stored (C{event_format: federation}), cut to C{event_fields} if given.
    """
    if sync_filter.event_format != "federation" and not sync_filter.event_fields:
        return shown_as_stored
    return event_dict_serializer(sync_filter)


def event_dict_serializer(sync_filter: Filter) -> Callable[[StoredEvent], JsonDict]:
    """L{event_serializer}, always as a JSON object (one the caller may change)."""
    base: Callable[[StoredEvent], JsonDict] = (
        pdu_with_id if sync_filter.event_format == "federation" else sync_event)
    fields = sync_filter.event_fields
    if not fields:
        return base
    return lambda event: apply_event_fields(base(event), fields)


def with_transaction_id(event: StoredEvent, txn_id: str, sync_filter: Filter) -> JsonDict | StoredJson:
    """
    An event its sender's device sent, as /sync shows it to that device:
    with C{unsigned.transaction_id}. Added to the stored JSON when that has
    no C{unsigned} (the usual case), without parsing it.
    """
    stored = event.client_json
    if stored is not None and sync_filter.event_format != "federation" and not sync_filter.event_fields:
        if '"unsigned"' not in stored:
            unsigned = orjson.dumps({"transaction_id": txn_id}).decode("utf-8")
            return StoredJson(f'{stored[:-1]},"unsigned":{unsigned}}}')
        shown: JsonDict = orjson.loads(stored)
    else:
        shown = event_dict_serializer(sync_filter)(event)
    shown.setdefault("unsigned", {})["transaction_id"] = txn_id
    return shown


def shown_as_stored(event: StoredEvent) -> JsonDict | StoredJson:
    """L{sync_event}, from the event's stored client JSON when it has one (never parsed)."""
    if event.client_json is not None:
        return StoredJson(event.client_json)
    return sync_event(event)


def stripped_event(event: StoredEvent) -> JsonDict:
    return {"type": event.type, "state_key": event.state_key, "content": event.content,
            "sender": event.sender}


def lazy_members(state_events: Sequence[StoredEvent], timeline: Sequence[StoredEvent],
                 user_id: str, state_after: bool = False) -> list[StoredEvent]:
    """
    Lazy-loading members: of the member events, keep only those of the
    timeline's senders and the user's own (spec: "Lazy-loading room members").
    In C{state_after} also those of the members the timeline's member events
    change: the client takes no state from the timeline then.
    """
    wanted = {e.sender for e in timeline} | {user_id}
    if state_after:
        wanted |= {e.state_key for e in timeline if e.type == "m.room.member" and e.state_key is not None}
    return [e for e in state_events if e.type != "m.room.member" or e.state_key in wanted]


@dataclass(frozen=True)
class MemberCounts:
    """
    What a room's summary is made of, read without reading its members.

    @ivar first_members: the first C{MAX_HEROES + 1} joined then invited
        members, each group by user id (the heroes, once the syncing user
        is left out).
    """

    joined: int
    invited: int
    named: bool
    first_members: tuple[str, ...]


def member_counts(state: StoredState) -> MemberCounts:
    """L{MemberCounts} of a room's whole current state."""
    joined = sorted(k for (t, k), e in state.items() if t == "m.room.member" and e.membership == "join")
    invited = sorted(k for (t, k), e in state.items() if t == "m.room.member" and e.membership == "invite")
    named = ("m.room.name", "") in state or ("m.room.canonical_alias", "") in state
    return MemberCounts(len(joined), len(invited), named, tuple((joined + invited)[:MAX_HEROES + 1]))


def room_summary(counts: MemberCounts, user_id: str) -> JsonDict:
    summary: JsonDict = {"m.joined_member_count": counts.joined, "m.invited_member_count": counts.invited}
    if not counts.named:
        summary["m.heroes"] = [u for u in counts.first_members if u != user_id][:MAX_HEROES]
    return summary


def is_empty_response(response: Mapping[str, object]) -> bool:
    return set(response) <= {"next_batch"}


def empty_response(token: StreamToken) -> JsonDict:
    return {"next_batch": str(token)}
