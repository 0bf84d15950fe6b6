"""
The state of imported rooms (see L{ruma_tx.storage.synapse_import.room_events}).

A room another server takes part in keeps the state after each of its
events (schema 026). Synapse keeps it the same way: state groups, each a
full state or the keys it changes on a previous group (C{state_groups},
C{state_group_edges}, C{state_groups_state}), one per event
(C{event_to_state_groups}: the state after the event). Those are copied
as they are, under the same group ids (the import fills a new database,
whose own groups only start after the last copied one).

Once a room's events are in, its current state and forward extremities
become exactly Synapse's (L{finish_room}).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Sequence

import orjson

from ruma_tx.services.ports.room_dag import StateAfter, StateKey
from ruma_tx.services.ports.synapse_import import SynapseSource
from ruma_tx.storage.database import Database, Transaction
from ruma_tx.storage.room_dag import apply_current_state, store_state_after
from ruma_tx.storage.synapse_import.rooms import placeholders
from ruma_tx.storage.user_directory import record_joined_room_publicity

#: Synapse state groups read per query (an C{IN} list SQLite takes).
GROUPS_PER_QUERY = 500


@dataclass(frozen=True)
class TargetRoom:
    """An imported room, as the rooms step stored it."""

    room_id: str
    room_version: str
    federated: bool
    out_of_band: bool


@dataclass
class StateGroupCopy:
    """
    Synapse state groups to copy: C{(group, prev group, chain length)},
    each after its prev group, and their entries C{(group, type,
    state_key, event_id)}.
    """

    groups: list[tuple[int, int | None, int]] = field(default_factory=list)
    entries: list[tuple[int, str, str, str]] = field(default_factory=list)


async def read_state_groups(source: SynapseSource, database: Database, wanted: Collection[int]) -> StateGroupCopy:
    """The groups of C{wanted}, and those they build on, that ruma_tx does not hold yet."""
    prev: dict[int, int | None] = {}
    lengths: dict[int, int] = {}   # of groups held already
    frontier = set(wanted)
    while frontier:
        rows = await database.fetch_all(
            "SELECT group_id, chain_length FROM state_groups WHERE group_id = ANY(%s)", (sorted(frontier),))
        lengths.update(rows)
        missing = sorted(frontier - lengths.keys())
        edges: dict[int, int] = {}
        for chunk in _chunks(missing):
            edges.update(await source.fetch_all(
                "SELECT state_group, prev_state_group FROM state_group_edges"
                f" WHERE state_group IN ({placeholders(chunk)})", chunk))
        for group in missing:
            prev[group] = edges.get(group)
        frontier = {p for p in edges.values() if p not in prev and p not in lengths}
    copy = StateGroupCopy()
    for group in sorted(prev, key=lambda g: _chain_length(g, prev, lengths)):
        copy.groups.append((group, prev[group], _chain_length(group, prev, lengths)))
    for chunk in _chunks(sorted(prev)):
        copy.entries.extend(await source.fetch_all(
            "SELECT state_group, type, state_key, event_id FROM state_groups_state"
            f" WHERE state_group IN ({placeholders(chunk)})", chunk))
    return copy


def _chain_length(group: int, prev: dict[int, int | None], lengths: dict[int, int]) -> int:
    """Deltas from C{group} down to a full snapshot (C{lengths}: of groups held already)."""
    steps = 0
    while group not in lengths:
        parent = prev[group]
        if parent is None:
            return steps
        group, steps = parent, steps + 1
    return lengths[group] + steps


def _chunks(values: Sequence[int]) -> list[Sequence[int]]:
    return [values[start:start + GROUPS_PER_QUERY] for start in range(0, len(values), GROUPS_PER_QUERY)]


async def write_state_groups(txn: Transaction, room_id: str, copy: StateGroupCopy,
                             snapshots: Sequence[tuple[str, int]]) -> None:
    """
    Store the copied groups and C{snapshots}, C{(event_id, group)}: the
    state after each event. New groups of ruma_tx's own are numbered after
    the copied ones.
    """
    if copy.groups:
        await txn.insert_many("state_groups", ("group_id", "room_id", "prev_group", "chain_length"),
                              [(group, room_id, prev, length) for group, prev, length in copy.groups],
                              "ON CONFLICT (group_id) DO NOTHING")
        await txn.insert_many("state_group_entries", ("group_id", "type", "state_key", "event_id"),
                              copy.entries, "ON CONFLICT DO NOTHING")
        await txn.execute(
            "SELECT setval('state_groups_group_id_seq',"
            " GREATEST(%s, (SELECT last_value FROM state_groups_group_id_seq)))",
            (max(group for group, _, _ in copy.groups),))
    await txn.insert_many("event_state", ("event_id", "group_id"), snapshots, "ON CONFLICT DO NOTHING")


# ------------------------------------------------------- finishing a room


async def finish_room(source: SynapseSource, database: Database, room: TargetRoom) -> None:
    """
    Once all of a room's events are in: its current state becomes
    Synapse's (C{current_state_events}; state resolution may have chosen
    other events than the latest of each key in the timeline), its forward
    extremities Synapse's (C{event_forward_extremities}), and the users who
    forgot it have (C{room_memberships.forgotten}). Idempotent.
    """
    room_id = room.room_id
    current = await source.fetch_all(
        "SELECT type, state_key, event_id FROM current_state_events WHERE room_id = %s", (room_id,))
    extremities = [row[0] for row in await source.fetch_all(
        "SELECT event_id FROM event_forward_extremities WHERE room_id = %s", (room_id,))]
    forgotten = await source.fetch_all(
        "SELECT user_id, event_id FROM room_memberships WHERE room_id = %s AND forgotten = 1", (room_id,))
    await database.transaction("import_room_finish", _finish, room, {(t, k): e for t, k, e in current},
                               extremities, forgotten)


async def _finish(txn: Transaction, room: TargetRoom, current: dict[StateKey, str], extremities: list[str],
                  forgotten: list[tuple[str, str]]) -> None:
    room_id = room.room_id
    # Memberships other servers told of (schema 028) are the state: the timeline set it.
    if current and not room.out_of_band:
        await _set_current_state(txn, room_id, current)
    last = await txn.fetch_one(
        "SELECT event_id, stream_ordering FROM events WHERE room_id = %s AND stream_ordering > 0"
        " ORDER BY stream_ordering DESC LIMIT 1", (room_id,))
    if last is None:
        return
    # Where the current state is not the timeline's latest event of a key,
    # /sync reads what resolution chose (schema 033), from the room's last event on.
    await txn.execute(
        "INSERT INTO resolved_state (room_id, stream_ordering, type, state_key, event_id)"
        " SELECT c.room_id, %s, c.type, c.state_key, c.event_id FROM current_state c"
        " WHERE c.room_id = %s AND c.event_id IS DISTINCT FROM (SELECT e.event_id FROM events e"
        "  WHERE e.room_id = c.room_id AND e.type = c.type AND e.state_key = c.state_key"
        "  AND e.stream_ordering <= %s ORDER BY e.stream_ordering DESC LIMIT 1)"
        " ON CONFLICT DO NOTHING", (last[1], room_id, last[1]))
    if room.federated and not room.out_of_band:
        await _set_extremities(txn, room_id, extremities, last[0])
    positions = dict(await txn.fetch_all(
        "SELECT event_id, stream_ordering FROM events WHERE event_id = ANY(%s)", ([e for _, e in forgotten],)))
    latest: dict[str, int] = {}
    for user_id, event_id in forgotten:
        if event_id in positions:
            latest[user_id] = max(latest.get(user_id, positions[event_id]), positions[event_id])
    await txn.insert_many("forgotten_rooms", ("user_id", "room_id", "stream_ordering"),
                          [(user_id, room_id, position) for user_id, position in latest.items()],
                          "ON CONFLICT (user_id, room_id) DO UPDATE SET stream_ordering ="
                          " GREATEST(forgotten_rooms.stream_ordering, EXCLUDED.stream_ordering)")


async def _set_current_state(txn: Transaction, room_id: str, current: dict[StateKey, str]) -> None:
    stored = {row[0] for row in await txn.fetch_all(
        "SELECT event_id FROM events WHERE event_id = ANY(%s)", (list(current.values()),))}
    wanted = {key: event_id for key, event_id in current.items() if event_id in stored}
    held = {(t, k): e for t, k, e in await txn.fetch_all(
        "SELECT type, state_key, event_id FROM current_state WHERE room_id = %s", (room_id,))}
    changes: dict[StateKey, str | None] = {key: None for key in held if key not in wanted}
    changes.update({key: event_id for key, event_id in wanted.items() if held.get(key) != event_id})
    await apply_current_state(txn, room_id, changes)
    # What the room's join rules and history visibility say of its members (the user directory).
    pdus = await txn.fetch_all("SELECT pdu FROM events WHERE event_id = ANY(%s) AND state_key = ''",
                               (list(wanted.values()),))
    await record_joined_room_publicity(txn, room_id, [orjson.loads(pdu) for (pdu,) in pdus])


async def _set_extremities(txn: Transaction, room_id: str, extremities: list[str], last_event: str) -> None:
    """
    Synapse's forward extremities of the room, each with a state snapshot;
    a room Synapse's server left has none there: its last event stands in.
    """
    kept = [row[0] for row in await txn.fetch_all(
        "SELECT e.event_id FROM events e WHERE e.event_id = ANY(%s) AND e.room_id = %s"
        " AND NOT EXISTS (SELECT 1 FROM event_dag_status s WHERE s.event_id = e.event_id)",
        (extremities, room_id))] or [last_event]
    without = [row[0] for row in await txn.fetch_all(
        "SELECT event_id FROM unnest(%s::text[]) AS k(event_id)"
        " WHERE NOT EXISTS (SELECT 1 FROM event_state s WHERE s.event_id = k.event_id)", (kept,))]
    if without:
        rows = await txn.fetch_all("SELECT type, state_key, event_id FROM current_state WHERE room_id = %s",
                                   (room_id,))
        state = StateAfter(None, {(t, k): e for t, k, e in rows})
        for event_id in without:
            await store_state_after(txn, room_id, event_id, state)
    await txn.execute("DELETE FROM room_extremities WHERE room_id = %s", (room_id,))
    await txn.insert_many("room_extremities", ("room_id", "event_id"), [(room_id, e) for e in kept],
                          "ON CONFLICT DO NOTHING")

