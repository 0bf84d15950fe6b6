"""
Wiring of rooms over federation: receiving transactions, the membership
handshakes both ways, sending our events and EDUs out, and reading rooms'
history both ways.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from signedjson.types import SigningKey

from ruma_tx.http.federation_events import FederationEventsApi
from ruma_tx.http.federation_rooms import FederationRoomsApi
from ruma_tx.runtime.federation import Federation
from ruma_tx.runtime.federation_sending import FederationSending, build_federation_sending
from ruma_tx.runtime.reactor import IRuntimeReactor
from ruma_tx.services.clock import Clock
from ruma_tx.services.events import EventCreator
from ruma_tx.services.federation_backfill import Backfiller
from ruma_tx.services.federation_events import EventReceiver
from ruma_tx.services.federation_inbound import (
    DeviceLists,
    EduServices,
    Presences,
    Receipts,
    ToDevice,
    TransactionReceiver,
    Typers,
)
from ruma_tx.services.federation_membership import FederatedMembership, ProfileLookup
from ruma_tx.services.federation_reads import FederationReads
from ruma_tx.services.ports.events import Events
from ruma_tx.services.ports.room_dag import DagEvents
from ruma_tx.services.room_dag import RoomDag
from ruma_tx.services.server_acls import ServerAcls
from ruma_tx.services.streams import StreamWriter
from ruma_tx.storage.database import Database
from ruma_tx.storage.federation_reads import FederationReadStore
from ruma_tx.storage.admin_rooms import RoomBlockStore
from ruma_tx.storage.history import HistoryStore


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
    #: The rooms' server ACLs, for every endpoint that serves a room.
    acls: ServerAcls
    #: Other servers' history of rooms, for /messages (the HistoryReader's C{remote}).
    backfiller: Backfiller


def build_room_federation(*, federation: Federation, creator: EventCreator, events: Events, dag_events: DagEvents,
                          dag: RoomDag, profiles: ProfileLookup, reactor: IRuntimeReactor, server_name: str,
                          signing_key: SigningKey, database: Database,
                          sending: FederationSending | None) -> RoomFederation:
    acls = ServerAcls(events)
    receiver = EventReceiver(creator=creator, events=events, dag_events=dag_events, dag=dag,
                             federation=federation.client, key_ring=federation.key_ring, acls=acls,
                             reactor=reactor)
    membership = FederatedMembership(creator=creator, receiver=receiver, events=events, dag=dag,
                                     dag_events=dag_events, client=federation.client, profiles=profiles,
                                     clock=reactor, server_name=server_name, signing_key=signing_key, acls=acls,
                                     relay=sending.sender.relay_pdu if sending else None,
                                     blocked=RoomBlockStore(database).is_blocked)
    backfiller = Backfiller(events=events, dag_events=dag_events, store=FederationReadStore(database),
                            receiver=receiver, federation=federation.client, server_name=server_name)
    return RoomFederation(receiver, membership, acls, backfiller)


def federation_reads_api(rooms: RoomFederation, *, database: Database, events: Events, dag_events: DagEvents,
                         dag: RoomDag, clock: Clock, server_name: str, current_position: Callable[[], int]
                         ) -> FederationEventsApi:
    """The endpoints other servers read rooms' history with."""
    return FederationEventsApi(FederationReads(
        events=events, history=HistoryStore(database), store=FederationReadStore(database), dag_events=dag_events,
        dag=dag, acls=rooms.acls, clock=clock, server_name=server_name, current_position=current_position))


def federation_rooms_api(rooms: RoomFederation, *, typing: Typers, receipts: Receipts, presence: Presences,
                         to_device: ToDevice, device_lists: DeviceLists,
                         sending: FederationSending | None) -> FederationRoomsApi:
    edus = EduServices(typing=typing, receipts=receipts, presence=presence, to_device=to_device,
                       device_lists=device_lists, acls=rooms.acls)
    receiver = TransactionReceiver(room_pdus=rooms.receiver.receive_pdus, edus=edus,
                                   origin_up=sending.sender.peer_alive if sending else None)
    return FederationRoomsApi(receiver, rooms.membership)
