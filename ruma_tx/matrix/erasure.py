"""
Erased users (spec: C{POST /account/deactivate} with C{erase}: "the user's
content [...] erased as much as possible"; Synapse's admin deactivation
with C{erase}): how their events are served to those who may not see them
whole.

As Synapse, an event an erased user sent is served pruned by the room
version's redaction algorithm to every user who was not joined to the room
when it was sent (later joiners, peekers of a world-readable room); users
who were joined keep seeing it as it was.
"""
from __future__ import annotations

import orjson

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.redaction import redact
from ruma_tx.matrix.room_versions import RoomVersion
from ruma_tx.matrix.types import JsonDict
from ruma_tx.matrix.visibility import HistoryView


def sees_whole(view: HistoryView, event: StoredEvent) -> bool:
    """Whether the viewer was joined to the room when the event was sent."""
    return view.membership_at(event.stream_ordering) == "join"


def erased_event(event: StoredEvent, room_version: RoomVersion | str) -> StoredEvent:
    """
    The event as served once its sender is erased: its PDU and its stored
    client JSON (whichever it was read with) pruned. It is marked redacted
    by itself (no redaction event exists) so that, as Synapse's pruned
    events count as redacted, no edit of it is bundled with it.
    """
    try:
        pdu: JsonDict | None = _pruned(event.pdu, room_version)
    except LookupError:  # read without its PDU: shown from its client JSON
        pdu = None
    client_json = None
    if event.client_json is not None:
        client_json = orjson.dumps(_pruned(orjson.loads(event.client_json), room_version)).decode("utf-8")
    return StoredEvent(event.stream_ordering, event.event_id, event.room_id, pdu, event.event_id,
                       columns=(event.type, event.state_key, event.sender, event.membership),
                       client_json=client_json)


def _pruned(event: JsonDict, room_version: RoomVersion | str) -> JsonDict:
    """C{redact}, keeping C{unsigned.redacted_because} of an event already redacted."""
    pruned = redact(event, room_version)
    because = (event.get("unsigned") or {}).get("redacted_because")
    if because is not None:
        pruned["unsigned"] = {"redacted_because": because}
    return pruned
