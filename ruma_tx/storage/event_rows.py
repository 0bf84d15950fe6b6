"""
Reading event rows: the columns every query of events selects, and the
one function that turns such a row into a L{StoredEvent}.
"""
from __future__ import annotations

from typing import Any, Sequence

from ruma_tx.matrix.events import StoredEvent


_COLUMNS = ("stream_ordering", "event_id", "room_id", "pdu", "redacted_by",
            "type", "state_key", "sender", "membership", "client_json")


def event_columns(alias: str = "", *, pdu: bool = True) -> str:
    """
    The columns L{stored_event} reads, of the events table (under C{alias},
    if given).

    @param pdu: read the PDU even of events with a stored client JSON (a
        reader that only shows events as stored leaves it: it is most of
        the bytes).
    """
    prefix = f"{alias}." if alias else ""
    columns = [prefix + column for column in _COLUMNS]
    if not pdu:
        columns[3] = f"CASE WHEN {prefix}client_json IS NULL THEN {prefix}pdu END AS pdu"
    return ", ".join(columns)


def stored_event(row: Sequence[Any]) -> StoredEvent:
    """
    A row of L{event_columns} as a L{StoredEvent}, its PDU left unparsed
    until read.
    """
    return StoredEvent(row[0], row[1], row[2], None, row[4], pdu_json=row[3],
                       columns=(row[5], row[6], row[7], row[8]), client_json=row[9])
