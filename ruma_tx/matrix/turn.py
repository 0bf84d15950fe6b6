"""
TURN credentials for VoIP calls (spec: "Voice over IP", C{GET
/voip/turnServer}): the response a client gets, built from the server's
TURN settings.

With a shared secret the credentials are time-limited, in the form the
TURN REST API draft (draft-uberti-behave-turn-rest) defines and coturn's
C{use-auth-secret} mode checks: the username is C{"<expiry unix time>:<user
id>"} and the password is the base64 of HMAC-SHA1(secret, username), so the
TURN server verifies them with the secret alone and refuses them after the
expiry. Static credentials are handed out as they are.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Sequence

from ruma_tx.matrix.types import JsonDict


@dataclass(frozen=True)
class TurnSettings:
    """
    What the server hands out (from the C{[voip]} configuration).

    @ivar uris: the TURN URIs (C{turn:} or C{turns:}).
    @ivar shared_secret: the secret shared with the TURN server, or C{None}.
    @ivar username: static credentials, used when there is no shared secret.
    @ivar lifetime_s: how long credentials are valid (the response's C{ttl}).
    """

    uris: Sequence[str] = ()
    shared_secret: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    lifetime_s: int = 3600

    @property
    def configured(self) -> bool:
        """Whether there is a TURN server to hand out: URIs and credentials."""
        has_credentials = self.shared_secret is not None or (
            self.username is not None and self.password is not None)
        return bool(self.uris) and has_credentials


def turn_password(shared_secret: str, username: str) -> str:
    """The time-limited password of C{username}: base64(HMAC-SHA1(secret, username))."""
    digest = hmac.new(shared_secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def turn_credentials(settings: TurnSettings, user_id: str, now_ms: int) -> JsonDict:
    """
    The body of C{GET /voip/turnServer} for C{user_id} at C{now_ms}.

    @raise ValueError: if C{settings} are not L{TurnSettings.configured}.
    """
    if not settings.configured:
        raise ValueError("no TURN server is configured")
    if settings.shared_secret is not None:
        expiry_s = now_ms // 1000 + settings.lifetime_s
        username = f"{expiry_s}:{user_id}"
        password = turn_password(settings.shared_secret, username)
    else:
        assert settings.username is not None and settings.password is not None  # configured
        username, password = settings.username, settings.password
    return {
        "username": username,
        "password": password,
        "uris": list(settings.uris),
        "ttl": settings.lifetime_s,
    }
