"""
Requests to other homeservers: the
L{ruma_tx.services.ports.federation.FederationClient} port over HTTPS.

A destination's server name is resolved as the spec says (IP literals,
explicit ports, C{/.well-known/matrix/server}, SRV C{_matrix-fed._tcp} then
C{_matrix._tcp}, then port 8448) by driving the pure planner of
L{ruma_tx.matrix.server_discovery} with DNS and HTTP answers. Requests go
through an L{OutboundHttpClient}, so no blocked address range is ever
connected to (federation has its own allowlist), connections are pooled
and answers are bounded in time and size. Certificates are verified with
service-identity against the name discovery gives.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlencode

import msgspec
from cachetools import TLRUCache
from OpenSSL import crypto
from signedjson.types import SigningKey
from twisted.internet import ssl
from twisted.internet._sslverify import IOpenSSLTrustRoot
from twisted.names import client as dns_client
from twisted.names import dns
from twisted.names.error import DNSNameError, DomainError
from twisted.web.client import BrowserLikePolicyForHTTPS
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from ruma_tx.logs import logger
from ruma_tx.matrix.federation_auth import x_matrix_header
from ruma_tx.matrix.server_discovery import (
    WELL_KNOWN_ERROR_CACHE_SECONDS,
    Connect,
    FetchWellKnown,
    InvalidServerName,
    LookupSrv,
    MAX_WELL_KNOWN_BYTES,
    ServerName,
    SrvRecord,
    Step,
    Target,
    next_well_known_url,
    parse_server_name,
    plan_discovery,
    well_known_cache_seconds,
    well_known_delegation,
)
from ruma_tx.matrix.types import JsonDict
from ruma_tx.runtime.outbound import DEFAULT_BLOCKLIST, OutboundHttpClient
from ruma_tx.runtime.reactor import IRuntimeReactor
from ruma_tx.services.ports.federation import (
    FederationDenied,
    FederationError,
    FederationTooLarge,
    Query,
    RemoteMatrixError,
)
from ruma_tx.services.ports.outbound import OutboundError, OutboundResponse, OutboundTooLarge
from ruma_tx.services.server_auth import DomainAllowlist

log = logger(__name__)

#: Server names whose discovery answers are kept (well-known and SRV).
DISCOVERY_CACHE_SIZE = 10_000
#: SRV answers are kept for their TTL, within these bounds (seconds).
SRV_MIN_CACHE_SECONDS = 60
SRV_MAX_CACHE_SECONDS = 3600


@implementer(IOpenSSLTrustRoot)
class _SystemAndExtraCa:
    """The system's trusted CAs plus one more (C{[federation] ca_file})."""

    def __init__(self, ca_pem: bytes) -> None:
        self._ca = crypto.load_certificate(crypto.FILETYPE_PEM, ca_pem)

    def _addCACertsToContext(self, context: Any) -> None:  # noqa: N802
        context.set_default_verify_paths()
        context.get_cert_store().add_cert(self._ca)


@implementer(IPolicyForHTTPS)
class _NoVerification:
    """Certificates are not checked (C{verify_certificates = false}: testing only)."""

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:  # noqa: N802
        return ssl.CertificateOptions(verify=False)


def federation_tls(ca_path: Path | None, verify_certificates: bool) -> IPolicyForHTTPS:
    """The TLS policy for other servers (and their well-known documents)."""
    if not verify_certificates:
        return _NoVerification()
    if ca_path is None:
        return BrowserLikePolicyForHTTPS()
    return BrowserLikePolicyForHTTPS(trustRoot=_SystemAndExtraCa(ca_path.read_bytes()))


def _expiry(key: object, value: tuple[object, float], now: float) -> float:
    """TLRUCache: an entry C{(answer, lifetime)} lives C{lifetime} seconds."""
    return now + value[1]


class FederationHttpClient:
    """
    Signed JSON requests to other homeservers.

    @param http: the client every request goes through; it carries the
        federation blocklist and allowlist and the TLS policy.
    @param enabled: C{[federation] enabled}; when false every request
        raises L{FederationDenied}.
    @param allowlist: C{[federation] domain_allowlist}.
    @param resolver: a C{twisted.names} resolver for SRV records.
    """

    def __init__(self, *, reactor: IRuntimeReactor, http: OutboundHttpClient, server_name: str,
                 signing_key: SigningKey, enabled: bool, allowlist: DomainAllowlist,
                 timeout_s: float, max_bytes: int, resolver: Any = None) -> None:
        self._reactor = reactor
        self._http = http
        self._server_name = server_name
        self._signing_key = signing_key
        self._enabled = enabled
        self._allowlist = allowlist
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._resolver = resolver if resolver is not None else dns_client.createResolver()
        # Entries expire by their own lifetimes (spec: well-known caching; SRV TTLs).
        self._well_known: TLRUCache[str, tuple[ServerName | None, float]] = TLRUCache(
            DISCOVERY_CACHE_SIZE, _expiry, timer=reactor.seconds)
        self._srv: TLRUCache[str, tuple[tuple[SrvRecord, ...], float]] = TLRUCache(
            DISCOVERY_CACHE_SIZE, _expiry, timer=reactor.seconds)

    async def get_json(self, destination: str, path: str, *, query: Query | None = None,
                       timeout_s: float | None = None) -> JsonDict:
        return await self._request("GET", destination, path, query, None, timeout_s, signed=True)

    async def put_json(self, destination: str, path: str, body: JsonDict, *,
                       query: Query | None = None, timeout_s: float | None = None,
                       unparsed: Sequence[str] = ()) -> JsonDict:
        response = await self._send("PUT", destination, path, query, body, timeout_s, signed=True,
                                    max_bytes=self._max_bytes)
        if unparsed and 200 <= response.code < 300:
            return _answer_with_unparsed(destination, response, unparsed)
        return _answer(destination, response)

    async def post_json(self, destination: str, path: str, body: JsonDict, *,
                        query: Query | None = None, timeout_s: float | None = None) -> JsonDict:
        return await self._request("POST", destination, path, query, body, timeout_s, signed=True)

    async def get_unsigned_json(self, destination: str, path: str, *,
                                timeout_s: float | None = None) -> JsonDict:
        return await self._request("GET", destination, path, None, None, timeout_s, signed=False)

    async def get_bytes(self, destination: str, path: str, *, max_bytes: int, query: Query | None = None,
                        timeout_s: float | None = None) -> OutboundResponse:
        response = await self._send("GET", destination, path, query, None, timeout_s, signed=True,
                                    max_bytes=max_bytes)
        if response.code >= 400:
            _answer(destination, response)  # raises its RemoteMatrixError
        return response

    async def _request(self, method: str, destination: str, path: str, query: Query | None,
                       body: JsonDict | None, timeout_s: float | None, *, signed: bool) -> JsonDict:
        return _answer(destination, await self._send(method, destination, path, query, body, timeout_s,
                                                     signed=signed, max_bytes=self._max_bytes))

    async def _send(self, method: str, destination: str, path: str, query: Query | None,
                    body: JsonDict | None, timeout_s: float | None, *, signed: bool,
                    max_bytes: int) -> OutboundResponse:
        if not self._enabled:
            raise FederationDenied(destination, "federation is disabled")
        if not self._allowlist.allows(destination):
            raise FederationDenied(destination, "not in federation.domain_allowlist")
        if destination == self._server_name:
            raise FederationDenied(destination, "that is this server")
        try:
            server_name = parse_server_name(destination)
        except InvalidServerName:
            raise FederationError(destination, "not a server name") from None
        uri = path + ("?" + urlencode(query, doseq=True) if query else "")
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if signed:
            headers["Authorization"] = x_matrix_header(self._signing_key, self._server_name, destination,
                                                       method, uri, body)
        content = None if body is None else json.dumps(body).encode("utf-8")
        deadline = self._reactor.seconds() + (self._timeout_s if timeout_s is None else timeout_s)
        targets = await self._targets(server_name)
        if not targets:
            raise FederationError(destination, "its SRV record says it does not federate")
        failure = "no address to connect to"
        for target in targets:
            remaining = deadline - self._reactor.seconds()
            if remaining <= 0:
                break
            try:
                response = await self._http.request(
                    method, _url(target, uri), headers={**headers, "Host": target.host_header},
                    body=content, timeout_s=remaining, max_bytes=max_bytes,
                    tls_server_name=target.tls_server_name)
            except OutboundTooLarge as e:
                raise FederationTooLarge(destination, str(e)) from None
            except OutboundError as e:
                failure = str(e)
                log.debug("{method} {destination}{uri} via {host}:{port} failed: {why}", method=method,
                          destination=destination, uri=uri, host=target.host, port=target.port, why=e)
                continue
            return response
        raise FederationError(destination, failure)

    # -- discovery ---------------------------------------------------------

    async def _targets(self, server_name: ServerName) -> Sequence[Target]:
        step: Step = plan_discovery(server_name)
        while not isinstance(step, Connect):
            if isinstance(step, FetchWellKnown):
                step = step.answer(await self._delegation(step))
            else:
                step = step.answer(await self._srv_records(step))
        return step.targets

    async def _delegation(self, step: FetchWellKnown) -> ServerName | None:
        cached = self._well_known.get(step.hostname)
        if cached is not None:
            return cached[0]
        delegated, lifetime = await self._fetch_well_known(step)
        self._well_known[step.hostname] = (delegated, lifetime)
        return delegated

    async def _fetch_well_known(self, step: FetchWellKnown) -> tuple[ServerName | None, float]:
        """The delegated name (or C{None}) and how long to remember it."""
        url, visited = step.url, [step.url]
        while True:
            try:
                response = await self._http.request("GET", url, max_bytes=MAX_WELL_KNOWN_BYTES,
                                                    timeout_s=min(self._timeout_s, 10.0))
            except OutboundError as e:
                log.info("no /.well-known/matrix/server for {host}: {why}", host=step.hostname, why=e)
                return None, WELL_KNOWN_ERROR_CACHE_SECONDS
            location = response.headers.get("location")
            if response.code in (301, 302, 303, 307, 308) and location:
                next_url = next_well_known_url(url, location[-1], visited)
                if next_url is None:
                    return None, WELL_KNOWN_ERROR_CACHE_SECONDS
                url = next_url
                visited.append(url)
                continue
            delegated = well_known_delegation(response.body) if response.code == 200 else None
            if delegated is None:
                return None, WELL_KNOWN_ERROR_CACHE_SECONDS
            lifetime = well_known_cache_seconds(response.headers.get("cache-control", []),
                                                response.headers.get("expires", []),
                                                self._reactor.seconds())
            return delegated, lifetime

    async def _srv_records(self, step: LookupSrv) -> Sequence[SrvRecord]:
        cached = self._srv.get(step.query)
        if cached is not None:
            return cached[0]
        try:
            answers, _authority, _additional = await self._resolver.lookupService(step.query)
        except (DNSNameError, DomainError):
            records: tuple[SrvRecord, ...] = ()
            ttl = SRV_MIN_CACHE_SECONDS
        except Exception as e:  # a timeout or a server failure: try again next time
            log.info("SRV lookup of {query} failed: {why}", query=step.query, why=e)
            return ()
        else:
            found = [answer for answer in answers if answer.type == dns.SRV]
            records = tuple(SrvRecord(a.payload.priority, a.payload.weight, a.payload.port,
                                      str(a.payload.target)) for a in found)
            ttl = min((a.ttl for a in found), default=SRV_MIN_CACHE_SECONDS)
        lifetime = min(max(ttl, SRV_MIN_CACHE_SECONDS), SRV_MAX_CACHE_SECONDS)
        self._srv[step.query] = (records, lifetime)
        return records


def _url(target: Target, uri: str) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"https://{host}:{target.port}{uri}"


def _answer(destination: str, response: OutboundResponse) -> JsonDict:
    """The JSON object of a 2xx answer. @raise FederationError: otherwise."""
    try:
        body = json.loads(response.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        body = None
    if 200 <= response.code < 300:
        if not isinstance(body, dict):
            raise FederationError(destination, f"answered {response.code} with no JSON object")
        return body
    errcode, error = "M_UNKNOWN", ""
    if isinstance(body, dict):
        if isinstance(body.get("errcode"), str):
            errcode = body["errcode"]
        if isinstance(body.get("error"), str):
            error = body["error"]
    raise RemoteMatrixError(destination, response.code, errcode, error)


def _answer_with_unparsed(destination: str, response: OutboundResponse, unparsed: Sequence[str]) -> JsonDict:
    """
    The JSON object of a 2xx answer, the arrays of its C{unparsed} members
    left as their elements' JSON text: views into the answer's bytes, which
    live as long as one of them does (a C{send_join} answer of 10,000 state
    events and their auth chain is ~12 MB of JSON, ~48 MB once parsed whole).
    """
    try:
        members = msgspec.json.decode(response.body, type=dict[str, msgspec.Raw])
        return {name: _unparsed_array(text) if name in unparsed else msgspec.json.decode(text)
                for name, text in members.items()}
    except (msgspec.MsgspecError, RecursionError):
        raise FederationError(destination, f"answered {response.code} with no JSON object") from None


def _unparsed_array(text: msgspec.Raw) -> object:
    """A JSON array as the JSON text of each element; any other value parsed."""
    try:
        return msgspec.json.decode(text, type=list[msgspec.Raw])
    except msgspec.ValidationError:
        return msgspec.json.decode(text)


def build_federation_client(reactor: IRuntimeReactor, *, server_name: str, signing_key: SigningKey,
                            enabled: bool, domain_allowlist: Sequence[str], ca_path: Path | None,
                            verify_certificates: bool, blocklist: Sequence[str] = DEFAULT_BLOCKLIST,
                            ip_range_allowlist: Sequence[str] = (), timeout_s: float = 30.0,
                            max_bytes: int = 50 * 1024 * 1024) -> FederationHttpClient:
    """A client with its own connection pool, TLS policy and address filter."""
    http = OutboundHttpClient(reactor, blocklist=blocklist, allowlist=ip_range_allowlist,
                              timeout_s=timeout_s, max_bytes=max_bytes, user_agent="ruma_tx federation",
                              tls=federation_tls(ca_path, verify_certificates))
    return FederationHttpClient(reactor=reactor, http=http, server_name=server_name, signing_key=signing_key,
                                enabled=enabled, allowlist=DomainAllowlist(domain_allowlist),
                                timeout_s=timeout_s, max_bytes=max_bytes)
