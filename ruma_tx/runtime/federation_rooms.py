"""
Wiring of rooms over federation: receiving transactions, the membership
handshakes both ways, and sending our events and EDUs out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from signedjson.types import SigningKey

from ruma_tx.http.federation_rooms import FederationRoomsApi
from ruma_tx.runtime.federation import Federation
from ruma_tx.runtime.federation_sending import FederationSending, build_federation_sending
from ruma_tx.runtime.reactor import IRuntimeReactor
from ruma_tx.services.events import EventCreator
from ruma_tx.services.federation_events import EventReceiver
from ruma_tx.services.federation_inbound import EduServices, Presences, Receipts, ToDevice, TransactionReceiver, Typers
from ruma_tx.services.federation_membership import FederatedMembership, ProfileLookup
from ruma_tx.services.ports.events import Events
from ruma_tx.services.ports.room_dag import DagEvents
from ruma_tx.services.room_dag import RoomDag
from ruma_tx.services.streams import StreamWriter
from ruma_tx.storage.database import Database


def build_sending(enabled: bool, database: Database, federation: Federation, streams: StreamWriter,
                  reactor: IRuntimeReactor, server_name: str) -> FederationSending | None:
    """The sending queue, when federation is on (built before the services whose changes it sends)."""
    if not enabled:
        return None
    return build_federation_sending(database=database, client=federation.client, streams=streams,
                                    reactor=reactor, server_name=server_name)


@dataclass(frozen=True)
class RoomFederation:
    receiver: EventReceiver
    membership: FederatedMembership


def build_room_federation(*, federation: Federation, creator: EventCreator, events: Events, dag_events: DagEvents,
                          dag: RoomDag, profiles: ProfileLookup, reactor: IRuntimeReactor, server_name: str,
                          signing_key: SigningKey) -> RoomFederation:
    receiver = EventReceiver(creator=creator, events=events, dag_events=dag_events, dag=dag,
                             federation=federation.client, key_ring=federation.key_ring)
    membership = FederatedMembership(creator=creator, receiver=receiver, events=events, dag=dag,
                                     dag_events=dag_events, client=federation.client, profiles=profiles,
                                     clock=reactor, server_name=server_name, signing_key=signing_key)
    return RoomFederation(receiver, membership)


def federation_rooms_api(rooms: RoomFederation, *, typing: Typers, receipts: Receipts, presence: Presences,
                         to_device: ToDevice, device_list_changed: Callable[[str], Awaitable[None]]
                         ) -> FederationRoomsApi:
    edus = EduServices(typing=typing, receipts=receipts, presence=presence, to_device=to_device,
                       device_list_changed=device_list_changed)
    return FederationRoomsApi(TransactionReceiver(room_pdus=rooms.receiver.receive_pdus, edus=edus),
                              rooms.membership)
