"""
Ports: requests to other homeservers over the Server-Server API, and the
keys that verify what they sign.

Implemented by C{ruma_tx.runtime.federation_client.FederationHttpClient}
(discovery, TLS, X-Matrix signing, blocked ranges) and
C{ruma_tx.services.key_ring.KeyRing} (remote server keys, cached).
"""
from __future__ import annotations

from typing import Iterable, Mapping, Protocol, Sequence

from nacl.signing import VerifyKey

from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.ports.outbound import OutboundResponse

#: Query string values: one value, or several for a repeated parameter.
Query = Mapping[str, str | Sequence[str]]


class FederationError(Exception):
    """
    A request to another homeserver got no usable answer: its name could not
    be resolved, it is unreachable or in a blocked range, its certificate
    does not verify, it took too long, or it answered something that is
    not JSON.

    @ivar destination: the server name the request was for.
    @ivar reason: what went wrong, for logs (never a secret).
    """

    def __init__(self, destination: str, reason: str) -> None:
        super().__init__(f"{destination}: {reason}")
        self.destination = destination
        self.reason = reason


class FederationDenied(FederationError):
    """
    This server may not talk to the destination: federation is disabled,
    or the destination is not in C{domain_allowlist}. Nothing was sent.
    """


class FederationTooLarge(FederationError):
    """The answer's body is longer than the request allowed (the rest was not read)."""


class RemoteMatrixError(FederationError):
    """
    The destination answered with an error status.

    @ivar code: the HTTP status.
    @ivar errcode: the Matrix error code of its JSON body (C{M_UNKNOWN}
        when the body has none).
    @ivar error: its message, if any.
    """

    def __init__(self, destination: str, code: int, errcode: str, error: str) -> None:
        super().__init__(destination, f"{code} {errcode}: {error}")
        self.code = code
        self.errcode = errcode
        self.error = error


class FederationClient(Protocol):
    """
    Signed (X-Matrix) JSON requests to another homeserver. C{path} is the
    URL path, already percent-encoded (C{/_matrix/federation/v1/...}).
    A 2xx answer's JSON object is returned.

    @raise FederationDenied: the destination may not be contacted.
    @raise RemoteMatrixError: it answered with an error status.
    @raise FederationError: no usable answer.
    """

    async def get_json(self, destination: str, path: str, *, query: Query | None = None,
                       timeout_s: float | None = None) -> JsonDict:
        ...

    async def put_json(self, destination: str, path: str, body: JsonDict, *,
                       query: Query | None = None, timeout_s: float | None = None,
                       unparsed: Sequence[str] = ()) -> JsonDict:
        """
        @param unparsed: top-level members whose array's elements are left
            as JSON text (L{msgspec.Raw}, views into the answer's bytes):
            the thousands of events of a C{send_join} answer, parsed one
            chunk at a time by the caller.
        """
        ...

    async def post_json(self, destination: str, path: str, body: JsonDict, *,
                        query: Query | None = None, timeout_s: float | None = None) -> JsonDict:
        ...

    async def get_unsigned_json(self, destination: str, path: str, *,
                                timeout_s: float | None = None) -> JsonDict:
        """The same without an C{Authorization} header (C{/_matrix/key/v2/server})."""
        ...


class FederationDownloads(Protocol):
    """
    Signed GETs whose answers are not JSON: media (C{/_matrix/federation/v1/media/*}
    and the legacy C{/_matrix/media/v3/download} it falls back to). Sent as
    L{FederationClient} sends, to the same servers.
    """

    async def get_bytes(self, destination: str, path: str, *, max_bytes: int, query: Query | None = None,
                        timeout_s: float | None = None) -> OutboundResponse:
        """
        A 2xx or 3xx answer, whole, with its headers; a redirect is not followed.

        @raise FederationTooLarge: its body is longer than C{max_bytes}.
        @raise RemoteMatrixError: an error status (its JSON body read as
            for the JSON methods).
        @raise FederationDenied: as L{FederationClient}.
        @raise FederationError: as L{FederationClient}.
        """
        ...


class KeyRing(Protocol):
    """Other servers' signing keys, fetched when needed and cached."""

    async def verify_keys(self, server_name: str, key_ids: Iterable[str], at_ms: int
                          ) -> Mapping[str, VerifyKey]:
        """
        The keys among C{key_ids} that C{server_name} has published and that
        were valid at C{at_ms} (old keys included: an event signed years ago
        verifies with the key of its day). A key that cannot be found is
        left out; the caller decides what a missing key means.
        """
        ...
