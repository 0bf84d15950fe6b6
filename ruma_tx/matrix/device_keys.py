"""
End-to-end encryption keys (spec: "End-to-End Encryption"): checking
uploaded device keys, one-time and fallback keys, and claims.
"""
from __future__ import annotations

from typing import Any, Mapping, TypeGuard

from canonicaljson import encode_canonical_json
from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, verify_signed_json
from signedjson.types import VerifyKey
from unpaddedbase64 import decode_base64

from ruma_tx.matrix.errors import BadRequest, MatrixError, bad_json, invalid_param
from ruma_tx.matrix.types import JsonDict

ED25519 = "ed25519"

CURVE25519 = "curve25519"

SIGNED_CURVE25519 = "signed_curve25519"

#: Always in the counts, at 0 when there is none: as Synapse, so clients
#: (which read only this one) learn that the last key was claimed.
ALWAYS_COUNTED = (SIGNED_CURVE25519,)


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


def _is_str_map(value: object) -> TypeGuard[dict[str, str]]:
    """Whether C{value} is a (JSON) object of strings."""
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _check_signatures_shape(obj: Mapping[str, Any], what: str) -> None:
    signatures = obj.get("signatures")
    if not isinstance(signatures, dict) or not all(_is_str_map(s) for s in signatures.values()):
        raise bad_json(f"{what}: 'signatures' must map user IDs to maps of key IDs to signatures")


def device_verify_key(device_keys: Mapping[str, Any], device_id: str) -> VerifyKey:
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


def check_device_keys(device_keys: JsonDict, user_id: str, device_id: str) -> VerifyKey:
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


def identity_keys(device_keys: Mapping[str, Any], device_id: str) -> tuple[str | None, str | None]:
    """The device's ed25519 and curve25519 identity keys in C{device_keys}."""
    keys = device_keys.get("keys") or {}
    return keys.get(f"{ED25519}:{device_id}"), keys.get(f"{CURVE25519}:{device_id}")


def check_identity_unchanged(stored: Mapping[str, Any], uploaded: Mapping[str, Any], device_id: str) -> None:
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


def _verify(obj: JsonDict, user_id: str, verify_key: VerifyKey, what: str) -> None:
    try:
        verify_signed_json(obj, user_id, verify_key)
    except SignatureVerifyException:
        raise invalid_signature(
            f"{what} is not signed by {user_id}'s ed25519:{verify_key.version}"
        ) from None


def check_key_object(name: str, value: object, user_id: str, verify_key: VerifyKey | None,
                     field: str) -> None:
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


def same_one_time_key(stored: object, uploaded: object) -> bool:
    """
    Whether an uploaded one-time key repeats the stored one of its id: equal
    apart from the signatures (Synapse's C{_one_time_keys_match}: clients
    that kept the key but not its signature re-sign it on retry).
    """
    if isinstance(stored, dict) and isinstance(uploaded, dict):
        return _without_signatures(stored) == _without_signatures(uploaded)
    return stored == uploaded


def _without_signatures(key: Mapping[str, Any]) -> JsonDict:
    return {k: v for k, v in key.items() if k != "signatures"}


def one_time_key_counts(counts: dict[str, int]) -> dict[str, int]:
    """The counts as clients get them: L{ALWAYS_COUNTED} included, at 0."""
    result = dict(counts)
    for algorithm in ALWAYS_COUNTED:
        result.setdefault(algorithm, 0)
    return result


def parse_claims(one_time_keys: Mapping[str, object]) -> list[tuple[str, str, str]]:
    """
    The C{(user_id, device_id, algorithm)} wanted by a claim's
    C{one_time_keys} (C{{user_id: {device_id: algorithm}}}).

    @raise MatrixError: 400 M_BAD_JSON if it is not of that shape.
    """
    claims: list[tuple[str, str, str]] = []
    for user_id, devices in one_time_keys.items():
        if not _is_str_map(devices):
            raise bad_json("one_time_keys must map user IDs to maps of device IDs to algorithms")
        claims += [(user_id, device_id, algorithm) for device_id, algorithm in devices.items()]
    return claims


def canonical(obj: object) -> str:
    return encode_canonical_json(obj).decode("utf-8")


