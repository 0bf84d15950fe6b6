"""
TURN credentials for calls (spec: "Voice over IP"): the configured TURN
servers, with credentials built by L{ruma_tx.matrix.turn}.
"""
from __future__ import annotations

from ruma_tx.matrix.errors import forbidden, not_found
from ruma_tx.matrix.turn import TurnSettings, turn_credentials
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock, now_ms


class TurnServer:
    """
    @param settings: the TURN servers and credentials (C{[voip]}).
    @param allow_guests: whether guests get credentials too.
    """

    def __init__(self, *, settings: TurnSettings, allow_guests: bool, clock: Clock) -> None:
        self._settings = settings
        self._allow_guests = allow_guests
        self._clock = clock

    def credentials(self, user_id: str, is_guest: bool) -> JsonDict:
        """
        The body of C{GET /voip/turnServer}.

        @raise NotFound: 404 M_NOT_FOUND when no TURN server is configured.
            The spec does not say what to answer then (matrix-spec issue
            1795); its 200 response requires C{username}, C{password},
            C{uris} and C{ttl}, so Synapse's empty C{{}} breaks it. This
            follows MSC4166 (as conduwuit): a 404 that clients tell apart
            from a failure.
        @raise Forbidden: for a guest when guests are not allowed (as Synapse).
        """
        if not self._settings.configured:
            raise not_found("No TURN server is configured")
        if is_guest and not self._allow_guests:
            raise forbidden("Guests may not use the TURN server")
        return turn_credentials(self._settings, user_id, now_ms(self._clock))
