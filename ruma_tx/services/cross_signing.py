"""
Key queries, cross-signing and device-list tracking (spec: "End-to-End
Encryption": "Tracking the device list for a user", "Cross-signing",
"Extensions to /sync").

- L{KeyQueries}: C{POST /keys/query} (device keys with display names and
  cross-signing signatures, cross-signing keys) and C{GET /keys/changes}.
- L{CrossSigning}: C{POST /keys/device_signing/upload} and
  C{POST /keys/signatures/upload}.
- L{DeviceLists}: the device-list change stream: records changes at stream
  positions, wakes the users who share a room with the changed user, and is
  the /sync source of C{device_lists}.

The server never trusts a signature it has not verified with C{signedjson}.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Awaitable, Callable, Mapping, Protocol, Sequence

from ruma_tx.matrix.cross_signing import (
    ED25519,
    INVALID_SIGNATURE,
    KEY_FIELDS,
    CrossSigningKey,
    DeviceSignature,
    MasterKeySignature,
    Refused,
    check_same_key,
    check_signed,
    is_signed_by,
    parse_cross_signing_key,
    server_of,
    signature_of,
    signatures_by,
    signatures_or_refuse,
    verify_key_for,
)
from ruma_tx.matrix.errors import (
    BadRequest,
    forbidden,
    missing_param,
)
from ruma_tx.matrix.federated_keys import by_server, check_hosted
from ruma_tx.matrix.types import JsonDict
from ruma_tx.matrix.uia import UiaRequest
from ruma_tx.services.guard import Requester
from ruma_tx.services.ports.accounts import Devices
from ruma_tx.services.ports.keys import CrossSigningStorage
from ruma_tx.services.device_list_updates import PublishedKeys
from ruma_tx.services.remote_queries import QueriedKeys
from ruma_tx.services.streams import StreamWriter
from ruma_tx.services.sync import SyncContext
from ruma_tx.services.uia import PASSWORD, UserInteractiveAuth

#: C{async (user_ids) -> user_id -> device_id -> device keys}.
DeviceKeysOfUsers = Callable[[list[str]], Awaitable[dict[str, dict[str, JsonDict]]]]


class RemoteKeyQueries(Protocol):
    """Other servers' users' keys (L{ruma_tx.services.remote_device_lists.RemoteDeviceLists})."""

    async def query(self, wanted: Mapping[str, Mapping[str, Sequence[str]]], timeout_ms: int | None
                    ) -> QueriedKeys: ...


# ------------------------------------------------------------ pure rules


# ----------------------------------------------------------- device lists


@dataclass(frozen=True)
class DeviceListDelta:
    """What C{device_lists} (and C{/keys/changes}) report for a window."""

    changed: list[str]
    left: list[str]

    def __bool__(self) -> bool:
        return bool(self.changed or self.left)


class DeviceLists:
    """
    The device-list change stream.

    A change is stored at a position of the one stream and wakes the
    changed user and everyone sharing a room with them. The /sync source
    (L{add_to_sync}) reports, for an incremental sync, in
    C{device_lists.changed} the users whose device lists changed and who
    share a room with the syncing user (or are that user), plus the users
    who started sharing a room with them; in C{device_lists.left} the users
    who no longer share any room with them after the window's membership
    changes. As Synapse, "a room" is any room, not only encrypted ones, and
    sharing means both are joined.

    @param store: the L{ruma_tx.storage.cross_signing.CrossSigningStore}.
    @param streams: the L{ruma_tx.services.streams.StreamWriter}.
    @param published: told (and must not wait) of each user whose public
        change was recorded (other servers hear of our users' changes).
    """

    def __init__(self, *, store: CrossSigningStorage, streams: StreamWriter,
                 published: Sequence[Callable[[str], None]] = ()) -> None:
        self._store = store
        self._streams = streams
        self._published = list(published)

    @property
    def current(self) -> int:
        return self._streams.current

    async def audience(self, changes: list[tuple[str, str | None]]) -> set[str]:
        """
        Who hears of C{changes} C{(user_id, viewer or None)}: for a public
        change, the user and everyone sharing a room with them; for a
        private one, the viewer.
        """
        users: set[str] = set()
        for user_id, viewer in changes:
            if viewer is not None:
                users.add(viewer)
            else:
                users.add(user_id)
                users |= await self._store.get_users_sharing_rooms(user_id)
        return users

    async def record(self, changes: list[tuple[str, str | None]]) -> int:
        """Record device-list C{changes} at a new position and wake who hears of them."""
        return await self.write(changes, lambda position: self._store.record_changes(changes, position))

    async def write(self, changes: list[tuple[str, str | None]],
                    store: Callable[[int], Awaitable[None]]) -> int:
        """
        Run C{store(position)}, which stores what changed and records
        C{changes} C{(user_id, viewer or None)} at a new position; then
        wake who hears of them and tell the C{published} hooks.
        """

        async def persist(position: int) -> set[str]:
            await store(position)
            return await self.audience(changes)

        position = await self._streams.write(persist, kind="device_lists")
        for user_id in dict.fromkeys(user_id for user_id, viewer in changes if viewer is None):
            for hook in self._published:
                hook(user_id)
        return position

    async def changed(self, user_id: str) -> None:
        """
        C{user_id}'s device list changed: a device was added, renamed or
        deleted, or uploaded new identity keys. They and everyone sharing
        a room with them hear of it in C{device_lists.changed}.
        """
        await self.record([(user_id, None)])

    async def add_to_sync(self, ctx: SyncContext) -> None:
        """Add C{device_lists} to an incremental sync when anything changed."""
        if ctx.since is None:
            return  # spec: only for an incremental sync
        if not ctx.touched("device_lists") and not ctx.touched("room_membership"):
            return
        delta = await self.changes(ctx.request.user_id, ctx.since.stream, ctx.now.stream)
        if delta:
            ctx.response["device_lists"] = {"changed": delta.changed, "left": delta.left}

    async def changes(self, user_id: str, after: int, upto: int) -> DeviceListDelta:
        """The device-list delta of C{user_id} for the window C{(after, upto]}."""
        if after >= upto:
            return DeviceListDelta([], [])
        key_changes = await self._store.get_changes(user_id, after, upto)
        member_events = await self._store.get_membership_events(user_id, after, upto)
        changed: set[str] = set()
        left_candidates: set[str] = set()
        rooms_joined, rooms_left = set(), set()
        for room_id, member, membership, previous, joined_now in member_events:
            was_joined, is_joined = previous == "join", membership == "join"
            if was_joined == is_joined:
                continue  # a profile change, an invite, a rejected invite...
            if member == user_id:
                if is_joined and joined_now:
                    rooms_joined.add(room_id)
                elif not is_joined and not joined_now:
                    rooms_left.add(room_id)
            elif joined_now:
                (changed if is_joined else left_candidates).add(member)
        if rooms_joined or rooms_left:
            members = await self._store.get_joined_members(sorted(rooms_joined | rooms_left))
            for room_id in rooms_joined:
                changed |= members[room_id]
            for room_id in rooms_left:
                left_candidates |= members[room_id]
        public = {c.user_id for c in key_changes if not c.private}
        private = {c.user_id for c in key_changes if c.private}
        if not (changed or left_candidates or public or private):
            return DeviceListDelta([], [])
        shared = await self._store.get_users_sharing_rooms(user_id) if (
            changed or left_candidates or public - {user_id}) else set()
        left = left_candidates - shared - {user_id}
        started_sharing = (changed & shared) - {user_id}
        keys_changed = {u for u in public if u == user_id or u in shared}
        # private: masters the user's own user-signing key signed
        changed = (started_sharing | keys_changed | private) - left
        return DeviceListDelta(sorted(changed), sorted(left))


# ----------------------------------------------------------- key queries


class KeyQueries:
    """
    C{POST /keys/query} and C{GET /keys/changes}, and the federation's
    C{/user/keys/query} and C{/user/devices/{userId}}.

    @param device_keys: C{async (user_ids) -> {user_id: {device_id: keys}}},
        the device identity keys uploaded to C{/keys/upload} (the
        L{ruma_tx.storage.keys.KeyStore}'s C{get_device_keys_of_users}).
    @param store: the L{ruma_tx.storage.cross_signing.CrossSigningStore}.
    @param device_lists: the L{DeviceLists}, for C{/keys/changes}.
    @param stream_ids: C{async (user_id) -> int}: the stream id of the
        user's last C{m.device_list_update} (see
        L{ruma_tx.services.device_list_updates}).
    @param remote: other servers' users' keys; C{None} when federation is
        off (their users are then in C{failures}).
    """

    def __init__(self, *, device_keys: DeviceKeysOfUsers, store: CrossSigningStorage,
                 device_lists: DeviceLists, server_name: str, stream_ids: Callable[[str], Awaitable[int]],
                 remote: RemoteKeyQueries | None = None) -> None:
        self._device_keys = device_keys
        self._store = store
        self._device_lists = device_lists
        self._server_name = server_name
        self._stream_ids = stream_ids
        self._remote = remote

    async def query(self, requester: Requester, wanted: dict[str, list[str]],
                    timeout_ms: int | None = None) -> dict:
        """
        The keys of the C{wanted} users' devices (all of a user's when the
        list is empty), with cross-signing signatures merged in, and the
        users' cross-signing keys as far as the requester may see them.
        Other servers are asked for their users' (within C{timeout_ms});
        those that do not answer are in C{failures}. A user without keys
        is present with no devices, as Synapse answers.
        """
        local, remote = by_server(list(wanted), self._server_name)
        response = await self._local_keys({user_id: wanted[user_id] for user_id in local},
                                          viewer=requester.user_id)
        failures: dict[str, dict] = {}
        if remote and self._remote is None:
            failures = {server: {"status": 503, "message": "Federation is disabled on this server"} for server in remote}
        elif remote and self._remote is not None:
            answers = await self._remote.query(
                {server: {user_id: wanted[user_id] for user_id in users} for server, users in remote.items()},
                timeout_ms)
            response["device_keys"].update(answers.device_keys)
            response["master_keys"].update(answers.master_keys)
            response["self_signing_keys"].update(answers.self_signing_keys)
            failures = answers.failures
        response["failures"] = failures
        return response

    async def query_for_server(self, wanted: dict[str, list[str]]) -> dict:
        """
        Federation C{/user/keys/query}: our users' device keys and master
        and self-signing keys, as any other server may see them (no
        user-signing key, no signature by another user's user-signing key,
        and, as Synapse by default, no device display names).

        @raise MatrixError: 400 when a user is not ours.
        """
        check_hosted(list(wanted), self._server_name)
        response = await self._local_keys(wanted, viewer=None)
        del response["user_signing_keys"]
        return response

    async def user_devices(self, user_id: str) -> dict:
        """
        Federation C{/user/devices/{userId}}: the user's devices with their
        keys, and their master and self-signing keys. C{stream_id} is that
        of the user's last C{m.device_list_update}, read before the keys, so
        the next update names it in C{prev_id} (one the keys already include
        is applied again, which changes nothing).

        @raise MatrixError: 400 when the user is not ours.
        """
        check_hosted([user_id], self._server_name)
        stream_id = await self._stream_ids(user_id)
        keys = await self.keys_for_servers(user_id)
        devices = [{"device_id": device_id, "keys": device_keys} for device_id, device_keys in keys.devices.items()]
        response: JsonDict = {"user_id": user_id, "stream_id": stream_id, "devices": devices}
        if keys.master_key is not None:
            response["master_key"] = keys.master_key
        if keys.self_signing_key is not None:
            response["self_signing_key"] = keys.self_signing_key
        return response

    async def keys_for_servers(self, user_id: str) -> PublishedKeys:
        """Our user's device keys (without C{unsigned}) and master and self-signing keys, as other servers see them."""
        keys = await self._local_keys({user_id: []}, viewer=None)
        return PublishedKeys(
            {device_id: {k: v for k, v in info.items() if k != "unsigned"}
             for device_id, info in keys["device_keys"][user_id].items()},
            keys["master_keys"].get(user_id), keys["self_signing_keys"].get(user_id))

    async def _local_keys(self, wanted: Mapping[str, Sequence[str]], viewer: str | None) -> dict:
        """
        Our C{wanted} users' device keys and cross-signing keys as
        C{viewer} may see them (C{None}: another server).
        """
        user_ids = list(wanted)
        found = await self._device_keys(user_ids) if user_ids else {}
        signatures = await self._store.get_device_signatures(user_ids)
        names = await self._store.get_device_names(user_ids)
        device_keys: dict[str, dict] = {}
        for user_id, asked in wanted.items():
            shown = device_keys[user_id] = {}
            for device_id, keys in sorted(found.get(user_id, {}).items()):
                if (user_id, device_id) not in names or (asked and device_id not in asked):
                    continue  # not asked for, or deleted meanwhile
                display_name = names[(user_id, device_id)] if viewer is not None else None
                shown[device_id] = self._device_info(user_id, keys, display_name,
                                                     signatures.get((user_id, device_id), {}))
        response = {"device_keys": device_keys}
        response.update(await self._cross_signing_keys(viewer, user_ids))
        return response

    @staticmethod
    def _device_info(user_id: str, keys: JsonDict, display_name: str | None,
                     signatures: dict[str, str]) -> JsonDict:
        info = copy.deepcopy(keys)
        if signatures:
            merged = info.setdefault("signatures", {})
            if isinstance(merged, dict):
                merged.setdefault(user_id, {}).update(signatures)
        # As Synapse: the server's unsigned replaces the client's.
        info["unsigned"] = {} if display_name is None else {"device_display_name": display_name}
        return info

    async def _cross_signing_keys(self, viewer: str | None, user_ids: list[str]) -> dict:
        """
        C{master_keys}, C{self_signing_keys} and C{user_signing_keys}: the
        first two of every queried user, whether or not they share a room
        with the viewer (the spec's POST /keys/query sets no such limit, and
        Synapse sets none: a client verifies a user before sharing a room),
        the user-signing key only to its owner. Master keys carry the
        signatures the viewer may see (spec: "Key and signature security").
        """
        keys = await self._store.get_keys(user_ids)
        master_keys, self_signing, user_signing = {}, {}, {}
        for user_id, by_usage in keys.items():
            if "master" in by_usage:
                master_keys[user_id] = copy.deepcopy(by_usage["master"].key_json)
            if "self_signing" in by_usage:
                self_signing[user_id] = by_usage["self_signing"].key_json
            if "user_signing" in by_usage and user_id == viewer:
                user_signing[user_id] = by_usage["user_signing"].key_json
        for s in await self._store.get_master_key_signatures(list(master_keys), viewer):
            signatures = master_keys[s.user_id].setdefault("signatures", {})
            signatures.setdefault(s.signer_id, {})[s.signing_key_id] = s.signature
        return {"master_keys": master_keys, "self_signing_keys": self_signing,
                "user_signing_keys": user_signing}

    async def changes(self, requester: Requester, from_stream: int, to_stream: int) -> dict:
        """
        C{/keys/changes}: the C{device_lists} computation between two sync
        tokens (C{to} capped at the current position).
        """
        delta = await self._device_lists.changes(
            requester.user_id, from_stream, min(to_stream, self._device_lists.current))
        return {"changed": delta.changed, "left": delta.left}


# --------------------------------------------------------- cross-signing


class CrossSigning:
    """
    Uploading cross-signing keys and signatures.

    @param store: the L{ruma_tx.storage.cross_signing.CrossSigningStore}.
    @param device_keys: as for L{KeyQueries}.
    @param devices: the L{ruma_tx.storage.devices.DeviceStore} (cross-signing
        public keys must not be device ids).
    @param uia: the L{ruma_tx.services.uia.UserInteractiveAuth}.
    @param device_lists: the L{DeviceLists}, which records the changes.
    """

    def __init__(self, *, store: CrossSigningStorage, device_keys: DeviceKeysOfUsers, devices: Devices,
                 uia: UserInteractiveAuth, device_lists: DeviceLists, server_name: str) -> None:
        self._store = store
        self._device_keys = device_keys
        self._devices = devices
        self._uia = uia
        self._device_lists = device_lists
        self._server_name = server_name

    async def upload_keys(self, requester: Requester, body: JsonDict, *, request: UiaRequest) -> None:
        """
        C{POST /keys/device_signing/upload}: store the user's master,
        self-signing and user-signing keys.

        UIA is skipped when the user has no master key yet, and when every
        key sent is the one already stored (the spec's idempotent retry:
        then nothing changes, as Synapse does).

        @raise MatrixError: 400 M_INVALID_PARAM / M_BAD_JSON for a malformed
            key, 400 M_MISSING_PARAM when a self-signing or user-signing key
            comes with no master key known, 400 M_INVALID_SIGNATURE when the
            master key did not sign it, 403 when a public key is one of the
            user's device ids, 401 for UIA.
        """
        user_id = requester.user_id
        given = {usage: parse_cross_signing_key(body[field], user_id, usage)
                 for field, usage in KEY_FIELDS if body.get(field) is not None}
        existing = (await self._store.get_keys([user_id])).get(user_id, {})
        if "master" in existing:
            if all(usage in existing and existing[usage].key_id == key.key_id
                   for usage, key in given.items()):
                return  # no new key: nothing to do, and no UIA asked
            await self._uia.authenticate(body, action="device_signing", user_id=user_id,
                                         flows=[[PASSWORD]], server_name=self._server_name,
                                         request=request)
        if not given:
            return
        master = given.get("master") or existing.get("master")
        for usage in ("self_signing", "user_signing"):
            if usage not in given:
                continue
            if master is None:
                raise missing_param("No master key available to verify the signature")
            if not is_signed_by(given[usage].key_json, user_id,
                                verify_key_for(master.key_id, master.public_key)):
                raise BadRequest(INVALID_SIGNATURE,
                                  f"The {usage} key is not signed by the master key")
        for key in given.values():
            if await self._devices.get_device(user_id, key.public_key) is not None:
                raise forbidden("Key ID in use")

        await self._device_lists.write(
            [(user_id, None)], lambda position: self._store.put_keys(user_id, list(given.values()), position))

    async def upload_signatures(self, requester: Requester, signed: dict[str, dict[str, dict]]) -> dict:
        """
        C{POST /keys/signatures/upload}: verify and store signatures on the
        requester's own device keys (by their self-signing key), on their
        own master key (by one of their devices), and on other users' master
        keys (by their user-signing key).

        @return: C{{"failures": {user_id: {key_id: error}}}} for every
            signed object refused; the others are stored.
        """
        user_id = requester.user_id
        local = [u for u in signed if server_of(u) == self._server_name]
        keys = await self._store.get_keys(sorted(set(local) | {user_id}))
        mine = keys.get(user_id, {})
        failures: dict[str, dict] = {}
        device_sigs: list[DeviceSignature] = []
        master_sigs: list[MasterKeySignature] = []
        changes: list[tuple[str, str | None]] = []
        own_devices: dict[str, JsonDict] = {}
        if signed.get(user_id):
            own_devices = (await self._device_keys([user_id])).get(user_id, {})
        for target, objects in signed.items():
            for key_id, key_object in objects.items():
                try:
                    if target == user_id:
                        found = self._own_signatures(user_id, key_id, key_object, mine, own_devices)
                    else:
                        found = [self._user_signature(
                            user_id, target, key_id, key_object, mine, keys.get(target, {}))]
                except Refused as refused:
                    failures.setdefault(target, {})[key_id] = refused.failure
                    continue
                for signature in found:
                    if isinstance(signature, DeviceSignature):
                        device_sigs.append(signature)
                    else:
                        master_sigs.append(signature)
                changes.append((target, None if target == user_id else user_id))
        if changes:
            await self._device_lists.write(changes, lambda position: self._store.put_signatures(
                device_sigs, master_sigs, changes, position))
        return {"failures": failures}

    @staticmethod
    def _own_signatures(user_id: str, key_id: str, key_object: JsonDict,
                        mine: Mapping[str, CrossSigningKey], own_devices: Mapping[str, JsonDict],
                        ) -> Sequence[DeviceSignature | MasterKeySignature]:
        """Signatures on the user's own master key (by devices) or device (by the self-signing key)."""
        master = mine.get("master")
        if master is not None and key_id == master.public_key:
            check_same_key(key_object, master.key_json)
            stored = signatures_by(master.key_json, user_id)
            found = []
            for signing_key_id, signature in signatures_or_refuse(key_object, user_id).items():
                if signing_key_id == master.key_id or stored.get(signing_key_id) == signature:
                    continue  # already part of the stored key
                device_id = signing_key_id.partition(":")[2]
                device_key = own_devices.get(device_id, {}).get("keys", {}).get(signing_key_id)
                if not signing_key_id.startswith(ED25519 + ":") or not isinstance(device_key, str):
                    raise Refused(INVALID_SIGNATURE, f"Unknown signing device key {signing_key_id}")
                try:
                    verify_key = verify_key_for(signing_key_id, device_key)
                except Exception:
                    raise Refused(INVALID_SIGNATURE, f"Invalid device key {signing_key_id}") from None
                check_signed(key_object, user_id, verify_key)
                found.append(MasterKeySignature(user_id, master.key_id, user_id, signing_key_id, signature))
            if not found:
                raise Refused(INVALID_SIGNATURE, "No new signature by one of the user's devices")
            return found
        device = own_devices.get(key_id)
        if device is None:
            raise Refused("M_NOT_FOUND", "Unknown device or key")
        self_signing = mine.get("self_signing")
        if self_signing is None:
            raise Refused("M_NOT_FOUND", "No self-signing key has been uploaded")
        check_same_key(key_object, device)
        signature = signature_of(key_object, user_id, self_signing.key_id)
        check_signed(key_object, user_id, verify_key_for(self_signing.key_id, self_signing.public_key))
        return [DeviceSignature(user_id, key_id, self_signing.key_id, signature)]

    @staticmethod
    def _user_signature(user_id: str, target: str, key_id: str, key_object: JsonDict,
                        mine: Mapping[str, CrossSigningKey], theirs: Mapping[str, CrossSigningKey],
                        ) -> MasterKeySignature:
        """A signature of the requester's user-signing key on C{target}'s master key."""
        user_signing = mine.get("user_signing")
        if user_signing is None:
            raise Refused("M_NOT_FOUND", "No user-signing key has been uploaded")
        master = theirs.get("master")
        if master is None or key_id != master.public_key:
            raise Refused("M_NOT_FOUND", f"{key_id} is not the master key of {target}")
        check_same_key(key_object, master.key_json)
        signature = signature_of(key_object, user_id, user_signing.key_id)
        check_signed(key_object, user_id, verify_key_for(user_signing.key_id, user_signing.public_key))
        return MasterKeySignature(target, master.key_id, user_id, user_signing.key_id, signature)

