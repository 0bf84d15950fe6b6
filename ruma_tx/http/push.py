"""
The push rules endpoints (spec: "Push Rules: API", pushrules.yaml).

Only the C{global} scope exists. C{GET /pushrules} and
C{GET /pushrules/global} without the trailing slash are served too
(Synapse refuses them as unrecognised; nothing is gained by that pedantry).
"""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, query_arg, read_json_object
from ruma_tx.http.routing import endpoint

_RULE = "/pushrules/global/<kind>/<rule_id>"


class PushRulesApi:
    """
    @param rules: the L{ruma_tx.services.push.PushRules}.
    """

    def __init__(self, rules):
        self._rules = rules

    @endpoint("GET", "/pushrules/")
    @endpoint("GET", "/pushrules")
    async def get_all(self, request, requester):
        return await self._rules.get_all(requester.user_id)

    @endpoint("GET", "/pushrules/global/")
    @endpoint("GET", "/pushrules/global")
    async def get_global(self, request, requester):
        return await self._rules.get_global(requester.user_id)

    @endpoint("GET", _RULE)
    async def get_rule(self, request, requester, kind, rule_id):
        return await self._rules.get_rule(requester.user_id, kind, rule_id)

    @endpoint("PUT", _RULE)
    async def put_rule(self, request, requester, kind, rule_id):
        body = read_json_object(request)
        await self._rules.put_rule(
            requester.user_id, kind, rule_id, body,
            before=query_arg(request, "before") or None,
            after=query_arg(request, "after") or None,
        )
        return {}

    @endpoint("DELETE", _RULE)
    async def delete_rule(self, request, requester, kind, rule_id):
        await self._rules.delete_rule(requester.user_id, kind, rule_id)
        return {}

    @endpoint("GET", _RULE + "/enabled")
    async def get_enabled(self, request, requester, kind, rule_id):
        return {"enabled": await self._rules.get_enabled(requester.user_id, kind, rule_id)}

    @endpoint("PUT", _RULE + "/enabled")
    async def set_enabled(self, request, requester, kind, rule_id):
        enabled = get_field(read_json_object(request), "enabled", bool)
        await self._rules.set_enabled(requester.user_id, kind, rule_id, enabled)
        return {}

    @endpoint("GET", _RULE + "/actions")
    async def get_actions(self, request, requester, kind, rule_id):
        return {"actions": await self._rules.get_actions(requester.user_id, kind, rule_id)}

    @endpoint("PUT", _RULE + "/actions")
    async def set_actions(self, request, requester, kind, rule_id):
        actions = get_field(read_json_object(request), "actions", list)
        await self._rules.set_actions(requester.user_id, kind, rule_id, actions)
        return {}
