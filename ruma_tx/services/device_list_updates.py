"""
Telling other servers of our users' device changes (server-server spec:
"Device Management", "End-to-End Encryption"): an C{m.device_list_update}
for each device whose keys, as other servers see them, are new, changed
or gone, and an C{m.signing_key_update} when the master or self-signing
key changed, to every server sharing a room with the user.

Whatever changed a user's device list (keys uploaded, a device deleted by
any means, a self-signing signature, new cross-signing keys) ends in
L{DeviceListUpdates.changed}. The user's keys are then compared with what
was last announced (L{ruma_tx.matrix.device_lists.device_changes}), so a
change is sent once however many paths report it, a device without keys
is not announced, and display names, which other servers are not shown
(as Synapse by default), send nothing.

The stream ids are recorded before the EDUs are queued: if the server
stops in between, those EDUs are lost, but the next update names the
missed one in C{prev_id}, and its receivers fetch the list again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol, Sequence

from twisted.internet import defer

from ruma_tx.logs import logger
from ruma_tx.matrix.cross_signing import server_of
from ruma_tx.matrix.device_lists import device_changes, prev_ids, signing_keys_digest
from ruma_tx.matrix.federation_edus import device_list_update_content
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.concurrency import KeyedLocks
from ruma_tx.services.ports.device_lists import AnnouncedDeviceLists

log = logger(__name__)


@dataclass(frozen=True)
class PublishedKeys:
    """A local user's keys as other servers see them."""

    devices: dict[str, JsonDict]
    master_key: JsonDict | None = None
    self_signing_key: JsonDict | None = None


class DeviceListEdus(Protocol):
    """Where the EDUs go (L{ruma_tx.services.federation_edus.FederationEdus})."""

    async def device_list_changed(self, user_id: str, updates: Sequence[JsonDict]) -> None: ...

    async def signing_keys_changed(self, user_id: str, *, master_key: JsonDict | None = None,
                                   self_signing_key: JsonDict | None = None) -> None: ...


class DeviceListUpdates:
    """
    @param store: what was announced, and the users' stream ids.
    @param keys: C{async (user_id) -> PublishedKeys}.
    @param edus: sends the updates to the servers concerned.
    """

    def __init__(self, *, store: AnnouncedDeviceLists, keys: Callable[[str], Awaitable[PublishedKeys]],
                 edus: DeviceListEdus, server_name: str) -> None:
        self._store = store
        self._keys = keys
        self._edus = edus
        self._server_name = server_name
        # One comparison per user at a time: each stream id is sent once.
        self._locks = KeyedLocks()

    def changed(self, user_id: str) -> None:
        """C{user_id}'s device list may have changed (must not wait: the work goes on in the background)."""
        if server_of(user_id) == self._server_name:
            defer.ensureDeferred(self.publish(user_id)).addErrback(
                lambda f: log.failure("announcing the devices of {user_id}", f, user_id=user_id))

    async def publish(self, user_id: str) -> None:
        """Send what changed in C{user_id}'s keys since they were last announced."""
        await self._locks.run(user_id, self._publish, user_id)

    async def _publish(self, user_id: str) -> None:
        keys = await self._keys(user_id)
        announced = await self._store.get_announced(user_id)
        changes = device_changes(keys.devices, announced.devices)
        signing = signing_keys_digest(keys.master_key, keys.self_signing_key)
        if not changes and signing == announced.signing_keys_digest:
            return
        last = await self._store.announce(user_id, changes, signing)
        first = last - len(changes) + 1
        await self._edus.device_list_changed(user_id, [
            device_list_update_content(user_id, change.device_id, stream_id, prev_ids(stream_id),
                                       deleted=change.keys is None, keys=change.keys)
            for stream_id, change in enumerate(changes, start=first)])
        if signing is not None and signing != announced.signing_keys_digest:
            await self._edus.signing_keys_changed(user_id, master_key=keys.master_key,
                                                  self_signing_key=keys.self_signing_key)
