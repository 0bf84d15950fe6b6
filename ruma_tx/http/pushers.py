"""
The pushers endpoints (spec: "Push Notifications", pusher.yaml):
C{GET /pushers} and C{POST /pushers/set}. Guests may not call them (they
are not on the spec's guest allow-list).
"""
from __future__ import annotations

from ruma_tx.http.parsing import read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.pushers import Pushers


class PushersApi:
    """
    @param pushers: the L{ruma_tx.services.pushers.Pushers}.
    """

    def __init__(self, pushers: Pushers) -> None:
        self._pushers = pushers

    @endpoint("GET", "/pushers")
    async def get_pushers(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return {"pushers": await self._pushers.get_pushers(requester.user_id)}

    @endpoint("POST", "/pushers/set")
    async def set_pusher(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        body = read_json_object(request)
        await self._pushers.set_pusher(requester.user_id, requester.device_id, body)
        return {}
