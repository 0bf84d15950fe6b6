"""
Other servers' users' device lists, kept while they share a room with one
of our users (server-server spec: "Device Management"): fetched with
C{/user/devices} the first time a client asks for them, then kept up to
date by the C{m.device_list_update} and C{m.signing_key_update} EDUs their
servers send, and fetched again when an update shows that one was missed.
C{/keys/query} answers from them without asking the other server (also
while it is down).

A list is trusted only while its user shares a room with ours: only then
does their server send us every change. When they stop sharing (a leave,
a kick, our last user leaving), the list is forgotten; if they share a
room again, the next query fetches it again. As Synapse, an update about
a user who shares no room with ours is ignored.

Each update also records a device-list change of that user, so our users
who share a room with them see them in C{device_lists.changed} and ask
for their keys again.
"""
from __future__ import annotations

from typing import Awaitable, Callable, Mapping, Sequence

from twisted.internet import defer

from ruma_tx.logs import logger
from ruma_tx.matrix.device_lists import RemoteDevice, RemoteDeviceList, UpdateAction, update_action
from ruma_tx.matrix.federated_keys import checked_device, checked_signing_keys
from ruma_tx.matrix.federation_transactions import DeviceListUpdate, SigningKeyUpdate
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.concurrency import KeyedLocks, concurrently
from ruma_tx.services.ports.device_lists import RemoteDeviceListCache
from ruma_tx.services.ports.events import NewEvent
from ruma_tx.services.remote_queries import QueriedKeys, RemoteKeys

log = logger(__name__)


class RemoteDeviceLists:
    """
    The EDU targets of device lists, and the remote part of C{/keys/query}.

    @param store: the lists held.
    @param keys: asks other servers (C{/user/devices}, C{/user/keys/query}).
    @param changed: C{async (user_id)}: record a device-list change of a
        remote user (L{ruma_tx.services.cross_signing.DeviceLists.changed}).
    """

    def __init__(self, *, store: RemoteDeviceListCache, keys: RemoteKeys,
                 changed: Callable[[str], Awaitable[None]]) -> None:
        self._store = store
        self._keys = keys
        self._changed = changed
        # Updates and fetches of one user's list run one at a time.
        self._locks = KeyedLocks()

    # ------------------------------------------------------------- EDUs

    async def update(self, update: DeviceListUpdate) -> None:
        """An C{m.device_list_update} (its sender is the user's server)."""
        user_id = update.user_id
        if not await self._store.get_users_sharing_rooms_with_ours([user_id]):
            return
        if await self._locks.run(user_id, self._update, update) is not UpdateAction.IGNORE:
            await self._changed(user_id)

    async def _update(self, update: DeviceListUpdate) -> UpdateAction:
        user_id = update.user_id
        action = update_action(await self._store.get_remote_stream_id(user_id), update.stream_id, update.prev_id)
        if action is UpdateAction.APPLY:
            device = None if update.deleted else RemoteDevice(
                checked_device(user_id, update.device_id, update.keys), update.display_name)
            await self._store.apply_remote_update(user_id, update.stream_id, update.device_id, device)
        elif action is UpdateAction.RESYNC:
            log.info("device list of {user_id} fetched again (update {stream_id} after {prev})",
                     user_id=user_id, stream_id=update.stream_id, prev=update.prev_id)
            await self._fetch(user_id, None, {})
        return action

    async def signing_keys(self, update: SigningKeyUpdate) -> None:
        """An C{m.signing_key_update}: new master or self-signing keys."""
        user_id = update.user_id
        if not await self._store.get_users_sharing_rooms_with_ours([user_id]):
            return
        await self._locks.run(user_id, self._signing_keys, update)
        await self._changed(user_id)

    async def _signing_keys(self, update: SigningKeyUpdate) -> None:
        held = (await self._store.get_remote_device_lists([update.user_id])).get(update.user_id)
        if held is None:
            return  # nothing held: the next query fetches the whole list
        master = update.master_key if update.master_key is not None else held.master_key
        self_signing = update.self_signing_key if update.self_signing_key is not None else held.self_signing_key
        # Kept only if well formed, the self-signing key only if the master signed it.
        await self._store.put_remote_signing_keys(update.user_id,
                                                  *checked_signing_keys(update.user_id, master, self_signing))

    # ------------------------------------------------------------ query

    async def query(self, wanted: Mapping[str, Mapping[str, Sequence[str]]], timeout_ms: int | None
                    ) -> QueriedKeys:
        """
        The device and cross-signing keys of other servers' users
        (C{server -> user_id -> device ids}, all when empty): from the lists
        held, fetching those of users who share a room with ours; the
        other servers are asked for the rest.
        """
        asked = {user_id: ids for users in wanted.values() for user_id, ids in users.items()}
        held = await self._store.get_remote_device_lists(list(asked))
        failures: dict[str, JsonDict] = {}
        tracked = await self._store.get_users_sharing_rooms_with_ours([u for u in asked if u not in held])
        if tracked:
            await concurrently(*(self._fetch_if_missing(user_id, timeout_ms, failures) for user_id in tracked))
            held.update(await self._store.get_remote_device_lists(sorted(tracked)))
        rest = {server: {user_id: ids for user_id, ids in users.items() if user_id not in held}
                for server, users in wanted.items() if server not in failures}
        merged = await self._keys.query({server: users for server, users in rest.items() if users}, timeout_ms)
        merged.failures.update(failures)
        for user_id, device_list in held.items():
            _add(merged, user_id, device_list, asked[user_id])
        return merged

    async def _fetch_if_missing(self, user_id: str, timeout_ms: int | None, failures: dict[str, JsonDict]
                                ) -> None:
        async def fetch() -> None:
            if await self._store.get_remote_stream_id(user_id) is None:  # else fetched meanwhile
                await self._fetch(user_id, timeout_ms, failures)

        await self._locks.run(user_id, fetch)

    async def _fetch(self, user_id: str, timeout_ms: int | None, failures: dict[str, JsonDict]) -> None:
        """Fetch C{user_id}'s list again (under their lock); what cannot be fetched is forgotten."""
        found = await self._keys.user_devices(user_id, timeout_ms, failures)
        if found is None:
            await self._store.forget_remote_device_list(user_id)
        else:
            await self._store.put_remote_device_list(user_id, found)

    # ----------------------------------------------------------- rooms

    def event_stored(self, event: NewEvent, position: int) -> None:
        """
        A member stopped being joined to a room: forget the lists of those
        who no longer share a room with our users (in the background: a
        hook of the event creator must not wait).
        """
        pdu = event.pdu
        content = pdu.get("content")
        state_key = pdu.get("state_key")
        if pdu.get("type") != "m.room.member" or not isinstance(state_key, str) \
                or not isinstance(content, dict) or content.get("membership") == "join":
            return
        defer.ensureDeferred(self._store.forget_unshared(event.room_id, state_key)).addErrback(
            lambda f: log.failure("forgetting device lists after a leave in {room_id}", f, room_id=event.room_id))


def _add(keys: QueriedKeys, user_id: str, device_list: RemoteDeviceList, asked: Sequence[str]) -> None:
    keys.device_keys[user_id] = device_list.device_keys(asked)
    if device_list.master_key is not None:
        keys.master_keys[user_id] = device_list.master_key
    if device_list.self_signing_key is not None:
        keys.self_signing_keys[user_id] = device_list.self_signing_key
