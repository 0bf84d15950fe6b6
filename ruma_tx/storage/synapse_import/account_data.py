"""
Import steps for account data: global (the ignore list included), per
room, and room tags, which Synapse keeps in a table of their own and
ruma_tx as each room's C{m.tag} entry (C{{"tags": {tag: content}}}).

Push rules are not account data in either server (C{m.push_rules} is made
from the push rule tables, see push.py): an C{m.push_rules} row among
Synapse's account data is not moved.
"""
from __future__ import annotations

import json

from ruma_tx.storage.database import Transaction
from ruma_tx.storage.synapse_import import IMPORT_POSITION, CopyStep

#: ruma_tx's room_id of global account data.
_GLOBAL = ""
_COLUMNS = ("user_id", "room_id", "type", "content", "stream_position")
_KEEP = "ON CONFLICT (user_id, room_id, type) DO NOTHING"


class GlobalAccountDataStep(CopyStep):
    name = "account_data"
    select = "user_id, account_data_type, content FROM account_data"
    where = "account_data_type <> 'm.push_rules'"
    key = ("user_id", "account_data_type")
    imported = f"SELECT COUNT(*) FROM account_data WHERE room_id = '{_GLOBAL}'"

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        await txn.insert_many("account_data", _COLUMNS,
                              [(user_id, _GLOBAL, data_type, content, IMPORT_POSITION)
                               for user_id, data_type, content in rows], _KEEP)


class RoomAccountDataStep(CopyStep):
    """Per-room account data (C{m.fully_read} included)."""

    name = "room_account_data"
    select = "user_id, room_id, account_data_type, content FROM room_account_data"
    where = "account_data_type <> 'm.tag'"
    key = ("user_id", "room_id", "account_data_type")
    imported = f"SELECT COUNT(*) FROM account_data WHERE room_id <> '{_GLOBAL}' AND type <> 'm.tag'"

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        await txn.insert_many("account_data", _COLUMNS,
                              [(*row, IMPORT_POSITION) for row in rows], _KEEP)


class TagsStep(CopyStep):
    """Room tags: one C{m.tag} entry per user and room."""

    name = "tags"
    select = "user_id, room_id FROM (SELECT DISTINCT user_id, room_id FROM room_tags) AS tagged"
    key = ("user_id", "room_id")
    imported = "SELECT COUNT(*) FROM account_data WHERE type = 'm.tag'"

    async def prepare(self, rows: list[tuple]) -> list[tuple]:
        """The batch's rooms with their tags: C{(user_id, room_id, m.tag content)}."""
        users = sorted({user_id for user_id, _ in rows})
        holes = ", ".join(["%s"] * len(users))
        tags: dict[tuple[str, str], dict] = {(user_id, room_id): {} for user_id, room_id in rows}
        for user_id, room_id, tag, content in await self.context.source.fetch_all(
                f"SELECT user_id, room_id, tag, content FROM room_tags WHERE user_id IN ({holes})", users):
            if (user_id, room_id) in tags:
                tags[(user_id, room_id)][tag] = json.loads(content)
        return [(user_id, room_id, json.dumps({"tags": room_tags}, ensure_ascii=False))
                for (user_id, room_id), room_tags in tags.items()]

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        await txn.insert_many("account_data", _COLUMNS,
                              [(user_id, room_id, "m.tag", content, IMPORT_POSITION)
                               for user_id, room_id, content in rows], _KEEP)
