"""
The paths of the push rules API through the real daemon: listing one kind
with a trailing slash, a clear 400 for every malformed path under
/pushrules, and rule ids checked for their kind.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest
import pytest_twisted
from test_push import DEFAULT_OVERRIDE, DEFAULT_UNDERRIDE, get, put, put_content_rule, rule_path

KINDS = ("override", "content", "room", "sender", "underride")
ROOM_ID = "!dj234r78wl45Gh4D:matrix.org"
USER_ID = "@spambot:matrix.org"


@pytest_twisted.ensureDeferred
async def test_a_kind_with_a_trailing_slash_lists_its_rules(client):
    """GET /pushrules/global/{kind}/ answers that kind's rules, in order, as in the whole ruleset."""
    user = await client.register()
    await put_content_rule(client, user, "cake", "cake")
    response = await put(client, user, rule_path("room", ROOM_ID), {"actions": []})
    assert response.code == 200, response
    ruleset = (await get(client, user, "pushrules/global/")).json
    for kind in KINDS:
        # validate=False: the spec documents no listing of one kind; its
        # {kind}/{ruleId} path (a single rule, an object) would be matched.
        response = await get(client, user, f"pushrules/global/{kind}/", validate=False)
        assert response.code == 200, response
        assert response.json == ruleset[kind], kind
    assert [r["rule_id"] for r in (await get(client, user, "pushrules/global/override/",
                                             validate=False)).json] == DEFAULT_OVERRIDE
    assert [r["rule_id"] for r in (await get(client, user, "pushrules/global/underride/",
                                             validate=False)).json] == DEFAULT_UNDERRIDE
    assert [r["rule_id"] for r in (await get(client, user, "pushrules/global/content/",
                                             validate=False)).json][0] == "cake"
    assert [r["rule_id"] for r in (await get(client, user, "pushrules/global/room/",
                                             validate=False)).json] == [ROOM_ID]
    response = await get(client, user, "pushrules/global/middle/", validate=False)
    assert (response.code, response.json["errcode"]) == (400, "M_INVALID_PARAM"), response
    assert "override" in response.json["error"]


RULE = {"pattern": "cake", "actions": ["notify"]}


@pytest.mark.parametrize("method, path, errcode, says", [
    # An unknown scope.
    ("GET", "pushrules/device/override/.m.rule.master", "M_INVALID_PARAM", "scope"),
    ("PUT", "pushrules/device/content/cake", "M_INVALID_PARAM", "scope"),
    ("DELETE", "pushrules/globalx/content/cake", "M_INVALID_PARAM", "scope"),
    ("GET", "pushrules/device/", "M_INVALID_PARAM", "scope"),
    # An unknown kind.
    ("GET", "pushrules/global/middle/x", "M_INVALID_PARAM", "kind"),
    ("PUT", "pushrules/global/middle/x", "M_INVALID_PARAM", "kind"),
    ("GET", "pushrules/global/middle/x/enabled", "M_INVALID_PARAM", "kind"),
    ("GET", "pushrules/global//x", "M_MISSING_PARAM", "kind"),
    # No rule id.
    ("GET", "pushrules/global/content", "M_MISSING_PARAM", "pushrules/global/content/"),
    ("PUT", "pushrules/global/content", "M_MISSING_PARAM", "rule id"),
    ("PUT", "pushrules/global/content/", "M_MISSING_PARAM", "rule id"),
    ("DELETE", "pushrules/global/content/", "M_MISSING_PARAM", "rule id"),
    ("GET", "pushrules/global/override//enabled", "M_MISSING_PARAM", "rule id"),
    ("PUT", "pushrules/global/override//actions", "M_MISSING_PARAM", "rule id"),
    # An unknown attribute, or more segments than a rule path has.
    ("GET", "pushrules/global/override/.m.rule.master/colour", "M_INVALID_PARAM", "attribute"),
    ("PUT", "pushrules/global/override/.m.rule.master/colour", "M_INVALID_PARAM", "attribute"),
    ("GET", "pushrules/global/override/.m.rule.master/", "M_INVALID_PARAM", "after the rule id"),
    ("GET", "pushrules/global/override/.m.rule.master/enabled/x", "M_INVALID_PARAM", "after the rule id"),
    ("PUT", "pushrules/global/content/cake/and/more", "M_INVALID_PARAM", "after the rule id"),
    # A rule id that cannot be one of its kind's.
    ("GET", "pushrules/global/room/not-a-room", "M_INVALID_PARAM", "room ID"),
    ("DELETE", "pushrules/global/room/not-a-room", "M_INVALID_PARAM", "room ID"),
    ("GET", "pushrules/global/sender/not-a-user/enabled", "M_INVALID_PARAM", "user ID"),
    ("PUT", "pushrules/global/sender/not-a-user/actions", "M_INVALID_PARAM", "user ID"),
    ("PUT", "pushrules/global/content/" + quote("a/b", safe=""), "M_INVALID_PARAM", "slashes"),
    ("GET", "pushrules/global/content/" + quote("a/b", safe=""), "M_INVALID_PARAM", "slashes"),
    ("PUT", "pushrules/global/content/.mine", "M_INVALID_PARAM", "reserved"),
])
@pytest_twisted.ensureDeferred
async def test_malformed_paths_are_a_clear_400(client, method, path, errcode, says):
    """A malformed push rule path answers 400 with an errcode and a message saying what is wrong, and changes nothing."""
    user = await client.register()
    before = (await get(client, user, "pushrules/")).json
    body = {"actions": ["notify"], "enabled": True, **RULE} if method == "PUT" else None
    response = await client.request(method, path, body, token=user["access_token"])
    assert (response.code, response.json["errcode"]) == (400, errcode), response
    assert says in response.json["error"], response
    assert (await get(client, user, "pushrules/")).json == before


@pytest.mark.parametrize("method, path", [
    ("DELETE", "pushrules/global/override/.m.rule.master/enabled"),
    ("DELETE", "pushrules/global/override/.m.rule.master/actions"),
    ("POST", "pushrules/global/content/cake"),
    ("POST", "pushrules/global/content"),
])
@pytest_twisted.ensureDeferred
async def test_a_well_formed_path_with_another_method_is_405(client, method, path):
    """A method a push rule path does not have answers 405 M_UNRECOGNIZED, as anywhere else."""
    user = await client.register()
    response = await client.request(method, path, {} if method == "POST" else None,
                                    token=user["access_token"], validate=False)
    assert (response.code, response.json["errcode"]) == (405, "M_UNRECOGNIZED"), response
    assert "PUT" in response.headers["allow"].split(", "), response


@pytest_twisted.ensureDeferred
async def test_unknown_paths_outside_pushrules_stay_404(client):
    """Paths outside /pushrules, even close ones, are still 404 M_UNRECOGNIZED."""
    user = await client.register()
    for path in ("pushrulez/global/", "pushrule/global/override/x", "no/such/thing"):
        response = await get(client, user, path)
        assert (response.code, response.json["errcode"]) == (404, "M_UNRECOGNIZED"), path


@pytest_twisted.ensureDeferred
async def test_rule_ids_of_the_right_form_are_looked_up(client):
    """Well-formed ids of each kind reach the rules: 404 M_NOT_FOUND while unknown, found once created."""
    user = await client.register()
    for kind, rule_id in (("room", ROOM_ID), ("sender", USER_ID), ("content", "cake"),
                          ("override", ".m.rule.nope")):
        response = await get(client, user, rule_path(kind, rule_id))
        assert (response.code, response.json["errcode"]) == (404, "M_NOT_FOUND"), (kind, response)
    response = await put(client, user, rule_path("sender", USER_ID), {"actions": []})
    assert response.code == 200, response
    response = await get(client, user, rule_path("sender", USER_ID, "enabled"))
    assert (response.code, response.json) == (200, {"enabled": True})
