"""
User-interactive authentication (spec: "User-interactive authentication
API"): which stage may come next, the challenge a client gets, the
request a session is bound to, and the shape of an C{auth} dict.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, TypeAlias

from ruma_tx.matrix.errors import (
    BadRequest,
    Forbidden,
    MatrixError,
    Unauthorized,
    bad_json,
    forbidden,
    missing_param,
)
from ruma_tx.matrix.types import JsonDict

#: The flows an action accepts: each a list of stage types, in order.
Flows: TypeAlias = Sequence[Sequence[str]]

#: Body members a session never remembers, not even hashed quickly: they
#: are secrets. A registration binds its password by its bcrypt hash; a
#: password change leaves C{new_password} unbound, as its only flow has the
#: completing request prove the current password itself.
SECRET_FIELDS = frozenset({"password", "new_password", "guest_access_token"})

#: The identifier types naming a third-party id (an email or phone number).
THIRD_PARTY_IDENTIFIERS = ("m.id.thirdparty", "m.id.phone")

#: One message for an unknown user, another server's user and a wrong
#: password, so a failed login does not tell which (Synapse's wording).
INVALID_CREDENTIALS = "Invalid username or password"

#: What a session's parameters are when its request carried none.
NO_PARAMS = "{}"


@dataclass(frozen=True)
class UiaRequest:
    """
    The request a UIA session authorises: a session started by one request
    completes only that request.

    @ivar method: the HTTP method, e.g. C{"DELETE"}.
    @ivar path: the request path, without its query string.
    @ivar params: the body minus C{auth} and L{SECRET_FIELDS}, as canonical
        JSON (L{NO_PARAMS} for none).
    """

    method: str
    path: str
    params: str


def uia_request(method: str, path: str, body: Mapping[str, Any]) -> UiaRequest:
    """The L{UiaRequest} of a request with this method, path and JSON body."""
    params = {key: value for key, value in body.items()
              if key != "auth" and key not in SECRET_FIELDS}
    # ASCII only: a lone surrogate a client sent stays storable as text.
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return UiaRequest(method, path, canonical)


def operation_changed() -> MatrixError:
    """
    The refusal of a session used for another request than the one that
    started it. The spec only says the client resubmits "the same request";
    this is Synapse's status, code and wording.
    """
    return Forbidden(
        "M_UNKNOWN", "Requested operation has changed during the UI authentication session."
    )


def same_operation(started: UiaRequest, now: UiaRequest) -> bool:
    """
    Whether C{now} is the request that started a session (C{started}).

    Synapse compares only the method and URI, and merely logs a changed
    body ("a future version of Synapse will remove this capability"); the
    spec asks for "the same request", so the parameters count here too.
    A request with no parameters besides C{auth} matches: as Synapse lets
    it, the client need not send them again (registration then uses the
    session's). A
    session started with none takes those of the first request that has
    some (a client may ask for the flows with an empty body first).
    """
    if (started.method, started.path) != (now.method, now.path):
        return False
    return NO_PARAMS in (started.params, now.params) or started.params == now.params


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
    """
    The 401 that tells the client which stages remain. It always lists
    C{completed}, empty at first (the spec's C{AuthenticationResponse}
    adds it once a stage is done; Synapse always sends it).
    """
    fields: JsonDict = {
        "completed": list(completed),
        "flows": [{"stages": list(flow)} for flow in flows],
        "params": {},
        "session": session_id,
    }
    return Unauthorized(errcode, message, **fields)


def auth_dict(body: Mapping[str, Any]) -> JsonDict | None:
    """
    The C{auth} member of a request body, C{None} when absent or null.

    @raise MatrixError: 400 M_BAD_JSON if it is not an object, or its
        C{session} or C{type} is not a string.
    """
    auth = body.get("auth")
    if auth is None:
        return None
    if not isinstance(auth, dict):
        raise bad_json("'auth' must be an object")
    for name in ("session", "type"):
        if auth.get(name) is not None and not isinstance(auth[name], str):
            raise bad_json(f"'auth.{name}' must be a string")
    return auth


def identified_user(body: Mapping[str, Any], server_name: str, *, where: str = "") -> str | None:
    """
    The user id an C{m.login.password} dict (a login body or a UIA C{auth})
    names: C{identifier} of type C{m.id.user}, or the legacy C{user}
    field, as a full user id or a localpart; C{None} when it names none.

    @param where: the prefix of field names in messages (C{"auth."}).
    @raise MatrixError: 400 M_BAD_JSON for a member of the wrong type,
        M_MISSING_PARAM for an identifier without C{type} or C{user}, and
        M_UNKNOWN for an unknown identifier type (Synapse's code); 403
        M_FORBIDDEN for a third-party identifier (the spec: a 3PID the
        server does not know; we keep none).
    """
    identifier = body.get("identifier")
    if identifier is not None:
        if not isinstance(identifier, dict):
            raise bad_json(f"'{where}identifier' must be an object")
        kind = identifier.get("type")
        if kind is None:
            raise missing_param(f"'{where}identifier' has no 'type'")
        if not isinstance(kind, str):
            raise bad_json(f"'{where}identifier.type' must be a string")
        if kind in THIRD_PARTY_IDENTIFIERS:
            raise forbidden(INVALID_CREDENTIALS)
        if kind != "m.id.user":
            raise BadRequest("M_UNKNOWN", f"Unknown login identifier type in '{where}identifier'")
        user = identifier.get("user")
        if user is None:
            raise missing_param(f"'{where}identifier' has no 'user'")
        if not isinstance(user, str):
            raise bad_json(f"'{where}identifier.user' must be a string")
    else:
        user = body.get("user")
        if user is None:
            return None
        if not isinstance(user, str):
            raise bad_json(f"'{where}user' must be a string")
    return user if user.startswith("@") else f"@{user}:{server_name}"


def claimed_user_id(auth: Mapping[str, Any], server_name: str) -> str | None:
    """
    Like L{identified_user}, but C{None} (instead of an error) when the
    identifier is malformed or not a Matrix user id.
    """
    try:
        return identified_user(auth, server_name)
    except MatrixError:
        return None


def password_of(auth: Mapping[str, Any]) -> str:
    """
    The C{password} of an C{m.login.password} UIA stage.

    @raise MatrixError: 400 M_MISSING_PARAM when absent, M_BAD_JSON when
        not a string.
    """
    password = auth.get("password")
    if password is None:
        raise missing_param("Missing parameter: auth.password")
    if not isinstance(password, str):
        raise bad_json("'auth.password' must be a string")
    return password


def other_user() -> MatrixError:
    """
    The refusal of a password stage that names another user than the one
    making the request: 403, as Synapse answers ("Invalid auth").
    """
    return forbidden("The password stage must authenticate the user making the request")

