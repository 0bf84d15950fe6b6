"""
The pushers API (spec: "Push Notifications", C{GET /pushers},
C{POST /pushers/set}): a user's pushers, each owned by the device whose
access token set it (deleting the device deletes them).
"""
from __future__ import annotations

from typing import Awaitable, Callable

from ruma_tx.matrix.pushers import PusherDeletion, parse_pusher_request, pusher_json
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.ports.pushers import PusherStorage


class Pushers:
    """
    @param store: where pushers are stored.
    @param current_position: the visible stream position: a new pusher
        delivers the notifications that come after it.
    @param changed: C{async (user_id)}, told after the user's pushers
        changed (push delivery starts or stops delivering for them).
    """

    def __init__(self, *, store: PusherStorage, clock: Clock, current_position: Callable[[], int],
                 changed: Callable[[str], Awaitable[None]]) -> None:
        self._store = store
        self._clock = clock
        self._current_position = current_position
        self._changed = changed

    async def get_pushers(self, user_id: str) -> list[JsonDict]:
        """C{GET /pushers}: the user's pushers, oldest first."""
        return [pusher_json(pusher) for pusher in await self._store.get_pushers(user_id)]

    async def set_pusher(self, user_id: str, device_id: str, body: JsonDict) -> None:
        """
        C{POST /pushers/set}: create, update or (C{kind} null) delete the
        user's pusher with the body's app id and pushkey. Unless C{append}
        is true, other users' pushers with the same app id and pushkey are
        deleted (spec: "the homeserver must remove any other pushers with
        the same App ID and pushkey for different users"). Deleting a
        pusher that does not exist succeeds, as in Synapse.

        @param device_id: the device of the access token: it owns the pusher.
        @raise BadRequest: as L{ruma_tx.matrix.pushers.parse_pusher_request} says.
        """
        request = parse_pusher_request(body)
        if isinstance(request, PusherDeletion):
            if await self._store.delete_pusher(user_id, request.app_id, request.pushkey):
                await self._changed(user_id)
            return
        removed_from = await self._store.set_pusher(
            user_id, device_id, request, now_ms=now_ms(self._clock), position=self._current_position())
        for other in removed_from:
            await self._changed(other)
        await self._changed(user_id)
