"""GET /voip/turnServer (spec: "Voice over IP")."""
from __future__ import annotations

from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.voip import TurnServer


class VoipApi:
    def __init__(self, turn: TurnServer) -> None:
        self._turn = turn

    # Not on the spec's guest list; as Synapse, guests are served unless
    # [voip] turn_allow_guests is false (the service decides).
    @endpoint("GET", "/voip/turnServer", guest=True)
    async def turn_server(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return self._turn.credentials(requester.user_id, requester.is_guest)
