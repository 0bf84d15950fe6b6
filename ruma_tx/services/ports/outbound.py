"""
Ports: HTTP requests the homeserver makes to other hosts (push gateways,
URL previews, and later other homeservers). Implemented by
C{ruma_tx.runtime.outbound.OutboundHttpClient}, which refuses blocked
address ranges.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol


class OutboundError(Exception):
    """
    An outbound request did not get an answer: the address is blocked, the
    host unknown or unreachable, it took too long, or answered too much.

    @ivar reason: what went wrong, for logs (never a secret).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OutboundBlocked(OutboundError):
    """The host is (or resolves only to addresses) in a blocked range."""


class OutboundTooLarge(OutboundError):
    """The answer is larger than the request allowed."""


@dataclass(frozen=True)
class OutboundResponse:
    """
    What another host answered.

    @ivar headers: header names in lower case, each with its values.
    """

    code: int
    body: bytes
    headers: Mapping[str, list[str]] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """The first value of a header, if any."""
        values = self.headers.get(name.lower())
        return values[0] if values else None


class OutboundHttp(Protocol):
    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
        body: bytes | None = None, timeout_s: float | None = None, max_bytes: int | None = None,
    ) -> OutboundResponse:
        """
        @raise OutboundError: no answer (see L{OutboundError}), among them
            L{OutboundBlocked} and L{OutboundTooLarge}; any answer, whatever
            its status code, is returned.
        """
        ...
