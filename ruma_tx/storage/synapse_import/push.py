"""
Import steps for push: push rules, converted to ruma_tx's representation
(see L{ruma_tx.matrix.push_rules}), and pushers.

Synapse keeps a user's rules in C{push_rules} (rule ids C{global/<kind>/<id>};
a content rule's pattern inside its one condition; a changed server-default
rule's actions in a row of priority class -1) and their enabled flags in
C{push_rules_enable}.
"""
from __future__ import annotations

import json

from ruma_tx.matrix.push_rules import RULE_KINDS
from ruma_tx.storage.database import Transaction
from ruma_tx.storage.synapse_import import CopyStep

_KIND_PREFIXES = " OR ".join(f"r.rule_id LIKE 'global/{kind}/%%'" for kind in RULE_KINDS)


def ruma_rule(kind: str, rule_id: str, conditions: str | None, actions: str | None) -> dict | None:
    """
    What ruma_tx stores as C{rule_json} for a Synapse rule: the actions,
    with the conditions (override, underride) or the pattern (content) of
    a user-defined rule; C{None} for a server-default rule whose actions
    Synapse holds no change of.
    """
    if actions is None:
        return None
    rule: dict = {"actions": json.loads(actions)}
    if rule_id.startswith("."):
        return rule
    parsed = json.loads(conditions or "[]")
    if kind in ("override", "underride"):
        rule["conditions"] = parsed
    elif kind == "content":
        rule["pattern"] = parsed[0]["pattern"]
    return rule


class PushRulesStep(CopyStep):
    name = "push_rules"
    select = ("r.user_name, r.rule_id, p.priority, p.conditions, p.actions, e.enabled"
              " FROM (SELECT user_name, rule_id FROM push_rules"
              "  UNION SELECT user_name, rule_id FROM push_rules_enable) AS r"
              " LEFT JOIN push_rules p ON p.user_name = r.user_name AND p.rule_id = r.rule_id"
              " LEFT JOIN push_rules_enable e ON e.user_name = r.user_name AND e.rule_id = r.rule_id")
    # A user-defined rule needs its definition; a server-default one only a change.
    where = f"({_KIND_PREFIXES}) AND (p.rule_id IS NOT NULL OR r.rule_id LIKE 'global/%%/.%%')"
    key = ("r.user_name", "r.rule_id")
    imported = "SELECT COUNT(*) FROM push_rules"

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        rules = []
        for user_id, synapse_id, priority, conditions, actions, enabled in rows:
            _, kind, rule_id = synapse_id.split("/", 2)
            rule = ruma_rule(kind, rule_id, conditions, actions)
            if rule_id.startswith("."):
                rules.append((user_id, kind, rule_id, None if rule is None else json.dumps(rule),
                              None if enabled is None else bool(enabled), 0))
            else:
                rules.append((user_id, kind, rule_id, json.dumps(rule), True if enabled is None else bool(enabled),
                              priority or 0))
        await txn.insert_many("push_rules", ("user_id", "kind", "rule_id", "rule_json", "enabled", "priority"),
                              rules, "ON CONFLICT (user_id, kind, rule_id) DO NOTHING")


class PushersStep(CopyStep):
    """
    HTTP pushers (ruma_tx sends no email) of existing devices. Delivery
    starts after the newest imported event: nothing old is pushed again.
    Runs after the rooms are imported.
    """

    name = "pushers"
    select = ("user_name, app_id, pushkey, device_id, kind, app_display_name, device_display_name, profile_tag,"
              " lang, data, ts, failing_since FROM pushers")
    where = ("kind = 'http' AND COALESCE(enabled, TRUE) AND EXISTS (SELECT 1 FROM devices d"
             " WHERE d.user_id = pushers.user_name AND d.device_id = pushers.device_id"
             " AND NOT COALESCE(d.hidden, FALSE))")
    key = ("user_name", "app_id", "pushkey")
    imported = "SELECT COUNT(*) FROM pushers"

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        row = await txn.fetch_one("SELECT COALESCE(MAX(stream_ordering), 0) FROM events")
        newest = row[0] if row else 0
        await txn.insert_many(
            "pushers", ("user_id", "app_id", "pushkey", "device_id", "kind", "app_display_name",
                        "device_display_name", "profile_tag", "lang", "data", "pushkey_ts", "last_stream_ordering",
                        "failing_since"),
            [(*pusher[:8], pusher[8] or "en", pusher[9] or "{}", pusher[10], newest, pusher[11]) for pusher in rows],
            "ON CONFLICT (user_id, app_id, pushkey) DO NOTHING")
