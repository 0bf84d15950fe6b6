"""
Rooms' server ACLs applied to the servers that ask things of them (spec:
server-server-api "Server Access Control Lists (ACLs)"): read from the
room's current state each time, so a new ACL applies to the next request.
"""
from __future__ import annotations

from typing import Protocol

from ruma_tx.matrix.errors import forbidden
from ruma_tx.matrix.server_acl import SERVER_ACL, ServerAcl


class RoomState(Protocol):
    async def get_state(self, room_id: str, keys: list[tuple[str, str]] | None = None) -> dict: ...


class ServerAcls:
    """
    @param state: the rooms' current state (a room this server holds no
        state of has no ACL: every server is allowed).
    """

    def __init__(self, state: RoomState) -> None:
        self._state = state

    async def of_room(self, room_id: str) -> ServerAcl:
        acl = (await self._state.get_state(room_id, [SERVER_ACL])).get(SERVER_ACL)
        return ServerAcl(acl.content if acl is not None and isinstance(acl.content, dict) else None)

    async def check(self, room_id: str, server_name: str) -> None:
        """
        @raise Forbidden: 403 M_FORBIDDEN, as the spec asks, when the room's
            ACL denies C{server_name}.
        """
        if not (await self.of_room(room_id)).allows(server_name):
            raise forbidden(f"Server {server_name} is denied by the room's server ACL")
