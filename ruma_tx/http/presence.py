"""Presence (spec: "Presence")."""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.presence import PresenceTracker


class PresenceApi:
    """
    @param presence: the L{ruma_tx.services.presence.PresenceTracker}.
    """

    def __init__(self, presence: PresenceTracker) -> None:
        self._presence = presence

    @endpoint("PUT", "/presence/<user_id>/status")
    async def set_status(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        body = read_json_object(request)
        state = get_field(body, "presence", str)
        status_msg = get_field(body, "status_msg", str, None)
        await self._presence.set_status(requester.user_id, user_id, state, status_msg)
        return {}

    @endpoint("GET", "/presence/<user_id>/status")
    async def get_status(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        return await self._presence.get_status(requester.user_id, user_id)
