"""
Background updates (Synapse's admin API "Background Updates"): the long
jobs over the database that run beside the server instead of holding up
its start. Schema migrations run before the server starts, so the only
one in ruma_tx is indexing the events stored before the search index
existed (L{ruma_tx.services.search.SearchBackfill}). Admins see what runs
and may pause it; a pause lasts until resumed or the next start.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence


@dataclass(frozen=True)
class UpdateProgress:
    """
    @ivar items: what it did so far (the update says what an item is).
    @ivar busy_s: the time it spent working, its pauses left out.
    """

    name: str
    items: int
    busy_s: float


class BackgroundUpdate(Protocol):
    def progress(self) -> UpdateProgress | None:
        """How far it got since the start, or C{None} once it has nothing left to do."""
        ...

    def pause(self) -> None:
        """Start no more work (what is under way finishes) until L{resume}."""
        ...

    def resume(self) -> None:
        ...


class BackgroundUpdates:
    """The background updates, and whether they may run (in memory, as Synapse: a restart runs them)."""

    def __init__(self, updates: Sequence[BackgroundUpdate]) -> None:
        self._updates = list(updates)
        self.enabled = True

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        for update in self._updates:
            if enabled:
                update.resume()
            else:
                update.pause()

    def running(self) -> list[UpdateProgress]:
        """The updates with work left (paused ones included)."""
        return [progress for update in self._updates if (progress := update.progress()) is not None]
