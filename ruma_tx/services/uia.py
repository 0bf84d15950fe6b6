"""
User-interactive authentication (the spec's UIA): sessions in the
database with an expiry, stages checked here, passwords never stored.
"""
from __future__ import annotations

import secrets
from typing import Awaitable, Callable

from ruma_tx.matrix.errors import BadRequest
from ruma_tx.matrix.uia import (
    claimed_user_id,
    next_flow_state,
    stage_in_order,
    uia_required,
)
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.ports.accounts import UiaSessions

DUMMY = "m.login.dummy"
PASSWORD = "m.login.password"

#: How long a UIA session lives after it starts.
SESSION_LIFETIME_MS = 15 * 60 * 1000


class UserInteractiveAuth:
    """
    Checks the C{auth} dict of a request against the flows it requires.

    @param check_password: C{async (user_id, password) -> bool}.
    """

    def __init__(self, store: UiaSessions, check_password: Callable[[str, str], Awaitable[bool]],
                 clock: Clock) -> None:
        self._store = store
        self._check_password = check_password
        self._clock = clock

    async def authenticate(
        self, body: dict, *, action: str, user_id: str | None, flows: list[list[str]],
        server_name: str,
    ) -> None:
        """
        Return when the request's C{auth} completes one of C{flows}.

        @param action: what the session authorises (e.g. C{"register"}); a
            session started for one action cannot complete another.
        @param user_id: the account that must prove itself, if any.
        @raise MatrixError: 401 with the flows while stages remain.
        """
        now = now_ms(self._clock)
        auth = body.get("auth")
        if auth is not None and not isinstance(auth, dict):
            raise BadRequest("M_BAD_JSON", "'auth' must be an object")
        session_id = auth.get("session") if auth else None
        if session_id is not None:
            if not isinstance(session_id, str):
                raise BadRequest("M_BAD_JSON", "'auth.session' must be a string")
            session = await self._store.get_session(session_id, now)
            if session is None or session.action != action or session.user_id != user_id:
                raise BadRequest("M_UNKNOWN", "Unknown or expired UIA session")
            completed = session.completed
        else:
            session_id = secrets.token_urlsafe(24)
            await self._store.create_session(
                session_id, user_id, action, now, now + SESSION_LIFETIME_MS
            )
            completed = ()
        if not auth or "type" not in auth:
            raise uia_required(flows, session_id, completed)
        stage = auth["type"]
        if not isinstance(stage, str):
            raise BadRequest("M_BAD_JSON", "'auth.type' must be a string")
        allowed = {s for flow in flows for s in flow}
        if stage not in allowed:
            raise uia_required(
                flows, session_id, completed, "M_UNRECOGNIZED", f"Unsupported auth type {stage!r}"
            )
        if not stage_in_order(flows, completed, stage):
            raise uia_required(
                flows, session_id, completed, "M_FORBIDDEN", f"Auth stage {stage!r} is out of order"
            )
        if stage == PASSWORD:
            if not await self._password_stage(auth, user_id, server_name):
                raise uia_required(flows, session_id, completed, "M_FORBIDDEN", "Invalid password")
        if stage not in completed:
            await self._store.mark_completed(session_id, stage)
            completed = completed + (stage,)
        if not next_flow_state(flows, completed):
            raise uia_required(flows, session_id, completed)
        # Only one request may consume a completed session.
        if not await self._store.delete_session(session_id):
            raise BadRequest("M_UNKNOWN", "Unknown or expired UIA session")

    async def _password_stage(self, auth: dict, user_id: str | None, server_name: str) -> bool:
        password = auth.get("password")
        if not isinstance(password, str) or user_id is None:
            return False
        claimed = claimed_user_id(auth, server_name)
        if claimed is not None and claimed != user_id:
            return False
        return await self._check_password(user_id, password)


