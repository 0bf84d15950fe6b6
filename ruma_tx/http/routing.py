"""
Declaring endpoints and building the Klein router from them.

Each API module is a class whose methods carry an L{endpoint} declaration:
method, path, whether a token is needed, whether guests may call it (the
spec's guest allow-list lives in these declarations and nowhere else), and
which rate limit applies. The router authenticates, rate-limits and renders
around every endpoint, so the endpoint bodies only parse and call.
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, TypeVar, cast
from urllib.parse import unquote

from klein import Klein
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from werkzeug.exceptions import MethodNotAllowed, NotFound

from ruma_tx.cancellation import shielded
from ruma_tx.http.auth import extract_access_token
from ruma_tx.http.errors import Unrecognized, render_error
from ruma_tx.http.parsing import respond
from ruma_tx.http.site import MatrixRequest
from ruma_tx.logs import logger
from ruma_tx.matrix.account_restrictions import user_suspended
from ruma_tx.matrix.errors import MatrixError, RateLimited, not_json
from ruma_tx.services.guard import Guard, Requester
from ruma_tx.services.ratelimit import RateLimit, RateLimiter, Unlimited
from ruma_tx.services.server_auth import ServerAuthenticator

CLIENT_PREFIXES = ("/_matrix/client/v3", "/_matrix/client/r0")
CLIENT_V1 = ("/_matrix/client/v1",)
NO_PREFIX = ("",)
FEDERATION_V1 = ("/_matrix/federation/v1",)
FEDERATION_V2 = ("/_matrix/federation/v2",)
KEY_V2 = ("/_matrix/key/v2",)
#: Synapse's admin API, which the web admin UIs (synapse-admin, Ketesa) speak.
SYNAPSE_ADMIN = ("/_synapse/admin",)

#: The action each request of another server counts as, keyed by its
#: name (limited only when the router's rate limiter knows it).
ORIGIN_RATE_LIMIT = "origin"

log = logger(__name__)

_Fn = TypeVar("_Fn", bound=Callable[..., Any])

#: Refuses a requester who is not a server admin (403); else logs the
#: admin's request: C{check(requester, method, path)}.
AdminCheck = Callable[[Requester, str, str], Awaitable[None]]

#: A user's own limit of a rate-limited action, or C{None} for the
#: configured one: C{override(action, user_id)}.
RateOverride = Callable[[str, str], Awaitable[RateLimit | Unlimited | None]]

#: An endpoint, called as C{handler(request, requester, **path_args)}: a JSON
#: body, or C{(status, body)}, or the last C{bytes} of a response that is
#: not JSON (media), whose status and headers the endpoint set itself.
Handler = Callable[..., Awaitable[object]]


@dataclass(frozen=True)
class Endpoint:
    """
    @ivar auth: C{"required"}, C{"optional"} or C{"none"} (no token read);
        C{"server"} for federation endpoints: the request must be signed
        by another server (X-Matrix), and the handler is called with its
        name, C{handler(request, origin, **path_args)}.
    @ivar guest: whether guest accounts may call it (the spec's allow-list).
    @ivar guest_hint: for an endpoint guests may not call, what to tell a
        guest instead (appended to the 403 M_GUEST_ACCESS_FORBIDDEN
        message), e.g. the allowed endpoint that does the same thing.
    @ivar rate_limit: the name of a rate-limited action, or C{None}. Keyed
        by user when authenticated, else by client IP. Every C{"server"}
        endpoint also counts as L{ORIGIN_RATE_LIMIT}, keyed by origin.
    @ivar admin: only server admins may call it: the router asks the
        admin check (which refuses others with 403 M_FORBIDDEN and logs
        the acting admin) before the endpoint runs.
    @ivar locked: whether a locked account may call it (spec: "Account
        locking": only C{/logout} and C{/logout/all}); others get 401
        M_USER_LOCKED.
    @ivar suspended: whether a suspended account may call it (spec:
        "Account suspension"); others get 403 M_USER_SUSPENDED. Endpoints
        that send events decide by the event instead (see
        L{ruma_tx.matrix.account_restrictions.suspended_may_send}).
    """

    method: str
    path: str
    auth: str = "required"
    guest: bool = False
    guest_hint: str | None = None
    rate_limit: str | None = None
    prefixes: tuple[str, ...] = CLIENT_PREFIXES
    admin: bool = False
    locked: bool = False
    suspended: bool = True


def endpoint(method: str, path: str, **options: Any) -> Callable[[_Fn], _Fn]:
    """
    Declare the decorated method as a client API endpoint; stack several
    declarations to serve more than one path.
    """
    declared = Endpoint(method, path, **options)
    if declared.auth not in ("required", "optional", "none", "server"):
        raise ValueError(f"bad auth mode {declared.auth!r}")
    if declared.guest and declared.guest_hint is not None:
        raise ValueError("a guest hint is for endpoints guests may not call")
    if declared.admin and (declared.auth != "required" or declared.guest):
        raise ValueError("an admin endpoint needs a token and is not for guests")

    def decorate(fn: _Fn) -> _Fn:
        setattr(fn, "endpoints", (declared, *getattr(fn, "endpoints", ())))
        return fn

    return decorate


def declared_endpoints(api: object) -> list[tuple[Endpoint, Handler]]:
    """The C{(Endpoint, bound method)} pairs an API object declares."""
    found: list[tuple[Endpoint, Handler]] = []
    for _, member in inspect.getmembers(api, inspect.ismethod):
        for declared in getattr(member, "endpoints", ()):
            found.append((declared, member))
    return found


class Router:
    """
    One Klein app serving every declared endpoint under its prefixes.

    Every endpoint is called as C{fn(request, requester, **path_args)}
    (C{requester} is C{None} when there is no token; the origin server's
    name for C{auth="server"}) and returns a JSON body, or C{(status, body)}.

    @param servers: authenticates C{auth="server"} endpoints; needed when
        C{apis} declare any.
    @param admins: checks the requester of C{admin=True} endpoints; needed
        when C{apis} declare any.
    @param rate_overrides: the per-user overrides of the rate limits of
        authenticated requests (Synapse's admin API sets them).
    """

    def __init__(self, apis: Iterable[object], *, guard: Guard, rate_limiter: RateLimiter,
                 servers: ServerAuthenticator | None = None, admins: AdminCheck | None = None,
                 rate_overrides: RateOverride | None = None) -> None:
        self._guard = guard
        self._rate_limiter = rate_limiter
        self._rate_overrides = rate_overrides
        self._servers = servers
        self._admins = admins
        self.endpoints: list[Endpoint] = []
        self.app = Klein()
        for api in apis:
            for declared, fn in declared_endpoints(api):
                self._add(declared, fn)
        self.app.handle_errors(NotFound)(self._not_found)
        self.app.handle_errors(MethodNotAllowed)(self._not_allowed)
        self.app.handle_errors(Exception)(self._failed)

    def _add(self, declared: Endpoint, fn: Handler) -> None:
        if declared.admin and self._admins is None:
            raise RuntimeError("an admin endpoint needs a Router with admins=")
        self.endpoints.append(declared)

        async def serve_request(request: MatrixRequest, **path_args: str) -> bytes:
            path_args = {name: unquote(value) for name, value in path_args.items()}
            requester: object = None
            if declared.auth == "server":
                requester = await self._origin(request)
            elif declared.auth != "none":
                requester = await self._guard.authenticate(
                    extract_access_token(request),
                    method=request.method.decode("ascii", "replace"),
                    path=request.path.decode("ascii", "replace"),
                    ip=request.client_ip(),
                    required=declared.auth == "required",
                    guest_allowed=declared.guest,
                    guest_hint=declared.guest_hint,
                    room_id=path_args.get("room_id"),
                    locked_allowed=declared.locked,
                )
                if isinstance(requester, Requester):
                    request.user_id = requester.user_id
                    if requester.suspended and not declared.suspended:
                        raise user_suspended()
            if declared.admin:
                await cast(AdminCheck, self._admins)(
                    cast(Requester, requester), request.method.decode("ascii", "replace"),
                    request.path.decode("ascii", "replace"))
            if declared.rate_limit:
                if isinstance(requester, Requester):
                    override = None
                    if self._rate_overrides is not None:
                        override = await self._rate_overrides(declared.rate_limit, requester.user_id)
                    self._check_rate(declared.rate_limit, requester.user_id, override)
                else:
                    self._check_rate(declared.rate_limit, request.client_ip())
            if declared.auth == "server":
                # After the signature is verified: nobody spends another server's budget.
                self._check_rate(ORIGIN_RATE_LIMIT, cast(str, requester))
            result = await fn(request, requester, **path_args)
            if isinstance(result, bytes):
                return result  # not JSON: the endpoint set its status and headers
            code, body = result if isinstance(result, tuple) else (200, result)
            return respond(request, code, body)

        def serve(request: MatrixRequest, **path_args: str) -> defer.Deferred[bytes]:
            """
            Klein cancels this when the client hangs up. A read stops there;
            a write, once started, runs to its end (its result is dropped):
            a retry of it must find it done, never half-done.
            """
            handling = defer.ensureDeferred(serve_request(request, **path_args))
            if declared.method in ("GET", "HEAD"):
                return handling
            return shielded(handling, lambda result: _log_abandoned(request, result))

        for prefix in declared.prefixes:
            name = f"{declared.method} {prefix}{declared.path}"
            self.app.route(prefix + declared.path, methods=[declared.method], endpoint=name)(
                _labelled(serve, name))

    def _check_rate(self, action: str, key: str, override: RateLimit | Unlimited | None = None) -> None:
        retry_after = self._rate_limiter.check(action, key, override)
        if retry_after is not None:
            raise RateLimited(retry_after)

    async def _origin(self, request: MatrixRequest) -> str:
        """The server that signed C{request} (its body is left to read again)."""
        if self._servers is None:
            raise RuntimeError("a federation endpoint needs a Router with servers=")
        raw = request.content.read() if request.content is not None else b""
        if request.content is not None:
            request.content.seek(0)
        content = None
        if raw.strip():
            try:
                content = json.loads(raw)
            except (UnicodeDecodeError, ValueError, RecursionError):
                raise not_json("Content not JSON.") from None
        authorization = [value.decode("latin-1")
                         for value in request.requestHeaders.getRawHeaders(b"Authorization", [])]
        return await self._servers.origin(request.method.decode("ascii", "replace"),
                                          request.uri.decode("ascii", "replace"), authorization, content)

    def resource(self) -> IResource:
        return self.app.resource()

    @staticmethod
    def _not_found(request: IRequest, failure: Failure) -> bytes:
        # Klein hands error handlers an IRequest: ours are MatrixSite's MatrixRequests.
        return render_error(cast(MatrixRequest, request), Failure(Unrecognized(404)))

    @staticmethod
    def _not_allowed(request: IRequest, failure: Failure) -> bytes:
        # werkzeug lists the methods of every route matching the path (HEAD with GET).
        allowed = cast(MethodNotAllowed, failure.value).valid_methods or ()
        return render_error(cast(MatrixRequest, request),
                            Failure(Unrecognized(405, "Method not allowed", allow=allowed)))

    @staticmethod
    def _failed(request: IRequest, failure: Failure) -> bytes:
        if failure.check(defer.CancelledError):
            return b""  # the client hung up: there is nobody to answer
        return render_error(cast(MatrixRequest, request), failure)


def _labelled(serve: Callable[..., defer.Deferred[bytes]], route: str) -> Callable[..., defer.Deferred[bytes]]:
    """C{serve}, marking each request with its route template (the metrics' label: never a raw path)."""
    def serve_route(request: MatrixRequest, **path_args: str) -> defer.Deferred[bytes]:
        request.route = route
        return serve(request, **path_args)

    return serve_route


def _log_abandoned(request: MatrixRequest, result: object) -> None:
    """A write whose client hung up failed unexpectedly: log it, as a 500 would be."""
    if isinstance(result, Failure) and not result.check(MatrixError):
        log.failure("{request_id}: {method} {path} failed after the client left", result,
                    request_id=request.request_id, method=request.method.decode("ascii", "replace"),
                    path=request.path.decode("ascii", "replace"))
