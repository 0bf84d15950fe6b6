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
import functools
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence, TypeAlias

from ruma_tx.matrix.errors import BadRequest
from ruma_tx.matrix.events import JsonDict
from ruma_tx.matrix.identifiers import is_valid_room_id, is_valid_user_id
from ruma_tx.matrix.property_paths import split_property_path

#: The rule kinds, in the order they are checked.
RULE_KINDS: tuple[str, ...] = ("override", "content", "room", "sender", "underride")

MASTER_RULE_ID = ".m.rule.master"

#: Legacy actions that clients and servers MUST ignore (spec "Historical Actions").
HISTORICAL_ACTIONS = frozenset({"dont_notify", "coalesce"})

#: The range of integers canonical JSON allows.
_MAX_SAFE_INT = 2**53 - 1

#: Characters that are NOT word boundaries for C{content.body} matching.
_WORD_CHAR = "[A-Za-z0-9_]"

_MEMBER_COUNT_RE = re.compile(r"(==|<=|>=|<|>)?([0-9]+)")

#: A compiled glob (see L{_compile_glob}): one regex for a pattern without
#: C{*}, else the head regex, the middle ones and the tail regex.
_CompiledGlob: TypeAlias = (
    tuple[re.Pattern[str]]
    | tuple[re.Pattern[str], list[re.Pattern[str]], re.Pattern[str]]
)


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


@dataclass
class PushContext:
    """
    What L{evaluate} needs to know besides the event.

    @ivar user_id: the user whose rules are evaluated.
    @ivar user_display_name: their display name in the room, or L{None}
        (for the deprecated C{contains_display_name} condition).
    @ivar room_member_count: the number of joined members of the room.
    @ivar sender_power_level: the sender's power level (C{float("inf")} for
        a creator of a room version 12 room), or L{None} if unknown.
    @ivar notification_power_levels: the C{notifications} object of the room's
        power levels, e.g. C{{"room": 50}}; a missing key requires 50.
    """

    user_id: str
    user_display_name: str | None
    room_member_count: int
    sender_power_level: int | float | None
    notification_power_levels: JsonDict = field(default_factory=dict)


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


def _is_scalar(value: object) -> bool:
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
    if "value" in condition and not _is_scalar(condition["value"]):
        raise BadRequest(
            "M_BAD_JSON", "Condition 'value' must be a string, integer, boolean or null")
    # Unknown kinds are accepted: they never match (spec "Conditions").
    for name in _REQUIRED_PARAMS.get(kind, ()):
        if name not in condition:
            raise BadRequest("M_BAD_JSON", f"A {kind} condition needs '{name}'")


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
    if kind not in RULE_KINDS:
        raise BadRequest("M_INVALID_PARAM", f"Unknown push rule kind: {kind}")
    if not rule_id:
        raise BadRequest("M_INVALID_PARAM", "The rule id must not be empty")
    if rule_id.startswith("."):
        raise BadRequest(
            "M_INVALID_PARAM", "Rule ids starting with '.' are reserved for server-default rules")
    if "/" in rule_id or "\\" in rule_id:
        raise BadRequest("M_INVALID_PARAM", "Rule ids may not contain slashes")
    if kind == "room" and not is_valid_room_id(rule_id):
        raise BadRequest("M_INVALID_PARAM", "The rule id of a room rule must be a room ID")
    if kind == "sender" and not is_valid_user_id(rule_id):
        raise BadRequest("M_INVALID_PARAM", "The rule id of a sender rule must be a user ID")
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


# ---------------------------------------------------------------------------
# Matching


_ABSENT = object()


def lookup(event: JsonDict, key: str) -> Any:
    """
    The value at dot-separated path C{key} in C{event}, or L{_ABSENT}.
    Arrays are not indexed into.
    """
    value: Any = event
    for part in split_property_path(key):
        if not isinstance(value, dict) or part not in value:
            return _ABSENT
        value = value[part]
    return value


@functools.lru_cache(maxsize=1024)
def _compile_glob(pattern: str, words: bool) -> _CompiledGlob:
    """
    Compile a glob into its C{*}-separated segments, each a fixed-width
    regex (C{?} is any one character), so that matching never backtracks
    over C{*}: segments are placed leftmost in turn, which finds a match
    whenever one exists.
    """
    flags = re.IGNORECASE | re.DOTALL
    segments = [
        "".join("." if c == "?" else re.escape(c) for c in seg) for seg in pattern.split("*")
    ]
    if len(segments) == 1:
        only = segments[0]
        if words:
            return (re.compile(f"(?<!{_WORD_CHAR}){only}(?!{_WORD_CHAR})", flags),)
        return (re.compile(only, flags),)
    first, *middle, last = segments
    head = re.compile((f"(?<!{_WORD_CHAR})" if words else "") + first, flags)
    tail = re.compile(last + (f"(?!{_WORD_CHAR})" if words else r"\Z"), flags)
    return (head, [re.compile(m, flags) for m in middle], tail)


def glob_match(pattern: str, value: str, words: bool = False) -> bool:
    """
    Case-insensitive glob matching (spec appendices, "Glob-style matching":
    C{*} is zero or more characters, C{?} exactly one).

    @param words: match any substring of C{value} that starts and ends at a
        word boundary (the start or end of the value, or a character not in
        C{[A-Za-z0-9_]}), as for C{content.body}; otherwise the whole value.
    """
    compiled = _compile_glob(pattern, words)
    if len(compiled) == 1:
        (regex,) = compiled
        return bool(regex.search(value) if words else regex.fullmatch(value))
    head, middle, tail = compiled
    found = head.search(value) if words else head.match(value)
    if found is None:
        return False
    pos = found.end()
    for segment in middle:
        found = segment.search(value, pos)
        if found is None:
            return False
        pos = found.end()
    return tail.search(value, pos) is not None


def _same_scalar(a: object, b: object) -> bool:
    """Exact equality of canonical JSON scalars: C{True} is not C{1}."""
    if not (_is_scalar(a) and _is_scalar(b)):
        return False
    return type(a) is type(b) and a == b


def _member_count_matches(spec: object, count: int) -> bool:
    if not isinstance(spec, str):
        return False
    m = _MEMBER_COUNT_RE.fullmatch(spec)
    if m is None:
        return False
    op, number = m.group(1) or "==", int(m.group(2))
    return {
        "==": count == number,
        "<": count < number,
        ">": count > number,
        "<=": count <= number,
        ">=": count >= number,
    }[op]


def _literal_word_search(needle: str, body: str) -> bool:
    """Whether C{needle} occurs in C{body}, case-insensitively, between word boundaries."""
    regex = re.compile(
        f"(?<!{_WORD_CHAR}){re.escape(needle)}(?!{_WORD_CHAR})", re.IGNORECASE | re.DOTALL)
    return regex.search(body) is not None


def condition_matches(condition: JsonDict, event: JsonDict, ctx: PushContext) -> bool:
    """
    Whether one push condition holds for C{event}. Unknown or malformed
    conditions never match.
    """
    kind = condition.get("kind")
    key = condition.get("key")
    if kind == "event_match":
        pattern = condition.get("pattern")
        if not isinstance(key, str) or not isinstance(pattern, str):
            return False
        value = lookup(event, key)
        if not isinstance(value, str):
            return False
        return glob_match(pattern, value, words=(key == "content.body"))
    if kind == "event_property_is":
        if not isinstance(key, str) or "value" not in condition:
            return False
        return _same_scalar(lookup(event, key), condition["value"])
    if kind == "event_property_contains":
        if not isinstance(key, str) or "value" not in condition:
            return False
        values = lookup(event, key)
        if not isinstance(values, list):
            return False
        wanted = condition["value"]
        return any(_same_scalar(item, wanted) for item in values)
    if kind == "contains_display_name":
        name = ctx.user_display_name
        body = lookup(event, "content.body")
        if not name or not isinstance(body, str):
            # An empty display name would match every message.
            return False
        # Matched literally, at word boundaries (Synapse treats it as a glob).
        return _literal_word_search(name, body)
    if kind == "room_member_count":
        return _member_count_matches(condition.get("is"), ctx.room_member_count)
    if kind == "sender_notification_permission":
        if not isinstance(key, str) or ctx.sender_power_level is None:
            return False
        required = ctx.notification_power_levels.get(key, 50)
        if not isinstance(required, int):
            required = 50
        return ctx.sender_power_level >= required
    return False


def rule_matches(kind: str, rule: JsonDict, event: JsonDict, ctx: PushContext) -> bool:
    """
    Whether an (enabled) rule of C{kind} matches C{event}: all conditions
    for override/underride, C{room_id}/C{sender} equal to the rule id for
    room/sender rules, C{pattern} on C{content.body} for content rules.
    """
    if kind in ("override", "underride"):
        conditions = rule.get("conditions", [])
        if not isinstance(conditions, list):
            return False
        return all(isinstance(c, dict) and condition_matches(c, event, ctx) for c in conditions)
    if kind == "room":
        return bool(event.get("room_id") == rule["rule_id"])
    if kind == "sender":
        return bool(event.get("sender") == rule["rule_id"])
    if kind == "content":
        pattern = rule.get("pattern")
        body = lookup(event, "content.body")
        return isinstance(pattern, str) and isinstance(body, str) and \
            glob_match(pattern, body, words=True)
    return False


def evaluate(rules: JsonDict, event: JsonDict, ctx: PushContext) -> list[Any]:
    """
    The actions for C{event} under the user's rules.

    The first enabled matching rule, in the order of L{RULE_KINDS} and then
    of each kind's list, decides. The user's own events never notify
    (spec: "Homeservers MUST NOT notify the Push Gateway for events that the
    user has sent themselves").

    @param rules: a merged ruleset (L{merge_rules}), with or without the
        C{"global"} level.
    @return: the matching rule's actions without the historical
        C{dont_notify}/C{coalesce}; C{[]} if no rule matches.
    """
    if event.get("sender") == ctx.user_id:
        return []
    ruleset = rules.get("global", rules)
    for kind in RULE_KINDS:
        for rule in ruleset.get(kind, []):
            if not rule.get("enabled", True):
                continue
            if rule_matches(kind, rule, event, ctx):
                actions = rule.get("actions", [])
                if not isinstance(actions, list):
                    return []
                return [a for a in actions if not (isinstance(a, str) and a in HISTORICAL_ACTIONS)]
    return []


def actions_notify(actions: Sequence[Any]) -> bool:
    """Whether the actions include C{notify}."""
    return "notify" in actions


def actions_highlight(actions: Sequence[Any]) -> bool:
    """
    Whether the actions set the C{highlight} tweak to true (a tweak with no
    value means true).
    """
    for action in actions:
        if isinstance(action, dict) and action.get("set_tweak") == "highlight":
            return action.get("value", True) is True
    return False


def actions_tweaks(actions: Sequence[Any]) -> JsonDict:
    """The C{tweaks} dict for a push gateway: each C{set_tweak} name to its value."""
    tweaks: dict[str, Any] = {}
    for action in actions:
        if isinstance(action, dict) and isinstance(action.get("set_tweak"), str):
            name = action["set_tweak"]
            tweaks[name] = action.get("value", True if name == "highlight" else None)
    return tweaks
