"""
Push rules as pure functions (spec: client-server-api/modules/push.md,
"Push Rules", and api/client-server/pushrules.yaml).

Nothing here does I/O: the server-default rules are built for a user, the
user's stored rows are merged into them, a C{PUT /pushrules} body is
validated, and an event is evaluated against the merged ruleset.

Stored representation
=====================
One row per user-touched rule: C{(user_id, kind, rule_id, rule_json,
enabled, priority)}, read back as L{UserRule}s.

  - A B{user-defined} rule (C{rule_id} not starting with C{.}) stores in
    C{rule_json} what L{validate_rule} returned: C{{"actions": [...]}} plus
    C{"conditions"} (override/underride) or C{"pattern"} (content); room and
    sender rules store only the actions, their C{rule_id} being the room or
    user ID. C{enabled} is a boolean (C{True} on creation). Within a kind,
    a higher C{priority} is checked first; L{place_rule} gives the new order
    of a kind's user-defined rule ids after a C{PUT} with C{before}/C{after}
    and the store writes C{priority = len(order) - index}.
  - A B{server-default} rule (C{rule_id} starting with C{.}) is never
    stored as such: its definition always comes from
    L{server_default_rules}, so it follows the spec as this code is updated.
    A row only records what the user changed through
    C{.../enabled} or C{.../actions}: C{enabled} (or C{NULL}: unchanged) and
    C{rule_json = {"actions": [...]}} (or C{NULL}: unchanged). Its
    C{priority} is ignored. Rows naming a server-default rule that no longer
    exists are ignored.

Ordering (spec "Predefined Rules"): server-default rules have a lower
priority than user-defined rules of the same kind, except C{.m.rule.master},
which comes before every other rule.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Iterable

from ruma_tx.matrix.errors import BadRequest
from ruma_tx.matrix.identifiers import is_valid_room_id, is_valid_user_id
from ruma_tx.matrix.types import JsonDict

#: The rule kinds, in the order they are checked.
RULE_KINDS: tuple[str, ...] = ("override", "content", "room", "sender", "underride")

MASTER_RULE_ID = ".m.rule.master"

#: Legacy actions that clients and servers MUST ignore (spec "Historical Actions").
HISTORICAL_ACTIONS = frozenset({"dont_notify", "coalesce"})

#: The range of integers canonical JSON allows.
_MAX_SAFE_INT = 2**53 - 1


@dataclass(frozen=True)
class UserRule:
    """
    One stored row of a user's push rules (see the module docstring).

    @ivar kind: one of L{RULE_KINDS}.
    @ivar rule_id: the rule id; a server-default one starts with C{.}.
    @ivar rule: for a user-defined rule, the dict L{validate_rule} returned;
        for a server-default rule, C{{"actions": [...]}} or L{None} when the
        actions were not changed.
    @ivar enabled: whether the rule is enabled; L{None} only for a
        server-default rule whose enabled flag was not changed.
    @ivar priority: user-defined rules of a kind are checked from the highest
        priority to the lowest.
    """

    kind: str
    rule_id: str
    rule: JsonDict | None
    enabled: bool | None = True
    priority: int = 0


# ---------------------------------------------------------------------------
# Server-default rules


def _event_match(key: str, pattern: str) -> JsonDict:
    return {"kind": "event_match", "key": key, "pattern": pattern}


def _default(rule_id: str, conditions: list[JsonDict], actions: list[Any],
             enabled: bool = True) -> JsonDict:
    return {
        "rule_id": rule_id,
        "default": True,
        "enabled": enabled,
        "conditions": conditions,
        "actions": actions,
    }


_SOUND_DEFAULT = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT = {"set_tweak": "highlight"}


def server_default_rules(user_id: str) -> JsonDict:
    """
    The spec's predefined rules (v1.19, which no longer has the legacy
    C{body} mention rules C{.m.rule.contains_display_name},
    C{.m.rule.contains_user_name} and C{.m.rule.roomnotif}), in the spec's
    order.

    @param user_id: the owner of the rules (used by C{.m.rule.invite_for_me}
        and C{.m.rule.is_user_mention}).
    @return: C{{"global": {kind: [rule, ...]}}} for every kind of
        L{RULE_KINDS}; a fresh structure the caller may modify.
    """
    override = [
        _default(MASTER_RULE_ID, [], [], enabled=False),
        _default(".m.rule.suppress_notices",
                 [_event_match("content.msgtype", "m.notice")], []),
        _default(".m.rule.invite_for_me",
                 [_event_match("type", "m.room.member"),
                  _event_match("content.membership", "invite"),
                  _event_match("state_key", user_id)],
                 ["notify", dict(_SOUND_DEFAULT)]),
        _default(".m.rule.member_event", [_event_match("type", "m.room.member")], []),
        _default(".m.rule.is_user_mention",
                 [{"kind": "event_property_contains",
                   "key": "content.m\\.mentions.user_ids", "value": user_id}],
                 ["notify", dict(_SOUND_DEFAULT), dict(_HIGHLIGHT)]),
        _default(".m.rule.is_room_mention",
                 [{"kind": "event_property_is", "key": "content.m\\.mentions.room",
                   "value": True},
                  {"kind": "sender_notification_permission", "key": "room"}],
                 ["notify", dict(_HIGHLIGHT)]),
        _default(".m.rule.tombstone",
                 [_event_match("type", "m.room.tombstone"), _event_match("state_key", "")],
                 ["notify", dict(_HIGHLIGHT)]),
        _default(".m.rule.reaction", [_event_match("type", "m.reaction")], []),
        _default(".m.rule.room.server_acl",
                 [_event_match("type", "m.room.server_acl"), _event_match("state_key", "")],
                 []),
        _default(".m.rule.suppress_edits",
                 [{"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type",
                   "value": "m.replace"}],
                 []),
    ]
    underride = [
        _default(".m.rule.call", [_event_match("type", "m.call.invite")],
                 ["notify", {"set_tweak": "sound", "value": "ring"}]),
        _default(".m.rule.encrypted_room_one_to_one",
                 [{"kind": "room_member_count", "is": "2"},
                  _event_match("type", "m.room.encrypted")],
                 ["notify", dict(_SOUND_DEFAULT)]),
        _default(".m.rule.room_one_to_one",
                 [{"kind": "room_member_count", "is": "2"},
                  _event_match("type", "m.room.message")],
                 ["notify", dict(_SOUND_DEFAULT)]),
        _default(".m.rule.message", [_event_match("type", "m.room.message")], ["notify"]),
        _default(".m.rule.encrypted", [_event_match("type", "m.room.encrypted")], ["notify"]),
    ]
    return {"global": {"override": override, "content": [], "room": [], "sender": [],
                       "underride": underride}}


# ---------------------------------------------------------------------------
# Merging stored rows into the defaults


def _client_rule(row: UserRule) -> JsonDict:
    """The client-format dict of a user-defined rule."""
    body = row.rule or {}
    out: dict[str, Any] = {
        "rule_id": row.rule_id,
        "default": False,
        "enabled": True if row.enabled is None else bool(row.enabled),
        "actions": copy.deepcopy(body.get("actions", [])),
    }
    if row.kind in ("override", "underride"):
        out["conditions"] = copy.deepcopy(body.get("conditions", []))
    elif row.kind == "content":
        out["pattern"] = body.get("pattern", "")
    return out


def merge_rules(defaults: JsonDict, user_rules: Iterable[UserRule]) -> JsonDict:
    """
    The user's full ruleset, as C{GET /pushrules/} returns it.

    @param defaults: L{server_default_rules} for the user (not modified).
    @param user_rules: the user's stored rows, in any order.
    @return: C{{"global": {kind: [rule, ...]}}}: within each kind, the
        user-defined rules by descending priority, then the server-default
        ones with the user's C{enabled}/C{actions} changes applied;
        C{.m.rule.master} stays first of all.
    """
    merged = copy.deepcopy(defaults)
    ruleset = merged["global"]
    for kind in RULE_KINDS:
        ruleset.setdefault(kind, [])

    user_defined: dict[str, list[UserRule]] = {kind: [] for kind in RULE_KINDS}
    for row in user_rules:
        if row.kind not in ruleset:
            continue
        if row.rule_id.startswith("."):
            for rule in ruleset[row.kind]:
                if rule["rule_id"] == row.rule_id and rule.get("default"):
                    if row.enabled is not None:
                        rule["enabled"] = bool(row.enabled)
                    if row.rule is not None and "actions" in row.rule:
                        rule["actions"] = copy.deepcopy(row.rule["actions"])
                    break
        else:
            user_defined[row.kind].append(row)

    for kind in RULE_KINDS:
        # sorted() is stable: equal priorities keep the rows' order.
        mine = [_client_rule(r) for r in sorted(user_defined[kind], key=lambda r: -r.priority)]
        server = ruleset[kind]
        first = [r for r in server if r["rule_id"] == MASTER_RULE_ID]
        rest = [r for r in server if r["rule_id"] != MASTER_RULE_ID]
        ruleset[kind] = first + mine + rest
    return merged


def find_rule(ruleset: JsonDict, kind: str, rule_id: str) -> JsonDict | None:
    """
    @param ruleset: a merged ruleset (with or without the C{"global"} level).
    @return: the rule C{kind}/C{rule_id}, or L{None}.
    """
    rules: list[JsonDict] = ruleset.get("global", ruleset).get(kind, [])
    for rule in rules:
        if rule["rule_id"] == rule_id:
            return rule
    return None


def place_rule(order: list[str], rule_id: str, before: str | None = None,
               after: str | None = None) -> list[str]:
    """
    The order of a kind's user-defined rule ids after C{PUT}ting C{rule_id}.

    With C{before}, the rule becomes the next-more important rule than
    C{before} (C{before} wins when both are given, as the spec says); with
    C{after}, the next-less important one. With neither, a new rule becomes
    the most important user-defined rule and an existing one keeps its place.

    @param order: the kind's user-defined rule ids, most important first.
    @return: the new order (a new list).
    @raise BadRequest: 400 C{M_UNKNOWN} if C{before}/C{after} is not a
        user-defined rule of the kind (server-default rules cannot be used).
    """
    new = [r for r in order if r != rule_id]
    anchor = before if before else after
    if anchor:
        if anchor.startswith(".") or anchor not in new:
            raise BadRequest("M_UNKNOWN", f"before/after rule not found: {anchor}")
        index = new.index(anchor) + (0 if before else 1)
        new.insert(index, rule_id)
    elif rule_id in order:
        new.insert(order.index(rule_id), rule_id)
    else:
        new.insert(0, rule_id)
    return new


# ---------------------------------------------------------------------------
# Validation of PUT bodies


def is_scalar(value: object) -> bool:
    """Whether C{value} is a non-compound canonical JSON value."""
    if value is None or isinstance(value, (bool, str)):
        return True
    return isinstance(value, int) and -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT


def validate_actions(actions: object) -> list[Any]:
    """
    Check an C{actions} array (as Synapse does: C{notify}, the historical
    C{dont_notify}/C{coalesce}, or an object with a string C{set_tweak}).

    @return: the actions, unchanged (historical actions are kept as given and
        ignored by L{evaluate}).
    @raise BadRequest: 400 C{M_BAD_JSON}.
    """
    if not isinstance(actions, list):
        raise BadRequest("M_BAD_JSON", "'actions' must be an array")
    for action in actions:
        if isinstance(action, str):
            if action != "notify" and action not in HISTORICAL_ACTIONS:
                raise BadRequest("M_BAD_JSON", f"Unrecognised action: {action}")
        elif isinstance(action, dict):
            if not isinstance(action.get("set_tweak"), str):
                raise BadRequest("M_BAD_JSON", "An action object needs a string 'set_tweak'")
        else:
            raise BadRequest("M_BAD_JSON", "An action must be a string or an object")
    return actions


#: The parameters each known condition kind requires (push_condition.yaml).
_REQUIRED_PARAMS: dict[str, tuple[str, ...]] = {
    "event_match": ("key", "pattern"),
    "event_property_is": ("key", "value"),
    "event_property_contains": ("key", "value"),
    "room_member_count": ("is",),
    "sender_notification_permission": ("key",),
    "contains_display_name": (),
}


def _validate_condition(condition: object) -> None:
    if not isinstance(condition, dict):
        raise BadRequest("M_BAD_JSON", "A condition must be an object")
    kind = condition.get("kind")
    if not isinstance(kind, str):
        raise BadRequest("M_BAD_JSON", "A condition needs a string 'kind'")
    for name in ("key", "pattern", "is"):
        if name in condition and not isinstance(condition[name], str):
            raise BadRequest("M_BAD_JSON", f"Condition '{name}' must be a string")
    if "value" in condition and not is_scalar(condition["value"]):
        raise BadRequest(
            "M_BAD_JSON", "Condition 'value' must be a string, integer, boolean or null")
    # Unknown kinds are accepted: they never match (spec "Conditions").
    for name in _REQUIRED_PARAMS.get(kind, ()):
        if name not in condition:
            raise BadRequest("M_BAD_JSON", f"A {kind} condition needs '{name}'")


def check_kind(kind: str) -> None:
    """
    @raise BadRequest: 400 C{M_INVALID_PARAM} unless C{kind} is one of
        L{RULE_KINDS}.
    """
    if kind not in RULE_KINDS:
        raise BadRequest(
            "M_INVALID_PARAM", f"Unknown push rule kind {kind!r}: expected one of {', '.join(RULE_KINDS)}")


def check_rule_id(kind: str, rule_id: str, *, server_default: bool) -> None:
    """
    Check a path's rule id for its kind (pushrules.yaml: no slashes or
    backslashes; a room rule's id is a room ID, a sender rule's a user ID).

    @param server_default: whether the id may name a server-default rule
        (start with C{.}): true to read or change one, false to create one
        (the spec reserves those ids).
    @raise BadRequest: 400 C{M_INVALID_PARAM} for an unknown kind or a bad id.
    """
    check_kind(kind)
    if not rule_id:
        raise BadRequest("M_INVALID_PARAM", "The rule id must not be empty")
    if rule_id.startswith(".") and not server_default:
        raise BadRequest(
            "M_INVALID_PARAM", "Rule ids starting with '.' are reserved for server-default rules")
    if "/" in rule_id or "\\" in rule_id:
        raise BadRequest("M_INVALID_PARAM", "Rule ids may not contain slashes or backslashes")
    if kind == "room" and not is_valid_room_id(rule_id):
        raise BadRequest("M_INVALID_PARAM",
                         f"The rule id of a room rule must be a room ID, not {rule_id!r}")
    if kind == "sender" and not is_valid_user_id(rule_id):
        raise BadRequest("M_INVALID_PARAM",
                         f"The rule id of a sender rule must be a user ID, not {rule_id!r}")


def validate_rule(kind: str, rule_id: str, body: JsonDict) -> JsonDict:
    """
    Check the body of C{PUT /pushrules/global/{kind}/{ruleId}} for a
    user-defined rule.

    @param kind: the path's kind.
    @param rule_id: the path's rule id (URL-decoded).
    @param body: the request's JSON object.
    @return: the rule to store as C{rule_json}: C{{"actions": [...]}} plus
        C{"conditions"} (override/underride) or C{"pattern"} (content).
    @raise BadRequest: 400 C{M_INVALID_PARAM} for an unknown kind or a bad
        rule id (empty, starting with C{.}, holding C{/} or C{\\}, or for
        room/sender rules not a room/user ID); 400 C{M_MISSING_PARAM} for a
        missing C{actions}, C{conditions} or C{pattern}; 400 C{M_BAD_JSON}
        for a malformed one.
    """
    check_rule_id(kind, rule_id, server_default=False)
    if not isinstance(body, dict):
        raise BadRequest("M_BAD_JSON", "The push rule must be an object")

    if "actions" not in body:
        raise BadRequest("M_MISSING_PARAM", "Missing 'actions'")
    rule: dict[str, Any] = {"actions": validate_actions(body["actions"])}
    if kind in ("override", "underride"):
        # pushrules.yaml marks conditions optional, but Synapse requires them
        # for these kinds (and so does this server's brief).
        if "conditions" not in body:
            raise BadRequest("M_MISSING_PARAM", "Missing 'conditions'")
        conditions = body["conditions"]
        if not isinstance(conditions, list):
            raise BadRequest("M_BAD_JSON", "'conditions' must be an array")
        for condition in conditions:
            _validate_condition(condition)
        rule["conditions"] = conditions
    elif kind == "content":
        if "pattern" not in body:
            raise BadRequest("M_MISSING_PARAM", "Missing 'pattern'")
        if not isinstance(body["pattern"], str):
            raise BadRequest("M_BAD_JSON", "'pattern' must be a string")
        rule["pattern"] = body["pattern"]
    return rule
