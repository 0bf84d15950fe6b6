"""
Evaluating push rules (spec: "Push Rules", "Conditions", "Actions"): does a
rule match an event for one user, and what do the first matching rule's
actions say. Pure: the caller gives the event and the user's context.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence, TypeAlias

from cachetools import LRUCache, cached

from ruma_tx.matrix.property_paths import split_property_path
from ruma_tx.matrix.push_rules import HISTORICAL_ACTIONS, RULE_KINDS, is_scalar
from ruma_tx.matrix.types import JsonDict

#: Characters that are NOT word boundaries for C{content.body} matching.
_WORD_CHAR = "[A-Za-z0-9_]"

_MEMBER_COUNT_RE = re.compile(r"(==|<=|>=|<|>)?([0-9]+)")

#: A compiled glob (see L{_compile_glob}): one regex for a pattern without
#: C{*}, else the head regex, the middle ones and the tail regex.
_CompiledGlob: TypeAlias = (
    tuple[re.Pattern[str]]
    | tuple[re.Pattern[str], list[re.Pattern[str]], re.Pattern[str]]
)

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


@cached(LRUCache(maxsize=1024))
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
    if not (is_scalar(a) and is_scalar(b)):
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
