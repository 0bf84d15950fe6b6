"""
FederationHttpClient with a fake HTTP client, a fake DNS resolver and
task.Clock: server discovery (literals, well-known delegation with its
cache, SRV), request signing, and its refusals and errors.
"""
from __future__ import annotations

import json

import pytest
from signedjson.key import generate_signing_key
from twisted.internet import defer, task
from twisted.names import dns
from twisted.names.error import DNSNameError
from twisted.python.failure import Failure

from ruma_tx.matrix.federation_auth import parse_x_matrix, verify_request
from ruma_tx.matrix.signing import key_id
from ruma_tx.runtime.federation_client import FederationHttpClient
from ruma_tx.services.ports.federation import FederationDenied, FederationError, RemoteMatrixError
from ruma_tx.services.ports.outbound import OutboundError, OutboundResponse
from ruma_tx.services.server_auth import DomainAllowlist


class FakeHttp:
    """Answers by URL: an OutboundResponse, or an exception to raise."""

    def __init__(self, answers):
        self.answers = answers
        self.requests = []

    async def request(self, method, url, *, headers=None, body=None, timeout_s=None, max_bytes=None,
                      tls_server_name=None):
        self.requests.append((method, url, dict(headers or {}), body, tls_server_name))
        answer = self.answers.get(url, OutboundError("connection refused"))
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeResolver:
    def __init__(self, records):
        self.records = records
        self.queries = []

    def lookupService(self, name):  # noqa: N802
        self.queries.append(name)
        if name not in self.records:
            return defer.fail(DNSNameError(name))
        answers = [dns.RRHeader(name, dns.SRV, dns.IN, 300, dns.Record_SRV(prio, weight, port, target))
                   for prio, weight, port, target in self.records[name]]
        return defer.succeed((answers, [], []))


def ok(body=None, headers=None):
    return OutboundResponse(200, json.dumps(body if body is not None else {"ok": True}).encode(), headers or {})


KEY = generate_signing_key("k1")


def make_client(http, resolver=None, *, enabled=True, allowlist=()):
    clock = task.Clock()
    clock.advance(1_700_000_000)
    client = FederationHttpClient(reactor=clock, http=http, server_name="us.example", signing_key=KEY,
                                  enabled=enabled, allowlist=DomainAllowlist(allowlist), timeout_s=30,
                                  max_bytes=1000, resolver=resolver or FakeResolver({}))
    return client, clock


def run(coroutine):
    d = defer.ensureDeferred(coroutine)
    results = []
    d.addBoth(results.append)
    assert results, "the request waited on something"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def test_explicit_port_is_contacted_directly_with_a_signed_request():
    """A name with a port is contacted at that host and port, with a request signed for it."""
    http = FakeHttp({"https://them.example:8449/_matrix/federation/v1/query/profile?user_id=%40a%3Athem.example":
                     ok({"displayname": "A"})})
    client, _ = make_client(http)
    answer = run(client.get_json("them.example:8449", "/_matrix/federation/v1/query/profile",
                                 query={"user_id": "@a:them.example"}))
    assert answer == {"displayname": "A"}
    [(method, url, headers, body, tls_name)] = http.requests
    assert headers["Host"] == "them.example:8449" and tls_name == "them.example"
    x_matrix = parse_x_matrix(headers["Authorization"])
    assert (x_matrix.origin, x_matrix.destination) == ("us.example", "them.example:8449")
    verify_request(x_matrix, "GET", url.split("8449", 1)[1], None, "them.example:8449",
                   {key_id(KEY): KEY.verify_key})


def test_well_known_delegation_is_followed_and_cached():
    """A delegated name is used as Host and TLS name, and the document is reused until it expires."""
    http = FakeHttp({
        "https://example.org/.well-known/matrix/server":
            ok({"m.server": "matrix.example.org:443"}, {"cache-control": ["max-age=600"]}),
        "https://matrix.example.org:443/_matrix/key/v2/server": ok(),
    })
    client, clock = make_client(http)
    for _ in range(2):
        run(client.get_unsigned_json("example.org", "/_matrix/key/v2/server"))
    urls = [request[1] for request in http.requests]
    assert urls.count("https://example.org/.well-known/matrix/server") == 1
    method, url, headers, body, tls_name = http.requests[-1]
    assert headers["Host"] == "matrix.example.org:443" and tls_name == "matrix.example.org"
    assert "Authorization" not in headers
    clock.advance(601)
    run(client.get_unsigned_json("example.org", "/_matrix/key/v2/server"))
    assert [request[1] for request in http.requests].count("https://example.org/.well-known/matrix/server") == 2


def test_srv_records_are_used_without_well_known():
    """Without a well-known document, _matrix-fed._tcp SRV targets are tried in order, the next after
    a failure, with the server name as Host and TLS name."""
    resolver = FakeResolver({"_matrix-fed._tcp.example.org": [(10, 0, 8443, "down.example.org"),
                                                              (20, 0, 8448, "up.example.org")]})
    http = FakeHttp({"https://up.example.org:8448/_matrix/federation/v1/version": ok()})
    client, _ = make_client(http, resolver)
    run(client.get_json("example.org", "/_matrix/federation/v1/version"))
    assert resolver.queries == ["_matrix-fed._tcp.example.org"]
    assert [r[1] for r in http.requests][1:] == ["https://down.example.org:8443/_matrix/federation/v1/version",
                                                 "https://up.example.org:8448/_matrix/federation/v1/version"]
    assert {r[2]["Host"] for r in http.requests[1:]} == {"example.org"}
    assert {r[4] for r in http.requests[1:]} == {"example.org"}


def test_deprecated_srv_then_port_8448():
    """With no _matrix-fed._tcp record, _matrix._tcp is asked, then port 8448 of the name itself."""
    resolver = FakeResolver({})
    http = FakeHttp({"https://example.org:8448/x": ok()})
    client, _ = make_client(http, resolver)
    run(client.get_json("example.org", "/x"))
    assert resolver.queries == ["_matrix-fed._tcp.example.org", "_matrix._tcp.example.org"]


def test_error_answers_and_refusals():
    """A remote error status becomes RemoteMatrixError; unreachable servers FederationError; disabled
    federation and servers outside the allowlist FederationDenied with nothing sent."""
    http = FakeHttp({"https://them.example:8448/missing": OutboundResponse(
        404, b'{"errcode": "M_NOT_FOUND", "error": "no"}', {})})
    client, _ = make_client(http)
    with pytest.raises(RemoteMatrixError) as raised:
        run(client.get_json("them.example:8448", "/missing"))
    assert (raised.value.code, raised.value.errcode) == (404, "M_NOT_FOUND")
    with pytest.raises(FederationError):
        run(client.get_json("them.example:8448", "/unreachable"))
    sent = len(http.requests)
    for refusing in (make_client(http, enabled=False)[0], make_client(http, allowlist=["friend.example"])[0]):
        with pytest.raises(FederationDenied):
            run(refusing.get_json("them.example:8448", "/missing"))
    assert len(http.requests) == sent


def test_unparsed_arrays_are_left_as_json_text():
    """put_json(unparsed=...): those members' array elements come as their JSON text, the rest parsed;
    a member that is no array is parsed as usual, and an answer that is not JSON is a FederationError."""
    answer = (b'{"origin": "them.example", "state": [{"type": "a"}, {"type": "b", "content": {"x": [1]}}],'
              b' "auth_chain": [], "event": {"type": "m.room.member"}, "servers_in_room": 7}')
    http = FakeHttp({"https://them.example:8448/send_join": OutboundResponse(200, answer, {}),
                     "https://them.example:8448/broken": OutboundResponse(200, b'{"state": [', {})})
    client, _ = make_client(http)
    got = run(client.put_json("them.example:8448", "/send_join", {}, unparsed=("state", "auth_chain",
                                                                               "servers_in_room")))
    assert [bytes(pdu) for pdu in got["state"]] == [b'{"type": "a"}', b'{"type": "b", "content": {"x": [1]}}']
    assert list(got["auth_chain"]) == []
    assert got["event"] == {"type": "m.room.member"} and got["origin"] == "them.example"
    assert got["servers_in_room"] == 7
    with pytest.raises(FederationError):
        run(client.put_json("them.example:8448", "/broken", {}, unparsed=("state",)))
