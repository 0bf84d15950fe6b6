"""
The homeserver's HTTP client for requests to other hosts, which never
connects to a blocked address range.

Every address a host name resolves to (and every IP literal) is checked
against the blocklist before any connection: private, loopback and
link-local ranges by default, so a push gateway URL or a URL to preview
cannot make the server reach into its own network. An allowlist makes
exceptions. Answers are bounded in time and in size.
"""
from __future__ import annotations

import ipaddress
from io import BytesIO
from typing import Any, Callable, Iterable, Mapping, Sequence

from twisted.internet import defer, protocol
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
    IReactorPluggableNameResolver,
    IResolutionReceiver,
)
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    BrowserLikePolicyForHTTPS,
    FileBodyProducer,
    HTTPConnectionPool,
    ResponseDone,
)
from twisted.web.http_headers import Headers
from twisted.web.iweb import IPolicyForHTTPS, IResponse
from zope.interface import implementer

from ruma_tx.logs import logger
from ruma_tx.runtime.reactor import IRuntimeReactor
from ruma_tx.services.ports.outbound import (
    OutboundBlocked,
    OutboundError,
    OutboundResponse,
    OutboundTooLarge,
)

log = logger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Never reached unless allowlisted: private, loopback, link-local,
#: shared, documentation, multicast and reserved ranges (RFC 6890).
DEFAULT_BLOCKLIST: tuple[str, ...] = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
    "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "100::/64", "2001:db8::/32", "fc00::/7",
    "fe80::/10", "fec0::/10", "ff00::/8",
)


def parse_networks(ranges: Iterable[str]) -> tuple[IPNetwork, ...]:
    """
    @raise ValueError: for a range that is not a CIDR network.
    """
    return tuple(ipaddress.ip_network(r, strict=False) for r in ranges)


def is_blocked(ip: str, blocklist: Sequence[IPNetwork], allowlist: Sequence[IPNetwork]) -> bool:
    """
    Whether an address may not be connected to: in the blocklist and not in
    the allowlist. An IPv4 address mapped into IPv6 counts as the IPv4
    address; anything that is not an address is blocked.
    """
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allowlist):
        return False
    return any(address in network for network in blocklist)


#: Told of each address a request did not connect to because it is blocked.
BlockedAddress = Callable[[str], None]


@implementer(IResolutionReceiver)
class _FilteringReceiver:
    """Passes on the addresses a name resolves to, except blocked ones."""

    def __init__(self, receiver: IResolutionReceiver, host: str, blocklist: Sequence[IPNetwork],
                 allowlist: Sequence[IPNetwork], on_blocked: BlockedAddress) -> None:
        self._receiver = receiver
        self._host = host
        self._blocklist = blocklist
        self._allowlist = allowlist
        self._on_blocked = on_blocked

    def resolutionBegan(self, resolution: IHostResolution) -> None:  # noqa: N802
        self._receiver.resolutionBegan(resolution)

    def addressResolved(self, address: IAddress) -> None:  # noqa: N802
        host = getattr(address, "host", "")
        if is_blocked(host, self._blocklist, self._allowlist):
            log.info("not connecting to {host}: {ip} is in a blocked range", host=self._host, ip=host)
            self._on_blocked(host)
            return
        self._receiver.addressResolved(address)

    def resolutionComplete(self) -> None:  # noqa: N802
        self._receiver.resolutionComplete()


@implementer(IHostnameResolver)
class _BlockingResolver:
    def __init__(self, resolver: IHostnameResolver, blocklist: Sequence[IPNetwork],
                 allowlist: Sequence[IPNetwork], on_blocked: BlockedAddress) -> None:
        self._resolver = resolver
        self._blocklist = blocklist
        self._allowlist = allowlist
        self._on_blocked = on_blocked

    def resolveHostName(self, resolutionReceiver: IResolutionReceiver, hostName: str,  # noqa: N802, N803
                        portNumber: int = 0, addressTypes: Any = None,  # noqa: N803
                        transportSemantics: str = "TCP") -> IHostResolution:  # noqa: N803
        receiver = _FilteringReceiver(resolutionReceiver, hostName, self._blocklist, self._allowlist,
                                      self._on_blocked)
        return self._resolver.resolveHostName(receiver, hostName, portNumber, addressTypes,
                                              transportSemantics)


@implementer(IReactorPluggableNameResolver)
class _BlockingReactor:
    """The reactor, but resolving names through L{_BlockingResolver}."""

    def __init__(self, reactor: IRuntimeReactor, blocklist: Sequence[IPNetwork],
                 allowlist: Sequence[IPNetwork], on_blocked: BlockedAddress) -> None:
        self._reactor = reactor
        self.nameResolver = _BlockingResolver(reactor.nameResolver, blocklist, allowlist, on_blocked)

    def installNameResolver(self, resolver: IHostnameResolver) -> IHostnameResolver:  # noqa: N802
        raise NotImplementedError("the outbound client's resolver is fixed")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)


class _LimitedBody(protocol.Protocol):
    """
    Reads a response body, giving up past C{max_bytes}. It grows in one
    buffer (resized in place) rather than as parts joined at the end, which
    would hold a big answer (a C{send_join} of megabytes) twice at once.
    """

    def __init__(self, finished: defer.Deferred[bytes], max_bytes: int) -> None:
        self._finished = finished
        self._max_bytes = max_bytes
        self._body = BytesIO()
        self._size = 0

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        if self._finished.called:
            return
        self._size += len(data)
        if self._size > self._max_bytes:
            self._finished.errback(OutboundTooLarge(f"answer larger than {self._max_bytes} bytes"))
            if self.transport is not None:
                self.transport.loseConnection()
            return
        self._body.write(data)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:  # noqa: N802
        if self._finished.called:
            return
        if reason.check(ResponseDone):
            body, self._body = self._body.getvalue(), BytesIO()  # the buffer itself, not a copy
            self._finished.callback(body)
        else:
            self._finished.errback(OutboundError(f"answer cut short: {reason.getErrorMessage()}"))


@implementer(IPolicyForHTTPS)
class _NamedTls:
    """A TLS policy verifying every host against one given name."""

    def __init__(self, policy: IPolicyForHTTPS, name: str) -> None:
        self._policy = policy
        self._name = name.encode("idna")

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:  # noqa: N802
        return self._policy.creatorForNetloc(self._name, port)


def _timed_out(result: object, timeout: float) -> Failure:
    """What a request cancelled by its timeout fails with, whatever the cancellation left."""
    return Failure(OutboundError("no answer in time"))


class OutboundHttpClient:
    """
    @param blocklist: address ranges never connected to (CIDR).
    @param allowlist: exceptions to the blocklist.
    @param timeout_s: the longest a request may take, by default.
    @param max_bytes: the largest answer read, by default.
    @param tls: how HTTPS servers are verified (by default, against the
        system's trusted CAs, for the URL's host).
    """

    def __init__(self, reactor: IRuntimeReactor, *, blocklist: Iterable[str] = DEFAULT_BLOCKLIST,
                 allowlist: Iterable[str] = (), timeout_s: float = 10.0, max_bytes: int = 1024 * 1024,
                 user_agent: str = "ruma_tx", tls: IPolicyForHTTPS | None = None) -> None:
        self._reactor = reactor
        self._blocklist = parse_networks(blocklist)
        self._allowlist = parse_networks(allowlist)
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._user_agent = user_agent
        self._tls = BrowserLikePolicyForHTTPS() if tls is None else tls
        self._pool = HTTPConnectionPool(reactor, persistent=True)

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
        body: bytes | None = None, timeout_s: float | None = None, max_bytes: int | None = None,
        tls_server_name: str | None = None,
    ) -> OutboundResponse:
        """
        @param tls_server_name: the name the server's certificate must be
            valid for, when not the URL's host (a federation server found
            through SRV or delegation). Connections are pooled by host and
            port only: one to the same place is reused whatever the name.
        """
        if not url.startswith(("http://", "https://")):
            raise OutboundError("only http and https URLs are fetched")
        request_headers = Headers({"User-Agent": [self._user_agent]})
        for name, value in (headers or {}).items():
            request_headers.setRawHeaders(name, [value])
        producer = None if body is None else FileBodyProducer(BytesIO(body))
        limit = self._max_bytes if max_bytes is None else max_bytes
        tls = self._tls if tls_server_name is None else _NamedTls(self._tls, tls_server_name)
        answering = defer.ensureDeferred(self._send(method, url, request_headers, producer, limit, tls))
        answering.addTimeout(self._timeout_s if timeout_s is None else timeout_s, self._reactor,
                             onTimeoutCancel=_timed_out)
        try:
            return await answering
        except OutboundError:
            raise
        except Exception as e:
            raise OutboundError(f"{type(e).__name__}: {e}") from None

    async def _send(self, method: str, url: str, headers: Headers, producer: Any,
                    limit: int, tls: IPolicyForHTTPS) -> OutboundResponse:
        # An agent per request (they share the connection pool) to learn
        # whether this request's host resolved only to blocked addresses.
        blocked: list[str] = []
        agent = Agent(_BlockingReactor(self._reactor, self._blocklist, self._allowlist, blocked.append),
                      contextFactory=tls, pool=self._pool, connectTimeout=self._timeout_s)
        try:
            response: IResponse = await agent.request(method.encode("ascii"), url.encode("utf-8"),
                                                      headers, producer)
        except DNSLookupError:
            if blocked:
                raise OutboundBlocked("the host is in a blocked address range") from None
            raise
        if response.length is not None and isinstance(response.length, int) and response.length > limit:
            response.deliverBody(protocol.Protocol())  # discard it
            raise OutboundTooLarge(f"answer larger than {limit} bytes")
        finished: defer.Deferred[bytes] = defer.Deferred()
        response.deliverBody(_LimitedBody(finished, limit))
        content = await finished
        answer_headers = {name.decode("latin-1").lower(): [v.decode("latin-1") for v in values]
                          for name, values in response.headers.getAllRawHeaders()}
        return OutboundResponse(response.code, content, answer_headers)
