"""
Authenticating requests from other servers (spec: server-server-api.md
"Request Authentication"): the C{Authorization: X-Matrix} header names the
origin, and the origin's key must have signed the request for us.
"""
from __future__ import annotations

from typing import Any, Sequence

from ruma_tx.matrix.errors import Forbidden, Unauthorized
from ruma_tx.matrix.federation_auth import (
    FederationAuthError,
    XMatrix,
    parse_x_matrix,
    verify_request,
)
from ruma_tx.services.clock import Clock
from ruma_tx.services.ports.federation import KeyRing


def unauthorized(message: str) -> Unauthorized:
    return Unauthorized("M_UNAUTHORIZED", message)


class DomainAllowlist:
    """The servers this one talks to: every one when the list is empty."""

    def __init__(self, server_names: Sequence[str]) -> None:
        self._names = frozenset(server_names)

    def allows(self, server_name: str) -> bool:
        return not self._names or server_name in self._names


class ServerAuthenticator:
    """
    Finds who sent a federation request, or refuses it.

    @param key_ring: the other servers' keys.
    @param allowlist: the servers allowed to talk to us.
    """

    def __init__(self, *, key_ring: KeyRing, clock: Clock, server_name: str,
                 allowlist: DomainAllowlist) -> None:
        self._key_ring = key_ring
        self._clock = clock
        self._server_name = server_name
        self._allowlist = allowlist

    async def origin(self, method: str, uri: str, authorization: Sequence[str], content: Any) -> str:
        """
        The server that signed this request.

        A request may carry several X-Matrix headers (one per key, or for
        servers that disagree on its form): the first that verifies wins,
        as in Synapse; all must name the same origin.

        @param uri: the request target as received, path and query.
        @param content: the parsed JSON body, or C{None} for none.
        @raise MatrixError: 401 M_UNAUTHORIZED when no header verifies,
            403 M_FORBIDDEN for an origin outside C{domain_allowlist}.
        """
        headers = [value for value in authorization if value.lstrip().lower().startswith("x-matrix")]
        if not headers:
            raise unauthorized("Missing X-Matrix Authorization header")
        try:
            parsed = [parse_x_matrix(value) for value in headers]
        except FederationAuthError as e:
            raise unauthorized(str(e)) from None
        origin = parsed[0].origin
        if any(x_matrix.origin != origin for x_matrix in parsed):
            raise unauthorized("X-Matrix headers name different origins")
        if not self._allowlist.allows(origin):
            raise Forbidden("M_FORBIDDEN", f"Federation with {origin} is not allowed")
        reason = ""
        for x_matrix in parsed:
            try:
                await self._verify(x_matrix, method, uri, content)
                return origin
            except FederationAuthError as e:
                reason = str(e)
        raise unauthorized(reason)

    async def _verify(self, x_matrix: XMatrix, method: str, uri: str, content: Any) -> None:
        if x_matrix.destination is not None and x_matrix.destination != self._server_name:
            # Checked before fetching any key: a request for someone else costs us nothing.
            verify_request(x_matrix, method, uri, content, self._server_name, {})
        now_ms = int(self._clock.seconds() * 1000)
        keys = await self._key_ring.verify_keys(x_matrix.origin, [x_matrix.key], now_ms)
        verify_request(x_matrix, method, uri, content, self._server_name, keys)
