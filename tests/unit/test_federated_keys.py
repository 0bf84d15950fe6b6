"""
Other servers' users' keys, asked for our clients (L{ruma_tx.services.remote_queries.RemoteKeys},
L{ruma_tx.matrix.federated_keys}), and our users' keys as other servers see them: one request per
server, answers filtered to what was asked and well signed, unreachable servers in C{failures}.
Keys are really signed, with signedjson; the federation client is a fake.
"""
from __future__ import annotations

import pytest
import pytest_twisted
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json
from twisted.internet import defer, task

from ruma_tx.http.errors import status_code
from ruma_tx.matrix.errors import MatrixError
from ruma_tx.matrix.federated_keys import (
    checked_cross_signing_keys,
    checked_device_keys,
    checked_one_time_keys,
)
from ruma_tx.services.cross_signing import KeyQueries
from ruma_tx.services.keys import DeviceKeys
from ruma_tx.services.ports.federation import FederationDenied, FederationError, RemoteMatrixError
from ruma_tx.services.remote_queries import RemoteKeys

BOB = "@bob:b.example"
CAROL = "@carol:c.example"


def device_keys(user_id: str, device_id: str, key=None) -> dict:
    """A DeviceKeys object signed by C{key} (by default, the device's own new key)."""
    own = generate_signing_key(device_id)
    keys = {
        "user_id": user_id, "device_id": device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {f"ed25519:{device_id}": encode_verify_key_base64(get_verify_key(own)),
                 f"curve25519:{device_id}": "curve"},
    }
    return sign_json(keys, user_id, key or own)


def cross_signing_key(user_id: str, usage: str, key, signed_by=None) -> dict:
    public = encode_verify_key_base64(get_verify_key(key))
    body = {"user_id": user_id, "usage": [usage], "keys": {f"ed25519:{public}": public}}
    if signed_by is not None:
        signer = encode_verify_key_base64(get_verify_key(signed_by))
        signed_by.version = signer
        body = sign_json(body, user_id, signed_by)
    return body


class FakeFederation:
    """Answers per server: a dict, an exception to raise, or a Deferred to wait on."""

    def __init__(self, answers: dict) -> None:
        self.answers = answers
        self.requests: list[tuple[str, str, dict, float | None]] = []

    async def post_json(self, destination, path, body, *, query=None, timeout_s=None):
        self.requests.append((destination, path, body, timeout_s))
        answer = self.answers[destination]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, defer.Deferred):
            return await answer
        return answer

    async def get_json(self, destination, path, *, query=None, timeout_s=None):
        raise AssertionError("not used")

    put_json = get_unsigned_json = get_json


def test_device_keys_are_kept_only_when_asked_for_and_self_signed():
    """A device's keys pass when asked for and signed by the device; others' keys, devices not asked,
    keys naming another device, and keys signed by another key are dropped."""
    good = device_keys(BOB, "B1")
    answer = {"device_keys": {
        BOB: {"B1": good, "B2": device_keys(BOB, "B2"), "B3": device_keys(BOB, "OTHER"),
              "B4": device_keys(BOB, "B4", key=generate_signing_key("B4"))},
        CAROL: {"C1": device_keys(CAROL, "C1")},
    }}
    assert checked_device_keys(answer, {BOB: ["B1", "B3", "B4"]}) == {BOB: {"B1": good}}
    everything = checked_device_keys(answer, {BOB: []})
    assert sorted(everything[BOB]) == ["B1", "B2"]


def test_garbage_answers_give_no_keys():
    """An answer of the wrong shape yields the asked users with no devices, never an error."""
    for answer in ({}, {"device_keys": []}, {"device_keys": {BOB: "x"}}, {"device_keys": {BOB: {"B1": 3}}}):
        assert checked_device_keys(answer, {BOB: []}) == {BOB: {}}
        assert checked_cross_signing_keys(answer, [BOB]) == ({}, {})


def test_self_signing_keys_need_the_master_keys_signature():
    """A master key of the asked user is kept; a self-signing key only when the master key signed it."""
    master_key, ssk = generate_signing_key("m"), generate_signing_key("s")
    master = cross_signing_key(BOB, "master", master_key)
    signed = cross_signing_key(BOB, "self_signing", ssk, signed_by=master_key)
    unsigned = cross_signing_key(BOB, "self_signing", ssk)
    assert checked_cross_signing_keys(
        {"master_keys": {BOB: master}, "self_signing_keys": {BOB: signed}}, [BOB]) == (
        {BOB: master}, {BOB: signed})
    assert checked_cross_signing_keys(
        {"master_keys": {BOB: master}, "self_signing_keys": {BOB: unsigned}}, [BOB]) == ({BOB: master}, {})
    carols = cross_signing_key(CAROL, "master", master_key)
    assert checked_cross_signing_keys({"master_keys": {BOB: carols}}, [BOB]) == ({}, {})


def test_claimed_keys_are_kept_for_the_asked_device_and_algorithm():
    """One key of the asked algorithm per asked device; keys of others or other algorithms are dropped."""
    otk = {"key": "k", "signatures": {}}
    answer = {"one_time_keys": {
        BOB: {"B1": {"curve25519:1": "plain", "signed_curve25519:AA": otk}, "B2": {"signed_curve25519:X": otk}},
        CAROL: {"C1": {"signed_curve25519:C": otk}},
    }}
    assert checked_one_time_keys(answer, {BOB: {"B1": "signed_curve25519"}}) == {
        BOB: {"B1": {"signed_curve25519:AA": otk}}}
    assert checked_one_time_keys({"one_time_keys": {BOB: {"B1": {"signed_curve25519:AA": 5}}}},
                                 {BOB: {"B1": "signed_curve25519"}}) == {}


@pytest_twisted.ensureDeferred
async def test_each_server_is_asked_once_and_failures_are_reported_per_server():
    """Users of one server go in one request; an erroring, refusing or unreachable server is in
    failures with a status, and the others' keys are merged."""
    bob_keys, bob2 = device_keys(BOB, "B1"), "@bob2:b.example"
    federation = FakeFederation({
        "b.example": {"device_keys": {BOB: {"B1": bob_keys}, bob2: {}}},
        "c.example": RemoteMatrixError("c.example", 500, "M_UNKNOWN", "oops"),
        "d.example": FederationError("d.example", "connection refused"),
        "e.example": FederationDenied("e.example", "not in the allowlist"),
    })
    remote = RemoteKeys(federation=federation, clock=task.Clock())
    answers = await remote.query({"b.example": {BOB: [], bob2: []}, "c.example": {CAROL: []},
                                  "d.example": {"@d:d.example": []}, "e.example": {"@e:e.example": []}},
                                 timeout_ms=2500)
    assert answers.device_keys == {BOB: {"B1": bob_keys}, bob2: {}}
    assert answers.failures == {
        "c.example": {"status": 500, "errcode": "M_UNKNOWN", "message": "oops"},
        "d.example": {"status": 503, "message": "connection refused"},
        "e.example": {"status": 403, "message": "Federation denied"},
    }
    [to_b] = [r for r in federation.requests if r[0] == "b.example"]
    assert to_b[1:] == ("/_matrix/federation/v1/user/keys/query",
                        {"device_keys": {BOB: [], bob2: []}}, 2.5)


def test_a_slow_server_times_out_into_failures():
    """A server still silent when the client's timeout passes is a 503 failure; the answer comes anyway."""
    clock = task.Clock()
    federation = FakeFederation({"b.example": defer.Deferred(), "c.example": {"device_keys": {}}})
    querying = defer.ensureDeferred(RemoteKeys(federation=federation, clock=clock).query(
        {"b.example": {BOB: []}, "c.example": {CAROL: []}}, timeout_ms=None))
    clock.advance(9.9)
    assert not querying.called
    clock.advance(0.2)  # the spec's default: 10 seconds
    answers = querying.result
    assert answers.failures == {"b.example": {"status": 503, "message": "Timed out"}}
    assert answers.device_keys == {CAROL: {}}


class EmptyCrossSigningStore:
    """No local user has keys."""

    async def get_device_signatures(self, user_ids):
        return {}

    async def get_device_names(self, user_ids):
        return {}

    async def get_keys(self, user_ids, usages=()):
        return {}

    async def get_master_key_signatures(self, user_ids, viewer):
        return []


async def no_device_keys(user_ids):
    return {}


async def no_updates_yet(user_id):
    return 0


def key_queries(remote):
    return KeyQueries(device_keys=no_device_keys, store=EmptyCrossSigningStore(), device_lists=None,
                      server_name="a.example", stream_ids=no_updates_yet, remote=remote)


class Requester:
    user_id = "@alice:a.example"
    device_id = "ALICE"


@pytest_twisted.ensureDeferred
async def test_client_key_query_merges_remote_answers():
    """POST /keys/query gives local users and other servers' answers together, failures included."""
    master = cross_signing_key(BOB, "master", generate_signing_key("m"))
    bob_keys = device_keys(BOB, "B1")
    federation = FakeFederation({"b.example": {"device_keys": {BOB: {"B1": bob_keys}},
                                               "master_keys": {BOB: master}},
                                 "c.example": FederationError("c.example", "down")})
    queries = key_queries(RemoteKeys(federation=federation, clock=task.Clock()))
    answer = await queries.query(Requester(), {"@alice:a.example": [], BOB: ["B1"], CAROL: []}, timeout_ms=1000)
    assert answer["device_keys"] == {"@alice:a.example": {}, BOB: {"B1": bob_keys}}
    assert answer["master_keys"] == {BOB: master}
    assert answer["failures"] == {"c.example": {"status": 503, "message": "down"}}


@pytest_twisted.ensureDeferred
async def test_without_federation_remote_users_stay_failures():
    """With federation off, other servers are reported unavailable (503) as before, and nobody is asked."""
    answer = await key_queries(None).query(Requester(), {BOB: []})
    assert answer["failures"] == {"b.example": {"status": 503, "message": "Federation is disabled on this server"}}
    assert answer["device_keys"] == {}


@pytest_twisted.ensureDeferred
async def test_servers_may_ask_only_for_our_users():
    """Federation /user/keys/query and /user/keys/claim refuse another server's user with 400."""
    for call in (key_queries(None).query_for_server({BOB: []}), key_queries(None).user_devices(BOB),
                 DeviceKeys(store=None, streams=None, clock=task.Clock(), server_name="a.example",
                            on_device_keys_changed=None).claim_for_server({BOB: {"B1": "signed_curve25519"}})):
        with pytest.raises(MatrixError) as caught:
            await call
        assert (status_code(caught.value), caught.value.errcode) == (400, "M_UNKNOWN")


@pytest_twisted.ensureDeferred
async def test_client_claim_forwards_remote_devices():
    """POST /keys/claim asks each server for its users' devices and merges the keys it hands out."""
    otk = {"key": "k", "signatures": {}}
    federation = FakeFederation({"b.example": {"one_time_keys": {BOB: {"B1": {"signed_curve25519:X": otk}}}},
                                 "c.example": RemoteMatrixError("c.example", 404, "M_UNRECOGNIZED", "")})
    keys = DeviceKeys(store=None, streams=None, clock=task.Clock(), server_name="a.example",
                      on_device_keys_changed=None, remote=RemoteKeys(federation=federation, clock=task.Clock()))
    answer = await keys.claim(Requester(), {BOB: {"B1": "signed_curve25519"}, CAROL: {"C1": "signed_curve25519"}})
    assert answer == {"one_time_keys": {BOB: {"B1": {"signed_curve25519:X": otk}}},
                      "failures": {"c.example": {"status": 404, "errcode": "M_UNRECOGNIZED", "message": ""}}}
    assert federation.requests[0][:3] == ("b.example", "/_matrix/federation/v1/user/keys/claim",
                                          {"one_time_keys": {BOB: {"B1": "signed_curve25519"}}})
