"""
Reading rooms: state and single events, as the user may see them.
"""
from __future__ import annotations

from ruma_tx.matrix.errors import not_found
from ruma_tx.matrix.events import StoredEvent, room_event
from ruma_tx.services.history import HistoryReader
from ruma_tx.services.ports.events import Events


class RoomReader:
    """
    @param events: the rooms' state and events.
    @param history: who may read which room (history visibility).
    """

    def __init__(self, *, events: Events, history: HistoryReader) -> None:
        self._events = events
        self._history = history

    async def visible_state(self, user_id: str, room_id: str) -> dict:
        """
        The state the user may read: the current state while joined, the
        state when they left otherwise, or the current state of a
        world-readable room (who may read a room is the history reader's
        one decision).

        @raise Forbidden: when they may not (the same answer whether or not
            the room exists, as Synapse).
        """
        view = await self._history.readable_view(user_id, room_id)
        position = view.current_membership_position
        if view.current_membership in ("leave", "ban") and position is not None:
            return await self._events.get_state_at(room_id, position)
        return await self._events.get_state(room_id)

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
