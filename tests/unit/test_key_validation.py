"""
Tests for the pure rules of L{ruma_tx.services.keys} (uploaded device keys,
one-time and fallback keys, claims) and for its /sync source's choice of
when to show the key counts. Keys are really signed, with signedjson.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import pytest_twisted
from signedjson.key import (
    encode_verify_key_base64,
    generate_signing_key,
    get_verify_key,
)
from signedjson.sign import sign_json

from ruma_tx.http.errors import status_code
from ruma_tx.matrix.device_keys import (
    check_device_keys,
    check_identity_unchanged,
    check_key_object,
    one_time_key_counts,
    parse_claims,
    same_one_time_key,
    split_key_name,
)
from ruma_tx.matrix.errors import MatrixError
from ruma_tx.matrix.stream_token import StreamToken
from ruma_tx.services.keys import DeviceKeys
from ruma_tx.services.ports.keys import SyncKeyCounts
from ruma_tx.services.sync import SyncContext

ALICE = "@alice:hs"
DEVICE = "ALICEDEV"


def device_keys(key=None, user_id=ALICE, device_id=DEVICE, curve="curve+key"):
    """A DeviceKeys object signed by C{key} (a signedjson signing key)."""
    key = key or generate_signing_key(device_id)
    keys = {
        "user_id": user_id,
        "device_id": device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {f"ed25519:{device_id}": encode_verify_key_base64(get_verify_key(key)),
                 f"curve25519:{device_id}": curve},
    }
    return sign_json(keys, user_id, key)


def error_of(fn, *args) -> tuple[int, str]:
    with pytest.raises(MatrixError) as caught:
        fn(*args)
    return status_code(caught.value), caught.value.errcode


def test_valid_device_keys_are_accepted():
    """Device keys signed by their own ed25519 key pass, and give that key to check others with."""
    key = generate_signing_key(DEVICE)
    verify_key = check_device_keys(device_keys(key), ALICE, DEVICE)
    assert verify_key.encode() == get_verify_key(key).encode()
    assert verify_key.version == DEVICE


def test_tampered_device_keys_are_refused():
    """A change after signing (here the curve25519 key) fails the signature check."""
    keys = device_keys()
    keys["keys"][f"curve25519:{DEVICE}"] = "another+key"
    assert error_of(check_device_keys, keys, ALICE, DEVICE) == (400, "M_INVALID_SIGNATURE")


def test_device_keys_signed_by_another_key_are_refused():
    """A signature by some other ed25519 key does not count as the device's."""
    keys = device_keys()
    impostor = generate_signing_key(DEVICE)
    keys["signatures"] = sign_json({k: v for k, v in keys.items() if k != "signatures"},
                                   ALICE, impostor)["signatures"]
    assert error_of(check_device_keys, keys, ALICE, DEVICE) == (400, "M_INVALID_SIGNATURE")


def test_unsigned_device_keys_are_refused():
    """Device keys without the device's signature are refused."""
    keys = device_keys()
    keys["signatures"] = {}
    assert error_of(check_device_keys, keys, ALICE, DEVICE) == (400, "M_INVALID_SIGNATURE")


def test_device_keys_of_another_user_or_device_are_refused():
    """The keys' user_id and device_id must be the requester's (400 M_BAD_JSON, as Synapse)."""
    assert error_of(check_device_keys, device_keys(user_id="@bob:hs"), ALICE, DEVICE) == (400, "M_BAD_JSON")
    other = device_keys(device_id="OTHER")
    assert error_of(check_device_keys, other, ALICE, DEVICE) == (400, "M_BAD_JSON")


@pytest.mark.parametrize("damage", [
    lambda k: k.pop("algorithms"),
    lambda k: k.update(algorithms="m.olm.v1.curve25519-aes-sha2"),
    lambda k: k["keys"].pop(f"curve25519:{DEVICE}"),
    lambda k: k["keys"].pop(f"ed25519:{DEVICE}"),
    lambda k: k["keys"].update({f"ed25519:{DEVICE}": "not base64!"}),
    lambda k: k["keys"].update({f"ed25519:{DEVICE}": "AAAA"}),
    lambda k: k.update(signatures=[]),
    lambda k: k.update(signatures={ALICE: {f"ed25519:{DEVICE}": 1}}),
])
def test_malformed_device_keys_are_refused(damage):
    """Device keys missing a field, or with one of the wrong shape, are 400 M_BAD_JSON."""
    keys = device_keys()
    damage(keys)
    assert error_of(check_device_keys, keys, ALICE, DEVICE) == (400, "M_BAD_JSON")


def test_identity_keys_may_not_change():
    """Another ed25519 or curve25519 key for a device that has keys is refused; the same pass."""
    key = generate_signing_key(DEVICE)
    stored = device_keys(key)
    check_identity_unchanged(stored, device_keys(key), DEVICE)
    assert error_of(check_identity_unchanged, stored, device_keys(), DEVICE) == (400, "M_INVALID_PARAM")
    assert error_of(check_identity_unchanged, stored, device_keys(key, curve="new"), DEVICE) == (
        400, "M_INVALID_PARAM")


def test_signed_one_time_keys_are_checked():
    """A signed one-time key must carry a valid signature by the device key; plain strings need none."""
    key = generate_signing_key(DEVICE)
    verify_key = get_verify_key(key)
    signed = sign_json({"key": "otk"}, ALICE, key)
    check_key_object("signed_curve25519:A", signed, ALICE, verify_key, "one_time_keys")
    check_key_object("curve25519:A", "plain", ALICE, verify_key, "one_time_keys")
    tampered = {**signed, "key": "other"}
    assert error_of(check_key_object, "signed_curve25519:A", tampered, ALICE, verify_key,
                    "one_time_keys") == (400, "M_INVALID_SIGNATURE")
    unsigned = {"key": "otk", "signatures": {}}
    assert error_of(check_key_object, "signed_curve25519:A", unsigned, ALICE, verify_key,
                    "one_time_keys") == (400, "M_INVALID_SIGNATURE")
    other_key = sign_json({"key": "otk"}, ALICE, generate_signing_key(DEVICE))
    assert error_of(check_key_object, "signed_curve25519:A", other_key, ALICE, verify_key,
                    "one_time_keys") == (400, "M_INVALID_SIGNATURE")


def test_signed_keys_need_device_keys():
    """A signed key cannot be checked before the device has keys: 400 M_INVALID_PARAM."""
    signed = sign_json({"key": "otk"}, ALICE, generate_signing_key(DEVICE))
    assert error_of(check_key_object, "signed_curve25519:A", signed, ALICE, None,
                    "one_time_keys") == (400, "M_INVALID_PARAM")


@pytest.mark.parametrize("value", [1, None, ["k"], {"signatures": {}}, {"key": 1, "signatures": {}},
                                   {"key": "k", "signatures": {ALICE: "x"}},
                                   {"key": "k", "fallback": "yes", "signatures": {}}])
def test_malformed_key_objects_are_refused(value):
    """A one-time key that is neither a string nor a key object is 400 M_BAD_JSON."""
    verify_key = get_verify_key(generate_signing_key(DEVICE))
    assert error_of(check_key_object, "signed_curve25519:A", value, ALICE, verify_key,
                    "one_time_keys") == (400, "M_BAD_JSON")


@pytest.mark.parametrize("name", ["signed_curve25519", "a:b:c", ":id", "alg:"])
def test_key_names_need_algorithm_and_id(name):
    """Key names are exactly <algorithm>:<key_id> (as Synapse checks)."""
    assert error_of(split_key_name, name, "one_time_keys") == (400, "M_BAD_JSON")
    assert split_key_name("signed_curve25519:AAAAHg", "x") == ("signed_curve25519", "AAAAHg")


def test_same_one_time_key_ignores_signatures():
    """A key re-uploaded with another signature is the same key; another key is not."""
    assert same_one_time_key({"key": "k", "signatures": {"a": {}}}, {"key": "k", "signatures": {"b": {}}})
    assert not same_one_time_key({"key": "k", "signatures": {}}, {"key": "j", "signatures": {}})
    assert same_one_time_key("k", "k")
    assert not same_one_time_key("k", {"key": "k", "signatures": {}})


def test_counts_always_include_signed_curve25519():
    """signed_curve25519 is reported, at 0 when there is none (as Synapse)."""
    assert one_time_key_counts({}) == {"signed_curve25519": 0}
    assert one_time_key_counts({"signed_curve25519": 3, "curve25519": 1}) == {
        "signed_curve25519": 3, "curve25519": 1}


def test_claims_are_parsed():
    """A claim lists (user, device, algorithm); another shape is 400 M_BAD_JSON."""
    assert parse_claims({ALICE: {"D1": "signed_curve25519", "D2": "curve25519"}}) == [
        (ALICE, "D1", "signed_curve25519"), (ALICE, "D2", "curve25519")]
    assert error_of(parse_claims, {ALICE: ["D1"]}) == (400, "M_BAD_JSON")
    assert error_of(parse_claims, {ALICE: {"D1": 1}}) == (400, "M_BAD_JSON")


# ----------------------------------------------------------- sync source


class FakeStore:
    def __init__(self, counts: SyncKeyCounts):
        self.counts = counts

    async def get_sync_counts(self, user_id, device_id):
        return self.counts


def sync_context(since: int | None, now: int, response: dict | None = None) -> SyncContext:
    request = SimpleNamespace(user_id=ALICE, device_id=DEVICE, use_state_after=False)
    return SyncContext(request, None if since is None else StreamToken(since), StreamToken(now), [],
                       response if response is not None else {"next_batch": str(StreamToken(now))})


def keys_source(counts: SyncKeyCounts) -> DeviceKeys:
    return DeviceKeys(store=FakeStore(counts), streams=None, clock=None, server_name="hs",
                      on_device_keys_changed=None)


@pytest_twisted.ensureDeferred
async def test_initial_sync_has_counts():
    """An initial sync always has the counts, signed_curve25519 at 0 included."""
    ctx = sync_context(None, 10)
    await keys_source(SyncKeyCounts({}, [], None)).add_to_sync(ctx)
    assert ctx.response["device_one_time_keys_count"] == {"signed_curve25519": 0}
    assert ctx.response["device_unused_fallback_key_types"] == []


@pytest_twisted.ensureDeferred
async def test_empty_incremental_sync_stays_empty():
    """Counts that did not change since the token leave an empty incremental response empty."""
    ctx = sync_context(5, 10)
    await keys_source(SyncKeyCounts({"signed_curve25519": 3}, ["signed_curve25519"], 5)).add_to_sync(ctx)
    assert set(ctx.response) == {"next_batch"}
    ctx = sync_context(5, 10)
    await keys_source(SyncKeyCounts({"signed_curve25519": 3}, [], None)).add_to_sync(ctx)
    assert set(ctx.response) == {"next_batch"}


@pytest_twisted.ensureDeferred
async def test_changed_counts_make_an_incremental_sync():
    """Counts changed in (since, now] are shown even when nothing else changed."""
    ctx = sync_context(5, 10)
    await keys_source(SyncKeyCounts({"signed_curve25519": 2}, ["signed_curve25519"], 7)).add_to_sync(ctx)
    assert ctx.response["device_one_time_keys_count"] == {"signed_curve25519": 2}
    assert ctx.response["device_unused_fallback_key_types"] == ["signed_curve25519"]


@pytest_twisted.ensureDeferred
async def test_counts_ride_along_other_news():
    """An incremental response that has other content carries the counts too."""
    response = {"next_batch": "s10_0", "account_data": {"events": []}}
    ctx = sync_context(5, 10, response)
    await keys_source(SyncKeyCounts({"signed_curve25519": 4}, [], 1)).add_to_sync(ctx)
    assert ctx.response["device_one_time_keys_count"] == {"signed_curve25519": 4}
