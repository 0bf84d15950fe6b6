"""
Which of our events a destination server gets, and in which transaction
(Server-Server API, "Transactions"): pure rules over rows read from the
events table, so they are tested without a database.

A destination gets an event when this server originated it (its sender is
one of our users) and, just before it, one of the destination's users was
joined to its room, or when the event is the membership of one of the
destination's users (an invite, a kick, a ban sent to a remote user).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from ruma_tx.matrix.types import JsonDict

#: Spec: a transaction holds at most 50 PDUs and 100 EDUs.
MAX_PDUS = 50
MAX_EDUS = 100


def server_of(user_id: str) -> str:
    """The server name of a user id: what follows its first ':'."""
    return user_id.partition(":")[2]


@dataclass(frozen=True)
class EventRow:
    """
    An event as the sending queue reads it.

    @ivar position: its stream ordering.
    @ivar membership: C{content.membership} of an C{m.room.member} event.
    @ivar pdu: the stored PDU, as canonical JSON.
    """

    position: int
    room_id: str
    event_type: str
    state_key: str | None
    sender: str
    membership: str | None
    pdu: str


@dataclass(frozen=True)
class Batch:
    """
    The PDUs of a destination's next transaction.

    @ivar events: the rows to send, in stream order.
    @ivar upto: once they are acknowledged, every position up to this one
        is done with for the destination.
    """

    events: list[EventRow]
    upto: int


class MembershipWalk:
    """
    Follows which of a destination's users are joined to which rooms
    while walking events in stream order.

    @param destination: the server the events would go to.
    @param our_server: this server's name: only its events are sent.
    @param joined: for each room, the destination's users joined to it
        at the position the walk starts from.
    """

    def __init__(self, destination: str, our_server: str, joined: Mapping[str, Iterable[str]]) -> None:
        self._destination = destination
        self._our_server = our_server
        self._joined = {room_id: set(users) for room_id, users in joined.items()}

    def concerns(self, row: EventRow) -> bool:
        """
        Whether the destination gets C{row}; then note the membership it
        changes. Call it once per row, in stream order.
        """
        targets_destination = (row.event_type == "m.room.member" and row.state_key is not None
                               and server_of(row.state_key) == self._destination)
        sent = server_of(row.sender) == self._our_server and (
            bool(self._joined.get(row.room_id)) or targets_destination)
        if targets_destination:
            assert row.state_key is not None
            users = self._joined.setdefault(row.room_id, set())
            if row.membership == "join":
                users.add(row.state_key)
            else:
                users.discard(row.state_key)
        return sent


def next_batch(walk: MembershipWalk, rows: Iterable[EventRow], scanned_upto: int,
               limit: int = MAX_PDUS) -> Batch:
    """
    The first C{limit} events of C{rows} (all rows after the destination's
    acknowledged position, in stream order, up to C{scanned_upto}) that
    the destination gets.
    """
    picked: list[EventRow] = []
    for row in rows:
        if walk.concerns(row):
            picked.append(row)
            if len(picked) == limit:
                return Batch(picked, row.position)
    return Batch(picked, scanned_upto)


def latest_per_room(walk: MembershipWalk, rows: Iterable[EventRow]) -> list[EventRow]:
    """
    Catching up after an outage: of the events the destination gets, only
    the latest of each room, in stream order. The destination asks for
    the gap with C{/get_missing_events} when it sees their
    C{prev_events} (the spec's way; Synapse catches up the same way).
    """
    latest: dict[str, EventRow] = {}
    for row in rows:
        if walk.concerns(row):
            latest[row.room_id] = row
    return sorted(latest.values(), key=lambda row: row.position)


def transaction_body(origin: str, origin_server_ts: int, pdus: Iterable[JsonDict],
                     edus: Iterable[JsonDict]) -> JsonDict:
    """The body of C{PUT /_matrix/federation/v1/send/{txnId}}."""
    return {"origin": origin, "origin_server_ts": origin_server_ts,
            "pdus": list(pdus), "edus": list(edus)}


def federation_pdu(stored: JsonDict) -> JsonDict:
    """A stored PDU as sent: without C{unsigned} (local, e.g. a redaction's C{redacted_because})."""
    return {key: value for key, value in stored.items() if key != "unsigned"}


def pdu_errors(answer: JsonDict) -> dict[str, str]:
    """
    The PDUs a destination refused in its 200 answer (C{pdus}: event id
    to C{{"error": ...}}), with their errors: logged, never retried.
    """
    results = answer.get("pdus")
    if not isinstance(results, dict):
        return {}
    return {event_id: str(result.get("error")) for event_id, result in results.items()
            if isinstance(result, dict) and result.get("error")}
