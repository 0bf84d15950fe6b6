"""
/sync's pure parts (spec: "Syncing"): how events are shown, the room
summary, lazy-loaded members, and what an empty response is.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence, TypeAlias

from ruma_tx.matrix.events import StoredEvent, pdu_with_id, room_event
from ruma_tx.matrix.filters import Filter, apply_event_fields
from ruma_tx.matrix.stream_token import StreamToken
from ruma_tx.matrix.types import JsonDict

#: How /sync shows one event (see L{event_serializer}).
EventSerializer: TypeAlias = Callable[[StoredEvent], JsonDict]

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


def empty_joined_room(now: StreamToken) -> JsonDict:
    return {
        "timeline": {"events": [], "limited": False, "prev_batch": str(now)},
        "state": {"events": []},
        "ephemeral": {"events": []},
        "account_data": {"events": []},
        "unread_notifications": {"notification_count": 0, "highlight_count": 0},
    }


def sync_event(event: StoredEvent) -> JsonDict:
    """An event as /sync shows it (no C{room_id} inside a room's section)."""
    return room_event(event, include_room_id=False)


def event_serializer(sync_filter: Filter) -> EventSerializer:
    """
    How the filter wants events: client format (default) or the PDU as
    stored (C{event_format: federation}), cut to C{event_fields} if given.
    """
    base: EventSerializer = pdu_with_id if sync_filter.event_format == "federation" else sync_event
    fields = sync_filter.event_fields
    if not fields:
        return base
    return lambda event: apply_event_fields(base(event), fields)


def stripped_event(event: StoredEvent) -> JsonDict:
    return {"type": event.type, "state_key": event.state_key, "content": event.content,
            "sender": event.sender}


def lazy_members(state_events: Sequence[StoredEvent], timeline: Sequence[StoredEvent],
                 user_id: str) -> list[StoredEvent]:
    """
    Lazy-loading members: of the member events, keep only those of the
    timeline's senders and the user's own (spec: "Lazy-loading room members").
    """
    wanted = {e.sender for e in timeline} | {user_id}
    return [e for e in state_events if e.type != "m.room.member" or e.state_key in wanted]


def room_summary(state: StoredState, user_id: str) -> JsonDict:
    joined = sorted(k for (t, k), e in state.items()
                    if t == "m.room.member" and e.content.get("membership") == "join")
    invited = sorted(k for (t, k), e in state.items()
                     if t == "m.room.member" and e.content.get("membership") == "invite")
    summary: JsonDict = {"m.joined_member_count": len(joined), "m.invited_member_count": len(invited)}
    if ("m.room.name", "") not in state and ("m.room.canonical_alias", "") not in state:
        summary["m.heroes"] = [u for u in joined + invited if u != user_id][:MAX_HEROES]
    return summary


def is_empty_response(response: Mapping[str, object]) -> bool:
    return set(response) <= {"next_batch"}


def empty_response(token: StreamToken) -> JsonDict:
    return {"next_batch": str(token)}
