"""
The check of the aliases an C{m.room.canonical_alias} event adds: each
must name this room in the directory. Event creation runs it for every
such event; the directory's storage answers it.
"""
from __future__ import annotations

from typing import Mapping

from ruma_tx.matrix.directory import added_aliases
from ruma_tx.matrix.errors import BadRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.ports.directory import DirectoryStorage
from ruma_tx.services.ports.events import Events

CANONICAL_ALIAS = ("m.room.canonical_alias", "")


class CanonicalAliasCheck:
    """
    @param directory: where aliases point.
    @param events: the room's current canonical alias event.
    """

    def __init__(self, *, directory: DirectoryStorage, events: Events) -> None:
        self._directory = directory
        self._events = events

    async def __call__(self, room_id: str, content: JsonDict,
                       pending: Mapping[str, str] | None = None) -> None:
        """
        Check the aliases C{content} adds to the room's canonical alias
        event. Another server's alias cannot be checked without federation,
        so it is refused.

        @param pending: aliases being created with the room (not stored
            yet), and the room each names.
        @raise BadRequest: M_INVALID_PARAM for a malformed alias, M_BAD_ALIAS
            for one that does not point to this room.
        """
        state = await self._events.get_state(room_id, [CANONICAL_ALIAS])
        current = state.get(CANONICAL_ALIAS)
        added = added_aliases(content, current.content if current is not None else None)
        if not added:
            return
        rooms = {**await self._directory.get_alias_rooms(added), **(pending or {})}
        for alias in added:
            if rooms.get(alias) != room_id:
                raise BadRequest("M_BAD_ALIAS", f"Room alias {alias} does not point to this room")
