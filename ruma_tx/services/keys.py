"""
Device keys for end-to-end encryption (spec: "Key Distribution", "Extensions
to /sync"): uploading identity, one-time and fallback keys, claiming
one-time keys, and telling each device its key counts in /sync.

The server never sees private keys; it checks what it can (shapes, that the
identity keys do not change, and the signatures by the device's ed25519
key, which Synapse does not check) and hands keys out exactly as uploaded.

The pure rules are the module-level functions; L{DeviceKeys} is the use
case and the /sync source of C{device_one_time_keys_count} and
C{device_unused_fallback_key_types}.
"""
from __future__ import annotations

from typing import Awaitable, Callable

from ruma_tx.matrix.device_keys import (
    canonical,
    check_device_keys,
    check_identity_unchanged,
    check_key_object,
    device_verify_key,
    one_time_key_counts,
    parse_claims,
    same_one_time_key,
    split_key_name,
)
from ruma_tx.matrix.errors import (
    BadRequest,
    invalid_param,
    not_found,
)
from ruma_tx.matrix.federated_keys import check_hosted
from ruma_tx.matrix.identifiers import InvalidIdentifier, parse_user_id
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.concurrency import KeyedLocks
from ruma_tx.services.guard import Requester
from ruma_tx.services.ports.keys import (
    ClaimedKey,
    DeviceKeyStorage,
    StoredKeys,
    SyncKeyCounts,
    UnknownDevice,
)
from ruma_tx.services.remote_queries import RemoteKeys
from ruma_tx.services.streams import StreamWriter
from ruma_tx.services.sync import SyncContext

#: A key of an upload: C{(algorithm, key_id, key object)}.
UploadedKey = tuple[str, str, object]

# ------------------------------------------------------------------ rules


# -------------------------------------------------------------- use cases


class DeviceKeys:
    """
    @param store: the L{ruma_tx.storage.keys.KeyStore}.
    @param streams: the L{ruma_tx.services.streams.StreamWriter}: a change of a
        device's key counts takes a position and wakes its user, so the
        device hears of it in /sync.
    @param on_device_keys_changed: C{async (user_id)}, called after a
        device's keys were first uploaded or changed (device-list tracking).
    @param remote: claims other servers' users' keys; C{None} when
        federation is off (their servers are then in C{failures}).
    """

    def __init__(self, *, store: DeviceKeyStorage, streams: StreamWriter, clock: Clock, server_name: str,
                 on_device_keys_changed: Callable[[str], Awaitable[None]],
                 counts_cache_size: int = 10_000, remote: RemoteKeys | None = None) -> None:
        self._store = store
        self._streams = streams
        self._clock = clock
        self._server_name = server_name
        self._on_device_keys_changed = on_device_keys_changed
        self._remote = remote
        # Checking an upload against what is stored and storing it are not
        # one statement: uploads of one device run one at a time (as
        # Synapse's ONE_TIME_KEY_UPLOAD lock). This process is the only writer.
        self._locks = KeyedLocks()
        # Per device, the counts read at a stream position: still right while
        # no upload or claim ("key_counts" change) concerned the user since.
        self._counts: LRUCache[tuple[str, str], tuple[int, SyncKeyCounts]] = LRUCache(counts_cache_size)

    # ----------------------------------------------------------- upload

    async def upload(self, requester: Requester, *, device_keys: dict | None, one_time_keys: dict,
                     fallback_keys: dict) -> dict:
        """
        Store the requester's device's keys; answer the counts of its
        unclaimed one-time keys (C{{"one_time_key_counts": ...}}).

        Re-uploading the same device keys, or a one-time key id with the
        same key, changes nothing.

        @raise MatrixError: 400 (see L{check_device_keys},
            L{check_identity_unchanged}, L{check_key_object}); 400
            M_UNKNOWN for a one-time key id already holding another key
            (Synapse's errcode and message, which some clients match); 400
            M_INVALID_PARAM for two fallback keys of one algorithm.
        """
        user_id, device_id = requester.user_id, requester.device_id
        new_otks = [(*split_key_name(name, "one_time_keys"), value) for name, value in one_time_keys.items()]
        new_fallbacks = [(*split_key_name(name, "fallback_keys"), value) for name, value in fallback_keys.items()]
        algorithms = [algorithm for algorithm, _, _ in new_fallbacks]
        if len(set(algorithms)) != len(algorithms):
            # The spec: "There can only be at most one key per algorithm
            # uploaded" (Synapse keeps whichever it stores last).
            raise invalid_param("At most one fallback key per algorithm may be uploaded")

        async def checked_upload() -> StoredKeys:
            return await self._upload(user_id, device_id, device_keys, new_otks, new_fallbacks)

        stored = await self._locks.run((user_id, device_id), checked_upload)
        if stored.device_keys_changed:
            await self._on_device_keys_changed(user_id)
        return {"one_time_key_counts": one_time_key_counts(stored.one_time_key_counts)}

    async def _upload(self, user_id: str, device_id: str, device_keys: JsonDict | None,
                      new_otks: list[UploadedKey], new_fallbacks: list[UploadedKey]) -> StoredKeys:
        signed = any(not isinstance(value, str) for _, _, value in new_otks + new_fallbacks)
        stored_device_keys = None
        if device_keys is not None or signed:
            stored_device_keys = await self._store.get_device_keys(user_id, device_id)
        verify_key, device_json = None, None
        if device_keys is not None:
            verify_key = check_device_keys(device_keys, user_id, device_id)
            if stored_device_keys is not None:
                check_identity_unchanged(stored_device_keys, device_keys, device_id)
            device_json = canonical(device_keys)
            if stored_device_keys is not None and canonical(stored_device_keys) == device_json:
                device_json = None  # the same keys again
        elif stored_device_keys is not None:
            verify_key = device_verify_key(stored_device_keys, device_id)
        for algorithm, key_id, value in new_otks:
            check_key_object(f"{algorithm}:{key_id}", value, user_id, verify_key, "one_time_keys")
        for algorithm, key_id, value in new_fallbacks:
            check_key_object(f"{algorithm}:{key_id}", value, user_id, verify_key, "fallback_keys")

        existing = await self._store.get_one_time_keys(
            user_id, device_id, [(algorithm, key_id) for algorithm, key_id, _ in new_otks])
        otks = []
        for algorithm, key_id, value in new_otks:
            old = existing.get((algorithm, key_id))
            if old is None:
                otks.append((algorithm, key_id, canonical(value)))
            elif not same_one_time_key(old, value):
                raise BadRequest("M_UNKNOWN",
                    f"One time key {algorithm}:{key_id} already exists. "
                    f"Old key: {canonical(old)}; new key: {canonical(value)}",
                )
        fallbacks = [(algorithm, key_id, canonical(value)) for algorithm, key_id, value in new_fallbacks]

        now = now_ms(self._clock)
        try:
            if not otks and not fallbacks:
                if device_json is None:
                    counts = await self._store.count_one_time_keys(user_id, device_id)
                    return StoredKeys(counts)
                return await self._store.store_keys(user_id, device_id, now_ms=now,
                                                    device_keys=device_json)
            result: list[StoredKeys] = []

            async def persist(position: int) -> list[str]:
                stored = await self._store.store_keys(
                    user_id, device_id, now_ms=now, device_keys=device_json,
                    one_time_keys=otks, fallback_keys=fallbacks, position=position)
                result.append(stored)
                return [user_id] if stored.counts_changed else []

            await self._streams.write(persist, kind="key_counts")
            return result[0]
        except UnknownDevice:
            raise not_found("Unknown device") from None

    # ------------------------------------------------------------ claim

    async def claim(self, requester: Requester, one_time_keys: dict, timeout_ms: int | None = None) -> dict:
        """
        Hand out one key per requested device: its oldest one-time key of
        the algorithm (each only ever once), else its fallback key (left in
        place, marked used). Unknown users and devices, and devices without
        a key of the algorithm, are simply absent. Other servers are asked
        for their users' keys (within C{timeout_ms}); those that do not
        answer are in C{failures}.

        @raise MatrixError: 400 M_BAD_JSON for a malformed request, 400
            M_INVALID_PARAM for a malformed user ID (as Synapse).
        """
        local: list[tuple[str, str, str]] = []
        remote: dict[str, dict[str, dict[str, str]]] = {}
        for user_id, device_id, algorithm in parse_claims(one_time_keys):
            try:
                _, server = parse_user_id(user_id)
            except InvalidIdentifier:
                raise invalid_param(f"Invalid user ID {user_id!r}") from None
            if server == self._server_name:
                local.append((user_id, device_id, algorithm))
            else:
                remote.setdefault(server, {}).setdefault(user_id, {})[device_id] = algorithm
        keys = await self._claim_local(local)
        failures: dict[str, JsonDict] = {}
        if remote and self._remote is None:
            failures = {server: {"status": 503, "message": "Federation is disabled on this server"} for server in remote}
        elif remote and self._remote is not None:
            claimed = await self._remote.claim(remote, timeout_ms)
            keys.update(claimed.one_time_keys)
            failures = claimed.failures
        return {"one_time_keys": keys, "failures": failures}

    async def claim_for_server(self, one_time_keys: dict) -> dict:
        """
        Federation C{/user/keys/claim}: as L{claim}, for our users only.

        @raise MatrixError: 400 for a malformed request or a user not ours.
        """
        local = parse_claims(one_time_keys)
        check_hosted([user_id for user_id, _, _ in local], self._server_name)
        return {"one_time_keys": await self._claim_local(local)}

    async def _claim_local(self, claims: list[tuple[str, str, str]]) -> dict:
        """Claim our users' keys: C{user_id -> device_id -> {key name: key}}."""
        claimed: list[ClaimedKey] = []
        if claims:

            async def persist(position: int) -> list[str]:
                claimed.extend(await self._store.claim_keys(claims, position))
                return sorted({key.user_id for key in claimed if not key.fallback or key.newly_used})

            await self._streams.write(persist, kind="key_counts")
        keys: dict = {}
        for key in claimed:
            keys.setdefault(key.user_id, {}).setdefault(key.device_id, {})[
                f"{key.algorithm}:{key.key_id}"] = key.key
        return keys

    # ------------------------------------------------------------- sync

    async def _sync_counts(self, ctx: SyncContext) -> SyncKeyCounts:
        """The device's key counts, from memory unless they may have changed."""
        key = (ctx.request.user_id, ctx.request.device_id)
        cached = self._counts.get(key)
        if cached is not None and ctx.notifier is not None and not ctx.notifier.touched_since(
                key[0], cached[0], "key_counts"):
            return cached[1]
        counts = await self._store.get_sync_counts(*key)
        self._counts[key] = (ctx.now.stream, counts)
        return counts

    async def add_to_sync(self, ctx: SyncContext) -> None:
        """
        Add the syncing device's C{device_one_time_keys_count} and
        C{device_unused_fallback_key_types} to initial syncs, and to
        incremental ones that have other content or during which the counts
        changed (an upload or a claim in C{(since, now]}).

        Never to an otherwise empty incremental response: the sync loop
        would take it for news and answer at once, and long-polling would
        spin. So this source must run after every other source. A response
        left empty (a timed-out poll) has no counts: the spec requires them
        "if any unclaimed one-time keys exist", but clients keep the last
        counts they saw, and those are still right then.
        """
        counts = await self._sync_counts(ctx)
        if ctx.since is not None and set(ctx.response) <= {"next_batch"}:
            changed_at = counts.changed_at
            if changed_at is None or not ctx.since.stream < changed_at <= ctx.now.stream:
                return
        ctx.response["device_one_time_keys_count"] = one_time_key_counts(counts.one_time_key_counts)
        ctx.response["device_unused_fallback_key_types"] = counts.unused_fallback_key_types

