"""
Ports: the durable state of sending to other homeservers (implemented by
C{ruma_tx.storage.federation_queue.FederationQueueStore}).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol, Sequence

from ruma_tx.matrix.federation_sending import EventRow


@dataclass(frozen=True)
class Destination:
    """
    A destination's row of C{federation_destinations}.

    @ivar last_acked_position: every event up to this stream position is
        done with (acknowledged, refused, or not for it).
    @ivar retry_at_ms: no try before then, or C{None}.
    @ivar backoff_ms: the last wait between tries (0 after a success).
    @ivar failing_since_ms: its first failure since its last success.
    """

    destination: str
    last_acked_position: int
    retry_at_ms: int | None = None
    backoff_ms: int = 0
    failing_since_ms: int | None = None


@dataclass(frozen=True)
class QueuedEdu:
    """An EDU of C{federation_edu_outbox}, as its JSON text."""

    position: int
    edu_json: str


class FederationQueue(Protocol):
    async def get_destination(self, destination: str) -> Destination | None:
        ...

    async def add_destinations(self, destinations: Iterable[str], last_acked_position: int) -> None:
        """Add the destinations not known yet, at C{last_acked_position}."""
        ...

    async def get_destinations_with_work(self, upto: int) -> list[Destination]:
        """The destinations with durable EDUs waiting or positions before C{upto}."""
        ...

    async def get_servers_in_rooms(self, room_ids: Sequence[str]) -> list[str]:
        """The servers of the members joined to any of the rooms, now."""
        ...

    async def get_servers_sharing_rooms(self, user_id: str) -> list[str]:
        """The servers of the members joined to any room the user is joined to, now."""
        ...

    async def get_candidate_rooms(self, destination: str, after: int, upto: int) -> list[str]:
        """
        The rooms where the destination may get events in C{(after, upto]}:
        those it has a user joined to now, and those where one of its
        users' membership changed in between.
        """
        ...

    async def get_joined_at(self, destination: str, room_ids: Sequence[str], position: int
                            ) -> Mapping[str, list[str]]:
        """For each room, the destination's users joined to it at C{position}."""
        ...

    async def get_event_rows(self, destination: str, our_server: str, room_ids: Sequence[str],
                             after: int, upto: int, limit: int) -> list[EventRow]:
        """
        In stream order, the events of the rooms in C{(after, upto]} that
        the destination may get: ours, and its users' memberships.
        """
        ...

    async def get_edus(self, destination: str, limit: int) -> list[QueuedEdu]:
        ...

    async def add_edus(self, edus: Iterable[tuple[str, str]], last_acked_position: int) -> None:
        """
        Queue C{(destination, edu_json)} pairs, adding the destinations not
        known yet at C{last_acked_position}.
        """
        ...

    async def acknowledge(self, destination: str, upto: int, edu_positions: Sequence[int]) -> None:
        """
        A transaction is done with: move the position to C{upto} (never
        back), drop its EDUs and clear the backoff, at once.
        """
        ...

    async def set_backoff(self, destination: str, retry_at_ms: int, backoff_ms: int,
                          failing_since_ms: int, failed_at_ms: int) -> None:
        """After the failure at C{failed_at_ms}: no try before C{retry_at_ms}."""
        ...

    async def clear_backoff(self, destination: str) -> None:
        """Forget the destination's failures (its backoff, as after a success)."""
        ...
