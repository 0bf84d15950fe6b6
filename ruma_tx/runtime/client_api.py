"""
What the composition root builds: the listeners' roots and the components
the service starts and stops around them.
"""
from __future__ import annotations

from dataclasses import dataclass

from ruma_tx.http.site import MatrixRoot
from ruma_tx.runtime.media import Media
from ruma_tx.services.clock import Periodic
from ruma_tx.services.cross_signing import DeviceLists
from ruma_tx.services.devices import DeviceActivity
from ruma_tx.services.federation_sender import FederationSender
from ruma_tx.services.guard import Guard
from ruma_tx.services.guest_access import GuestEviction
from ruma_tx.services.notifier import Notifier
from ruma_tx.services.push_delivery import PushDelivery


@dataclass(frozen=True)
class ClientApi:
    root: MatrixRoot
    #: The root of listeners serving only the "openid" resource.
    openid_root: MatrixRoot
    #: The root of "federation" listeners.
    federation_root: MatrixRoot
    #: The root of "metrics" listeners: /metrics and /health.
    metrics_root: MatrixRoot
    activity: DeviceActivity
    guard: Guard
    notifier: Notifier
    device_lists: DeviceLists
    #: Started before the server listens, stopped once requests are drained.
    push_delivery: PushDelivery
    #: The media repository (stopped once requests are drained) and its upload spooling.
    media: Media
    #: Waited for at shutdown: the guests' leaves it is still sending.
    guest_eviction: GuestEviction
    #: Writes sliding-sync connections; its last write runs once requests are drained.
    sliding_sync_saver: Periodic
    #: With federation on: started with push delivery, stopped with it.
    federation_sender: FederationSender | None
