"""The admin API's federation destinations (Synapse's "Federation API")."""
from __future__ import annotations

from ruma_tx.http.admin.paging import read_page
from ruma_tx.http.parsing import query_arg, read_json_object
from ruma_tx.http.routing import SYNAPSE_ADMIN, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.admin_federation import FederationAdmin
from ruma_tx.services.guard import Requester
from ruma_tx.services.ports.admin_federation import DestinationStatus


def _destination_json(status: DestinationStatus) -> JsonDict:
    return {
        "destination": status.destination,
        "retry_last_ts": status.retry_last_ts,
        "retry_interval": status.retry_interval,
        "failure_ts": status.failure_ts,
        "last_successful_stream_ordering": status.last_successful_stream_ordering,
    }


class FederationAdminApi:
    """@param federation: the L{ruma_tx.services.admin_federation.FederationAdmin}."""

    def __init__(self, federation: FederationAdmin) -> None:
        self._federation = federation

    @endpoint("GET", "/v1/federation/destinations", prefixes=SYNAPSE_ADMIN, admin=True)
    async def list_destinations(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        page = read_page(request, default_dir="f")
        found, total = await self._federation.list_destinations(
            start=page.start, limit=page.limit, order_by=query_arg(request, "order_by", "destination"),
            descending=page.backwards, name_contains=query_arg(request, "destination") or None)
        return page.listing("destinations", [_destination_json(status) for status in found], total)

    @endpoint("GET", "/v1/federation/destinations/<destination>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def get_destination(self, request: MatrixRequest, requester: Requester, destination: str) -> JsonDict:
        return _destination_json(await self._federation.get_destination(destination))

    @endpoint("GET", "/v1/federation/destinations/<destination>/rooms", prefixes=SYNAPSE_ADMIN, admin=True)
    async def destination_rooms(self, request: MatrixRequest, requester: Requester, destination: str
                                ) -> JsonDict:
        page = read_page(request, default_dir="f")
        rooms, total = await self._federation.destination_rooms(destination, start=page.start, limit=page.limit,
                                                                descending=page.backwards)
        return page.listing("rooms", [{"room_id": room_id, "stream_ordering": position}
                                      for room_id, position in rooms], total)

    @endpoint("POST", "/v1/federation/destinations/<destination>/reset_connection", prefixes=SYNAPSE_ADMIN,
              admin=True)
    async def reset_connection(self, request: MatrixRequest, requester: Requester, destination: str
                               ) -> JsonDict:
        read_json_object(request, allow_empty=True)  # "{}", or nothing
        await self._federation.reset_connection(destination)
        return {}
