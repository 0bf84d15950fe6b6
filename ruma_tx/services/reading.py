"""
Reading rooms: state and single events, as the user may see them.
"""
from __future__ import annotations

from ruma_tx.matrix.errors import forbidden, not_found
from ruma_tx.matrix.events import StoredEvent, room_event
from ruma_tx.services.ports.events import Events


class RoomReader:
    """
    @param events: the L{ruma_tx.storage.events.EventStore}.
    """

    def __init__(self, *, events: Events) -> None:
        self._events = events

    async def visible_state(self, user_id: str, room_id: str) -> dict:
        """
        The state the user may read: the current state while joined, the
        state when they left otherwise, or the current state of a
        world-readable room.

        @raise MatrixError: 403 when they may not.
        """
        memberships = await self._events.get_rooms_for_user(user_id)
        membership, position = memberships.get(room_id, (None, None))
        if membership == "join":
            return await self._events.get_state(room_id)
        if membership in ("leave", "ban") and position is not None:
            return await self._events.get_state_at(room_id, position)
        visibility = await self._events.get_state(room_id, [("m.room.history_visibility", "")])
        event = visibility.get(("m.room.history_visibility", ""))
        if event is not None and event.content.get("history_visibility") == "world_readable":
            return await self._events.get_state(room_id)
        # As Synapse: the same answer whether or not the room exists.
        raise forbidden("You are not in this room")

    async def get_state(self, user_id: str, room_id: str) -> list[dict]:
        state = await self.visible_state(user_id, room_id)
        return [room_event(e) for e in state.values()]

    async def get_state_event(self, user_id: str, room_id: str, event_type: str,
                              state_key: str) -> StoredEvent:
        state = await self.visible_state(user_id, room_id)
        event = state.get((event_type, state_key))
        if event is None:
            raise not_found("Event not found")
        return event

    async def joined_rooms(self, user_id: str) -> list[str]:
        memberships = await self._events.get_rooms_for_user(user_id)
        return sorted(room_id for room_id, (m, _) in memberships.items() if m == "join")
