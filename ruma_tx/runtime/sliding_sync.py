"""Wiring of simplified sliding sync: its stores, caches, engine and endpoint."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ruma_tx.http.sliding_sync import SlidingSyncApi
from ruma_tx.services.account_data import AccountDataKeeper
from ruma_tx.services.aggregations import Aggregator
from ruma_tx.services.clock import Clock, Periodic
from ruma_tx.services.notifier import Notifier
from ruma_tx.services.ports.events import Events, NewEvent, SyncReads
from ruma_tx.services.presence import PresenceTracker
from ruma_tx.services.push import UnreadCounts
from ruma_tx.services.sliding_connections import Connections
from ruma_tx.services.sliding_extensions import ExtensionSources, SlidingExtensions
from ruma_tx.services.sliding_lists import RoomFactsCache, RoomRecency, UserRooms
from ruma_tx.services.sliding_order import RoomLists
from ruma_tx.services.sliding_rooms import SlidingRooms
from ruma_tx.services.sliding_sync import SlidingSync, UserData
from ruma_tx.services.sync import UserMemberships
from ruma_tx.services.sync_rooms import VisibilityFilter
from ruma_tx.storage.database import Database
from ruma_tx.storage.sliding_sync import SlidingSyncStore

#: How often changed connection states are written (and old ones expired).
SAVE_INTERVAL_S = 10.0


@dataclass(frozen=True)
class RoomCaches:
    """Built before the event creator, which tells them of every stored event."""

    store: SlidingSyncStore
    recency: RoomRecency
    facts: RoomFactsCache

    @classmethod
    def build(cls, database: Database) -> RoomCaches:
        store = SlidingSyncStore(database)
        return cls(store, RoomRecency(store), RoomFactsCache(store))

    def event_stored_hooks(self) -> list[Callable[[NewEvent, int], None]]:
        return [self.recency.event_stored, self.facts.event_stored]


@dataclass(frozen=True)
class SlidingSyncParts:
    api: SlidingSyncApi
    #: Writes connection states every few seconds; stopped (and run once more) at shutdown.
    saver: Periodic


def build_sliding_sync(*, caches: RoomCaches, reads: SyncReads, events: Events, memberships: UserMemberships,
                       notifier: Notifier, clock: Clock, visible: VisibilityFilter, aggregations: Aggregator,
                       unread_counts: UnreadCounts, account_data: AccountDataKeeper, presence: PresenceTracker,
                       sources: ExtensionSources) -> SlidingSyncParts:
    connections = Connections(store=caches.store, clock=clock)
    engine = SlidingSync(
        memberships=memberships,
        user_rooms=UserRooms(store=caches.store, reads=reads, events=events),
        user_data=UserData(direct_rooms=account_data.direct_rooms, all_tags=account_data.all_tags,
                           reads=reads, notifier=notifier),
        connections=connections, lists=RoomLists(recency=caches.recency, facts=caches.facts),
        rooms=SlidingRooms(reads=reads, events=events, visible=visible, aggregations=aggregations,
                           unread_counts=unread_counts.room_totals),
        extensions=SlidingExtensions(sources=sources, notifier=notifier),
        notifier=notifier, clock=clock, ignored=account_data.ignored_users,
    )

    async def save_and_expire() -> None:
        await connections.save()
        await connections.expire()

    saver = Periodic(clock, SAVE_INTERVAL_S, save_and_expire, connections.save)
    saver.start()
    return SlidingSyncParts(SlidingSyncApi(sliding_sync=engine, presence=presence.set_from_sync), saver)
