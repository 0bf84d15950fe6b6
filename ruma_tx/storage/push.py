"""
Push rules, the push actions of events and read positions. SQL only; the
rules themselves live in L{ruma_tx.matrix.push_rules}.
"""
from __future__ import annotations

import json
from typing import Callable, Iterable, Sequence

from ruma_tx.matrix.push_rules import UserRule
from ruma_tx.services.ports.ephemeral import UnreadCountsAsked
from ruma_tx.storage.database import Database, Transaction


def _user_rule(kind: str, rule_id: str, rule_json: str | None, enabled: bool | None,
               priority: int) -> UserRule:
    return UserRule(kind, rule_id, json.loads(rule_json) if rule_json is not None else None,
                    enabled, priority)


async def _record_change(txn: Transaction, user_id: str, position: int) -> None:
    """Remember that the user's rules changed at C{position} (never going back)."""
    await txn.execute(
        "INSERT INTO push_rules_changes (user_id, stream_ordering) VALUES (%s, %s)"
        " ON CONFLICT (user_id) DO UPDATE SET stream_ordering ="
        " GREATEST(push_rules_changes.stream_ordering, EXCLUDED.stream_ordering)",
        (user_id, position),
    )


class PushStore:
    """
    @param database: the L{ruma_tx.storage.database.Database}.
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    # -- push rules ----------------------------------------------------------

    async def get_user_rules(self, user_ids: Iterable[str]) -> dict[str, tuple[list[UserRule], int]]:
        """
        The stored rows of many users' push rules, in one query.

        @return: C{user_id -> (rows, changed_at)} for every user asked
            about: C{changed_at} is the stream position of their latest
            change, 0 if they never changed anything.
        """
        user_ids = list(dict.fromkeys(user_ids))
        if not user_ids:
            return {}
        rows = await self._db.fetch_all(
            "SELECT u.user_id, c.stream_ordering, r.kind, r.rule_id, r.rule_json, r.enabled, r.priority"
            " FROM unnest(%s::text[]) AS u(user_id)"
            " LEFT JOIN push_rules_changes c ON c.user_id = u.user_id"
            " LEFT JOIN push_rules r ON r.user_id = u.user_id",
            (user_ids,),
        )
        found: dict[str, tuple[list[UserRule], int]] = {}
        for user_id, changed_at, kind, rule_id, rule_json, enabled, priority in rows:
            rules, _ = found.setdefault(user_id, ([], changed_at or 0))
            if kind is not None:
                rules.append(_user_rule(kind, rule_id, rule_json, enabled, priority))
        return found

    async def put_user_rule(self, user_id: str, kind: str, rule_id: str, rule: dict,
                            order: Callable[[list[str]], list[str]], position: int) -> None:
        """
        Create or replace a user-defined rule (keeping its C{enabled} flag
        when it exists) and renumber the kind's rules.

        @param rule: what to store as C{rule_json}.
        @param order: given the kind's user-defined rule ids, most important
            first, returns the new order including C{rule_id}; it may raise,
            which rolls everything back.
        @param position: the stream position of the change.
        """

        async def put(txn: Transaction) -> None:
            rows = await txn.fetch_all(
                "SELECT rule_id FROM push_rules WHERE user_id = %s AND kind = %s"
                " AND rule_id NOT LIKE '.%%' ORDER BY priority DESC, rule_id FOR UPDATE",
                (user_id, kind),
            )
            new_order = order([row[0] for row in rows])
            await txn.execute(
                "INSERT INTO push_rules (user_id, kind, rule_id, rule_json, enabled, priority)"
                " VALUES (%s, %s, %s, %s, TRUE, 0)"
                " ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET rule_json = EXCLUDED.rule_json",
                (user_id, kind, rule_id, json.dumps(rule)),
            )
            values = ", ".join(["(%s, %s)"] * len(new_order))
            args: list = []
            for index, rid in enumerate(new_order):
                args += [rid, len(new_order) - index]
            await txn.execute(
                f"UPDATE push_rules AS p SET priority = v.priority"
                f" FROM (VALUES {values}) AS v(rule_id, priority)"
                f" WHERE p.user_id = %s AND p.kind = %s AND p.rule_id = v.rule_id"
                f" AND p.priority <> v.priority",
                args + [user_id, kind],
            )
            await _record_change(txn, user_id, position)

        await self._db.transaction("put_push_rule", put)

    async def delete_user_rule(self, user_id: str, kind: str, rule_id: str, position: int) -> bool:
        """
        Delete a user-defined rule.

        @return: whether it existed.
        """

        async def delete(txn: Transaction) -> bool:
            deleted = await txn.execute(
                "DELETE FROM push_rules WHERE user_id = %s AND kind = %s AND rule_id = %s",
                (user_id, kind, rule_id),
            )
            if deleted:
                await _record_change(txn, user_id, position)
            return bool(deleted)

        return await self._db.transaction("delete_push_rule", delete)

    async def set_rule_enabled(self, user_id: str, kind: str, rule_id: str, enabled: bool,
                               position: int, *, server_default: bool) -> bool:
        """
        Enable or disable a rule. A server-default rule gets a row if it
        has none; a user-defined one must exist.

        @return: whether the rule was changed (C{False}: no such user rule).
        """
        args: tuple[object, ...]
        if server_default:
            sql = ("INSERT INTO push_rules (user_id, kind, rule_id, rule_json, enabled, priority)"
                   " VALUES (%s, %s, %s, NULL, %s, 0)"
                   " ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET enabled = EXCLUDED.enabled")
            args = (user_id, kind, rule_id, enabled)
        else:
            sql = ("UPDATE push_rules SET enabled = %s"
                   " WHERE user_id = %s AND kind = %s AND rule_id = %s")
            args = (enabled, user_id, kind, rule_id)
        return await self._change_one("set_push_rule_enabled", user_id, position, sql, args)

    async def set_rule_actions(self, user_id: str, kind: str, rule_id: str, actions: list,
                               position: int, *, server_default: bool) -> bool:
        """
        Replace a rule's actions. A server-default rule gets a row if it
        has none; a user-defined one must exist (its conditions or pattern
        are kept).

        @return: whether the rule was changed (C{False}: no such user rule).
        """
        encoded = json.dumps(actions)
        if server_default:
            sql = ("INSERT INTO push_rules (user_id, kind, rule_id, rule_json, enabled, priority)"
                   " VALUES (%s, %s, %s, %s, NULL, 0)"
                   " ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET rule_json = EXCLUDED.rule_json")
            args = (user_id, kind, rule_id, json.dumps({"actions": actions}))
        else:
            sql = ("UPDATE push_rules SET rule_json ="
                   " jsonb_set(rule_json::jsonb, '{actions}', %s::jsonb)::text"
                   " WHERE user_id = %s AND kind = %s AND rule_id = %s")
            args = (encoded, user_id, kind, rule_id)
        return await self._change_one("set_push_rule_actions", user_id, position, sql, args)

    async def _change_one(self, name: str, user_id: str, position: int, sql: str,
                          args: Sequence[object]) -> bool:
        async def change(txn: Transaction) -> bool:
            if not await txn.execute(sql, args):
                return False
            await _record_change(txn, user_id, position)
            return True

        return await self._db.transaction(name, change)

    # -- what push evaluation reads ---------------------------------------

    async def get_room_push_state(self, room_id: str) -> tuple[str | None, dict[tuple[str, str], dict]]:
        """
        What evaluating push rules needs of a room, in one query: its
        version and the current C{m.room.create}, C{m.room.power_levels}
        and joined members' C{m.room.member} events.

        @return: C{(room_version, {(type, state_key): pdu})}; the version
            is C{None} for an unknown room.
        """
        rows = await self._db.fetch_all(
            "SELECT r.room_version, c.type, c.state_key, e.pdu FROM rooms r"
            " LEFT JOIN current_state c ON c.room_id = r.room_id AND ("
            "  (c.type IN ('m.room.create', 'm.room.power_levels') AND c.state_key = '')"
            "  OR (c.type = 'm.room.member' AND c.membership = 'join'))"
            " LEFT JOIN events e ON e.event_id = c.event_id"
            " WHERE r.room_id = %s",
            (room_id,),
        )
        if not rows:
            return None, {}
        state = {(event_type, state_key): json.loads(pdu)
                 for _, event_type, state_key, pdu in rows if pdu is not None}
        return rows[0][0], state

    # -- push actions and read positions ----------------------------------

    async def get_thread_unread_counts(
            self, asked: list[UnreadCountsAsked]) -> dict[UnreadCountsAsked, dict[str, dict[str, tuple[int, int]]]]:
        """
        Unread counts per room and thread for many syncs, in one query: for
        each C{(user_id, room_ids, upto)}, the user's push actions in those
        rooms up to C{upto} that are unread. An action is read when it is
        at or before the room's read position (unthreaded receipts) or its
        thread's (threaded receipts, the user's own events), whichever is
        further (spec: "Receiving notifications", threaded read receipts).

        @return: per asked, C{room_id -> thread_id ("main" or a thread
            root) -> (notification_count, highlight_count)}, for threads
            with any.
        """
        indexes, user_ids, room_ids, uptos = [], [], [], []
        for index, (user_id, rooms, upto) in enumerate(asked):
            for room_id in rooms:
                indexes.append(index)
                user_ids.append(user_id)
                room_ids.append(room_id)
                uptos.append(upto)
        counts: dict[UnreadCountsAsked, dict[str, dict[str, tuple[int, int]]]] = {each: {} for each in asked}
        if not indexes:
            return counts
        rows = await self._db.fetch_prepared(
            "SELECT q.i, a.room_id, a.thread_id, count(*) FILTER (WHERE a.notify),"
            " count(*) FILTER (WHERE a.highlight)"
            " FROM unnest(%s::int[], %s::text[], %s::text[], %s::bigint[]) AS q(i, user_id, room_id, upto)"
            " JOIN event_push_actions a"
            "  ON a.user_id = q.user_id AND a.room_id = q.room_id AND a.stream_ordering <= q.upto"
            " LEFT JOIN push_read_position r ON r.user_id = a.user_id AND r.room_id = a.room_id"
            " LEFT JOIN push_thread_read_position t"
            "  ON t.user_id = a.user_id AND t.room_id = a.room_id AND t.thread_id = a.thread_id"
            " WHERE a.stream_ordering > GREATEST(COALESCE(r.stream_ordering, 0), COALESCE(t.stream_ordering, 0))"
            " GROUP BY q.i, a.room_id, a.thread_id",
            (indexes, user_ids, room_ids, uptos),
        )
        for index, room_id, thread_id, notify, highlight in rows:
            counts[asked[index]].setdefault(room_id, {})[thread_id] = (notify, highlight)
        return counts
