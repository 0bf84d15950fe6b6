"""
The rooms step of C{ruma-admin import-synapse}: every room Synapse holds
events of (created here or joined through another server), with its
version, creator, whether it is published in the room directory
(C{rooms.is_public}), whether another server takes part in it, and its
local aliases (C{room_aliases}). Its events follow in the room events step
(L{ruma_tx.storage.synapse_import.room_events}).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ruma_tx.matrix.room_versions import ROOM_VERSIONS
from ruma_tx.matrix.synapse_events import imported_pdu
from ruma_tx.services.ports.synapse_import import SynapseSource
from ruma_tx.storage.database import Transaction
from ruma_tx.storage.synapse_import import CopyStep

#: The rooms imported: those Synapse holds events of (a room row alone, left
#: by a failed join, has nothing to show).
HAS_EVENTS = "EXISTS (SELECT 1 FROM events e WHERE e.room_id = rooms.room_id)"

#: The version of a room Synapse knows none of (rooms from before versions).
_DEFAULT_VERSION = "1"


def placeholders(values: Sequence[object]) -> str:
    """C{%s, %s, ...}: one per value, for an C{IN (...)} on Synapse's database."""
    return ", ".join(["%s"] * len(values))


@dataclass(frozen=True)
class ImportedRoom:
    room_id: str
    room_version: str
    creator: str
    created_ts: int
    published: bool
    #: Another server takes part (a member or a sender of another server):
    #: its events form a DAG here (schema 026).
    federated: bool
    #: Known only by the memberships another server sent (an invite of a
    #: local user, its rejection): no event of it is in Synapse's timeline.
    out_of_band: bool


class RoomsStep(CopyStep):
    name = "rooms"
    select = "room_id, room_version, creator, is_public FROM rooms"
    key = ("room_id",)
    where = HAS_EVENTS
    imported = "SELECT COUNT(*) FROM rooms"

    async def prepare(self, rows: list[tuple]) -> list[tuple]:
        """C{(room, its local aliases)} of each room of the batch."""
        source, server_name = self.context.source, self.context.server_name
        rooms = []
        for room in await describe_rooms(source, server_name, rows):
            if room.room_version in ROOM_VERSIONS:
                rooms.append(room)
            else:
                # Left out: the rooms' counts then differ, which the final check reports.
                self.context.warn(f"room {room.room_id} not imported: unknown room version {room.room_version}")
        if not rooms:
            return []
        room_ids = [room.room_id for room in rooms]
        aliases: dict[str, list[tuple[str, str | None]]] = {}
        for alias, room_id, creator in await source.fetch_all(
                f"SELECT room_alias, room_id, creator FROM room_aliases WHERE room_id IN ({placeholders(room_ids)})",
                room_ids):
            if alias.endswith(":" + server_name):
                aliases.setdefault(room_id, []).append((alias, creator))
        return [(room, aliases.get(room.room_id, [])) for room in rooms]

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        rooms: list[ImportedRoom] = [room for room, _ in rows]
        await txn.insert_many(
            "rooms", ("room_id", "room_version", "creator", "created_ts", "published", "federated", "out_of_band"),
            [(r.room_id, r.room_version, r.creator, r.created_ts, r.published, r.federated, r.out_of_band)
             for r in rooms],
            "ON CONFLICT (room_id) DO NOTHING")
        # Synapse may have no creator for an alias (made before it kept one): the room's stands in.
        await txn.insert_many(
            "room_aliases", ("room_alias", "room_id", "creator"),
            [(alias, room.room_id, creator or room.creator) for room, aliases in rows for alias, creator in aliases],
            "ON CONFLICT (room_alias) DO NOTHING")


async def describe_rooms(source: SynapseSource, server_name: str, rows: Sequence[tuple]) -> list[ImportedRoom]:
    """
    The rooms of Synapse's C{rooms} rows C{(room_id, room_version, creator,
    is_public)}, as ruma_tx stores them.
    """
    room_ids = [row[0] for row in rows]
    holes = placeholders(room_ids)
    creates = {room_id: imported_pdu(json_text) for room_id, json_text in await source.fetch_all(
        "SELECT e.room_id, j.json FROM events e JOIN event_json j ON j.event_id = e.event_id"
        f" WHERE e.type = 'm.room.create' AND e.state_key = '' AND e.room_id IN ({holes})", room_ids)}
    in_timeline = {row[0] for row in await source.fetch_all(
        f"SELECT DISTINCT room_id FROM events WHERE NOT outlier AND room_id IN ({holes})", room_ids)}
    firsts = {room_id: (sender, ts) for room_id, sender, ts in await source.fetch_all(
        "SELECT e.room_id, e.sender, e.origin_server_ts FROM events e"
        f" WHERE e.room_id IN ({holes}) AND e.stream_ordering ="
        " (SELECT MIN(f.stream_ordering) FROM events f WHERE f.room_id = e.room_id)", room_ids)}
    # Users of every server that took part: senders, and members (invited ones too).
    participants = await source.fetch_all(
        f"SELECT DISTINCT room_id, sender FROM events WHERE room_id IN ({holes})"
        f" UNION SELECT DISTINCT room_id, state_key FROM events WHERE type = 'm.room.member' AND room_id IN ({holes})",
        room_ids + room_ids)
    suffix = ":" + server_name
    federated = {room_id for room_id, user_id in participants if user_id and not user_id.endswith(suffix)}
    rooms = []
    for room_id, version, creator, is_public in rows:
        create = creates.get(room_id)
        first_sender, first_ts = firsts.get(room_id, ("", 0))
        if version is None:
            content = create.get("content") if create is not None else None
            version = content.get("room_version", _DEFAULT_VERSION) if isinstance(content, dict) \
                else _DEFAULT_VERSION
        out_of_band = room_id not in in_timeline
        rooms.append(ImportedRoom(
            room_id, version,
            creator or (create["sender"] if create is not None else first_sender) or "",
            create["origin_server_ts"] if create is not None else first_ts or 0,
            bool(is_public), room_id in federated or out_of_band, out_of_band))
    return rooms

