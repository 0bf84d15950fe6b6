"""
Key queries and cross-signing through the real daemon: device keys with
display names, cross-signing keys uploaded (UIA only to replace them),
signatures verified and shown to whom the spec allows. Every key here is a
real ed25519 key and every signature is made with signedjson.
"""
from __future__ import annotations

import copy

import pytest_twisted
from conftest import password_auth
from signedjson.key import (
    encode_verify_key_base64,
    generate_signing_key,
    get_verify_key,
)
from signedjson.sign import sign_json

ALGORITHMS = ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"]


# -- helpers (test_device_lists.py uses them too) ---------------------------

def new_key(version: str | None = None):
    """A fresh ed25519 signing key named C{version}, or its own public key."""
    key = generate_signing_key("pending")
    public = encode_verify_key_base64(get_verify_key(key))
    key.version = version or public
    return key


def public_key(key) -> str:
    return encode_verify_key_base64(get_verify_key(key))


def signed_device_keys(user: dict, device_key) -> dict:
    """The C{DeviceKeys} of C{user}'s device, signed by the device's own key."""
    device_id = user["device_id"]
    keys = {
        "user_id": user["user_id"],
        "device_id": device_id,
        "algorithms": ALGORITHMS,
        "keys": {
            f"ed25519:{device_id}": public_key(device_key),
            f"curve25519:{device_id}": public_key(new_key()),  # any 32 bytes will do here
        },
    }
    return sign_json(keys, user["user_id"], device_key)


async def upload_device_keys(client, user: dict) -> tuple[dict, object]:
    """Upload new device keys for C{user}'s device; return them and the device's signing key."""
    device_key = new_key(user["device_id"])
    keys = signed_device_keys(user, device_key)
    response = await client.request("POST", "keys/upload", {"device_keys": keys},
                                    token=user["access_token"])
    assert response.code == 200, response
    return keys, device_key


def cross_signing_key(user_id: str, usage: str, key, signed_by=None) -> dict:
    """A C{CrossSigningKey} object for C{key}, signed by C{signed_by} (the master) if given."""
    body = {"user_id": user_id, "usage": [usage], "keys": {f"ed25519:{public_key(key)}": public_key(key)}}
    return sign_json(body, user_id, signed_by) if signed_by is not None else body


class CrossSigningKeys:
    """A user's three cross-signing keys and their upload body."""

    def __init__(self, user_id: str):
        self.user_id = user_id
        self.master, self.self_signing, self.user_signing = new_key(), new_key(), new_key()

    def body(self) -> dict:
        return {
            "master_key": cross_signing_key(self.user_id, "master", self.master),
            "self_signing_key": cross_signing_key(self.user_id, "self_signing", self.self_signing,
                                                  self.master),
            "user_signing_key": cross_signing_key(self.user_id, "user_signing", self.user_signing,
                                                  self.master),
        }


async def upload_cross_signing(client, user: dict) -> CrossSigningKeys:
    """Set up cross-signing for a user who has none yet (no UIA needed)."""
    keys = CrossSigningKeys(user["user_id"])
    response = await client.request("POST", "keys/device_signing/upload", keys.body(),
                                    token=user["access_token"])
    assert response.code == 200, response
    return keys


async def query(client, user: dict, wanted: dict) -> dict:
    response = await client.request("POST", "keys/query", {"device_keys": wanted},
                                    token=user["access_token"])
    assert response.code == 200, response
    return response.json


async def upload_signatures(client, user: dict, body: dict) -> dict:
    response = await client.request("POST", "keys/signatures/upload", body, token=user["access_token"])
    assert response.code == 200, response
    return response.json


async def shared_room(client, *users: dict) -> str:
    """The first user creates a public room; the others join it."""
    created = await client.request("POST", "createRoom", {"preset": "public_chat"},
                                   token=users[0]["access_token"])
    assert created.code == 200, created
    room_id = created.json["room_id"]
    for user in users[1:]:
        joined = await client.request("POST", f"rooms/{room_id}/join", {}, token=user["access_token"])
        assert joined.code == 200, joined
    return room_id


async def upload_with_uia(client, user: dict, body: dict, password: str | None = None):
    """
    Upload cross-signing keys through the password UIA stage. The 401
    challenge is not validated: cross_signing.yaml lists no 401 response
    although the endpoint uses UIA, whose 401 body has no errcode.
    """
    path = "keys/device_signing/upload"
    first = await client.request("POST", path, body, token=user["access_token"], validate=False)
    assert first.code == 401, first
    assert first.json["flows"] == [{"stages": ["m.login.password"]}]
    auth = password_auth(user["user_id"], first.json["session"], *([password] if password else []))
    return await client.request("POST", path, {**body, "auth": auth}, token=user["access_token"],
                                validate=False)


def without_signatures(key_object: dict) -> dict:
    return {k: v for k, v in key_object.items() if k not in ("signatures", "unsigned")}


# -- /keys/query ------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_query_returns_uploaded_device_keys_with_display_names(client):
    """/keys/query returns each device's uploaded keys as signed, with its display name in unsigned."""
    alice = await client.register(initial_device_display_name="Alice's phone")
    bob = await client.register()
    keys, _ = await upload_device_keys(client, alice)
    answer = await query(client, bob, {alice["user_id"]: []})
    device = answer["device_keys"][alice["user_id"]][alice["device_id"]]
    assert without_signatures(device) == without_signatures(keys)
    assert device["signatures"] == keys["signatures"]
    assert device["unsigned"] == {"device_display_name": "Alice's phone"}
    assert answer["failures"] == {}
    # Only the listed devices; an unknown one is simply missing.
    listed = await query(client, bob, {alice["user_id"]: ["NOSUCHDEVICE"]})
    assert listed["device_keys"] == {alice["user_id"]: {}}


@pytest_twisted.ensureDeferred
async def test_query_lists_only_devices_with_keys_and_reports_other_servers(client):
    """Devices without uploaded keys are left out; users of other servers are reported in failures."""
    alice = await client.register()
    second = await client.login(alice["user_id"])
    assert second.code == 200
    await upload_device_keys(client, alice)
    answer = await query(client, alice, {alice["user_id"]: [], "@someone:elsewhere.example": []})
    assert list(answer["device_keys"][alice["user_id"]]) == [alice["device_id"]]
    assert "elsewhere.example" in answer["failures"]
    assert "@someone:elsewhere.example" not in answer["device_keys"]


@pytest_twisted.ensureDeferred
async def test_query_is_open_to_guests(client):
    """A guest may query keys (the spec's guest allow-list has /keys/query)."""
    alice = await client.register()
    await upload_device_keys(client, alice)
    guest = await client.register_guest()
    answer = await query(client, guest, {alice["user_id"]: []})
    assert alice["device_id"] in answer["device_keys"][alice["user_id"]]


@pytest_twisted.ensureDeferred
async def test_query_rejects_malformed_requests(client):
    """device_keys is required and must map valid user ids to lists of device ids."""
    alice = await client.register()
    token = alice["access_token"]
    missing = await client.request("POST", "keys/query", {}, token=token, validate=False)
    assert missing.code == 400 and missing.json["errcode"] == "M_MISSING_PARAM"
    bad_list = await client.request("POST", "keys/query", {"device_keys": {alice["user_id"]: "X"}},
                                    token=token, validate=False)
    assert bad_list.code == 400 and bad_list.json["errcode"] == "M_BAD_JSON"
    bad_user = await client.request("POST", "keys/query", {"device_keys": {"alice": []}},
                                    token=token, validate=False)
    assert bad_user.code == 400 and bad_user.json["errcode"] == "M_INVALID_PARAM"


# -- /keys/device_signing/upload --------------------------------------------

@pytest_twisted.ensureDeferred
async def test_first_cross_signing_upload_needs_no_uia_and_replacing_needs_it(client):
    """The first upload is accepted without UIA, so is the same keys again; new keys need the password."""
    alice = await client.register()
    keys = await upload_cross_signing(client, alice)
    again = await client.request("POST", "keys/device_signing/upload", keys.body(),
                                 token=alice["access_token"])
    assert again.code == 200, again
    replacement = CrossSigningKeys(alice["user_id"])
    response = await upload_with_uia(client, alice, replacement.body())
    assert response.code == 200, response
    answer = await query(client, alice, {alice["user_id"]: []})
    assert answer["master_keys"][alice["user_id"]] == replacement.body()["master_key"]
    assert answer["self_signing_keys"][alice["user_id"]] == replacement.body()["self_signing_key"]
    assert answer["user_signing_keys"][alice["user_id"]] == replacement.body()["user_signing_key"]


@pytest_twisted.ensureDeferred
async def test_replacing_cross_signing_keys_with_a_wrong_password_fails(client):
    """Without the right password the existing keys stay."""
    alice = await client.register()
    keys = await upload_cross_signing(client, alice)
    replacement = CrossSigningKeys(alice["user_id"]).body()
    response = await upload_with_uia(client, alice, replacement, password="wrong password")
    assert response.code == 401 and response.json["errcode"] == "M_FORBIDDEN"
    answer = await query(client, alice, {alice["user_id"]: []})
    assert answer["master_keys"][alice["user_id"]] == keys.body()["master_key"]


@pytest_twisted.ensureDeferred
async def test_cross_signing_keys_with_bad_signatures_are_refused(client):
    """A self-signing or user-signing key not signed by the master key is refused with M_INVALID_SIGNATURE."""
    alice = await client.register()
    keys = CrossSigningKeys(alice["user_id"])
    body = keys.body()
    body["self_signing_key"] = cross_signing_key(alice["user_id"], "self_signing", keys.self_signing,
                                                 new_key())  # signed by some other key
    response = await client.request("POST", "keys/device_signing/upload", body,
                                    token=alice["access_token"])
    assert response.code == 400 and response.json["errcode"] == "M_INVALID_SIGNATURE"
    tampered = keys.body()
    tampered["user_signing_key"]["usage"] = ["user_signing", "extra"]  # breaks the master's signature
    response = await client.request("POST", "keys/device_signing/upload", tampered,
                                    token=alice["access_token"])
    assert response.code == 400 and response.json["errcode"] == "M_INVALID_SIGNATURE"
    answer = await query(client, alice, {alice["user_id"]: []})
    assert answer["master_keys"] == {}


@pytest_twisted.ensureDeferred
async def test_malformed_cross_signing_keys_are_refused(client):
    """Another user's id, a wrong usage, two keys, or no master key to check against: 400."""
    alice = await client.register()
    keys = CrossSigningKeys(alice["user_id"])
    token = alice["access_token"]

    async def upload(body):
        return await client.request("POST", "keys/device_signing/upload", body, token=token)

    other_user = {"master_key": cross_signing_key("@mallory:test.local", "master", keys.master)}
    assert (await upload(other_user)).json["errcode"] == "M_INVALID_PARAM"
    wrong_usage = {"master_key": cross_signing_key(alice["user_id"], "self_signing", keys.master)}
    assert (await upload(wrong_usage)).json["errcode"] == "M_INVALID_PARAM"
    two_keys = cross_signing_key(alice["user_id"], "master", keys.master)
    two_keys["keys"][f"ed25519:{public_key(keys.self_signing)}"] = public_key(keys.self_signing)
    assert (await upload({"master_key": two_keys})).json["errcode"] == "M_INVALID_PARAM"
    no_master = {"self_signing_key": keys.body()["self_signing_key"]}
    response = await upload(no_master)
    assert response.code == 400 and response.json["errcode"] == "M_MISSING_PARAM"


# -- /keys/signatures/upload -----------------------------------------------

@pytest_twisted.ensureDeferred
async def test_self_signing_a_device_shows_the_signature_in_queries(client):
    """A device signed by the self-signing key carries that signature in everyone's /keys/query."""
    alice = await client.register()
    bob = await client.register()
    await shared_room(client, alice, bob)
    device_keys, _ = await upload_device_keys(client, alice)
    keys = await upload_cross_signing(client, alice)
    signed = sign_json(copy.deepcopy(device_keys), alice["user_id"], keys.self_signing)
    ssk_id = f"ed25519:{public_key(keys.self_signing)}"
    answer = await upload_signatures(client, alice, {alice["user_id"]: {alice["device_id"]: signed}})
    assert answer["failures"] == {}
    seen = await query(client, bob, {alice["user_id"]: []})
    device = seen["device_keys"][alice["user_id"]][alice["device_id"]]
    assert device["signatures"][alice["user_id"]][ssk_id] == signed["signatures"][alice["user_id"]][ssk_id]
    assert device["signatures"][alice["user_id"]][f"ed25519:{alice['device_id']}"]  # its own stays
    assert seen["master_keys"][alice["user_id"]] == keys.body()["master_key"]
    assert seen["self_signing_keys"][alice["user_id"]] == keys.body()["self_signing_key"]


@pytest_twisted.ensureDeferred
async def test_invalid_signatures_are_reported_and_not_stored(client):
    """A signature by another key, on altered keys, or on an unknown device comes back in failures."""
    alice = await client.register()
    device_keys, _ = await upload_device_keys(client, alice)
    keys = await upload_cross_signing(client, alice)
    ssk_id = f"ed25519:{public_key(keys.self_signing)}"
    forged_key = new_key(public_key(keys.self_signing))  # claims the self-signing key's id
    forged = sign_json(copy.deepcopy(device_keys), alice["user_id"], forged_key)
    altered = copy.deepcopy(device_keys)
    altered["algorithms"] = ["m.megolm.v1.aes-sha2"]
    altered = sign_json(altered, alice["user_id"], keys.self_signing)
    answer = await upload_signatures(client, alice, {alice["user_id"]: {alice["device_id"]: forged}})
    assert answer["failures"][alice["user_id"]][alice["device_id"]]["errcode"] == "M_INVALID_SIGNATURE"
    answer = await upload_signatures(client, alice, {alice["user_id"]: {alice["device_id"]: altered}})
    assert answer["failures"][alice["user_id"]][alice["device_id"]]["errcode"] == "M_INVALID_SIGNATURE"
    unknown = sign_json({**copy.deepcopy(device_keys), "device_id": "NOSUCHDEVICE"}, alice["user_id"],
                        keys.self_signing)
    answer = await upload_signatures(client, alice, {alice["user_id"]: {"NOSUCHDEVICE": unknown}})
    assert answer["failures"][alice["user_id"]]["NOSUCHDEVICE"]["errcode"] == "M_NOT_FOUND"
    seen = await query(client, alice, {alice["user_id"]: []})
    assert ssk_id not in seen["device_keys"][alice["user_id"]][alice["device_id"]]["signatures"][alice["user_id"]]


@pytest_twisted.ensureDeferred
async def test_a_device_can_sign_its_users_master_key(client):
    """A signature of the user's own device on their master key is verified and shown."""
    alice = await client.register()
    bob = await client.register()
    await shared_room(client, alice, bob)
    _, device_key = await upload_device_keys(client, alice)
    keys = await upload_cross_signing(client, alice)
    master = sign_json(keys.body()["master_key"], alice["user_id"], device_key)
    answer = await upload_signatures(client, alice, {alice["user_id"]: {public_key(keys.master): master}})
    assert answer["failures"] == {}
    seen = await query(client, bob, {alice["user_id"]: []})
    signatures = seen["master_keys"][alice["user_id"]]["signatures"][alice["user_id"]]
    assert signatures[f"ed25519:{alice['device_id']}"] == master["signatures"][alice["user_id"]][
        f"ed25519:{alice['device_id']}"]


@pytest_twisted.ensureDeferred
async def test_user_signing_another_users_master_key_is_visible_only_to_the_signer(client):
    """Alice's user-signing key signs Bob's master key: Alice sees the signature, Bob does not."""
    alice = await client.register()
    bob = await client.register()
    await shared_room(client, alice, bob)
    alice_keys = await upload_cross_signing(client, alice)
    bob_keys = await upload_cross_signing(client, bob)
    bob_master = bob_keys.body()["master_key"]
    signed = sign_json(copy.deepcopy(bob_master), alice["user_id"], alice_keys.user_signing)
    usk_id = f"ed25519:{public_key(alice_keys.user_signing)}"
    answer = await upload_signatures(client, alice, {bob["user_id"]: {public_key(bob_keys.master): signed}})
    assert answer["failures"] == {}
    seen_by_alice = await query(client, alice, {bob["user_id"]: []})
    assert seen_by_alice["master_keys"][bob["user_id"]]["signatures"][alice["user_id"]][usk_id] == \
        signed["signatures"][alice["user_id"]][usk_id]
    seen_by_bob = await query(client, bob, {bob["user_id"]: []})
    assert alice["user_id"] not in seen_by_bob["master_keys"][bob["user_id"]].get("signatures", {})
    # A signature by a key that is not Alice's user-signing key is refused.
    forged = sign_json(copy.deepcopy(bob_master), alice["user_id"], new_key(public_key(alice_keys.user_signing)))
    answer = await upload_signatures(client, alice, {bob["user_id"]: {public_key(bob_keys.master): forged}})
    assert answer["failures"][bob["user_id"]][public_key(bob_keys.master)]["errcode"] == "M_INVALID_SIGNATURE"


@pytest_twisted.ensureDeferred
async def test_user_signing_keys_are_shown_only_to_their_owner(client):
    """Room-mates see a user's master and self-signing keys; only the user sees their user-signing key."""
    alice = await client.register()
    bob = await client.register()
    await shared_room(client, alice, bob)
    keys = await upload_cross_signing(client, alice)
    own = await query(client, alice, {alice["user_id"]: []})
    assert own["user_signing_keys"] == {alice["user_id"]: keys.body()["user_signing_key"]}
    theirs = await query(client, bob, {alice["user_id"]: []})
    assert theirs["master_keys"] == {alice["user_id"]: keys.body()["master_key"]}
    assert alice["user_id"] in theirs["self_signing_keys"]
    assert theirs.get("user_signing_keys", {}) == {}


@pytest_twisted.ensureDeferred
async def test_cross_signing_keys_reach_users_sharing_no_room(client):
    """A user who shares no room with Alice gets her master and self-signing keys (the spec sets no room condition), never her user-signing key."""
    alice = await client.register()
    carol = await client.register()
    await upload_device_keys(client, alice)
    keys = await upload_cross_signing(client, alice)
    seen = await query(client, carol, {alice["user_id"]: []})
    assert alice["device_id"] in seen["device_keys"][alice["user_id"]]
    assert seen["master_keys"][alice["user_id"]]["keys"] == keys.body()["master_key"]["keys"]
    assert alice["user_id"] in seen["self_signing_keys"]
    assert alice["user_id"] not in seen.get("user_signing_keys", {})
