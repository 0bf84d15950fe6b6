"""
Wiring of device lists over federation: our users' device changes sent to
the servers sharing their rooms (L{ruma_tx.services.device_list_updates}),
and other servers' users' lists kept here
(L{ruma_tx.services.remote_device_lists}).
"""
from __future__ import annotations

from typing import Awaitable, Callable

from ruma_tx.runtime.federation import Federation
from ruma_tx.runtime.federation_sending import FederationSending
from ruma_tx.services.clock import Clock
from ruma_tx.services.device_list_updates import DeviceListUpdates, PublishedKeys
from ruma_tx.services.remote_device_lists import RemoteDeviceLists
from ruma_tx.services.remote_queries import RemoteKeys
from ruma_tx.storage.device_lists import DeviceListStore


def device_list_publishers(*, sending: FederationSending | None, store: DeviceListStore,
                           keys: Callable[[str], Awaitable[PublishedKeys]], server_name: str
                           ) -> list[Callable[[str], None]]:
    """
    The hooks of L{ruma_tx.services.cross_signing.DeviceLists} (C{published})
    that tell other servers of our users' changes: none without federation.
    """
    if sending is None:
        return []
    return [DeviceListUpdates(store=store, keys=keys, edus=sending.edus, server_name=server_name).changed]


def build_remote_device_lists(*, store: DeviceListStore, federation: Federation, clock: Clock,
                              changed: Callable[[str], Awaitable[None]]) -> RemoteDeviceLists:
    """
    Other servers' users' lists: the EDU target, the remote part of
    C{/keys/query} (give it to C{KeyQueries} only with federation on) and
    an event creator's C{stored} hook.
    """
    return RemoteDeviceLists(store=store, keys=RemoteKeys(federation=federation.client, clock=clock),
                             changed=changed)
