"""
The auth guard: the one place an access token becomes a L{Requester}, or a
401/403.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from ruma_tx.matrix.access_tokens import InvalidToken, Restrictions, verify_token
from ruma_tx.matrix.account_restrictions import user_locked
from ruma_tx.matrix.errors import Forbidden, forbidden, missing_token, unknown_token
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.ports.accounts import Tokens


@dataclass(frozen=True)
class Requester:
    """
    Who is making an authenticated request.

    @ivar suspended: the account is suspended (spec: "Account
        suspension"): it may read but not act (see C{Endpoint.suspended}
        in C{ruma_tx.http.routing}).
    """

    user_id: str
    device_id: str
    is_guest: bool
    token_id: str
    restrictions: Restrictions
    suspended: bool = False


@dataclass(frozen=True)
class _Cached:
    requester: Requester
    expires_at_ms: int | None
    locked: bool = False


class Guard:
    """
    Verifies access tokens: the macaroon's signature and caveats, then the
    database row that makes revocation instant. Verified tokens are kept in
    a bounded LRU cache; L{forget_tokens} drops revoked ones, and those of
    an account that is locked, suspended or freed of either (the cached
    entry carries the account's flags).

    @param on_activity: called with C{(user_id, device_id, ip)} for every
        authenticated request (see L{DeviceActivity}).
    """

    def __init__(self, *, macaroon_key: bytes, tokens: Tokens, clock: Clock, cache_size: int,
                 on_activity: Callable[[str, str, str], None]) -> None:
        self._key = macaroon_key
        self._tokens = tokens
        self._clock = clock
        self._on_activity = on_activity
        # Verified tokens; invalidated by revocation (forget_tokens) through
        # the token-id index, which evictions keep in step.
        self._cache = _VerifiedTokens(cache_size)
        # Bumped on each revocation, so a lookup that raced one is not cached.
        self._revocations = 0

    async def authenticate(
        self, token: str | None, *, method: str, path: str, ip: str, required: bool,
        guest_allowed: bool, room_id: str | None, guest_hint: str | None = None,
        locked_allowed: bool = False,
    ) -> Requester | None:
        """
        Return the requester a request's token names, or C{None} when it
        has no token and C{required} is false.

        @param method: the request's method, C{path} its raw path and
            C{room_id} the room the path names: what a narrowed token may do.
        @param guest_hint: what a refused guest should do instead, added
            to the refusal's message.
        @param ip: the client's address, for the device's last-seen record.
        @param locked_allowed: a locked account may make the request (the
            spec: only C{/logout} and C{/logout/all}); else it gets 401
            M_USER_LOCKED.
        """
        if token is None:
            if required:
                raise missing_token()
            return None
        verified = await self._verified(token)
        if verified.locked and not locked_allowed:
            raise user_locked()
        requester = verified.requester
        if not requester.restrictions.allows(method, path, room_id):
            raise forbidden("This access token does not permit this request")
        if requester.is_guest and not guest_allowed:
            message = "Guest access not allowed"
            if guest_hint is not None:
                message = f"{message}: {guest_hint}"
            raise Forbidden("M_GUEST_ACCESS_FORBIDDEN", message)
        self._on_activity(requester.user_id, requester.device_id, ip)
        return requester

    async def verify(self, token: str) -> Requester:
        """
        @raise MatrixError: 401 M_UNKNOWN_TOKEN (with C{soft_logout} when
            the token has merely expired).
        """
        return (await self._verified(token)).requester

    async def _verified(self, token: str) -> _Cached:
        now = now_ms(self._clock)
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at_ms is not None and now >= cached.expires_at_ms:
                raise unknown_token("Access token has expired", soft_logout=True)
            return cached
        try:
            claims = verify_token(self._key, token, now_ms=now, expected_type="access")
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
            suspended=record.suspended,
        )
        verified = _Cached(requester, claims.expires_at_ms, record.locked)
        if revocations == self._revocations:
            self._cache[token] = verified
        return verified

    def forget_all(self) -> None:
        """Empty the cache (after missing revocation notices)."""
        self._revocations += 1
        self._cache.clear()

    def forget_tokens(self, token_ids: Iterable[str]) -> None:
        """
        Drop revoked tokens (and tokens attenuated from them) from the
        cache, or those whose account's flags changed.
        """
        self._revocations += 1
        for token_id in token_ids:
            self._cache.forget_token_id(token_id)


class _VerifiedTokens(LRUCache[str, _Cached]):
    """
    Verified tokens by their text, with an index by token id: a token and
    every token attenuated from it share one id, and revoking the id drops
    them all.
    """

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self._by_token_id: dict[str, set[str]] = {}

    def __setitem__(self, token: str, entry: _Cached) -> None:
        super().__setitem__(token, entry)
        self._by_token_id.setdefault(entry.requester.token_id, set()).add(token)

    def __delitem__(self, token: str) -> None:
        entry = self[token]
        super().__delitem__(token)
        tokens = self._by_token_id.get(entry.requester.token_id)
        if tokens is not None:
            tokens.discard(token)
            if not tokens:
                del self._by_token_id[entry.requester.token_id]

    def forget_token_id(self, token_id: str) -> None:
        for token in list(self._by_token_id.get(token_id, ())):
            self.pop(token, None)
