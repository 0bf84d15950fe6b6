"""
Synapse's stored events as ruma_tx stores them (C{ruma-admin
import-synapse}): pure rules, no I/O.

Synapse keeps each event's JSON in C{event_json.json} exactly as it was
received or created (signed, hashed: it is kept unchanged), plus its own
bookkeeping: C{unsigned.age_ts} inside the JSON and flags such as
C{soft_failed} in C{event_json.internal_metadata}.
"""
from __future__ import annotations

import json

from canonicaljson import encode_canonical_json

from ruma_tx.matrix.types import JsonDict

#: What of a stored C{unsigned} is served with the event: the stripped room
#: state an invite or knock came with (the invitee's view of the room). The
#: rest (C{age_ts}...) is Synapse's bookkeeping.
SERVED_UNSIGNED = ("invite_room_state", "knock_room_state")


def imported_pdu(event_json: str | bytes) -> JsonDict:
    """
    The PDU of a Synapse C{event_json.json}: the event unchanged (so its
    event id, hashes and signatures stay valid), with only the served parts
    of C{unsigned} (not covered by signatures).

    @raise ValueError: the text is not a JSON object.
    """
    pdu = json.loads(event_json)
    if not isinstance(pdu, dict):
        raise ValueError("an event's JSON must be an object")
    unsigned = pdu.pop("unsigned", None)
    if isinstance(unsigned, dict):
        served = {key: unsigned[key] for key in SERVED_UNSIGNED if key in unsigned}
        if served:
            pdu["unsigned"] = served
    return pdu


def canonical_pdu_json(pdu: JsonDict) -> str:
    """A PDU as stored: canonical JSON (floats and big integers of old rooms kept as they are)."""
    return encode_canonical_json(pdu).decode("utf-8")


def internal_flags(internal_metadata: str | bytes | None) -> JsonDict:
    """Synapse's C{event_json.internal_metadata}, parsed (C{{}} when empty or not an object)."""
    if not internal_metadata:
        return {}
    flags = json.loads(internal_metadata)
    return flags if isinstance(flags, dict) else {}


def is_soft_failed(flags: JsonDict) -> bool:
    """Whether Synapse soft-failed the event: kept in the DAG, never shown to clients."""
    return bool(flags.get("soft_failed"))


def redaction_applies(flags: JsonDict, redaction_sender: str, target_sender: str) -> bool:
    """
    Whether Synapse applies an accepted redaction to its target, decided
    as Synapse decides when it serves the target: a redaction whose sender
    lacked the power to redact others' events was accepted provisionally
    (its C{recheck_redaction} flag) and counts only when it comes from the
    target's sender's server.
    """
    if not flags.get("recheck_redaction"):
        return True
    return _server(redaction_sender) == _server(target_sender)


def _server(user_id: str) -> str:
    return user_id.partition(":")[2]
