"""
The outbound HTTP client against a real local HTTP server: it refuses
blocked address ranges (loopback included) unless allowlisted, and bounds
answers in size and time.
"""
from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.web import resource, server

from ruma_tx.runtime.outbound import DEFAULT_BLOCKLIST, OutboundHttpClient, is_blocked, parse_networks
from ruma_tx.services.ports.outbound import OutboundBlocked, OutboundError, OutboundTooLarge


class _Answer(resource.Resource):
    isLeaf = True

    def render_GET(self, request):  # noqa: N802
        if request.path == b"/big":
            return b"x" * 100_000
        if request.path == b"/slow":
            return server.NOT_DONE_YET  # never answers
        request.setHeader(b"X-Seen", request.getHeader(b"user-agent") or b"")
        return b"hello"

    def render_POST(self, request):  # noqa: N802
        return request.content.read()


@pytest.fixture
def local_server():
    port = reactor.listenTCP(0, server.Site(_Answer()), interface="127.0.0.1")
    yield f"http://127.0.0.1:{port.getHost().port}"
    port.stopListening()


def test_default_blocklist_covers_private_loopback_and_link_local():
    """Private, loopback, link-local and IPv4-mapped private addresses are blocked; public ones are not."""
    blocklist = parse_networks(DEFAULT_BLOCKLIST)
    for ip in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.5", "169.254.1.1", "::1", "fe80::1",
               "fd00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "0.0.0.0", "not an address"):
        assert is_blocked(ip, blocklist, ()), ip
    for ip in ("93.184.216.34", "2606:4700::1111", "1.1.1.1"):
        assert not is_blocked(ip, blocklist, ()), ip
    assert not is_blocked("127.0.0.1", blocklist, parse_networks(["127.0.0.1/32"]))


@pytest_twisted.ensureDeferred
async def test_loopback_is_refused_by_default(local_server):
    """A request to a loopback address fails as blocked before anything is sent, by IP literal and by name."""
    client = OutboundHttpClient(reactor, timeout_s=5)
    for url in (local_server + "/", local_server.replace("127.0.0.1", "localhost") + "/"):
        with pytest.raises(OutboundBlocked):
            await client.request("GET", url)


@pytest_twisted.ensureDeferred
async def test_an_allowed_address_that_refuses_is_not_reported_as_blocked(local_server):
    """A connection refused by an allowlisted address is an OutboundError, not OutboundBlocked."""
    client = OutboundHttpClient(reactor, allowlist=["127.0.0.0/8"], timeout_s=5)
    listening = reactor.listenTCP(0, server.Site(_Answer()), interface="127.0.0.1")
    port = listening.getHost().port
    await listening.stopListening()
    with pytest.raises(OutboundError) as caught:
        await client.request("GET", f"http://127.0.0.1:{port}/")
    assert not isinstance(caught.value, OutboundBlocked)


@pytest_twisted.ensureDeferred
async def test_allowlisted_range_is_reached(local_server):
    """With loopback allowlisted the request goes through and the answer comes back whole."""
    client = OutboundHttpClient(reactor, allowlist=["127.0.0.0/8"], timeout_s=5, user_agent="ruma_tx-test")
    answer = await client.request("GET", local_server + "/")
    assert (answer.code, answer.body, answer.header("X-Seen")) == (200, b"hello", "ruma_tx-test")
    echoed = await client.request("POST", local_server + "/", body=b'{"a": 1}')
    assert echoed.body == b'{"a": 1}'


@pytest_twisted.ensureDeferred
async def test_answers_are_bounded_in_size_and_time(local_server):
    """An answer over the size limit, or one that never comes, is an OutboundError, not a hang."""
    client = OutboundHttpClient(reactor, allowlist=["127.0.0.0/8"], timeout_s=5)
    with pytest.raises(OutboundTooLarge, match="larger"):
        await client.request("GET", local_server + "/big", max_bytes=1000)
    with pytest.raises(OutboundError, match="in time"):
        await client.request("GET", local_server + "/slow", timeout_s=0.5)
    with pytest.raises(OutboundError):
        await client.request("GET", "ftp://example.org/")
    assert (await client.request("GET", local_server + "/")).code == 200  # the client still works
