"""
The admin API's media records (schemas C{018_media.sql}, C{031_remote_media.sql},
C{038_admin_media.sql}). SQL only: the rules are in
L{ruma_tx.services.admin_media}.
"""
from __future__ import annotations

from typing import Any, Collection, Sequence

from ruma_tx.services.ports.admin_media import Listing, MediaUsage, Paging, UsageFilter, UserMedia
from ruma_tx.storage.database import Database, Transaction

#: The SQL of each order of a user's media list (the names are the API's).
_USER_MEDIA_ORDER = {
    "media_id": "media_id", "upload_name": "upload_name", "created_ts": "created_ts",
    "last_access_ts": "last_access_ts", "media_length": "length", "media_type": "content_type",
    "quarantined_by": "quarantined_by", "safe_from_quarantine": "safe_from_quarantine",
}
_USAGE_ORDER = {
    "user_id": "m.user_id", "displayname": "p.displayname", "media_length": "media_length",
    "media_count": "media_count",
}


class AdminMediaStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def room_exists(self, room_id: str) -> bool:
        return await self._db.fetch_one("SELECT 1 FROM rooms WHERE room_id = %s", (room_id,)) is not None

    async def media_uris_in_room(self, room_id: str, paths: Sequence[Sequence[str]]) -> list[str]:
        values = ", ".join("(e.pdu::jsonb -> 'content' #>> %s::TEXT[])" for _ in paths)
        rows = await self._db.fetch_all(
            f"SELECT DISTINCT v.uri FROM events AS e CROSS JOIN LATERAL (VALUES {values}) AS v (uri)"
            " WHERE e.room_id = %s AND e.pdu LIKE '%%mxc://%%' AND v.uri LIKE 'mxc://%%' ORDER BY v.uri",
            (*(list(path) for path in paths), room_id),
        )
        return [row[0] for row in rows]

    async def quarantine(self, local: Collection[str], remote: Collection[tuple[str, str]], by: str,
                         now_ms: int) -> int:
        async def quarantine(t: Transaction) -> int:
            count = 0
            if local:
                count += await t.execute(
                    f"UPDATE local_media SET {_QUARANTINED}"
                    " WHERE media_id = ANY(%s::TEXT[]) AND NOT safe_from_quarantine",
                    (now_ms, by, list(local)),
                )
            if remote:
                count += await t.execute(
                    f"UPDATE remote_media AS m SET {_QUARANTINED}"
                    f" FROM {_REMOTE_KEYS} WHERE m.origin = k.origin AND m.media_id = k.media_id",
                    (now_ms, by, *_remote_keys(remote)),
                )
            return count

        return await self._db.transaction("quarantine_media", quarantine)

    async def quarantine_media_of_user(self, user_id: str, by: str, now_ms: int) -> int:
        async def quarantine(t: Transaction) -> int:
            return await t.execute(
                f"UPDATE local_media SET {_QUARANTINED} WHERE user_id = %s AND NOT safe_from_quarantine",
                (now_ms, by, user_id),
            )

        return await self._db.transaction("quarantine_media_of_user", quarantine)

    async def unquarantine(self, local: Collection[str], remote: Collection[tuple[str, str]]) -> None:
        if local:
            await self._db.execute(
                "UPDATE local_media SET quarantined_ts = NULL, quarantined_by = NULL"
                " WHERE media_id = ANY(%s::TEXT[])",
                (list(local),),
            )
        if remote:
            await self._db.execute(
                "UPDATE remote_media AS m SET quarantined_ts = NULL, quarantined_by = NULL"
                f" FROM {_REMOTE_KEYS} WHERE m.origin = k.origin AND m.media_id = k.media_id",
                _remote_keys(remote),
            )

    async def set_protected(self, media_id: str, protected: bool) -> None:
        await self._db.execute("UPDATE local_media SET safe_from_quarantine = %s WHERE media_id = %s",
                               (protected, media_id))

    async def media_of_user(self, user_id: str, paging: Paging) -> Listing[UserMedia]:
        where = "FROM local_media WHERE user_id = %s AND sha256 IS NOT NULL"
        rows = await self._db.fetch_all(
            "SELECT media_id, content_type, length, upload_name, created_ts, last_access_ts, quarantined_by,"
            f" safe_from_quarantine {where} ORDER BY {_order(_USER_MEDIA_ORDER, paging)}, media_id"
            " LIMIT %s OFFSET %s",
            (user_id, paging.limit, paging.offset),
        )
        total = await self._db.fetch_one(f"SELECT count(*) {where}", (user_id,))
        return Listing([UserMedia(*row) for row in rows], total[0] if total else 0)

    async def media_usage(self, usage: UsageFilter, paging: Paging) -> Listing[MediaUsage]:
        conditions = ["m.sha256 IS NOT NULL"]
        args: list[Any] = []
        if usage.from_ts is not None:
            conditions.append("m.created_ts >= %s")
            args.append(usage.from_ts)
        if usage.until_ts is not None:
            conditions.append("m.created_ts <= %s")
            args.append(usage.until_ts)
        if usage.search_term is not None:
            # The localpart or the display name, ignoring case.
            conditions.append("(strpos(lower(split_part(substr(m.user_id, 2), ':', 1)), lower(%s)) > 0"
                              " OR strpos(lower(p.displayname), lower(%s)) > 0)")
            args += [usage.search_term, usage.search_term]
        grouped = ("SELECT m.user_id, p.displayname, count(*) AS media_count, sum(m.length) AS media_length"
                   " FROM local_media AS m LEFT JOIN profiles AS p ON p.user_id = m.user_id"
                   f" WHERE {' AND '.join(conditions)} GROUP BY m.user_id, p.displayname")
        rows = await self._db.fetch_all(
            f"{grouped} ORDER BY {_order(_USAGE_ORDER, paging)}, m.user_id LIMIT %s OFFSET %s",
            (*args, paging.limit, paging.offset),
        )
        total = await self._db.fetch_one(f"SELECT count(*) FROM ({grouped}) AS g", args)
        usages = [MediaUsage(user_id, name, int(count), int(length)) for user_id, name, count, length in rows]
        return Listing(usages, total[0] if total else 0)

    async def avatar_media_ids(self, mxc_prefix: str) -> set[str]:
        rows = await self._db.fetch_all(
            "SELECT substr(a.uri, length(%s) + 1) FROM ("
            "  SELECT avatar_url AS uri FROM profiles"
            "  UNION SELECT e.pdu::jsonb #>> '{content,url}' FROM current_state AS s"
            "    JOIN events AS e ON e.event_id = s.event_id WHERE s.type = 'm.room.avatar'"
            "  UNION SELECT e.pdu::jsonb #>> '{content,avatar_url}' FROM current_state AS s"
            "    JOIN events AS e ON e.event_id = s.event_id WHERE s.type = 'm.room.member'"
            ") AS a WHERE left(a.uri, length(%s)) = %s",
            (mxc_prefix, mxc_prefix, mxc_prefix),
        )
        return {row[0] for row in rows}


#: Quarantined by an admin (C{%s}: now, the admin); kept from its first time.
_QUARANTINED = "quarantined_ts = COALESCE(quarantined_ts, %s), quarantined_by = %s"
_REMOTE_KEYS = "unnest(%s::TEXT[], %s::TEXT[]) AS k (origin, media_id)"


def _remote_keys(remote: Collection[tuple[str, str]]) -> tuple[list[str], list[str]]:
    return [origin for origin, _ in remote], [media_id for _, media_id in remote]


def _order(columns: dict[str, str], paging: Paging) -> str:
    """The SQL of a listing's order (its name checked against C{columns}: no SQL comes from a request)."""
    return f"{columns[paging.order_by]} {'DESC' if paging.backwards else 'ASC'}"
