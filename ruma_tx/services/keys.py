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

from canonicaljson import encode_canonical_json
from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, verify_signed_json
from unpaddedbase64 import decode_base64

from ruma_tx.matrix.errors import (
    BadRequest,
    MatrixError,
    bad_json,
    invalid_param,
    not_found,
)
from ruma_tx.matrix.identifiers import InvalidIdentifier, parse_user_id
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.concurrency import KeyedLocks
from ruma_tx.services.ports.keys import DeviceKeyStorage, StoredKeys, UnknownDevice
from ruma_tx.services.streams import StreamWriter

ED25519 = "ed25519"
CURVE25519 = "curve25519"
SIGNED_CURVE25519 = "signed_curve25519"

#: Always in the counts, at 0 when there is none: as Synapse, so clients
#: (which read only this one) learn that the last key was claimed.
ALWAYS_COUNTED = (SIGNED_CURVE25519,)


# ------------------------------------------------------------------ rules


def invalid_signature(message: str) -> MatrixError:
    """
    400 M_INVALID_SIGNATURE: the spec names no code for a bad signature on
    an upload; this is the one Synapse gives bad signatures of cross-signing
    uploads (it checks none on /keys/upload).
    """
    return BadRequest("M_INVALID_SIGNATURE", message)


def split_key_name(name: str, field: str) -> tuple[str, str]:
    """
    Split C{<algorithm>:<key_id>}.

    @raise MatrixError: 400 M_BAD_JSON unless it has exactly one C{:} with
        something on each side (Synapse's check, with its errcode).
    """
    parts = name.split(":")
    if len(parts) != 2 or not all(parts):
        raise bad_json(f"Invalid {field} key {name!r}. Expected \"<algorithm>:<key_id>\".")
    return parts[0], parts[1]


def _is_str_map(value) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _check_signatures_shape(obj: dict, what: str) -> None:
    signatures = obj.get("signatures")
    if not isinstance(signatures, dict) or not all(_is_str_map(s) for s in signatures.values()):
        raise bad_json(f"{what}: 'signatures' must map user IDs to maps of key IDs to signatures")


def device_verify_key(device_keys: dict, device_id: str):
    """
    The device's ed25519 key, from its C{DeviceKeys}, as a signedjson
    verify key with key id C{ed25519:<device_id>}.

    @raise MatrixError: 400 M_BAD_JSON if missing or not a valid key.
    """
    encoded = device_keys.get("keys", {}).get(f"{ED25519}:{device_id}")
    if not isinstance(encoded, str):
        raise bad_json(f"device_keys must have an 'ed25519:{device_id}' key")
    try:
        return decode_verify_key_bytes(f"{ED25519}:{device_id}", decode_base64(encoded))
    except ValueError:
        raise bad_json(f"'ed25519:{device_id}' is not an unpadded base64 ed25519 key") from None


def check_device_keys(device_keys: dict, user_id: str, device_id: str):
    """
    Check an uploaded C{DeviceKeys} object: its shape, that it is the
    requester's device's (400 M_BAD_JSON otherwise, as Synapse), that it
    holds the device's C{ed25519:<device_id>} and C{curve25519:<device_id>}
    identity keys, and that the ed25519 key signed it.

    @return: the device's ed25519 verify key.
    @raise MatrixError: 400 M_BAD_JSON, or 400 M_INVALID_SIGNATURE.
    """
    if not isinstance(device_keys.get("user_id"), str) or not isinstance(device_keys.get("device_id"), str):
        raise bad_json("device_keys must have string 'user_id' and 'device_id'")
    if device_keys["user_id"] != user_id:
        raise bad_json("Provided `user_id` in `device_keys` does not match that of the authenticated user")
    if device_keys["device_id"] != device_id:
        raise bad_json("Provided `device_id` in `device_keys` does not match that of the authenticated user device")
    algorithms = device_keys.get("algorithms")
    if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
        raise bad_json("device_keys must have 'algorithms', a list of strings")
    if not _is_str_map(device_keys.get("keys")):
        raise bad_json("device_keys must have 'keys', a map of key IDs to keys")
    if not isinstance(device_keys["keys"].get(f"{CURVE25519}:{device_id}"), str):
        raise bad_json(f"device_keys must have a 'curve25519:{device_id}' key")
    _check_signatures_shape(device_keys, "device_keys")
    verify_key = device_verify_key(device_keys, device_id)
    _verify(device_keys, user_id, verify_key, "device_keys")
    return verify_key


def identity_keys(device_keys: dict, device_id: str) -> tuple[str | None, str | None]:
    """The device's ed25519 and curve25519 identity keys in C{device_keys}."""
    keys = device_keys.get("keys") or {}
    return keys.get(f"{ED25519}:{device_id}"), keys.get(f"{CURVE25519}:{device_id}")


def check_identity_unchanged(stored: dict, uploaded: dict, device_id: str) -> None:
    """
    A device keeps its identity keys for life: others verified it by them,
    and matrix-sdk-crypto ignores a changed ed25519 key anyway.

    The spec is silent; Synapse still replaces them (element-hq/synapse
    issue 18511 asks to refuse, PR 18512 would). The errcode is ours.

    @raise MatrixError: 400 M_INVALID_PARAM if either differs.
    """
    if identity_keys(stored, device_id) != identity_keys(uploaded, device_id):
        raise invalid_param(
            f"Device {device_id} already has different identity keys; log in as a new device instead"
        )


def _verify(obj: dict, user_id: str, verify_key, what: str) -> None:
    try:
        verify_signed_json(obj, user_id, verify_key)
    except SignatureVerifyException:
        raise invalid_signature(
            f"{what} is not signed by {user_id}'s ed25519:{verify_key.version}"
        ) from None


def check_key_object(name: str, value, user_id: str, verify_key, field: str) -> None:
    """
    Check one uploaded one-time or fallback key: a plain key string (e.g.
    C{curve25519}), or a key object (C{signed_curve25519}) with a C{key}
    string, which the device's ed25519 key must have signed.

    @param verify_key: the device's ed25519 key, or C{None} when the device
        has none yet (a signed key then cannot be checked).
    @raise MatrixError: 400 M_BAD_JSON for a malformed key, 400
        M_INVALID_SIGNATURE for a missing or bad signature, 400
        M_INVALID_PARAM for a signed key before any device keys.
    """
    if isinstance(value, str):
        return
    if not isinstance(value, dict) or not isinstance(value.get("key"), str):
        raise bad_json(f"{field} {name!r} must be a key string or an object with a 'key' string")
    if "fallback" in value and not isinstance(value["fallback"], bool):
        raise bad_json(f"{field} {name!r}: 'fallback' must be a boolean")
    _check_signatures_shape(value, f"{field} {name!r}")
    if verify_key is None:
        raise invalid_param(f"Upload device keys before signed keys such as {name!r}")
    _verify(value, user_id, verify_key, f"{field} {name!r}")


def same_one_time_key(stored, uploaded) -> bool:
    """
    Whether an uploaded one-time key repeats the stored one of its id: equal
    apart from the signatures (Synapse's C{_one_time_keys_match}: clients
    that kept the key but not its signature re-sign it on retry).
    """
    if isinstance(stored, str) or isinstance(uploaded, str):
        return stored == uploaded
    strip = lambda key: {k: v for k, v in key.items() if k != "signatures"}  # noqa: E731
    return strip(stored) == strip(uploaded)


def one_time_key_counts(counts: dict[str, int]) -> dict[str, int]:
    """The counts as clients get them: L{ALWAYS_COUNTED} included, at 0."""
    result = dict(counts)
    for algorithm in ALWAYS_COUNTED:
        result.setdefault(algorithm, 0)
    return result


def parse_claims(one_time_keys: dict) -> list[tuple[str, str, str]]:
    """
    The C{(user_id, device_id, algorithm)} wanted by a claim's
    C{one_time_keys} (C{{user_id: {device_id: algorithm}}}).

    @raise MatrixError: 400 M_BAD_JSON if it is not of that shape.
    """
    claims = []
    for user_id, devices in one_time_keys.items():
        if not _is_str_map(devices):
            raise bad_json("one_time_keys must map user IDs to maps of device IDs to algorithms")
        claims += [(user_id, device_id, algorithm) for device_id, algorithm in devices.items()]
    return claims


def canonical(obj) -> str:
    return encode_canonical_json(obj).decode("utf-8")


# -------------------------------------------------------------- use cases


class DeviceKeys:
    """
    @param store: the L{ruma_tx.storage.keys.KeyStore}.
    @param streams: the L{ruma_tx.services.streams.StreamWriter}: a change of a
        device's key counts takes a position and wakes its user, so the
        device hears of it in /sync.
    @param on_device_keys_changed: C{async (user_id)}, called after a
        device's keys were first uploaded or changed (device-list tracking).
    """

    def __init__(self, *, store: DeviceKeyStorage, streams: StreamWriter, clock: Clock, server_name: str,
                 on_device_keys_changed: Callable[[str], Awaitable[None]],
                 counts_cache_size: int = 10_000) -> None:
        self._store = store
        self._streams = streams
        self._clock = clock
        self._server_name = server_name
        self._on_device_keys_changed = on_device_keys_changed
        # Checking an upload against what is stored and storing it are not
        # one statement: uploads of one device run one at a time (as
        # Synapse's ONE_TIME_KEY_UPLOAD lock). This process is the only writer.
        self._locks = KeyedLocks()
        # Per device, the counts read at a stream position: still right while
        # no upload or claim ("key_counts" change) concerned the user since.
        self._counts: LRUCache[tuple[str, str], tuple[int, object]] = LRUCache(counts_cache_size)

    # ----------------------------------------------------------- upload

    async def upload(self, requester, *, device_keys: dict | None, one_time_keys: dict,
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

        async def checked_upload():
            return await self._upload(user_id, device_id, device_keys, new_otks, new_fallbacks)

        stored = await self._locks.run((user_id, device_id), checked_upload)
        if stored.device_keys_changed:
            await self._on_device_keys_changed(user_id)
        return {"one_time_key_counts": one_time_key_counts(stored.one_time_key_counts)}

    async def _upload(self, user_id, device_id, device_keys, new_otks, new_fallbacks):
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
            result = []

            async def persist(position: int):
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

    async def claim(self, requester, one_time_keys: dict) -> dict:
        """
        Hand out one key per requested device: its oldest one-time key of
        the algorithm (each only ever once), else its fallback key (left in
        place, marked used). Unknown users and devices, and devices without
        a key of the algorithm, are simply absent; users of other servers
        are put in C{failures} under their server (no federation yet).

        @raise MatrixError: 400 M_BAD_JSON for a malformed request, 400
            M_INVALID_PARAM for a malformed user ID (as Synapse).
        """
        local, failures = [], {}
        for user_id, device_id, algorithm in parse_claims(one_time_keys):
            try:
                _, server = parse_user_id(user_id)
            except InvalidIdentifier:
                raise invalid_param(f"Invalid user ID {user_id!r}") from None
            if server == self._server_name:
                local.append((user_id, device_id, algorithm))
            else:
                failures[server] = {"status": 503, "message": "Federation is not supported"}
        claimed = []
        if local:

            async def persist(position: int):
                claimed.extend(await self._store.claim_keys(local, position))
                return sorted({key.user_id for key in claimed if not key.fallback or key.newly_used})

            await self._streams.write(persist, kind="key_counts")
        keys: dict = {}
        for key in claimed:
            keys.setdefault(key.user_id, {}).setdefault(key.device_id, {})[
                f"{key.algorithm}:{key.key_id}"] = key.key
        return {"one_time_keys": keys, "failures": failures}

    # ------------------------------------------------------------- sync

    async def _sync_counts(self, ctx):
        """The device's key counts, from memory unless they may have changed."""
        key = (ctx.request.user_id, ctx.request.device_id)
        cached = self._counts.get(key)
        if cached is not None and ctx.notifier is not None and not ctx.notifier.touched_since(
                key[0], cached[0], "key_counts"):
            return cached[1]
        counts = await self._store.get_sync_counts(*key)
        self._counts[key] = (ctx.now.stream, counts)
        return counts

    async def add_to_sync(self, ctx) -> None:
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

