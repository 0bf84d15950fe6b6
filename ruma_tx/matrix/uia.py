"""
User-interactive authentication (spec: "User-interactive authentication
API"): which stage may come next, and the challenge a client gets.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence, TypeAlias

from ruma_tx.matrix.errors import MatrixError, Unauthorized
from ruma_tx.matrix.types import JsonDict

#: The flows an action accepts: each a list of stage types, in order.
Flows: TypeAlias = Sequence[Sequence[str]]


def next_flow_state(flows: Flows, completed: Sequence[str]) -> bool:
    """True when C{completed} finishes at least one of C{flows}."""
    return any(all(stage in completed for stage in flow) for flow in flows)


def stage_in_order(flows: Flows, completed: Sequence[str], stage: str) -> bool:
    """
    Whether C{stage} may be attempted now: it is already completed (a retry),
    or it is the next stage of a flow whose earlier stages are all done (the
    spec: "the flow's stages must be completed in order").
    """
    if stage in completed:
        return True
    for flow in flows:
        remaining = [s for s in flow if s not in completed]
        if remaining and remaining[0] == stage:
            return True
    return False


def uia_required(flows: Flows, session_id: str, completed: Sequence[str],
                 errcode: str | None = None, message: str = "") -> MatrixError:
    """The 401 that tells the client which stages remain."""
    fields: JsonDict = {
        "flows": [{"stages": list(flow)} for flow in flows],
        "params": {},
        "session": session_id,
    }
    if completed:
        fields["completed"] = list(completed)
    return Unauthorized(errcode, message, **fields)


def claimed_user_id(auth: Mapping[str, Any], server_name: str) -> str | None:
    """
    The user id an C{m.login.password} dict (a login body or a UIA C{auth})
    names: C{identifier} of type C{m.id.user}, or the legacy C{user} field,
    as a full user id or a localpart.
    """
    identifier = auth.get("identifier")
    user = None
    if isinstance(identifier, dict) and identifier.get("type") == "m.id.user":
        user = identifier.get("user")
    elif "user" in auth:
        user = auth.get("user")
    if not isinstance(user, str):
        return None
    return user if user.startswith("@") else f"@{user}:{server_name}"
