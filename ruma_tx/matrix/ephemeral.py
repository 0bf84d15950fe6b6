"""
Typing notifications and receipts (spec: "Typing Notifications",
"Receipts"): their events and the rules for what clients may send.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ruma_tx.matrix.errors import invalid_param
from ruma_tx.matrix.types import JsonDict

#: Longest typing timeout honoured (Synapse: "Limit timeout to stop people
#: from setting silly typing timeouts", 120 s).
MAX_TYPING_TIMEOUT_MS = 120_000

#: The timeout when the client gives none (Synapse's default).
DEFAULT_TYPING_TIMEOUT_MS = 30_000

FULLY_READ = "m.fully_read"

READ = "m.read"

READ_PRIVATE = "m.read.private"

RECEIPT_TYPES = (READ, READ_PRIVATE, FULLY_READ)


@dataclass(frozen=True)
class Receipt:
    """
    One user's receipt of one type in a room (and thread).

    @ivar thread_id: C{None} for an unthreaded receipt.
    """

    room_id: str
    user_id: str
    receipt_type: str
    thread_id: str | None
    event_id: str
    ts: int


def typing_event(user_ids: Iterable[str]) -> JsonDict:
    """The C{m.typing} event of a room where C{user_ids} type."""
    return {"type": "m.typing", "content": {"user_ids": sorted(user_ids)}}


def typing_timeout_ms(timeout: int | None) -> int:
    """The timeout to honour for a requested one (in ms)."""
    if timeout is None:
        return DEFAULT_TYPING_TIMEOUT_MS
    return max(0, min(timeout, MAX_TYPING_TIMEOUT_MS))


def receipt_event(receipts: Iterable[Receipt]) -> JsonDict:
    """
    One C{m.receipt} event for a room's receipts (spec: "receipts SHOULD be
    batched into one event per room"):
    C{{event_id: {receipt_type: {user_id: {"ts": ..., "thread_id"?: ...}}}}}.
    """
    content: dict[str, dict[str, dict[str, JsonDict]]] = {}
    for receipt in receipts:
        entry: JsonDict = {"ts": receipt.ts}
        if receipt.thread_id is not None:
            entry["thread_id"] = receipt.thread_id
        content.setdefault(receipt.event_id, {}).setdefault(receipt.receipt_type, {})[receipt.user_id] = entry
    return {"type": "m.receipt", "content": content}


def check_receipt(receipt_type: str, thread_id: object) -> None:
    """
    @raise MatrixError: 400 M_INVALID_PARAM for an unknown receipt type, a
        C{thread_id} that is not a non-empty string, or one given with
        C{m.fully_read} (spec: "provided for an incompatible receipt type").
    """
    if receipt_type not in RECEIPT_TYPES:
        raise invalid_param(f"Receipt type must be one of {', '.join(RECEIPT_TYPES)}")
    if thread_id is None:
        return
    if not isinstance(thread_id, str) or not thread_id:
        raise invalid_param("thread_id field must be a non-empty string")
    if receipt_type == FULLY_READ:
        raise invalid_param("thread_id is not allowed for m.fully_read")


