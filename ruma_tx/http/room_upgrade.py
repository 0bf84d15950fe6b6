"""Room upgrades (spec: "Room Upgrades", POST /rooms/{roomId}/upgrade)."""
from __future__ import annotations

from ruma_tx.http.parsing import read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.room_upgrade import parse_upgrade_request
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.room_upgrade import RoomUpgrader


class RoomUpgradeApi:
    """@param upgrader: the L{ruma_tx.services.room_upgrade.RoomUpgrader}."""

    def __init__(self, upgrader: RoomUpgrader) -> None:
        self._upgrader = upgrader

    @endpoint("POST", "/rooms/<room_id>/upgrade", rate_limit="message", suspended=False)
    async def upgrade(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        upgrade = parse_upgrade_request(read_json_object(request))
        return {"replacement_room": await self._upgrader.upgrade(requester.user_id, room_id, upgrade)}
