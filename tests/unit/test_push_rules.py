"""
Tests for L{ruma_tx.matrix.push_rules}.
"""

import pytest

from ruma_tx.http.errors import status_code
from ruma_tx.matrix.errors import BadRequest
from ruma_tx.matrix.property_paths import split_property_path
from ruma_tx.matrix.push_evaluation import (
    PushContext,
    actions_highlight,
    actions_notify,
    actions_tweaks,
    evaluate,
    glob_match,
)
from ruma_tx.matrix.push_rules import (
    UserRule,
    find_rule,
    merge_rules,
    place_rule,
    server_default_rules,
    validate_actions,
    validate_rule,
)

ME = "@alice:test.local"
OTHER = "@bob:test.local"
ROOM = "!room:test.local"


def ctx(members=10, display_name="Alice Liddell", sender_pl=0, notif=None):
    return PushContext(
        user_id=ME,
        user_display_name=display_name,
        room_member_count=members,
        sender_power_level=sender_pl,
        notification_power_levels=notif if notif is not None else {},
    )


def message(body="hello", sender=OTHER, **content):
    return {
        "type": "m.room.message",
        "sender": sender,
        "room_id": ROOM,
        "event_id": "$e",
        "content": {"msgtype": "m.text", "body": body, **content},
    }


def defaults():
    return merge_rules(server_default_rules(ME), [])


# --- defaults ---------------------------------------------------------------


def test_default_rule_ids_in_spec_order():
    """The server-default rules are exactly the v1.19 predefined rules, in the spec's order."""
    ruleset = server_default_rules(ME)["global"]
    assert [r["rule_id"] for r in ruleset["override"]] == [
        ".m.rule.master",
        ".m.rule.suppress_notices",
        ".m.rule.invite_for_me",
        ".m.rule.member_event",
        ".m.rule.is_user_mention",
        ".m.rule.is_room_mention",
        ".m.rule.tombstone",
        ".m.rule.reaction",
        ".m.rule.room.server_acl",
        ".m.rule.suppress_edits",
    ]
    assert ruleset["content"] == [] and ruleset["room"] == [] and ruleset["sender"] == []
    assert [r["rule_id"] for r in ruleset["underride"]] == [
        ".m.rule.call",
        ".m.rule.encrypted_room_one_to_one",
        ".m.rule.room_one_to_one",
        ".m.rule.message",
        ".m.rule.encrypted",
    ]


def test_defaults_are_default_and_only_master_disabled():
    """Every predefined rule has default true, and only .m.rule.master is disabled."""
    ruleset = server_default_rules(ME)["global"]
    rules = [r for kind in ruleset.values() for r in kind]
    assert all(r["default"] is True for r in rules)
    assert [r["rule_id"] for r in rules if not r["enabled"]] == [".m.rule.master"]


def test_defaults_name_the_user():
    """invite_for_me and is_user_mention carry the owner's user ID."""
    ruleset = server_default_rules(ME)
    invite = find_rule(ruleset, "override", ".m.rule.invite_for_me")
    assert {"kind": "event_match", "key": "state_key", "pattern": ME} in invite["conditions"]
    mention = find_rule(ruleset, "override", ".m.rule.is_user_mention")
    assert mention["conditions"][0]["value"] == ME


# --- evaluating the defaults ------------------------------------------------


def test_message_in_two_member_room_notifies_with_sound():
    """A plain message in a 2-member room matches .m.rule.room_one_to_one: notify with sound."""
    actions = evaluate(defaults(), message(), ctx(members=2))
    assert actions == ["notify", {"set_tweak": "sound", "value": "default"}]
    assert actions_notify(actions) and not actions_highlight(actions)


def test_message_in_big_room_notifies_without_highlight():
    """A plain message in a big room matches .m.rule.message: notify, no sound, no highlight."""
    actions = evaluate(defaults(), message(), ctx(members=10))
    assert actions == ["notify"]
    assert not actions_highlight(actions)


def test_notice_is_suppressed():
    """An m.notice message matches .m.rule.suppress_notices and does not notify."""
    event = message()
    event["content"]["msgtype"] = "m.notice"
    assert evaluate(defaults(), event, ctx(members=2)) == []


def test_user_mention_highlights():
    """A message whose m.mentions.user_ids lists the user notifies and highlights."""
    event = message(body="hi", **{"m.mentions": {"user_ids": [OTHER, ME]}})
    actions = evaluate(defaults(), event, ctx())
    assert actions_notify(actions) and actions_highlight(actions)
    assert actions_tweaks(actions) == {"sound": "default", "highlight": True}


def test_mention_of_someone_else_does_not_highlight():
    """A message mentioning only another user is an ordinary message."""
    event = message(body="hi", **{"m.mentions": {"user_ids": [OTHER]}})
    assert evaluate(defaults(), event, ctx()) == ["notify"]


def test_display_name_in_body_does_not_highlight_by_default():
    """v1.19 removed .m.rule.contains_display_name, so a display name in the body is a plain message."""
    event = message(body="Hey Alice Liddell, lunch?")
    assert not actions_highlight(evaluate(defaults(), event, ctx()))


def test_contains_display_name_condition_in_user_rule():
    """The deprecated contains_display_name condition matches the display name at word boundaries."""
    rule = UserRule("override", "dn", {"conditions": [{"kind": "contains_display_name"}],
                                        "actions": ["notify", {"set_tweak": "highlight"}]})
    rules = merge_rules(server_default_rules(ME), [rule])
    assert actions_highlight(evaluate(rules, message(body="hey alice liddell!"), ctx()))
    assert not actions_highlight(evaluate(rules, message(body="hey Alice Liddells"), ctx()))
    assert not actions_highlight(evaluate(rules, message(body="hey Alice"), ctx(display_name="")))


def test_room_mention_needs_sender_power():
    """@room via m.mentions.room highlights only if the sender has the notifications.room level."""
    event = message(body="all", **{"m.mentions": {"room": True}})
    assert actions_highlight(evaluate(defaults(), event, ctx(sender_pl=50)))
    assert not actions_highlight(evaluate(defaults(), event, ctx(sender_pl=49)))
    assert actions_highlight(evaluate(defaults(), event, ctx(sender_pl=10, notif={"room": 10})))


def test_invite_for_me_notifies():
    """An invite whose state_key is the user notifies with sound; someone else's invite does not."""
    invite = {"type": "m.room.member", "sender": OTHER, "room_id": ROOM, "state_key": ME,
              "content": {"membership": "invite"}}
    assert evaluate(defaults(), invite, ctx()) == [
        "notify", {"set_tweak": "sound", "value": "default"}]
    invite["state_key"] = "@carol:test.local"
    assert evaluate(defaults(), invite, ctx()) == []


def test_tombstone_needs_state_key():
    """m.room.tombstone highlights as a state event but not without a state_key."""
    event = {"type": "m.room.tombstone", "sender": OTHER, "room_id": ROOM, "state_key": "",
             "content": {"body": "moved"}}
    assert actions_highlight(evaluate(defaults(), event, ctx()))
    del event["state_key"]
    assert evaluate(defaults(), event, ctx()) == []


def test_edits_and_reactions_are_suppressed():
    """m.replace edits and m.reaction events do not notify."""
    edit = message(**{"m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}})
    assert evaluate(defaults(), edit, ctx(members=2)) == []
    reaction = {"type": "m.reaction", "sender": OTHER, "room_id": ROOM, "content": {}}
    assert evaluate(defaults(), reaction, ctx(members=2)) == []


def test_encrypted_and_call_underrides():
    """Encrypted events notify (with sound in 1:1 rooms) and call invites ring."""
    enc = {"type": "m.room.encrypted", "sender": OTHER, "room_id": ROOM, "content": {}}
    assert evaluate(defaults(), enc, ctx(members=2)) == [
        "notify", {"set_tweak": "sound", "value": "default"}]
    assert evaluate(defaults(), enc, ctx(members=3)) == ["notify"]
    call = {"type": "m.call.invite", "sender": OTHER, "room_id": ROOM, "content": {}}
    assert evaluate(defaults(), call, ctx()) == ["notify", {"set_tweak": "sound", "value": "ring"}]


def test_own_events_never_notify():
    """The user's own messages produce no actions, even when mentioning themselves."""
    event = message(sender=ME, **{"m.mentions": {"user_ids": [ME]}})
    assert evaluate(defaults(), event, ctx(members=2)) == []


def test_unknown_event_type_does_not_notify():
    """An event no rule matches gives no actions."""
    event = {"type": "org.example.custom", "sender": OTHER, "room_id": ROOM, "content": {}}
    assert evaluate(defaults(), event, ctx()) == []


# --- user rules and merging -------------------------------------------------


def test_enabled_master_silences_everything():
    """Enabling .m.rule.master (a stored override of enabled) stops even mentions notifying."""
    rules = merge_rules(server_default_rules(ME), [UserRule("override", ".m.rule.master", None, True)])
    event = message(**{"m.mentions": {"user_ids": [ME]}})
    assert evaluate(rules, event, ctx()) == []


def test_disabled_rule_is_skipped():
    """Disabling .m.rule.suppress_notices lets a notice fall through to .m.rule.message."""
    rules = merge_rules(server_default_rules(ME),
                        [UserRule("override", ".m.rule.suppress_notices", None, False)])
    assert find_rule(rules, "override", ".m.rule.suppress_notices")["enabled"] is False
    event = message()
    event["content"]["msgtype"] = "m.notice"
    assert evaluate(rules, event, ctx()) == ["notify"]


def test_changed_actions_of_default_rule():
    """A stored actions override replaces a server-default rule's actions, keeping it default."""
    rules = merge_rules(server_default_rules(ME),
                        [UserRule("underride", ".m.rule.message", {"actions": ["dont_notify"]},
                                  None)])
    rule = find_rule(rules, "underride", ".m.rule.message")
    assert rule["actions"] == ["dont_notify"] and rule["default"] and rule["enabled"]
    assert evaluate(rules, message(), ctx()) == []


def test_override_row_for_unknown_default_is_ignored():
    """A stored row naming a server-default rule that does not exist adds nothing."""
    rules = merge_rules(server_default_rules(ME),
                        [UserRule("override", ".m.rule.gone", {"actions": ["notify"]}, True)])
    assert rules == server_default_rules(ME)


def test_merge_order_master_first_user_rules_before_defaults():
    """Master stays first, user rules come next by descending priority, then the other defaults."""
    rows = [
        UserRule("override", "low", {"conditions": [], "actions": []}, True, priority=1),
        UserRule("override", "high", {"conditions": [], "actions": []}, True, priority=5),
        UserRule("underride", "u", {"conditions": [], "actions": ["notify"]}, True),
    ]
    ruleset = merge_rules(server_default_rules(ME), rows)["global"]
    ids = [r["rule_id"] for r in ruleset["override"]]
    assert ids[:4] == [".m.rule.master", "high", "low", ".m.rule.suppress_notices"]
    assert [r["rule_id"] for r in ruleset["underride"]][:2] == ["u", ".m.rule.call"]
    assert find_rule(ruleset, "override", "high") == {
        "rule_id": "high", "default": False, "enabled": True, "conditions": [], "actions": []}


def test_user_override_beats_default_override():
    """A user override rule matching everything wins over .m.rule.suppress_notices."""
    rules = merge_rules(server_default_rules(ME), [
        UserRule("override", "all", {"conditions": [], "actions": ["notify"]}, True)])
    event = message()
    event["content"]["msgtype"] = "m.notice"
    assert evaluate(rules, event, ctx()) == ["notify"]


def test_user_content_rule_with_glob_pattern():
    """A content rule matches its glob on content.body at word boundaries, case-insensitively."""
    rules = merge_rules(server_default_rules(ME), [
        UserRule("content", "cake", {"pattern": "ca?e*lie", "actions": [
            "notify", {"set_tweak": "highlight"}]}, True)])
    assert find_rule(rules, "content", "cake")["pattern"] == "ca?e*lie"
    assert actions_highlight(evaluate(rules, message(body="the CAKE is a lie!"), ctx()))
    assert not actions_highlight(evaluate(rules, message(body="the cake is a lier"), ctx()))
    assert not actions_highlight(evaluate(rules, message(body="pancake is a lie"), ctx()))


def test_disabled_user_rule_is_skipped():
    """A disabled user content rule never matches."""
    rules = merge_rules(server_default_rules(ME), [
        UserRule("content", "cake", {"pattern": "cake", "actions": [
            "notify", {"set_tweak": "highlight"}]}, False)])
    assert not actions_highlight(evaluate(rules, message(body="cake"), ctx()))


def test_sender_rule():
    """A sender rule with no actions silences messages from that user only."""
    rules = merge_rules(server_default_rules(ME), [UserRule("sender", OTHER, {"actions": []}, True)])
    assert "conditions" not in find_rule(rules, "sender", OTHER)
    assert evaluate(rules, message(sender=OTHER), ctx()) == []
    assert evaluate(rules, message(sender="@carol:test.local"), ctx()) == ["notify"]


def test_room_rule():
    """A room rule applies to events of that room only, and loses to override rules."""
    rules = merge_rules(server_default_rules(ME), [
        UserRule("room", ROOM, {"actions": ["notify", {"set_tweak": "sound", "value": "x"}]},
                 True)])
    assert evaluate(rules, message(), ctx()) == ["notify", {"set_tweak": "sound", "value": "x"}]
    elsewhere = message()
    elsewhere["room_id"] = "!other:test.local"
    assert evaluate(rules, elsewhere, ctx()) == ["notify"]
    mention = message(**{"m.mentions": {"user_ids": [ME]}})
    assert actions_highlight(evaluate(rules, mention, ctx()))


def test_content_rule_beats_room_rule():
    """Content rules are checked before room rules."""
    rules = merge_rules(server_default_rules(ME), [
        UserRule("room", ROOM, {"actions": []}, True),
        UserRule("content", "c", {"pattern": "cake", "actions": ["notify"]}, True)])
    assert evaluate(rules, message(body="cake"), ctx()) == ["notify"]
    assert evaluate(rules, message(body="pie"), ctx()) == []


def test_historical_actions_are_stripped():
    """dont_notify and coalesce are removed from the returned actions."""
    rules = merge_rules(server_default_rules(ME), [
        UserRule("override", "x", {"conditions": [], "actions": ["dont_notify", "coalesce",
                                                                 "notify"]}, True)])
    assert evaluate(rules, message(), ctx()) == ["notify"]


def test_unknown_condition_never_matches():
    """A rule with an unrecognised condition kind is effectively disabled."""
    rules = merge_rules(server_default_rules(ME), [
        UserRule("override", "x", {"conditions": [{"kind": "org.example.future"}],
                                   "actions": ["notify", {"set_tweak": "highlight"}]}, True)])
    assert evaluate(rules, message(), ctx()) == ["notify"]


# --- conditions -------------------------------------------------------------


@pytest.mark.parametrize("pattern,value,expected", [
    ("lunc?*", "Lunch plans", True),
    ("lunc?*", "LUNCH", True),
    ("lunc?*", " lunch", False),
    ("lunc?*", "lunc", False),
    ("m.notice", "m.notice", True),
    ("m.notice", "mxnotice", False),
    ("m.*", "M.TEXT", True),
    ("*", "", True),
    ("", "", True),
    ("", "x", False),
    ("a*b*c", "aXXbYYc", True),
    ("a*b*c", "aXXbYYcd", False),
    ("a?c", "abbc", False),
    ("a[bc]", "a[bc]", True),
])
def test_event_match_whole_value(pattern, value, expected):
    """Outside content.body a glob must match the whole value, case-insensitively."""
    assert glob_match(pattern, value) is expected


@pytest.mark.parametrize("pattern,body,expected", [
    ("ex*ple", "An example event.", True),
    ("ex*ple", "exple", True),
    ("ex*ple", "An exciting triple-whammy", True),
    ("ex*ple", "Anexample", False),
    ("ex*ple", "examples", False),
    ("cake", "I like cake_s", False),
    ("cake", "I like (cake)", True),
    ("@bob:test.local", "hi @bob:test.local!", True),
    ("a*a*a*a*b", "a" * 5000, False),
])
def test_event_match_content_body_words(pattern, body, expected):
    """For content.body a glob matches any substring starting and ending at word boundaries."""
    assert glob_match(pattern, body, words=True) is expected


def test_event_match_rule_on_content_body_uses_words():
    """An event_match condition on content.body uses word matching, other keys whole values."""
    c = ctx()
    cond = {"kind": "event_match", "key": "content.body", "pattern": "tea"}
    rules = {"global": {"override": [{"rule_id": "t", "enabled": True, "default": False,
                                      "conditions": [cond], "actions": ["notify"]}]}}
    assert evaluate(rules, message(body="time for tea"), c) == ["notify"]
    cond["key"] = "content.msgtype"
    cond["pattern"] = "text"
    assert evaluate(rules, message(body="time for tea"), c) == []


def test_event_match_needs_a_string():
    """event_match never matches a missing or non-string property, even with pattern '*'."""
    rules = {"global": {"override": [{"rule_id": "t", "enabled": True, "default": False,
                                      "conditions": [{"kind": "event_match",
                                                      "key": "content.topic", "pattern": "*"}],
                                      "actions": ["notify"]}]}}
    assert evaluate(rules, message(), ctx()) == []
    assert evaluate(rules, message(topic=None), ctx()) == []
    assert evaluate(rules, message(topic=3), ctx()) == []
    assert evaluate(rules, message(topic=""), ctx()) == ["notify"]


def test_split_key_escapes():
    """Dot-separated paths honour \\. and \\\\ escapes and keep other backslashes."""
    assert split_property_path("content.body") == ["content", "body"]
    assert split_property_path("content.m\\.relates_to.rel_type") == ["content", "m.relates_to", "rel_type"]
    assert split_property_path("content.m\\\\foo") == ["content", "m\\foo"]
    assert split_property_path("content.a\\xb") == ["content", "a\\xb"]


def _is_rule(key, value):
    return {"global": {"override": [{
        "rule_id": "x", "enabled": True, "default": False, "actions": ["notify"],
        "conditions": [{"kind": "event_property_is", "key": key, "value": value}]}]}}


@pytest.mark.parametrize("value,prop,expected", [
    (True, True, True),
    (True, "true", False),
    (True, 1, False),
    (1, True, False),
    (1, 1, True),
    (1, 1.0, False),
    (None, None, True),
    (None, False, False),
    (False, False, True),
    ("a", "a", True),
    ("a", "A", False),
    ("a", ["a"], False),
])
def test_event_property_is_exact(value, prop, expected):
    """event_property_is matches scalars exactly, without casting between types."""
    event = message(**{"m.federate": prop})
    assert (evaluate(_is_rule("content.m\\.federate", value), event, ctx()) == ["notify"]) is expected


def test_event_property_is_absent_property():
    """event_property_is with value null does not match an absent property."""
    assert evaluate(_is_rule("content.nothing", None), message(), ctx()) == []


def test_event_property_contains():
    """event_property_contains needs an array holding exactly the value; partial strings do not count."""
    def rule(value):
        return {"global": {"override": [{
            "rule_id": "x", "enabled": True, "default": False, "actions": ["notify"],
            "conditions": [{"kind": "event_property_contains", "key": "content.alt_aliases",
                            "value": value}]}]}}
    event = message(alt_aliases=["#somewhere:example.org", "#myroom:example.com", 1, {"a": 1}])
    assert evaluate(rule("#myroom:example.com"), event, ctx()) == ["notify"]
    assert evaluate(rule(":example.com"), event, ctx()) == []
    assert evaluate(rule(True), event, ctx()) == []
    assert evaluate(rule(1), event, ctx()) == ["notify"]
    assert evaluate(rule("#x"), message(alt_aliases="#x"), ctx()) == []


@pytest.mark.parametrize("is_,members,expected", [
    ("2", 2, True), ("==2", 3, False), ("<3", 2, True), ("<3", 3, False),
    (">3", 4, True), (">=3", 3, True), ("<=10", 11, False), ("=<2", 1, False), ("x", 2, False),
])
def test_room_member_count(is_, members, expected):
    """room_member_count compares with ==, <, >, <=, >= and rejects anything else."""
    rules = {"global": {"override": [{
        "rule_id": "x", "enabled": True, "default": False, "actions": ["notify"],
        "conditions": [{"kind": "room_member_count", "is": is_}]}]}}
    assert (evaluate(rules, message(), ctx(members=members)) == ["notify"]) is expected


def test_actions_helpers():
    """highlight with no value is true, value false is false, and notify is detected."""
    assert actions_highlight([{"set_tweak": "highlight"}])
    assert not actions_highlight(["notify", {"set_tweak": "highlight", "value": False}])
    assert not actions_notify([{"set_tweak": "sound", "value": "default"}])
    assert actions_notify(["notify"])


# --- validation -------------------------------------------------------------


def test_validate_override_rule():
    """A valid override body is returned as the rule to store."""
    body = {"conditions": [{"kind": "event_match", "key": "content.body", "pattern": "beer"},
                           {"kind": "room_member_count", "is": "<=10"}],
            "actions": ["notify", {"set_tweak": "sound", "value": "beeroclock.wav"}],
            "ignored": 1}
    assert validate_rule("override", "beer", body) == {
        "conditions": body["conditions"], "actions": body["actions"]}
    assert validate_rule("content", "cake", {"pattern": "cake*lie", "actions": ["notify"]}) == {
        "pattern": "cake*lie", "actions": ["notify"]}
    assert validate_rule("room", ROOM, {"actions": []}) == {"actions": []}
    assert validate_rule("sender", OTHER, {"actions": []}) == {"actions": []}


@pytest.mark.parametrize("kind,rule_id,body,errcode", [
    ("global", "x", {"actions": []}, "M_INVALID_PARAM"),
    ("override", ".m.rule.mine", {"conditions": [], "actions": []}, "M_INVALID_PARAM"),
    ("override", "a/b", {"conditions": [], "actions": []}, "M_INVALID_PARAM"),
    ("override", "a\\b", {"conditions": [], "actions": []}, "M_INVALID_PARAM"),
    ("room", "not-a-room", {"actions": []}, "M_INVALID_PARAM"),
    ("sender", "bob", {"actions": []}, "M_INVALID_PARAM"),
    ("override", "x", {"actions": []}, "M_MISSING_PARAM"),
    ("underride", "x", {"actions": []}, "M_MISSING_PARAM"),
    ("content", "x", {"actions": []}, "M_MISSING_PARAM"),
    ("room", ROOM, {}, "M_MISSING_PARAM"),
    ("content", "x", {"pattern": 3, "actions": []}, "M_BAD_JSON"),
    ("override", "x", {"conditions": {}, "actions": []}, "M_BAD_JSON"),
    ("override", "x", {"conditions": [{"key": "type"}], "actions": []}, "M_BAD_JSON"),
    ("override", "x", {"conditions": [{"kind": "event_match", "key": "type"}], "actions": []},
     "M_BAD_JSON"),
    ("override", "x", {"conditions": [{"kind": "event_property_is", "key": "a",
                                       "value": [1]}], "actions": []}, "M_BAD_JSON"),
    ("override", "x", {"conditions": [{"kind": "room_member_count", "is": 2}],
                       "actions": []}, "M_BAD_JSON"),
    ("room", ROOM, {"actions": "notify"}, "M_BAD_JSON"),
    ("room", ROOM, {"actions": ["explode"]}, "M_BAD_JSON"),
    ("room", ROOM, {"actions": [{"value": "x"}]}, "M_BAD_JSON"),
])
def test_validate_rule_errors(kind, rule_id, body, errcode):
    """Bad kinds, reserved or malformed rule ids and malformed bodies are refused with 400."""
    with pytest.raises(BadRequest) as caught:
        validate_rule(kind, rule_id, body)
    assert status_code(caught.value) == 400
    assert caught.value.errcode == errcode


def test_validate_accepts_unknown_condition_kind():
    """An unknown condition kind is stored (it simply never matches)."""
    body = {"conditions": [{"kind": "org.example.future", "x": 1}], "actions": ["notify"]}
    assert validate_rule("override", "x", body)["conditions"] == body["conditions"]


def test_validate_actions_accepts_historical_and_tweaks():
    """notify, dont_notify, coalesce and any set_tweak object are valid actions."""
    actions = ["notify", "dont_notify", "coalesce", {"set_tweak": "custom", "value": [1]}]
    assert validate_actions(actions) == actions


# --- placing rules ----------------------------------------------------------


def test_place_rule():
    """New rules go first; before/after place them next to a user rule; updates keep their place."""
    assert place_rule(["a", "b"], "n") == ["n", "a", "b"]
    assert place_rule(["a", "b"], "b") == ["a", "b"]
    assert place_rule(["a", "b", "c"], "n", before="b") == ["a", "n", "b", "c"]
    assert place_rule(["a", "b", "c"], "n", after="b") == ["a", "b", "n", "c"]
    assert place_rule(["a", "b", "c"], "a", after="c") == ["b", "c", "a"]
    assert place_rule(["a", "b"], "n", before="a", after="b") == ["n", "a", "b"]


@pytest.mark.parametrize("before,after", [("zz", None), (None, ".m.rule.master"), ("n", None)])
def test_place_rule_unknown_anchor(before, after):
    """before/after naming a missing rule, a server-default rule or the rule itself is a 400 M_UNKNOWN."""
    with pytest.raises(BadRequest) as caught:
        place_rule(["a", "n"], "n", before=before, after=after)
    assert (status_code(caught.value), caught.value.errcode) == (400, "M_UNKNOWN")
