"""
The push rules endpoints (spec: "Push Rules: API", pushrules.yaml).

Only the C{global} scope exists. C{GET /pushrules} and
C{GET /pushrules/global} without the trailing slash are served too
(Synapse refuses them as unrecognised; nothing is gained by that pedantry).
C{GET /pushrules/global/{kind}/} lists the rules of one kind: the spec does
not name it, Synapse serves it.

Any other path under C{/pushrules/} is a malformed push rule path: an
unknown scope or kind, a missing rule id, an unknown attribute or extra
segments. Those get a 400 saying what is wrong (as Synapse, which answers
400 too), not the 404 of an unknown endpoint: the endpoint exists, the
request names nothing it can serve.
"""
from __future__ import annotations

from typing import NoReturn
from urllib.parse import unquote

from ruma_tx.http.errors import Unrecognized
from ruma_tx.http.parsing import get_field, query_arg, read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import MatrixError, invalid_param, missing_param
from ruma_tx.matrix.push_rules import RULE_KINDS
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.push import PushRules

_KIND = "/pushrules/global/<kind>"
_RULE = _KIND + "/<rule_id>"

#: The attributes of a rule that have their own endpoints.
_ATTRIBUTES = ("enabled", "actions")

_SHAPE = "/pushrules/global/{kind}/{ruleId}[/enabled|/actions]"


class PushRulesApi:
    """
    @param rules: the L{ruma_tx.services.push.PushRules}.
    """

    def __init__(self, rules: PushRules) -> None:
        self._rules = rules

    @endpoint("GET", "/pushrules/")
    @endpoint("GET", "/pushrules")
    async def get_all(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return await self._rules.get_all(requester.user_id)

    @endpoint("GET", "/pushrules/global/")
    @endpoint("GET", "/pushrules/global")
    async def get_global(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return await self._rules.get_global(requester.user_id)

    @endpoint("GET", _KIND + "/")
    async def get_kind(self, request: MatrixRequest, requester: Requester, kind: str) -> list[JsonDict]:
        return await self._rules.get_kind(requester.user_id, kind)

    @endpoint("GET", _RULE)
    async def get_rule(self, request: MatrixRequest, requester: Requester, kind: str,
                       rule_id: str) -> JsonDict:
        return await self._rules.get_rule(requester.user_id, kind, rule_id)

    @endpoint("PUT", _RULE)
    async def put_rule(self, request: MatrixRequest, requester: Requester, kind: str,
                       rule_id: str) -> JsonDict:
        body = read_json_object(request)
        await self._rules.put_rule(
            requester.user_id, kind, rule_id, body,
            before=query_arg(request, "before") or None,
            after=query_arg(request, "after") or None,
        )
        return {}

    @endpoint("DELETE", _RULE)
    async def delete_rule(self, request: MatrixRequest, requester: Requester, kind: str,
                          rule_id: str) -> JsonDict:
        await self._rules.delete_rule(requester.user_id, kind, rule_id)
        return {}

    @endpoint("GET", _RULE + "/enabled")
    async def get_enabled(self, request: MatrixRequest, requester: Requester, kind: str,
                          rule_id: str) -> JsonDict:
        return {"enabled": await self._rules.get_enabled(requester.user_id, kind, rule_id)}

    @endpoint("PUT", _RULE + "/enabled")
    async def set_enabled(self, request: MatrixRequest, requester: Requester, kind: str,
                          rule_id: str) -> JsonDict:
        enabled = get_field(read_json_object(request), "enabled", bool)
        await self._rules.set_enabled(requester.user_id, kind, rule_id, enabled)
        return {}

    @endpoint("GET", _RULE + "/actions")
    async def get_actions(self, request: MatrixRequest, requester: Requester, kind: str,
                          rule_id: str) -> JsonDict:
        return {"actions": await self._rules.get_actions(requester.user_id, kind, rule_id)}

    @endpoint("PUT", _RULE + "/actions")
    async def set_actions(self, request: MatrixRequest, requester: Requester, kind: str,
                          rule_id: str) -> JsonDict:
        actions = get_field(read_json_object(request), "actions", list)
        await self._rules.set_actions(requester.user_id, kind, rule_id, actions)
        return {}

    # The routes above match well-formed paths; these catch every other
    # path under /pushrules/ (werkzeug tries the more specific rules
    # first). The kind without a trailing slash needs its own route: with
    # only the catch-all, werkzeug would redirect it to the listing.
    @endpoint("GET", _KIND)
    @endpoint("GET", "/pushrules/<path:rest>")
    @endpoint("PUT", "/pushrules/<path:rest>")
    @endpoint("DELETE", "/pushrules/<path:rest>")
    async def malformed(self, request: MatrixRequest, requester: Requester, **path_args: str) -> NoReturn:
        # The raw path: the router unquotes path arguments, which would make
        # an encoded slash in a rule id look like a separator.
        raw = request.path.decode("utf-8", "replace").split("/pushrules/", 1)[1]
        raise malformed_path_error(raw, request.method.decode("ascii", "replace"))


def malformed_path_error(raw: str, method: str) -> MatrixError:
    """
    Why a path under C{/pushrules/} that no endpoint serves is wrong.

    @param raw: the path after C{/pushrules/}, still percent-encoded.
    @param method: the request's method.
    @return: a 400 naming the first thing wrong, or a 405 for a
        well-formed path and a method it does not have.
    """
    segments = [unquote(segment) for segment in raw.split("/")]
    scope = segments[0]
    if scope != "global":
        return invalid_param(f"Unknown push rule scope {scope!r}: the only scope is 'global'")
    kind = segments[1] if len(segments) > 1 else ""
    if not kind:
        return missing_param(f"Missing push rule kind: expected {_SHAPE}")
    if kind not in RULE_KINDS:
        return invalid_param(
            f"Unknown push rule kind {kind!r}: expected one of {', '.join(RULE_KINDS)}")
    rule_id = segments[2] if len(segments) > 2 else ""
    if not rule_id:
        hint = ""
        if method in ("GET", "HEAD") and len(segments) == 2:
            hint = f" (to list the {kind} rules: GET /pushrules/global/{kind}/)"
        return missing_param(f"Missing push rule id: expected {_SHAPE}{hint}")
    rest = segments[3:]
    if not rest or (len(rest) == 1 and rest[0] in _ATTRIBUTES):
        # Well-formed: only the method can be wrong (DELETE .../enabled).
        allow = ("GET", "HEAD", "PUT") if rest else ("GET", "HEAD", "PUT", "DELETE")
        return Unrecognized(405, f"Method {method} is not allowed on this push rule path", allow=allow)
    if rest == [""]:
        return invalid_param(f"Unexpected '/' after the rule id {rule_id!r}: expected {_SHAPE}")
    if len(rest) == 1:
        return invalid_param(
            f"Unknown push rule attribute {rest[0]!r}: expected one of {', '.join(_ATTRIBUTES)}")
    return invalid_param(
        f"Unexpected path segments after the rule id {rule_id!r}: expected {_SHAPE}")
