"""
The auth guard: the one place a request's access token becomes a
L{Requester}, or a 401/403.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from ruma_tx.matrix.access_tokens import InvalidToken, Restrictions, verify_token
from ruma_tx.matrix.errors import Forbidden, Unauthorized, unknown_token


@dataclass(frozen=True)
class Requester:
    """Who is making an authenticated request."""

    user_id: str
    device_id: str
    is_guest: bool
    token_id: str
    restrictions: Restrictions


@dataclass(frozen=True)
class _Cached:
    requester: Requester
    expires_at_ms: int | None


def extract_access_token(request) -> str | None:
    """
    Read the token from C{Authorization: Bearer} or the C{access_token}
    query parameter.

    @raise MatrixError: 401 M_UNKNOWN_TOKEN if it is not ASCII or malformed.
    """
    header = request.getHeader(b"authorization")
    if header is not None:
        try:
            header = header.decode("ascii")
        except UnicodeDecodeError:
            raise unknown_token() from None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("M_MISSING_TOKEN", "Authorization header is not a Bearer token")
        token = token.strip()
    else:
        values = request.args.get(b"access_token")
        if not values:
            return None
        try:
            token = values[0].decode("ascii")
        except UnicodeDecodeError:
            raise unknown_token() from None
    if not token.isascii():
        raise unknown_token()
    return token


class Guard:
    """
    Verifies access tokens: the macaroon's signature and caveats, then the
    database row that makes revocation instant. Verified tokens are kept in
    a bounded LRU cache; L{forget_tokens} drops revoked ones.

    @param on_activity: called with C{(user_id, device_id, ip)} for every
        authenticated request (see L{DeviceActivity}).
    """

    def __init__(self, *, macaroon_key: bytes, tokens, clock, cache_size: int,
                 on_activity: Callable[[str, str, str], None]):
        self._key = macaroon_key
        self._tokens = tokens
        self._clock = clock
        self._cache_size = cache_size
        self._on_activity = on_activity
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._by_token_id: dict[str, set[str]] = {}
        # Bumped on each revocation, so a lookup that raced one is not cached.
        self._revocations = 0

    def _now_ms(self) -> int:
        return int(self._clock.seconds() * 1000)

    async def authenticate(
        self, request, *, required: bool, guest_allowed: bool, room_id: str | None
    ) -> Requester | None:
        """
        Return the requester of C{request}, or C{None} when it has no token
        and C{required} is false.

        @param room_id: the room the request path names, for tokens
            narrowed to some rooms.
        """
        token = extract_access_token(request)
        if token is None:
            if required:
                raise Unauthorized("M_MISSING_TOKEN", "Missing access token")
            return None
        requester = await self.verify(token)
        method = request.method.decode("ascii", "replace")
        path = request.path.decode("ascii", "replace")
        if not requester.restrictions.allows(method, path, room_id):
            raise Forbidden("M_FORBIDDEN", "This access token does not permit this request")
        if requester.is_guest and not guest_allowed:
            raise Forbidden("M_GUEST_ACCESS_FORBIDDEN", "Guest access not allowed")
        self._on_activity(requester.user_id, requester.device_id, request.client_ip())
        return requester

    async def verify(self, token: str) -> Requester:
        """
        @raise MatrixError: 401 M_UNKNOWN_TOKEN (with C{soft_logout} when
            the token has merely expired).
        """
        now_ms = self._now_ms()
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at_ms is not None and now_ms >= cached.expires_at_ms:
                raise unknown_token("Access token has expired", soft_logout=True)
            self._cache.move_to_end(token)
            return cached.requester
        try:
            claims = verify_token(self._key, token, now_ms=now_ms, expected_type="access")
        except InvalidToken as e:
            raise unknown_token(
                "Access token has expired" if e.soft_logout else "Invalid access token",
                soft_logout=e.soft_logout,
            ) from None
        revocations = self._revocations
        record = await self._tokens.get_access_token(claims.token_id)
        if record is None or (record.user_id, record.device_id) != (claims.user_id, claims.device_id):
            raise unknown_token()
        requester = Requester(
            user_id=claims.user_id,
            device_id=record.device_id,
            is_guest=claims.guest,
            token_id=claims.token_id,
            restrictions=claims.restrictions,
        )
        if revocations == self._revocations:
            self._remember(token, _Cached(requester, claims.expires_at_ms))
        return requester

    def _remember(self, token: str, entry: _Cached) -> None:
        self._cache[token] = entry
        self._by_token_id.setdefault(entry.requester.token_id, set()).add(token)
        while len(self._cache) > self._cache_size:
            old_token, old = self._cache.popitem(last=False)
            tokens = self._by_token_id.get(old.requester.token_id)
            if tokens is not None:
                tokens.discard(old_token)
                if not tokens:
                    del self._by_token_id[old.requester.token_id]

    def forget_all(self) -> None:
        """Empty the cache (after missing revocation notices)."""
        self._revocations += 1
        self._cache.clear()
        self._by_token_id.clear()

    def forget_tokens(self, token_ids) -> None:
        """Drop revoked tokens (and tokens attenuated from them) from the cache."""
        self._revocations += 1
        for token_id in token_ids:
            for token in self._by_token_id.pop(token_id, ()):
                self._cache.pop(token, None)
