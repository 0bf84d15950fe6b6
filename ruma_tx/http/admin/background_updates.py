"""The admin API's background updates (Synapse's "Background Updates API")."""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, read_json_object
from ruma_tx.http.routing import SYNAPSE_ADMIN, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.background_updates import BackgroundUpdates
from ruma_tx.services.guard import Requester

#: The key of our one database in C{current_updates} (Synapse's name for its main one).
_DATABASE = "master"


class BackgroundUpdatesApi:
    """@param updates: the L{ruma_tx.services.background_updates.BackgroundUpdates}."""

    def __init__(self, updates: BackgroundUpdates) -> None:
        self._updates = updates

    @endpoint("GET", "/v1/background_updates/enabled", prefixes=SYNAPSE_ADMIN, admin=True)
    async def get_enabled(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return {"enabled": self._updates.enabled}

    @endpoint("POST", "/v1/background_updates/enabled", prefixes=SYNAPSE_ADMIN, admin=True)
    async def set_enabled(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        """Pause (C{false}) or resume the updates; until the next start."""
        self._updates.set_enabled(get_field(read_json_object(request), "enabled", bool))
        return {"enabled": self._updates.enabled}

    @endpoint("GET", "/v1/background_updates/status", prefixes=SYNAPSE_ADMIN, admin=True)
    async def status(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        """
        The update running in our one database, if any (Synapse's shape
        holds one per database). Its rate is the plain average over its
        run, where Synapse keeps a moving one.
        """
        current: JsonDict = {}
        for progress in self._updates.running()[:1]:
            busy_ms = progress.busy_s * 1000
            current[_DATABASE] = {
                "name": progress.name,
                "total_item_count": progress.items,
                "total_duration_ms": busy_ms,
                "average_items_per_ms": progress.items / busy_ms if busy_ms > 0 else 0.0,
            }
        return {"enabled": self._updates.enabled, "current_updates": current}
