"""
User-interactive authentication (the spec's UIA): sessions in the
database with an expiry, each bound to the request that started it,
stages checked here, passwords never stored.
"""
from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any, Awaitable, Callable, Mapping

from ruma_tx.matrix.errors import BadRequest, MatrixError
from ruma_tx.matrix.login import check_password_text, local_user_id
from ruma_tx.matrix.uia import (
    NO_PARAMS,
    Flows,
    UiaRequest,
    auth_dict,
    identified_user,
    next_flow_state,
    operation_changed,
    other_user,
    password_of,
    same_operation,
    stage_in_order,
    uia_required,
)
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.ports.accounts import UiaSession, UiaSessions

DUMMY = "m.login.dummy"
PASSWORD = "m.login.password"

#: How long a UIA session lives after it starts.
SESSION_LIFETIME_MS = 15 * 60 * 1000

#: How often expired sessions are deleted, at most (as a session starts).
PRUNE_INTERVAL_MS = 60 * 1000

#: The check of a stage other than the password: C{check(auth, session)}
#: is C{None} when C{auth} passes it, else the refusal's message. Asked
#: only until the session has the stage (a retry is not checked again).
StageCheck = Callable[[JsonDict, UiaSession], Awaitable[str | None]]


def unknown_session() -> MatrixError:
    """The refusal of a session id that is unknown, expired, or another user's."""
    return BadRequest("M_UNKNOWN", "Unknown or expired UIA session")


class UserInteractiveAuth:
    """
    Checks the C{auth} dict of a request against the flows it requires.

    L{authenticate} does it all for most callers; registration, which must
    remember its parameters in the session, uses L{begin}, L{advance} and
    the session data methods in between.

    @param check_password: C{async (user_id, password) -> bool}.
    @param stages: the checks of the other stages that need one, by type.
    """

    def __init__(self, store: UiaSessions, check_password: Callable[[str, str], Awaitable[bool]],
                 clock: Clock, stages: Mapping[str, StageCheck] | None = None) -> None:
        self._store = store
        self._check_password = check_password
        self._clock = clock
        self._stages = dict(stages or {})
        self._pruned_at: int | None = None

    async def authenticate(
        self, body: dict, *, action: str, user_id: str | None, flows: Flows,
        server_name: str, request: UiaRequest | None = None,
    ) -> None:
        """
        Return when the request's C{auth} completes one of C{flows}; the
        session is then used up.

        @param action: what the session authorises (e.g. C{"register"}); a
            session started for one action cannot complete another.
        @param user_id: the account that must prove itself, if any.
        @param request: the request being authorised: a session started by
            another request (method, path or parameters) is refused.
            C{None} binds the session to C{action} only.
        @raise MatrixError: 401 with the flows while stages remain; see
            L{begin} and L{advance} for the others.
        """
        auth = auth_dict(body)
        session = await self.begin(auth, action=action, user_id=user_id, request=request)
        await self.advance(session, auth, flows=flows, server_name=server_name)
        # Only one request may consume a completed session.
        if not await self._store.delete_session(session.session_id):
            raise unknown_session()

    async def begin(self, auth: dict[str, Any] | None, *, action: str, user_id: str | None,
                    request: UiaRequest | None) -> UiaSession:
        """
        The session C{auth} names, checked to be for this request, or a new
        one when it names none.

        @param auth: the request's C{auth}, as checked by L{auth_dict}.
        @raise MatrixError: 400 M_UNKNOWN for an unknown or expired session
            or one of another user; 403 M_UNKNOWN for a session started for
            another request (Synapse's answer).
        """
        now = now_ms(self._clock)
        session_id = auth.get("session") if auth else None
        if session_id is None:
            return await self._create(action, user_id, request, now)
        session = await self._store.get_session(session_id, now)
        if session is None or session.user_id != user_id:
            raise unknown_session()
        if session.action != action:
            raise operation_changed()
        if request is not None:
            if session.method is None or session.path is None or session.params is None:
                # Started by a caller that bound no request: not this one.
                raise operation_changed()
            if not same_operation(UiaRequest(session.method, session.path, session.params), request):
                raise operation_changed()
            if session.params == NO_PARAMS and request.params != NO_PARAMS:
                await self._store.set_params(session_id, request.params)
                session = replace(session, params=request.params)
        return session

    async def advance(self, session: UiaSession, auth: dict[str, Any] | None, *, flows: Flows,
                      server_name: str) -> tuple[str, ...]:
        """
        Attempt the stage in C{auth}; return the completed stages once they
        finish a flow.

        An C{auth} with no C{type} asks whether the session is complete
        (the spec: after a stage done out of band).

        @raise MatrixError: 401 with the flows while stages remain (with
            M_UNRECOGNIZED for a stage no flow has, M_FORBIDDEN for a stage
            out of order, a wrong password or a stage its check
            refuses); 400 for a malformed stage; 403 M_FORBIDDEN for a
            password stage naming another user than the requester.
        """
        completed = session.completed
        stage = auth.get("type") if auth else None
        if stage is None:
            if auth and next_flow_state(flows, completed):
                return completed
            raise uia_required(flows, session.session_id, completed)
        assert auth is not None
        allowed = {s for flow in flows for s in flow}
        if stage not in allowed:
            raise uia_required(flows, session.session_id, completed, "M_UNRECOGNIZED",
                               f"Unsupported auth type {stage!r}")
        if not stage_in_order(flows, completed, stage):
            raise uia_required(flows, session.session_id, completed, "M_FORBIDDEN",
                               f"Auth stage {stage!r} is out of order")
        if stage == PASSWORD and not await self._password_stage(auth, session.user_id, server_name):
            raise uia_required(flows, session.session_id, completed, "M_FORBIDDEN", "Invalid password")
        if stage not in completed:
            check = self._stages.get(stage)
            refusal = None if check is None else await check(auth, session)
            if refusal is not None:
                raise uia_required(flows, session.session_id, completed, "M_FORBIDDEN", refusal)
            await self._store.mark_completed(session.session_id, stage)
            completed = completed + (stage,)
        if not next_flow_state(flows, completed):
            raise uia_required(flows, session.session_id, completed)
        return completed

    async def claim(self, session: UiaSession) -> UiaSession | None:
        """
        Mark a completed session as being acted on, so that only one
        request acts on it; the session as it is now, or C{None} if
        another request already claimed it.
        """
        return await self._store.claim_session(session.session_id)

    async def release(self, session: UiaSession) -> None:
        """Undo L{claim} after the request acting on the session failed."""
        await self._store.release_session(session.session_id)

    async def session(self, session_id: str) -> UiaSession | None:
        """A session as it is now, if it has not expired."""
        return await self._store.get_session(session_id, now_ms(self._clock))

    async def remember_password_hash(self, session: UiaSession, password_hash: str) -> None:
        """Keep a registration's password hash, unless one is kept already."""
        await self._store.set_password_hash(session.session_id, password_hash)

    async def remember_registered_user(self, session: UiaSession, user_id: str) -> None:
        """Keep the account a registration created, for a repeat of the request."""
        await self._store.set_registered_user(session.session_id, user_id)

    async def _create(self, action: str, user_id: str | None, request: UiaRequest | None,
                      now: int) -> UiaSession:
        session_id = secrets.token_urlsafe(24)
        expires = now + SESSION_LIFETIME_MS
        method, path, params = (None, None, None) if request is None else (
            request.method, request.path, request.params)
        await self._store.create_session(session_id, user_id, action, now, expires,
                                         method=method, path=path, params=params)
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_INTERVAL_MS:
            self._pruned_at = now
            await self._store.delete_expired(now)
        return UiaSession(session_id, user_id, action, (), expires, method, path, params)

    async def _password_stage(self, auth: dict[str, Any], user_id: str | None,
                              server_name: str) -> bool:
        """
        Whether the C{m.login.password} stage proves C{user_id}. Without an
        identifier, the password is checked for C{user_id}.

        @raise MatrixError: 400 for a malformed stage, 403 when it names
            another user.
        """
        password = password_of(auth)
        check_password_text(password, "auth.password")
        claimed = identified_user(auth, server_name, where="auth.")
        if user_id is None:
            return False
        if claimed is not None and local_user_id(claimed, server_name) != user_id:
            raise other_user()
        return await self._check_password(user_id, password)
