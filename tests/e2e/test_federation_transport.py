"""
Two (or more) ruma_tx daemons federating on loopback over TLS with a CA made
by the test: keys, signed requests both ways, profile and alias queries,
and the refusals (bad signatures, other destinations, domain allowlist,
blocked address ranges).
"""
from __future__ import annotations

import json
from urllib.parse import quote, urlencode

import pytest
import pytest_twisted
import treq
from signedjson.key import read_signing_keys
from twisted.internet import reactor
from twisted.internet.ssl import Certificate
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool

from fedcerts import FederationCa

from ruma_tx.matrix.federation_auth import verified_notary_keys, verified_server_keys, x_matrix_header
from ruma_tx.matrix.signing import key_id
from ruma_tx.runtime.config import ConfigError, load_config


@pytest.fixture(scope="module")
def pair(start_federating):
    """Two federating daemons, A and B."""
    return start_federating(), start_federating()


@pytest.fixture
def federation_http(federation_ca):
    """A treq client that trusts the test CA, to call federation listeners directly."""
    pool = HTTPConnectionPool(reactor, persistent=False)
    policy = BrowserLikePolicyForHTTPS(trustRoot=Certificate.loadPEM(federation_ca.cert_path.read_bytes()))
    return treq.client.HTTPClient(Agent(reactor, contextFactory=policy, pool=pool))


def signing_key_of(server):
    with open(server.directory / "var" / "signing.key") as stream:
        return read_signing_keys(line for line in stream if line.strip())[0]


async def federation_request(http, server, method, path, *, query=None, body=None, authorization=None):
    uri = path + ("?" + urlencode(query) if query else "")
    headers = {"Content-Type": ["application/json"]}
    if authorization is not None:
        headers["Authorization"] = [authorization]
    data = None if body is None else json.dumps(body).encode()
    response = await http.request(method, server.federation_url + uri, data=data, headers=headers)
    return response.code, json.loads(await response.content())


def signed_as(origin, destination, method, uri, body=None):
    return x_matrix_header(signing_key_of(origin), origin.server_name, destination, method, uri, body)


async def registered_with_name(client, displayname):
    user = await client.register()
    answer = await client.request("PUT", f"profile/{quote(user['user_id'])}/displayname",
                                  {"displayname": displayname}, token=user["access_token"])
    assert answer.code == 200, answer
    return user


@pytest_twisted.ensureDeferred
async def test_key_server_publishes_our_signed_key(pair, federation_http):
    """GET /_matrix/key/v2/server answers the server's own ed25519 key, signed by it, valid now."""
    a, _ = pair
    code, body = await federation_request(federation_http, a, "GET", "/_matrix/key/v2/server")
    assert code == 200
    keys = verified_server_keys(body, a.server_name, 0)
    assert key_id(signing_key_of(a)) in keys.verify_keys
    assert body["old_verify_keys"] == {}


@pytest_twisted.ensureDeferred
async def test_federation_version(pair, federation_http):
    """GET /_matrix/federation/v1/version names the software."""
    code, body = await federation_request(federation_http, pair[0], "GET", "/_matrix/federation/v1/version")
    assert code == 200 and body["server"]["name"] == "ruma_tx"


@pytest_twisted.ensureDeferred
async def test_profiles_are_asked_of_the_other_server_both_ways(pair, make_client):
    """A's client reads a B user's profile and B's client an A user's, each through a signed query."""
    a, b = pair
    client_a, client_b = make_client(a), make_client(b)
    alice = await registered_with_name(client_a, "Alice on A")
    bob = await registered_with_name(client_b, "Bob on B")
    seen_by_a = await client_a.request("GET", f"profile/{quote(bob['user_id'])}")
    assert seen_by_a.code == 200, seen_by_a
    assert seen_by_a.json["displayname"] == "Bob on B"
    seen_by_b = await client_b.request("GET", f"profile/{quote(alice['user_id'])}/displayname")
    assert seen_by_b.code == 200, seen_by_b
    assert seen_by_b.json == {"displayname": "Alice on A"}
    unknown = await client_a.request("GET", f"profile/{quote('@nobody:' + b.server_name)}")
    assert unknown.code == 404, unknown


@pytest_twisted.ensureDeferred
async def test_a_remote_alias_resolves_through_its_server(pair, make_client):
    """A's client resolves an alias of B to B's room, with B listed as a server to join through."""
    a, b = pair
    client_b = make_client(b)
    owner = await client_b.register()
    room = await client_b.request("POST", "createRoom", {"room_alias_name": "fedtransport"},
                                  token=owner["access_token"])
    assert room.code == 200, room
    alias = f"#fedtransport:{b.server_name}"
    found = await make_client(a).request("GET", f"directory/room/{quote(alias)}")
    assert found.code == 200, found
    assert found.json == {"room_id": room.json["room_id"], "servers": [b.server_name]}
    missing = await make_client(a).request("GET", f"directory/room/{quote('#nope:' + b.server_name)}")
    assert missing.code == 404, missing


@pytest_twisted.ensureDeferred
async def test_signed_queries_are_verified(pair, make_client, federation_http):
    """B answers A's correctly signed query, and refuses with 401 M_UNAUTHORIZED a bad signature, a
    request signed for another destination, or no signature at all."""
    a, b = pair
    bob = await registered_with_name(make_client(b), "Bob")
    path, query = "/_matrix/federation/v1/query/profile", {"user_id": bob["user_id"]}
    uri = path + "?" + urlencode(query)
    good = signed_as(a, b.server_name, "GET", uri)
    code, body = await federation_request(federation_http, b, "GET", path, query=query, authorization=good)
    assert (code, body) == (200, {"displayname": "Bob"})

    tampered = good.replace('sig="', 'sig="AAAA')
    other_destination = signed_as(a, "elsewhere.example", "GET", uri)
    other_uri = signed_as(a, b.server_name, "GET", uri + "&field=displayname")
    for authorization in (tampered, other_destination, other_uri, None):
        code, body = await federation_request(federation_http, b, "GET", path, query=query,
                                              authorization=authorization)
        assert code == 401, (authorization, body)
        assert body["errcode"] == "M_UNAUTHORIZED"


@pytest_twisted.ensureDeferred
async def test_notary_relays_keys_with_its_signature(pair, federation_http):
    """B, asked as a notary for A's keys, returns A's response signed by A and by B."""
    a, b = pair
    code, b_keys = await federation_request(federation_http, b, "GET", "/_matrix/key/v2/server")
    b_verify_keys = verified_server_keys(b_keys, b.server_name, 0).verify_keys
    code, body = await federation_request(federation_http, b, "POST", "/_matrix/key/v2/query",
                                          body={"server_keys": {a.server_name: {}}})
    assert code == 200, body
    [relayed] = body["server_keys"]
    keys = verified_notary_keys(relayed, a.server_name, b.server_name, b_verify_keys, 0)
    assert key_id(signing_key_of(a)) in keys.verify_keys
    code, body = await federation_request(federation_http, b, "GET",
                                          f"/_matrix/key/v2/query/{quote(a.server_name)}")
    assert code == 200 and [entry["server_name"] for entry in body["server_keys"]] == [a.server_name]
    code, body = await federation_request(federation_http, b, "POST", "/_matrix/key/v2/query",
                                          body={"server_keys": "nope"})
    assert code == 400, body


@pytest_twisted.ensureDeferred
async def test_a_notary_is_asked_for_keys_when_trusted(pair, start_federating, make_client):
    """A server trusting B as key server verifies A's request with A's keys relayed by B."""
    a, b = pair
    c = start_federating({"trusted_key_servers": [b.server_name]})
    carol = await registered_with_name(make_client(c), "Carol")
    relayed_before = b.log().count("POST /_matrix/key/v2/query 200")
    seen = await make_client(a).request("GET", f"profile/{quote(carol['user_id'])}")
    assert seen.code == 200 and seen.json["displayname"] == "Carol", seen
    assert b.log().count("POST /_matrix/key/v2/query 200") == relayed_before + 1


@pytest_twisted.ensureDeferred
async def test_domain_allowlist_refuses_other_servers_both_ways(pair, start_federating, make_client,
                                                                federation_http):
    """A server allowing only B answers A with 403 M_FORBIDDEN and does not ask A anything."""
    a, b = pair
    d = start_federating({"domain_allowlist": [b.server_name]})
    dave = await registered_with_name(make_client(d), "Dave")
    alice = await registered_with_name(make_client(a), "Alice")
    from_a = await make_client(a).request("GET", f"profile/{quote(dave['user_id'])}")
    assert from_a.code == 403 and from_a.json["errcode"] == "M_FORBIDDEN", from_a
    path, query = "/_matrix/federation/v1/query/profile", {"user_id": dave["user_id"]}
    code, body = await federation_request(
        federation_http, d, "GET", path, query=query,
        authorization=signed_as(a, d.server_name, "GET", path + "?" + urlencode(query)))
    assert (code, body["errcode"]) == (403, "M_FORBIDDEN")
    to_a = await make_client(d).request("GET", f"profile/{quote(alice['user_id'])}")
    assert to_a.code == 403 and to_a.json["errcode"] == "M_FORBIDDEN", to_a
    from_b = await make_client(b).request("GET", f"profile/{quote(dave['user_id'])}")
    assert from_b.code == 200 and from_b.json["displayname"] == "Dave", from_b


@pytest_twisted.ensureDeferred
async def test_loopback_is_refused_unless_allowlisted(pair, start_federating, make_client):
    """A server without loopback in its federation allowlist never reaches A (502), while B does."""
    a, b = pair
    e = start_federating({"ip_range_allowlist": []})
    alice = await registered_with_name(make_client(a), "Alice")
    blocked = await make_client(e).request("GET", f"profile/{quote(alice['user_id'])}")
    assert blocked.code == 502, blocked
    allowed = await make_client(b).request("GET", f"profile/{quote(alice['user_id'])}")
    assert allowed.code == 200, allowed


def test_a_federation_listener_needs_federation_enabled(tmp_path):
    """The config is refused at start when a federation listener is declared with federation off."""
    path = tmp_path / "ruma.toml"
    path.write_text('server_name = "example.org"\n[[listeners]]\nendpoint = "tcp:8448"\n'
                    'resources = ["federation"]\n')
    with pytest.raises(ConfigError, match=r"ruma.toml: listeners\[0\].resources: .*federation.enabled"):
        load_config(path)


@pytest_twisted.ensureDeferred
async def test_certificates_are_verified_unless_told_not_to(pair, start_federating, make_client,
                                                           tmp_path_factory):
    """A server that does not trust A's CA cannot reach it (502); with verify_certificates = false it can."""
    a, _ = pair
    other_ca = FederationCa(tmp_path_factory.mktemp("other-ca"))
    distrusting = start_federating({"ca_file": str(other_ca.cert_path)})
    careless = start_federating({"ca_file": str(other_ca.cert_path), "verify_certificates": False})
    alice = await registered_with_name(make_client(a), "Alice")
    refused = await make_client(distrusting).request("GET", f"profile/{quote(alice['user_id'])}")
    assert refused.code == 502, refused
    allowed = await make_client(careless).request("GET", f"profile/{quote(alice['user_id'])}")
    assert allowed.code == 200 and allowed.json["displayname"] == "Alice", allowed
