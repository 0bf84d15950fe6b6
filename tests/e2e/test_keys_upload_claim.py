"""
Device keys through the real daemon: POST /keys/upload (device, one-time and
fallback keys, really signed with signedjson), POST /keys/claim (each
one-time key handed out once, even under concurrent claims; then the
fallback key), and the key counts /sync shows the device.
"""
from __future__ import annotations

import os
import secrets
import string

import pytest_twisted
from signedjson.key import (
    encode_verify_key_base64,
    generate_signing_key,
    get_verify_key,
)
from signedjson.sign import sign_json
from twisted.internet import defer
from unpaddedbase64 import encode_base64

ALG = "signed_curve25519"


def new_device_id() -> str:
    return "D" + "".join(secrets.choice(string.ascii_uppercase) for _ in range(9))


def random_key() -> str:
    return encode_base64(os.urandom(32))


class Device:
    """A registered user's device and its ed25519 signing key (whose version is the device id)."""

    def __init__(self, login: dict):
        self.login = login
        self.user_id = login["user_id"]
        self.device_id = login["device_id"]
        self.token = login["access_token"]
        self.key = generate_signing_key(self.device_id)
        self.curve25519 = random_key()

    def device_keys(self, key=None, **changes) -> dict:
        key = key or self.key
        keys = {
            "user_id": self.user_id,
            "device_id": self.device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"ed25519:{self.device_id}": encode_verify_key_base64(get_verify_key(key)),
                     f"curve25519:{self.device_id}": self.curve25519},
            **changes,
        }
        return sign_json(keys, self.user_id, key)

    def signed_key(self, fallback: bool = False) -> dict:
        key = {"key": random_key()}
        if fallback:
            key["fallback"] = True
        return sign_json(key, self.user_id, self.key)

    def one_time_keys(self, count: int, prefix: str = "K") -> dict:
        return {f"{ALG}:{prefix}{n:04d}": self.signed_key() for n in range(count)}


async def new_device(client, **extra) -> Device:
    return Device(await client.register(device_id=new_device_id(), **extra))


async def upload(client, device: Device, body: dict, code: int = 200):
    response = await client.request("POST", "keys/upload", body, token=device.token)
    assert response.code == code, response
    return response.json


async def set_up(client, device: Device, **body) -> dict:
    """Upload the device's keys (and whatever else); return the counts."""
    return (await upload(client, device, {"device_keys": device.device_keys(), **body}))["one_time_key_counts"]


async def claim(client, claimer: Device, wanted: dict) -> dict:
    response = await client.request("POST", "keys/claim", {"one_time_keys": wanted}, token=claimer.token)
    assert response.code == 200, response
    return response.json


async def claim_one(client, claimer: Device, device: Device) -> dict:
    """Claim one signed_curve25519 key of C{device}: C{{key_id: key}}, empty when none is left."""
    body = await claim(client, claimer, {device.user_id: {device.device_id: ALG}})
    assert body["failures"] == {}
    return body["one_time_keys"].get(device.user_id, {}).get(device.device_id, {})


async def sync(client, device: Device, since: str | None = None, timeout: int = 0) -> dict:
    query = {"timeout": str(timeout)}
    if since is not None:
        query["since"] = since
    response = await client.request("GET", "sync", token=device.token, query=query)
    assert response.code == 200, response
    return response.json


@pytest_twisted.ensureDeferred
async def test_valid_device_keys_are_stored_and_counts_answered(client):
    """Signed device keys are accepted, with signed_curve25519 counted at 0; the same upload again is fine."""
    alice = await new_device(client)
    assert await set_up(client, alice) == {ALG: 0}
    assert await set_up(client, alice) == {ALG: 0}
    assert (await upload(client, alice, {}))["one_time_key_counts"] == {ALG: 0}


@pytest_twisted.ensureDeferred
async def test_tampered_device_keys_are_refused(client):
    """Device keys changed after signing fail the signature check (400 M_INVALID_SIGNATURE)."""
    alice = await new_device(client)
    keys = alice.device_keys()
    keys["algorithms"] = ["m.olm.v1.curve25519-aes-sha2"]
    body = await upload(client, alice, {"device_keys": keys}, code=400)
    assert body["errcode"] == "M_INVALID_SIGNATURE"


@pytest_twisted.ensureDeferred
async def test_device_keys_of_another_user_or_device_are_refused(client):
    """Keys naming another user or device than the requester's are refused (400 M_BAD_JSON, as Synapse)."""
    alice = await new_device(client)
    body = await upload(client, alice, {"device_keys": alice.device_keys(user_id="@mallory:test.local")},
                        code=400)
    assert body["errcode"] == "M_BAD_JSON"
    body = await upload(client, alice, {"device_keys": alice.device_keys(device_id="OTHERDEVICE")}, code=400)
    assert body["errcode"] == "M_BAD_JSON"


@pytest_twisted.ensureDeferred
async def test_identity_key_change_is_refused(client):
    """A device that has keys cannot switch to another ed25519 or curve25519 key (400 M_INVALID_PARAM)."""
    alice = await new_device(client)
    await set_up(client, alice)
    other_key = generate_signing_key(alice.device_id)
    body = await upload(client, alice, {"device_keys": alice.device_keys(other_key)}, code=400)
    assert body["errcode"] == "M_INVALID_PARAM"
    alice.curve25519 = random_key()
    body = await upload(client, alice, {"device_keys": alice.device_keys()}, code=400)
    assert body["errcode"] == "M_INVALID_PARAM"


@pytest_twisted.ensureDeferred
async def test_one_time_keys_are_counted(client):
    """Uploaded one-time keys are counted per algorithm; plain curve25519 strings are accepted."""
    alice = await new_device(client)
    counts = await set_up(client, alice, one_time_keys={**alice.one_time_keys(5), "curve25519:P1": random_key()})
    assert counts == {ALG: 5, "curve25519": 1}
    counts = (await upload(client, alice, {"one_time_keys": alice.one_time_keys(3, prefix="L")}))
    assert counts["one_time_key_counts"] == {ALG: 8, "curve25519": 1}


@pytest_twisted.ensureDeferred
async def test_badly_signed_one_time_key_is_refused(client):
    """A one-time key not signed by the device key is refused, and nothing of the upload is stored."""
    alice = await new_device(client)
    await set_up(client, alice)
    keys = alice.one_time_keys(3)
    keys[f"{ALG}:K0001"]["key"] = random_key()
    body = await upload(client, alice, {"one_time_keys": keys}, code=400)
    assert body["errcode"] == "M_INVALID_SIGNATURE"
    assert (await upload(client, alice, {}))["one_time_key_counts"] == {ALG: 0}


@pytest_twisted.ensureDeferred
async def test_reused_key_id_with_other_key_is_refused(client):
    """A key id uploaded again with another key is refused; with the same key it is ignored."""
    alice = await new_device(client)
    keys = alice.one_time_keys(2)
    assert await set_up(client, alice, one_time_keys=keys) == {ALG: 2}
    again = await upload(client, alice, {"one_time_keys": keys})
    assert again["one_time_key_counts"] == {ALG: 2}
    body = await upload(client, alice, {"one_time_keys": {f"{ALG}:K0000": alice.signed_key()}}, code=400)
    assert body["errcode"] == "M_UNKNOWN"
    assert (await upload(client, alice, {}))["one_time_key_counts"] == {ALG: 2}


@pytest_twisted.ensureDeferred
async def test_claim_hands_out_each_key_once(client):
    """Each one-time key is handed out once, oldest upload first, then the device is simply absent."""
    alice, bob = await new_device(client), await new_device(client)
    first, second = alice.one_time_keys(1, prefix="Z"), alice.one_time_keys(1, prefix="A")
    await set_up(client, alice, one_time_keys=first)
    await upload(client, alice, {"one_time_keys": second})
    assert await claim_one(client, bob, alice) == first
    assert await claim_one(client, bob, alice) == second
    assert await claim_one(client, bob, alice) == {}
    assert (await upload(client, alice, {}))["one_time_key_counts"] == {ALG: 0}


@pytest_twisted.ensureDeferred
async def test_concurrent_claims_never_share_a_key(client):
    """20 concurrent claims of a device with 10 one-time keys get the 10 keys once each, the rest its fallback key."""
    alice, bob = await new_device(client), await new_device(client)
    otks = alice.one_time_keys(10)
    fallback = {f"{ALG}:FB1": alice.signed_key(fallback=True)}
    await set_up(client, alice, one_time_keys=otks, fallback_keys=fallback)
    results = await defer.gatherResults(
        [defer.ensureDeferred(claim_one(client, bob, alice)) for _ in range(20)], consumeErrors=True)
    handed_out = [item for result in results for item in result.items()]
    assert len(handed_out) == 20
    assert sorted(item for item in handed_out if item[0] != f"{ALG}:FB1") == sorted(otks.items())
    assert [item for item in handed_out if item[0] == f"{ALG}:FB1"] == list(fallback.items()) * 10
    # The fallback key stays (used) until replaced.
    assert await claim_one(client, bob, alice) == fallback


@pytest_twisted.ensureDeferred
async def test_fallback_key_replacement(client):
    """A new fallback key replaces the old one, unused again; the same one again leaves it used."""
    alice, bob = await new_device(client), await new_device(client)
    old = {f"{ALG}:FB1": alice.signed_key(fallback=True)}
    await set_up(client, alice, fallback_keys=old)
    initial = await sync(client, alice)
    assert initial["device_unused_fallback_key_types"] == [ALG]
    assert await claim_one(client, bob, alice) == old
    assert (await sync(client, alice, initial["next_batch"]))["device_unused_fallback_key_types"] == []
    await upload(client, alice, {"fallback_keys": old})
    assert (await sync(client, alice))["device_unused_fallback_key_types"] == []
    new = {f"{ALG}:FB2": alice.signed_key(fallback=True)}
    await upload(client, alice, {"fallback_keys": new})
    assert (await sync(client, alice))["device_unused_fallback_key_types"] == [ALG]
    assert await claim_one(client, bob, alice) == new


@pytest_twisted.ensureDeferred
async def test_counts_in_sync(client):
    """/sync tells the device its counts: initially, after a claim by another user (waking it), and not otherwise."""
    alice, bob = await new_device(client), await new_device(client)
    await set_up(client, alice, one_time_keys=alice.one_time_keys(3),
                 fallback_keys={f"{ALG}:FB1": alice.signed_key(fallback=True)})
    initial = await sync(client, alice)
    assert initial["device_one_time_keys_count"] == {ALG: 3}
    assert initial["device_unused_fallback_key_types"] == [ALG]
    quiet = await sync(client, alice, initial["next_batch"])
    assert set(quiet) == {"next_batch"}, quiet
    waiting = defer.ensureDeferred(sync(client, alice, initial["next_batch"], timeout=10_000))
    await claim_one(client, bob, alice)
    woken = await waiting
    assert woken["device_one_time_keys_count"] == {ALG: 2}
    assert woken["device_unused_fallback_key_types"] == [ALG]
    assert set(await sync(client, alice, woken["next_batch"])) == {"next_batch"}


@pytest_twisted.ensureDeferred
async def test_other_devices_counts_stay_out_of_sync(client):
    """A claim of one device's key does not put counts into the user's other device's sync."""
    alice = await new_device(client)
    await set_up(client, alice, one_time_keys=alice.one_time_keys(2))
    response = await client.login(alice.user_id, device_id=new_device_id())
    assert response.code == 200, response
    other = Device(response.json)
    bob = await new_device(client)
    initial = await sync(client, other)
    assert initial["device_one_time_keys_count"] == {ALG: 0}
    await claim_one(client, bob, alice)
    assert set(await sync(client, other, initial["next_batch"])) == {"next_batch"}


@pytest_twisted.ensureDeferred
async def test_deleting_a_device_deletes_its_keys(client):
    """Once a device is deleted, claims of its keys return nothing."""
    alice, bob = await new_device(client), await new_device(client)
    await set_up(client, alice, one_time_keys=alice.one_time_keys(2),
                 fallback_keys={f"{ALG}:FB1": alice.signed_key(fallback=True)})
    deleted = await client.with_password_uia("DELETE", f"devices/{alice.device_id}", {}, alice.login)
    assert deleted.code == 200, deleted
    assert await claim_one(client, bob, alice) == {}


@pytest_twisted.ensureDeferred
async def test_claims_of_unknown_and_remote_users(client):
    """Unknown users and devices are absent from a claim; other servers' users go to failures."""
    alice, bob = await new_device(client), await new_device(client)
    await set_up(client, alice, one_time_keys=alice.one_time_keys(1))
    body = await claim(client, bob, {
        alice.user_id: {alice.device_id: ALG, "NOSUCHDEVICE": ALG},
        "@nobody:test.local": {"X": ALG},
        "@remote:elsewhere.example": {"X": ALG},
    })
    assert list(body["one_time_keys"]) == [alice.user_id]
    assert list(body["one_time_keys"][alice.user_id]) == [alice.device_id]
    assert list(body["failures"]) == ["elsewhere.example"]


@pytest_twisted.ensureDeferred
async def test_guests_can_upload_and_claim(client):
    """Guests may upload and claim keys (both are on the spec's guest allow-list)."""
    guest = Device(await client.register_guest({"device_id": new_device_id()}))
    bob = await new_device(client)
    await set_up(client, guest, one_time_keys=guest.one_time_keys(1))
    assert len(await claim_one(client, guest, guest)) == 1
    assert await claim_one(client, bob, guest) == {}


@pytest_twisted.ensureDeferred
async def test_malformed_requests_are_refused(client):
    """Key names without an algorithm and claims of the wrong shape are 400 M_BAD_JSON."""
    alice = await new_device(client)
    await set_up(client, alice)
    body = await upload(client, alice, {"one_time_keys": {"K0001": alice.signed_key()}}, code=400)
    assert body["errcode"] == "M_BAD_JSON"
    response = await client.request("POST", "keys/claim", {"one_time_keys": {alice.user_id: [ALG]}},
                                    token=alice.token, validate=False)
    assert response.code == 400 and response.json["errcode"] == "M_BAD_JSON", response
    response = await client.request("POST", "keys/claim", {}, token=alice.token, validate=False)
    assert response.code == 400 and response.json["errcode"] == "M_MISSING_PARAM", response
