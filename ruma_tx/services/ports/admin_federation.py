"""
Ports: the federation destinations as the admin API shows them
(implemented by C{ruma_tx.storage.admin_federation.AdminFederationStore}).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

#: What a destinations listing can be ordered by (Synapse's C{order_by}).
DESTINATION_ORDERS = ("destination", "retry_last_ts", "retry_interval", "failure_ts",
                      "last_successful_stream_ordering")


@dataclass(frozen=True)
class DestinationStatus:
    """
    A server we send to, and how sending to it goes.

    @ivar retry_last_ts: when sending to it last failed (0: the last try
        succeeded).
    @ivar retry_interval: the wait after that failure before the next try
        (0: none).
    @ivar failure_ts: its first failure since its last success, if failing.
    @ivar last_successful_stream_ordering: every event up to this stream
        position is done with for it (acknowledged or not its to get).
    """

    destination: str
    retry_last_ts: int
    retry_interval: int
    failure_ts: int | None
    last_successful_stream_ordering: int


class AdminFederationStorage(Protocol):
    async def get_destinations(self, *, start: int, limit: int, order_by: str, descending: bool,
                               name_contains: str | None) -> tuple[list[DestinationStatus], int]:
        """A page of the destinations (by offset), and how many there are (whose name contains the text)."""
        ...

    async def get_destination(self, destination: str) -> DestinationStatus | None:
        ...

    async def get_destination_rooms(self, destination: str, *, start: int, limit: int, descending: bool
                                    ) -> tuple[list[tuple[str, int]], int]:
        """
        A page of C{(room_id, stream_ordering)}, by room id, of the rooms
        the destination has a user joined to, each with the position of
        our latest event in it that the destination is done with; and how
        many such rooms there are.
        """
        ...
