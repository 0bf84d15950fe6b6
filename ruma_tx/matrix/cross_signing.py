"""
Cross-signing (spec: "Cross-signing"): parsing uploaded keys and checking
their signatures.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from signedjson.key import decode_verify_key_bytes
from signedjson.sign import verify_signed_json
from signedjson.types import VerifyKey
from unpaddedbase64 import decode_base64

from ruma_tx.matrix.errors import MatrixError, bad_json, invalid_param
from ruma_tx.matrix.identifiers import InvalidIdentifier, parse_user_id
from ruma_tx.matrix.types import JsonDict

#: The upload fields of /keys/device_signing/upload and the usage each holds.
KEY_FIELDS = (("master_key", "master"), ("self_signing_key", "self_signing"),
              ("user_signing_key", "user_signing"))

ED25519 = "ed25519"

INVALID_SIGNATURE = "M_INVALID_SIGNATURE"


@dataclass(frozen=True)
class CrossSigningKey:
    """
    One stored cross-signing key.

    @ivar key_id: C{ed25519:<public key>}.
    @ivar key_json: the key object as uploaded.
    """

    user_id: str
    usage: str
    key_id: str
    public_key: str
    key_json: JsonDict


@dataclass(frozen=True)
class MasterKeySignature:
    """A signature on C{user_id}'s master key C{master_key_id} by C{signer_id}'s C{signing_key_id}."""

    user_id: str
    master_key_id: str
    signer_id: str
    signing_key_id: str
    signature: str


@dataclass(frozen=True)
class DeviceSignature:
    """A signature by C{user_id}'s self-signing key on their device C{device_id}."""

    user_id: str
    device_id: str
    signing_key_id: str
    signature: str


def _strip(key_object: Mapping[str, Any]) -> JsonDict:
    """What a signature covers: the object without C{signatures} and C{unsigned}."""
    return {k: v for k, v in key_object.items() if k not in ("signatures", "unsigned")}


def verify_key_for(key_id: str, public_key: str) -> VerifyKey:
    """
    The C{signedjson} verify key for C{ed25519:<id>} and its unpadded
    base64 public key.

    @raise ValueError: for another algorithm or a malformed key.
    """
    if not isinstance(key_id, str) or not isinstance(public_key, str):
        raise ValueError("key id and key must be strings")
    return decode_verify_key_bytes(key_id, decode_base64(public_key))


def is_signed_by(key_object: JsonDict, user_id: str, verify_key: VerifyKey) -> bool:
    """Whether C{key_object} carries a valid signature of C{user_id} by C{verify_key}."""
    try:
        verify_signed_json(key_object, user_id, verify_key)
    except Exception:  # a missing, malformed or wrong signature alike
        return False
    return True


def signatures_by(key_object: Mapping[str, Any], user_id: str) -> dict[str, str]:
    """
    C{key_object}'s signatures by C{user_id}: C{{key id: signature}}.

    @raise MatrixError: 400 M_BAD_JSON when C{signatures} is malformed.
    """
    signatures = key_object.get("signatures", {})
    if not isinstance(signatures, dict):
        raise bad_json("'signatures' must be an object")
    mine = signatures.get(user_id, {})
    if not isinstance(mine, dict) or not all(isinstance(v, str) for v in mine.values()):
        raise bad_json("'signatures' must map user ids to objects of strings")
    return mine


def parse_cross_signing_key(key_object: object, user_id: str, usage: str) -> CrossSigningKey:
    """
    Check an uploaded cross-signing key (spec: C{CrossSigningKey}): its
    C{user_id} is the uploader's, its C{usage} includes C{usage}, and it has
    exactly one C{ed25519:<public key>} key whose value is that public key.

    @raise MatrixError: 400 M_BAD_JSON for a key that is not an object,
        400 M_INVALID_PARAM for one that breaks these rules.
    """
    if not isinstance(key_object, dict):
        raise bad_json(f"The {usage} key must be an object")
    if key_object.get("user_id") != user_id:
        raise invalid_param(f"The {usage} key's user_id must be {user_id}")
    usages = key_object.get("usage")
    if not isinstance(usages, list) or usage not in usages:
        raise invalid_param(f"The {usage} key's usage must include {usage!r}")
    keys = key_object.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        raise invalid_param(f"The {usage} key must have exactly one key")
    key_id, public_key = next(iter(keys.items()))
    if not isinstance(public_key, str) or key_id != f"{ED25519}:{public_key}":
        raise invalid_param(f"The {usage} key must be named ed25519:<its public key>")
    try:
        verify_key_for(key_id, public_key)
    except Exception:
        raise invalid_param(f"The {usage} key is not an ed25519 public key") from None
    signatures_by(key_object, user_id)  # checks the shape
    return CrossSigningKey(user_id, usage, key_id, public_key, key_object)


def _failure(errcode: str, message: str) -> JsonDict:
    return {"errcode": errcode, "error": message}


class Refused(Exception):
    """One signed object of /keys/signatures/upload is refused."""

    def __init__(self, errcode: str, message: str) -> None:
        super().__init__(message)
        self.failure = _failure(errcode, message)


def signatures_or_refuse(key_object: Mapping[str, Any], user_id: str) -> dict[str, str]:
    """L{signatures_by}, refusing only this object when they are malformed."""
    try:
        return signatures_by(key_object, user_id)
    except MatrixError as e:
        raise Refused("M_BAD_JSON", e.message) from None


def signature_of(key_object: Mapping[str, Any], user_id: str, key_id: str) -> str:
    """
    The signature of C{user_id}'s C{key_id} on C{key_object}, checked present.

    @raise Refused: M_INVALID_SIGNATURE when absent.
    """
    signature = signatures_or_refuse(key_object, user_id).get(key_id)
    if signature is None:
        raise Refused(INVALID_SIGNATURE, f"Missing signature by {key_id}")
    return signature


def check_same_key(signed: Mapping[str, Any], stored: Mapping[str, Any]) -> None:
    """
    The spec: "The signed JSON object must match the key previously
    uploaded or retrieved for the given key ID, with the exception of the
    signatures property". C{unsigned} is ignored too, as Synapse does.
    """
    if _strip(signed) != _strip(stored):
        raise Refused(INVALID_SIGNATURE, "The signed object does not match the stored key")


def check_signed(signed: JsonDict, user_id: str, verify_key: VerifyKey) -> None:
    if not is_signed_by(signed, user_id, verify_key):
        raise Refused(INVALID_SIGNATURE, "Invalid signature")


def server_of(user_id: str) -> str | None:
    try:
        return parse_user_id(user_id)[1]
    except InvalidIdentifier:
        return None


