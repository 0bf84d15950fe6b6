"""
Wiring of the federation queries for end-to-end encryption keys and room
discovery: what our clients ask other servers (L{RemoteLookups}), and
what other servers ask us (L{federation_lookup_apis}).
"""
from __future__ import annotations

from dataclasses import dataclass

from ruma_tx.http.federation_directory import FederationRoomDirectoryApi
from ruma_tx.http.federation_user_keys import FederationKeysApi
from ruma_tx.services.clock import Clock
from ruma_tx.services.cross_signing import KeyQueries
from ruma_tx.services.directory import Directory
from ruma_tx.services.keys import DeviceKeys
from ruma_tx.services.ports.federation import FederationClient
from ruma_tx.services.remote_queries import RemoteKeys, RemotePublicRooms
from ruma_tx.services.spaces import RoomSummaries


@dataclass(frozen=True)
class RemoteLookups:
    """
    Other servers' keys and room directories, asked for our clients;
    C{None} when federation is off (their users are then in C{failures},
    their directories unreachable, as before federation).

    @ivar keys: for L{KeyQueries} and L{DeviceKeys} (C{remote=}).
    @ivar public_rooms: for L{Directory} (C{remote_rooms=}).
    """

    keys: RemoteKeys | None
    public_rooms: RemotePublicRooms | None


def remote_lookups(client: FederationClient, clock: Clock, *, enabled: bool) -> RemoteLookups:
    """The client-side lookups over C{client}, when federation is C{enabled}."""
    if not enabled:
        return RemoteLookups(keys=None, public_rooms=None)
    return RemoteLookups(keys=RemoteKeys(federation=client, clock=clock),
                         public_rooms=RemotePublicRooms(federation=client))


def federation_lookup_apis(*, queries: KeyQueries, keys: DeviceKeys, directory: Directory,
                           summaries: RoomSummaries) -> list[object]:
    """The endpoints other servers call, for the "federation" listener's router."""
    return [FederationKeysApi(queries=queries, keys=keys),
            FederationRoomDirectoryApi(directory=directory, summaries=summaries)]
