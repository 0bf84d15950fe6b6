"""
KeyRing, KeyServer and ServerAuthenticator with a fake federation client, a
fake store and task.Clock: fetching, sharing, storing and honouring old
keys; notaries; authenticating requests.
"""
from __future__ import annotations

import pytest
from signedjson.key import generate_signing_key
from twisted.internet import defer, task
from twisted.python.failure import Failure

from ruma_tx.matrix.errors import Forbidden, Unauthorized
from ruma_tx.matrix.federation_auth import (
    OldVerifyKey,
    notary_sign,
    server_keys_response,
    verified_notary_keys,
    verified_server_keys,
    x_matrix_header,
)
from ruma_tx.matrix.signing import key_id
from ruma_tx.services.key_ring import MIN_REFETCH_INTERVAL_MS, KeyRing
from ruma_tx.services.key_server import KeyServer
from ruma_tx.services.ports.federation import FederationError
from ruma_tx.services.server_auth import DomainAllowlist, ServerAuthenticator

DAY_MS = 24 * 3600 * 1000
NOW_S = 1_700_000_000


class FakeStore:
    def __init__(self):
        self.rows = {}

    async def get_server_keys(self, server_name):
        return list(self.rows.get(server_name, {}).values())

    async def store_server_keys(self, server_name, keys):
        self.rows.setdefault(server_name, {}).update({key.key_id: key for key in keys})


class FakeClient:
    """Answers key requests from C{responses}: server -> key response (or an exception)."""

    def __init__(self):
        self.responses = {}
        self.notary_answers = {}
        self.calls = []
        self.gate = None

    async def get_unsigned_json(self, destination, path, *, timeout_s=None):
        self.calls.append(("GET", destination, path))
        if self.gate is not None:
            await self.gate
        answer = self.responses[destination]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def post_json(self, destination, path, body, *, query=None, timeout_s=None):
        self.calls.append(("POST", destination, path))
        return self.notary_answers[destination]


def make_ring(client, store=None, notaries=(), clock=None):
    clock = clock or task.Clock()
    if clock.seconds() == 0:
        clock.advance(NOW_S)
    return KeyRing(store=store or FakeStore(), client=client, clock=clock, server_name="us.example",
                   signing_key=generate_signing_key("us"), trusted_key_servers=notaries), clock


def run(coroutine):
    d = defer.ensureDeferred(coroutine)
    assert d.called, "the coroutine waited on something"
    results = []
    d.addBoth(results.append)
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def test_keys_are_fetched_once_stored_and_reused():
    """A server's key is fetched from it, verified, stored, and then served from memory."""
    key = generate_signing_key("k1")
    client = FakeClient()
    client.responses["them.example"] = server_keys_response("them.example", key, NOW_S * 1000 + DAY_MS, {})
    store = FakeStore()
    ring, _ = make_ring(client, store)
    found = run(ring.verify_keys("them.example", [key_id(key)], NOW_S * 1000))
    assert found == {key_id(key): key.verify_key}
    assert run(ring.verify_keys("them.example", [key_id(key)], NOW_S * 1000)) == found
    assert len(client.calls) == 1
    assert list(store.rows["them.example"]) == [key_id(key)]
    # A new ring (a restart) finds it in the store without asking.
    again, _ = make_ring(client, store)
    assert run(again.verify_keys("them.example", [key_id(key)], NOW_S * 1000)) == found
    assert len(client.calls) == 1


def test_concurrent_fetches_share_one_request():
    """Two verifications waiting on the same server's keys make one request."""
    key = generate_signing_key("k1")
    client = FakeClient()
    client.responses["them.example"] = server_keys_response("them.example", key, NOW_S * 1000 + DAY_MS, {})
    client.gate = defer.Deferred()
    ring, _ = make_ring(client)
    waits = [defer.ensureDeferred(ring.verify_keys("them.example", [key_id(key)], NOW_S * 1000))
             for _ in range(3)]
    client.gate.callback(None)
    assert [w.result for w in waits] == [{key_id(key): key.verify_key}] * 3
    assert len(client.calls) == 1


def test_old_keys_verify_events_of_their_time_only():
    """A retired key is returned for a time up to its expired_ts, not after."""
    current, old = generate_signing_key("new"), generate_signing_key("old")
    client = FakeClient()
    expired_ts = NOW_S * 1000 - DAY_MS
    client.responses["them.example"] = server_keys_response(
        "them.example", current, NOW_S * 1000 + DAY_MS, {key_id(old): OldVerifyKey(old.verify_key, expired_ts)})
    ring, _ = make_ring(client)
    assert run(ring.verify_keys("them.example", [key_id(old)], expired_ts - 1)) == {key_id(old): old.verify_key}
    assert run(ring.verify_keys("them.example", [key_id(old)], expired_ts + 1)) == {}


def test_unknown_keys_are_not_refetched_at_once():
    """A key id the server does not publish costs one fetch per interval, not one per request."""
    key = generate_signing_key("k1")
    client = FakeClient()
    client.responses["them.example"] = server_keys_response("them.example", key, NOW_S * 1000 + DAY_MS, {})
    ring, clock = make_ring(client)
    for _ in range(3):
        assert run(ring.verify_keys("them.example", ["ed25519:made_up"], NOW_S * 1000)) == {}
    assert len(client.calls) == 1
    clock.advance(MIN_REFETCH_INTERVAL_MS / 1000)
    run(ring.verify_keys("them.example", ["ed25519:made_up"], NOW_S * 1000))
    assert len(client.calls) == 2


def test_unreachable_or_forged_keys_give_nothing():
    """A server that cannot be reached, or whose response is signed by another key, gives no key."""
    key, forger = generate_signing_key("k1"), generate_signing_key("k1")
    client = FakeClient()
    client.responses["down.example"] = FederationError("down.example", "refused")
    forged = server_keys_response("forged.example", key, NOW_S * 1000 + DAY_MS, {})
    forged["signatures"] = server_keys_response("forged.example", forger, NOW_S * 1000 + DAY_MS, {})["signatures"]
    client.responses["forged.example"] = forged
    ring, _ = make_ring(client)
    assert run(ring.verify_keys("down.example", [key_id(key)], NOW_S * 1000)) == {}
    assert run(ring.verify_keys("forged.example", [key_id(key)], NOW_S * 1000)) == {}


def test_trusted_notary_is_asked_first():
    """With a trusted notary, the server's keys come from the notary (its own keys from itself)."""
    key, notary_key = generate_signing_key("k1"), generate_signing_key("n1")
    until = NOW_S * 1000 + DAY_MS
    client = FakeClient()
    client.responses["notary.example"] = server_keys_response("notary.example", notary_key, until, {})
    relayed = notary_sign(server_keys_response("them.example", key, until, {}), "notary.example", notary_key)
    client.notary_answers["notary.example"] = {"server_keys": [relayed]}
    ring, _ = make_ring(client, notaries=["notary.example"])
    assert run(ring.verify_keys("them.example", [key_id(key)], NOW_S * 1000)) == {key_id(key): key.verify_key}
    assert ("GET", "them.example", "/_matrix/key/v2/server") not in client.calls
    assert ("POST", "notary.example", "/_matrix/key/v2/query") in client.calls


def test_key_server_relays_with_its_signature():
    """As a notary, the key server returns the fetched response with its own signature added."""
    key = generate_signing_key("k1")
    ours = generate_signing_key("us")
    client = FakeClient()
    client.responses["them.example"] = server_keys_response("them.example", key, NOW_S * 1000 + DAY_MS, {})
    ring, clock = make_ring(client)
    keys = KeyServer(key_ring=ring, clock=clock, server_name="us.example", signing_key=ours)
    answer = run(keys.query({"them.example": {}}))
    [entry] = answer["server_keys"]
    checked = verified_notary_keys(entry, "them.example", "us.example", {key_id(ours): ours.verify_key},
                                   NOW_S * 1000)
    assert key_id(key) in checked.verify_keys
    assert keys.own_keys()["valid_until_ts"] == NOW_S * 1000 + DAY_MS


class FixedKeys:
    def __init__(self, keys):
        self.keys = keys
        self.asked = []

    async def verify_keys(self, server_name, key_ids, at_ms):
        self.asked.append(server_name)
        return {k: v for k, v in self.keys.get(server_name, {}).items() if k in key_ids}


def authenticator(keys, allowlist=()):
    clock = task.Clock()
    return ServerAuthenticator(key_ring=keys, clock=clock, server_name="us.example",
                               allowlist=DomainAllowlist(allowlist))


def test_a_signed_request_names_its_origin():
    """A correctly signed request is attributed to its origin; any change to it is refused with 401."""
    key = generate_signing_key("k1")
    keys = FixedKeys({"them.example": {key_id(key): key.verify_key}})
    header = x_matrix_header(key, "them.example", "us.example", "PUT", "/_matrix/federation/v1/send/1",
                             {"pdus": []})
    auth = authenticator(keys)
    assert run(auth.origin("PUT", "/_matrix/federation/v1/send/1", [header], {"pdus": []})) == "them.example"
    for method, uri, body in (("PUT", "/_matrix/federation/v1/send/2", {"pdus": []}),
                              ("PUT", "/_matrix/federation/v1/send/1", {"pdus": [1]}),
                              ("POST", "/_matrix/federation/v1/send/1", {"pdus": []})):
        with pytest.raises(Unauthorized):
            run(auth.origin(method, uri, [header], body))
    with pytest.raises(Unauthorized):
        run(auth.origin("GET", "/", [], None))
    with pytest.raises(Unauthorized):
        run(auth.origin("GET", "/", ["X-Matrix origin=nope"], None))


def test_a_request_for_another_destination_fetches_no_key():
    """A request signed for another server is refused before any key is looked up."""
    key = generate_signing_key("k1")
    keys = FixedKeys({})
    header = x_matrix_header(key, "them.example", "other.example", "GET", "/x", None)
    with pytest.raises(Unauthorized):
        run(authenticator(keys).origin("GET", "/x", [header], None))
    assert keys.asked == []


def test_origins_outside_the_allowlist_are_forbidden():
    """With a domain allowlist, another origin gets 403 whatever its signature."""
    key = generate_signing_key("k1")
    keys = FixedKeys({"them.example": {key_id(key): key.verify_key}})
    header = x_matrix_header(key, "them.example", "us.example", "GET", "/x", None)
    with pytest.raises(Forbidden):
        run(authenticator(keys, ["friend.example"]).origin("GET", "/x", [header], None))
    assert run(authenticator(keys, ["them.example"]).origin("GET", "/x", [header], None)) == "them.example"


def test_our_retired_keys_verify_what_we_signed_before_they_expired():
    """Our own retired key verifies our signatures made up to its expired_ts, the current key any time."""
    ours, old = generate_signing_key("new"), generate_signing_key("old")
    expired_ts = NOW_S * 1000 - DAY_MS
    clock = task.Clock()
    clock.advance(NOW_S)
    client = FakeClient()
    ring = KeyRing(store=FakeStore(), client=client, clock=clock, server_name="us.example", signing_key=ours,
                   old_keys={key_id(old): OldVerifyKey(old.verify_key, expired_ts)})
    wanted = [key_id(ours), key_id(old)]
    assert run(ring.verify_keys("us.example", wanted, expired_ts)) == {key_id(ours): ours.verify_key,
                                                                       key_id(old): old.verify_key}
    assert run(ring.verify_keys("us.example", wanted, expired_ts + 1)) == {key_id(ours): ours.verify_key}
    assert client.calls == []


def test_key_server_publishes_retired_keys():
    """Our key response lists the retired keys with their expired_ts; a key both current and retired is current."""
    ours, old = generate_signing_key("new"), generate_signing_key("old")
    expired_ts = NOW_S * 1000 - DAY_MS
    ring, clock = make_ring(FakeClient())
    retired = {key_id(old): OldVerifyKey(old.verify_key, expired_ts),
               key_id(ours): OldVerifyKey(ours.verify_key, expired_ts)}   # a rotation stopped halfway
    keys = KeyServer(key_ring=ring, clock=clock, server_name="us.example", signing_key=ours,
                     old_verify_keys=retired)
    published = verified_server_keys(keys.own_keys(), "us.example", NOW_S * 1000)
    assert list(published.verify_keys) == [key_id(ours)]
    assert {kid: bytes(k.key) for kid, k in published.old_verify_keys.items()} == {key_id(old): bytes(old.verify_key)}
    assert published.old_verify_keys[key_id(old)].expired_ts == expired_ts
