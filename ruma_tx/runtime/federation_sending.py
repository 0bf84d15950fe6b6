"""
Wiring of the federation sending queue: our events and EDUs to the other
servers of our rooms (L{ruma_tx.services.federation_sender}).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from ruma_tx.runtime.reactor import IRuntimeReactor
from ruma_tx.services.federation_edus import FederationEdus
from ruma_tx.services.federation_sender import FederationSender, SendingSettings
from ruma_tx.services.ports.federation import FederationClient
from ruma_tx.services.streams import StreamWriter
from ruma_tx.storage.database import Database
from ruma_tx.storage.federation_queue import FederationQueueStore


@dataclass(frozen=True)
class FederationSending:
    """
    @ivar sender: give L{FederationSender.event_stored} to the event
        creator's C{stored} hooks; L{FederationSender.start} once the
        database is migrated, L{FederationSender.stop} at shutdown.
    @ivar edus: the hooks of the typing, receipt, presence, device-list,
        cross-signing and to-device services.
    """

    sender: FederationSender
    edus: FederationEdus


def build_federation_sending(*, database: Database, client: FederationClient, streams: StreamWriter,
                             reactor: IRuntimeReactor, server_name: str,
                             settings: SendingSettings = SendingSettings()) -> FederationSending:
    queue = FederationQueueStore(database)
    sender = FederationSender(queue=queue, client=client, streams=streams, clock=reactor,
                              random=random.Random().random, server_name=server_name, settings=settings)
    return FederationSending(sender, FederationEdus(sender=sender, queue=queue, server_name=server_name))
