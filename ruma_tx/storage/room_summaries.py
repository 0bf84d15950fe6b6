"""What room summaries, the space hierarchy and mutual rooms read. SQL only."""
from __future__ import annotations

import json
from typing import Sequence

from ruma_tx.matrix.spaces import SUMMARY_STATE_TYPES, RoomSummaryState, SpaceChild
from ruma_tx.storage.database import Database
from ruma_tx.storage.user_ids import server_of_column

# One statement per batch of rooms: each room's version, joined members and
# the content of its summary state (a redacted event's content is its pruned one).
_SUMMARIES_SQL = """
SELECT r.room_id, r.room_version,
       (SELECT count(*) FROM current_state m
         WHERE m.room_id = r.room_id AND m.type = 'm.room.member' AND m.membership = 'join'),
       COALESCE((SELECT jsonb_object_agg(c.type, (e.pdu::jsonb) -> 'content')
                   FROM current_state c JOIN events e ON e.event_id = c.event_id
                  WHERE c.room_id = r.room_id AND c.state_key = '' AND c.type = ANY(%s)),
                '{}'::jsonb)::text
FROM rooms r WHERE r.room_id = ANY(%s)
"""


class RoomSummaryStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_room_summaries(self, room_ids: Sequence[str]) -> dict[str, RoomSummaryState]:
        """The summaries of those of C{room_ids} this server has."""
        if not room_ids:
            return {}
        rows = await self._db.fetch_all(_SUMMARIES_SQL, (list(SUMMARY_STATE_TYPES), list(room_ids)))
        return {room_id: RoomSummaryState(room_id, version, joined, json.loads(state))
                for room_id, version, joined, state in rows}

    async def get_space_children(self, room_id: str) -> list[SpaceChild]:
        """The room's current C{m.space.child} events (emptied ones too), in no order."""
        rows = await self._db.fetch_all(
            "SELECT c.state_key, ((e.pdu::jsonb) -> 'content')::text, e.sender, e.origin_server_ts"
            " FROM current_state c JOIN events e ON e.event_id = c.event_id"
            " WHERE c.room_id = %s AND c.type = 'm.space.child'",
            (room_id,),
        )
        children = []
        for state_key, content, sender, origin_server_ts in rows:
            parsed = json.loads(content) if content is not None else {}
            children.append(SpaceChild(state_key, parsed if isinstance(parsed, dict) else {}, sender,
                                       origin_server_ts))
        return children

    async def get_mutual_rooms(self, user_id: str, other_user_id: str) -> list[str]:
        """The rooms both users are joined to, in no order."""
        rows = await self._db.fetch_all(
            "SELECT a.room_id FROM current_state a"
            " JOIN current_state b ON b.room_id = a.room_id AND b.type = 'm.room.member'"
            "  AND b.state_key = %s AND b.membership = 'join'"
            " WHERE a.type = 'm.room.member' AND a.state_key = %s AND a.membership = 'join'",
            (other_user_id, user_id),
        )
        return [row[0] for row in rows]

    async def get_rooms_with_server(self, server_name: str, room_ids: Sequence[str]) -> set[str]:
        """The rooms among C{room_ids} that a user of C{server_name} is joined to."""
        if not room_ids:
            return set()
        # The server part as the index current_state_member_servers has it.
        rows = await self._db.fetch_all(
            "SELECT DISTINCT room_id FROM current_state"
            " WHERE type = 'm.room.member' AND membership = 'join' AND room_id = ANY(%s)"
            f" AND {server_of_column('state_key')} = %s",
            (list(room_ids), server_name),
        )
        return {row[0] for row in rows}
