"""
The server admins' view of federation (Synapse's admin API "Federation"):
the servers we send to, how sending to each goes, the rooms shared with
each, and cutting a failing server's backoff short.
"""
from __future__ import annotations

from ruma_tx.matrix.errors import BadRequest, invalid_param, not_found
from ruma_tx.services.federation_sender import FederationSender
from ruma_tx.services.ports.admin_federation import (
    DESTINATION_ORDERS,
    AdminFederationStorage,
    DestinationStatus,
)


class FederationAdmin:
    """
    @param destinations: the L{ruma_tx.storage.admin_federation.AdminFederationStore}.
    @param sender: the sending queue, or C{None} with federation off: then
        no server is federated with and none is listed (rows left from
        when it was on included).
    """

    def __init__(self, *, destinations: AdminFederationStorage, sender: FederationSender | None) -> None:
        self._destinations = destinations
        self._sender = sender

    async def list_destinations(self, *, start: int, limit: int, order_by: str, descending: bool,
                                name_contains: str | None) -> tuple[list[DestinationStatus], int]:
        """@raise BadRequest: M_INVALID_PARAM for an C{order_by} not in L{DESTINATION_ORDERS}."""
        if order_by not in DESTINATION_ORDERS:
            raise invalid_param(f"'order_by' must be one of {', '.join(DESTINATION_ORDERS)}")
        if self._sender is None:
            return [], 0
        return await self._destinations.get_destinations(start=start, limit=limit, order_by=order_by,
                                                         descending=descending, name_contains=name_contains)

    async def get_destination(self, destination: str) -> DestinationStatus:
        """@raise NotFound: a server we have never sent to."""
        found = None if self._sender is None else await self._destinations.get_destination(destination)
        if found is None:
            raise not_found("Unknown destination")
        return found

    async def destination_rooms(self, destination: str, *, start: int, limit: int, descending: bool
                                ) -> tuple[list[tuple[str, int]], int]:
        """@raise NotFound: a server we have never sent to."""
        await self.get_destination(destination)
        return await self._destinations.get_destination_rooms(destination, start=start, limit=limit,
                                                              descending=descending)

    async def reset_connection(self, destination: str) -> None:
        """
        Try the destination now instead of at the end of its backoff (in
        the background: this does not wait for the try).

        @raise NotFound: a server we have never sent to.
        @raise BadRequest: it is not failing (M_UNKNOWN, as Synapse).
        """
        status = await self.get_destination(destination)
        if status.failure_ts is None and not status.retry_last_ts:
            raise BadRequest("M_UNKNOWN", f"Sending to {destination} is not failing: there is no backoff to reset")
        assert self._sender is not None  # get_destination found it
        await self._sender.reset_backoff(destination)
