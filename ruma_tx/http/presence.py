"""Presence (spec: "Presence")."""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, read_json_object
from ruma_tx.http.routing import endpoint


class PresenceApi:
    """
    @param presence: the L{ruma_tx.services.presence.PresenceTracker}.
    """

    def __init__(self, presence):
        self._presence = presence

    @endpoint("PUT", "/presence/<user_id>/status")
    async def set_status(self, request, requester, user_id):
        body = read_json_object(request)
        state = get_field(body, "presence", str)
        status_msg = get_field(body, "status_msg", str, None)
        await self._presence.set_status(requester.user_id, user_id, state, status_msg)
        return {}

    @endpoint("GET", "/presence/<user_id>/status")
    async def get_status(self, request, requester, user_id):
        return await self._presence.get_status(requester.user_id, user_id)
