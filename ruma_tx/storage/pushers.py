"""
Pushers, the delivery positions of pushers, and the reads of push actions
(C{event_push_actions} and the read positions) that delivery and
C{/notifications} need (schema C{022_pushers.sql}). SQL only: the rules
live in L{ruma_tx.matrix.pushers}.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from ruma_tx.matrix.pushers import Pusher, PusherSettings, RoomContext
from ruma_tx.services.ports.pushers import (
    ListedNotification,
    PendingNotification,
    PushAction,
)
from ruma_tx.storage.database import Database, Transaction
from ruma_tx.storage.event_rows import event_columns, stored_event

#: What a pusher is set with; the columns read add its id first.
_SET_COLUMNS = ("user_id, device_id, app_id, pushkey, kind, app_display_name, device_display_name,"
                " profile_tag, lang, data, pushkey_ts, last_stream_ordering")
_PUSHER_COLUMNS = f"pusher_id, {_SET_COLUMNS}, failing_since"

_ACTION_COLUMNS = "a.stream_ordering, a.room_id, a.notify, a.highlight, a.actions"

#: Joins each push action C{a} to the user's read positions: C{r}, the
#: room's (unthreaded receipts), and C{t}, that of the action's thread
#: (threaded receipts, the user's own events).
_THREAD_READ_POSITION = (" LEFT JOIN push_thread_read_position t"
                         " ON t.user_id = a.user_id AND t.room_id = a.room_id AND t.thread_id = a.thread_id")
_READ_POSITIONS = (" LEFT JOIN push_read_position r ON r.user_id = a.user_id AND r.room_id = a.room_id"
                   + _THREAD_READ_POSITION)

#: A push action is read at or before the further of its two read
#: positions: the rule of /sync's unread counts (L{ruma_tx.storage.push}).
_READ_UP_TO = "GREATEST(COALESCE(r.stream_ordering, 0), COALESCE(t.stream_ordering, 0))"


def _pusher(row: Sequence[Any]) -> Pusher:
    (pusher_id, user_id, device_id, app_id, pushkey, kind, app_display_name, device_display_name,
     profile_tag, lang, data, pushkey_ts, last_stream_ordering, failing_since) = row
    return Pusher(pusher_id, user_id, device_id, app_id, pushkey, kind, app_display_name,
                  device_display_name, profile_tag, lang, json.loads(data), pushkey_ts,
                  last_stream_ordering, failing_since)


def _action(row: Sequence[Any]) -> PushAction:
    return PushAction(*row[:5])


def _object(text: str | None) -> dict:
    value = json.loads(text) if text else None
    return value if isinstance(value, dict) else {}


class PusherStore:
    """
    @param database: the L{ruma_tx.storage.database.Database}.
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    # -- pushers ------------------------------------------------------------

    async def get_pushers(self, user_id: str) -> list[Pusher]:
        rows = await self._db.fetch_all(
            f"SELECT {_PUSHER_COLUMNS} FROM pushers WHERE user_id = %s ORDER BY pusher_id", (user_id,))
        return [_pusher(row) for row in rows]

    async def set_pusher(self, user_id: str, device_id: str, settings: PusherSettings, *,
                         now_ms: int, position: int) -> list[str]:
        async def put(txn: Transaction) -> list[str]:
            removed: list[tuple] = []
            if not settings.append:
                removed = await txn.fetch_all(
                    "DELETE FROM pushers WHERE app_id = %s AND pushkey = %s AND user_id <> %s"
                    " RETURNING user_id",
                    (settings.app_id, settings.pushkey, user_id),
                )
            # An update keeps the pusher's delivery position, and starts
            # afresh with a gateway that failed (its URL may be new).
            await txn.execute(
                f"INSERT INTO pushers ({_SET_COLUMNS})"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (user_id, app_id, pushkey) DO UPDATE SET"
                " device_id = EXCLUDED.device_id, kind = EXCLUDED.kind,"
                " app_display_name = EXCLUDED.app_display_name,"
                " device_display_name = EXCLUDED.device_display_name,"
                " profile_tag = EXCLUDED.profile_tag, lang = EXCLUDED.lang, data = EXCLUDED.data,"
                " pushkey_ts = EXCLUDED.pushkey_ts, failing_since = NULL",
                (user_id, device_id, settings.app_id, settings.pushkey, settings.kind,
                 settings.app_display_name, settings.device_display_name, settings.profile_tag,
                 settings.lang, json.dumps(settings.data), now_ms, position),
            )
            return sorted({row[0] for row in removed})

        return await self._db.transaction("set_pusher", put)

    async def delete_pusher(self, user_id: str, app_id: str, pushkey: str) -> bool:
        row = await self._db.fetch_one(
            "DELETE FROM pushers WHERE user_id = %s AND app_id = %s AND pushkey = %s RETURNING 1",
            (user_id, app_id, pushkey),
        )
        return row is not None

    # -- delivery -----------------------------------------------------------

    async def get_all_pusher_ids(self) -> list[tuple[int, str]]:
        rows = await self._db.fetch_all("SELECT pusher_id, user_id FROM pushers ORDER BY pusher_id")
        return [(pusher_id, user_id) for pusher_id, user_id in rows]

    async def get_pusher_ids(self, user_id: str) -> list[int]:
        rows = await self._db.fetch_all(
            "SELECT pusher_id FROM pushers WHERE user_id = %s ORDER BY pusher_id", (user_id,))
        return [row[0] for row in rows]

    async def get_pusher(self, pusher_id: int) -> Pusher | None:
        row = await self._db.fetch_one(
            f"SELECT {_PUSHER_COLUMNS} FROM pushers WHERE pusher_id = %s", (pusher_id,))
        return _pusher(row) if row else None

    async def get_pending(self, user_id: str, *, after: int, upto: int,
                          limit: int) -> list[PendingNotification]:
        rows = await self._db.fetch_all(
            f"SELECT {_ACTION_COLUMNS}, e.event_id, COALESCE(e.client_json, e.pdu)"
            f" FROM event_push_actions a JOIN events e ON e.stream_ordering = a.stream_ordering"
            f"{_READ_POSITIONS}"
            f" WHERE a.user_id = %s AND a.notify AND a.stream_ordering > %s AND a.stream_ordering <= %s"
            f" AND a.stream_ordering > {_READ_UP_TO}"
            f" ORDER BY a.stream_ordering LIMIT %s",
            (user_id, after, upto, limit),
        )
        pending = []
        for row in rows:
            event = _object(row[6])
            event["event_id"] = row[5]
            pending.append(PendingNotification(_action(row), event))
        return pending

    async def get_room_context(self, room_id: str, sender: str) -> RoomContext:
        rows = await self._db.fetch_all(
            "SELECT c.type, COALESCE(e.client_json, e.pdu) FROM current_state c"
            " JOIN events e ON e.stream_ordering = c.stream_ordering"
            " WHERE c.room_id = %s AND ((c.type IN ('m.room.name', 'm.room.canonical_alias')"
            " AND c.state_key = '') OR (c.type = 'm.room.member' AND c.state_key = %s))",
            (room_id, sender),
        )
        found: dict[str, str] = {}
        for event_type, event_json in rows:
            content = _object(event_json).get("content")
            key = {"m.room.name": "name", "m.room.canonical_alias": "alias",
                   "m.room.member": "displayname"}[event_type]
            value = content.get(key) if isinstance(content, dict) else None
            if isinstance(value, str):
                found[event_type] = value
        return RoomContext(room_name=found.get("m.room.name"),
                           room_alias=found.get("m.room.canonical_alias"),
                           sender_display_name=found.get("m.room.member"))

    async def get_unread_count(self, user_id: str, upto: int) -> int:
        # Joined rooms one by one (the primary key's order), reading only
        # what follows each room's read position: never the whole history.
        row = await self._db.fetch_one(
            "SELECT (SELECT COALESCE(sum(n.unread), 0) FROM current_state m"
            " LEFT JOIN push_read_position r ON r.user_id = m.state_key AND r.room_id = m.room_id"
            " CROSS JOIN LATERAL (SELECT count(*) AS unread FROM event_push_actions a"
            f" {_THREAD_READ_POSITION}"
            "  WHERE a.user_id = m.state_key AND a.room_id = m.room_id AND a.notify"
            "  AND a.stream_ordering > COALESCE(r.stream_ordering, 0)"
            f" AND a.stream_ordering > {_READ_UP_TO} AND a.stream_ordering <= %s) n"
            " WHERE m.type = 'm.room.member' AND m.state_key = %s AND m.membership = 'join')"
            " + (SELECT count(*) FROM current_state WHERE type = 'm.room.member' AND state_key = %s"
            " AND membership = 'invite')",
            (upto, user_id, user_id),
        )
        return int(row[0]) if row else 0

    async def mark_delivered(self, pusher_id: int, stream_ordering: int) -> bool:
        row = await self._db.fetch_one(
            "UPDATE pushers SET last_stream_ordering = GREATEST(last_stream_ordering, %s),"
            " failing_since = NULL WHERE pusher_id = %s RETURNING 1",
            (stream_ordering, pusher_id),
        )
        return row is not None

    async def set_failing_since(self, pusher_id: int, failing_since: int) -> None:
        await self._db.execute(
            "UPDATE pushers SET failing_since = %s WHERE pusher_id = %s", (failing_since, pusher_id))

    async def remove_pusher(self, pusher_id: int) -> None:
        await self._db.execute("DELETE FROM pushers WHERE pusher_id = %s", (pusher_id,))

    # -- /notifications -------------------------------------------------------

    async def get_notifications(self, user_id: str, *, before: int | None, upto: int, limit: int,
                                only_highlight: bool) -> list[ListedNotification]:
        flag = "a.highlight" if only_highlight else "a.notify"
        rows = await self._db.fetch_all(
            f"SELECT {_ACTION_COLUMNS}, e.origin_server_ts,"
            f" {_READ_UP_TO} >= a.stream_ordering, {event_columns('e', pdu=False)}"
            f" FROM event_push_actions a JOIN events e ON e.stream_ordering = a.stream_ordering"
            f"{_READ_POSITIONS}"
            f" WHERE a.user_id = %s AND {flag} AND a.stream_ordering <= %s AND a.stream_ordering < %s"
            f" ORDER BY a.stream_ordering DESC LIMIT %s",
            (user_id, upto, upto + 1 if before is None else before, limit),
        )
        return [ListedNotification(_action(row), stored_event(row[7:]), row[5], row[6]) for row in rows]
