"""
The media repository's records (schemas C{018_media.sql}, C{031_remote_media.sql}). SQL only: the
rules are in L{ruma_tx.services.media}.
"""
from __future__ import annotations

from typing import Collection, Mapping

from ruma_tx.matrix.media import ThumbnailSize
from ruma_tx.services.ports.media import LocalMedia, NewContent, RemoteMedia, StoredThumbnail, UploadRefused
from ruma_tx.storage.database import Database, Transaction

_MEDIA_COLUMNS = (
    "m.media_id, m.user_id, m.created_ts, m.sha256, m.content_type, m.upload_name, m.length,"
    " m.unused_expires_ts, m.quarantined_ts IS NOT NULL, c.image_width, c.image_height"
)


class MediaStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def create_pending(self, media_id: str, user_id: str, now_ms: int, expires_ts: int,
                             max_pending: int) -> int | None:
        async def create(t: Transaction) -> int | None:
            await _lock_user(t, user_id)
            row = await t.fetch_one(
                "SELECT count(*), min(unused_expires_ts) FROM local_media"
                " WHERE user_id = %s AND sha256 IS NULL AND unused_expires_ts > %s",
                (user_id, now_ms),
            )
            assert row is not None
            if row[0] >= max_pending:
                return int(row[1])
            await t.execute(
                "INSERT INTO local_media (media_id, user_id, created_ts, unused_expires_ts)"
                " VALUES (%s, %s, %s, %s)",
                (media_id, user_id, now_ms, expires_ts),
            )
            return None

        return await self._db.transaction("create_pending_media", create)

    async def get_media(self, media_id: str) -> LocalMedia | None:
        row = await self._db.fetch_one(
            f"SELECT {_MEDIA_COLUMNS} FROM local_media AS m"
            " LEFT JOIN media_content AS c ON c.sha256 = m.sha256 WHERE m.media_id = %s",
            (media_id,),
        )
        if row is None:
            return None
        (media_id, user_id, created_ts, sha256, content_type, upload_name, length, expires_ts,
         quarantined, width, height) = row
        return LocalMedia(media_id, user_id, created_ts, sha256, content_type, upload_name, length,
                          expires_ts, quarantined, (width, height) if width is not None else None)

    async def uploaded_bytes(self, user_id: str) -> int:
        row = await self._db.fetch_one(
            "SELECT COALESCE(sum(length), 0) FROM local_media WHERE user_id = %s AND sha256 IS NOT NULL",
            (user_id,),
        )
        return int(row[0]) if row else 0

    async def has_content(self, sha256: str) -> bool:
        row = await self._db.fetch_one("SELECT 1 FROM media_content WHERE sha256 = %s", (sha256,))
        return row is not None

    async def add_media(self, media_id: str, user_id: str, content: NewContent, now_ms: int,
                        quota: int | None) -> None:
        # One statement (one round trip) when there is no quota to check.
        sql = (f"WITH content AS ({_ADD_CONTENT}) INSERT INTO local_media (media_id, user_id, created_ts,"
               " sha256, content_type, upload_name, length, uploaded_ts)"
               " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)")
        args = (content.sha256, content.length, now_ms, media_id, user_id, now_ms, content.sha256,
                content.content_type, content.upload_name, content.length, now_ms)
        if quota is None:
            await self._db.execute(sql, args)
            return

        async def add(t: Transaction) -> None:
            await _check_quota(t, user_id, content.length, quota)
            await t.execute(sql, args)

        await self._db.transaction("add_media", add)

    async def fill_pending(self, media_id: str, content: NewContent, now_ms: int, quota: int | None) -> None:
        async def fill(t: Transaction) -> None:
            row = await t.fetch_one("SELECT user_id FROM local_media WHERE media_id = %s", (media_id,))
            if row is None:
                raise UploadRefused("gone")
            await _check_quota(t, row[0], content.length, quota)
            updated = await t.execute(
                f"WITH content AS ({_ADD_CONTENT}) UPDATE local_media SET sha256 = %s, content_type = %s,"
                " upload_name = %s, length = %s, uploaded_ts = %s, unused_expires_ts = NULL"
                " WHERE media_id = %s AND sha256 IS NULL",
                (content.sha256, content.length, now_ms, content.sha256, content.content_type,
                 content.upload_name, content.length, now_ms, media_id),
            )
            if updated == 0:
                raise UploadRefused("uploaded")

        await self._db.transaction("fill_pending_media", fill)

    async def set_image_size(self, sha256: str, width: int, height: int) -> None:
        await self._db.execute(
            "UPDATE media_content SET image_width = %s, image_height = %s WHERE sha256 = %s",
            (width, height, sha256),
        )

    async def get_thumbnail(self, source_sha256: str, size: ThumbnailSize,
                            animated: bool) -> StoredThumbnail | None:
        row = await self._db.fetch_one(
            "SELECT sha256, content_type, length FROM media_thumbnails WHERE source_sha256 = %s"
            " AND width = %s AND height = %s AND method = %s AND animated = %s",
            (source_sha256, size.width, size.height, size.method, animated),
        )
        return StoredThumbnail(*row) if row else None

    async def add_thumbnail(self, source_sha256: str, size: ThumbnailSize, animated: bool,
                            thumbnail: StoredThumbnail, now_ms: int) -> None:
        await self._db.execute(
            f"WITH content AS ({_ADD_CONTENT}) INSERT INTO media_thumbnails (source_sha256, width, height,"
            " method, animated, sha256, content_type, length) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (thumbnail.sha256, thumbnail.length, now_ms, source_sha256, size.width, size.height, size.method,
             animated, thumbnail.sha256, thumbnail.content_type, thumbnail.length),
        )

    async def record_access(self, last_access: Mapping[str, int]) -> None:
        if not last_access:
            return
        await self._db.execute(
            "UPDATE local_media AS m SET last_access_ts = GREATEST(m.last_access_ts, a.ts)"
            " FROM unnest(%s::TEXT[], %s::BIGINT[]) AS a (media_id, ts) WHERE m.media_id = a.media_id",
            (list(last_access), list(last_access.values())),
        )

    async def delete_expired_pending(self, now_ms: int) -> int:
        rows = await self._db.fetch_all(
            "DELETE FROM local_media WHERE sha256 IS NULL AND unused_expires_ts <= %s RETURNING 1",
            (now_ms,),
        )
        return len(rows)

    async def record_remote_access(self, last_access: Mapping[tuple[str, str], int]) -> None:
        if not last_access:
            return
        await self._db.execute(
            "UPDATE remote_media AS m SET last_access_ts = GREATEST(m.last_access_ts, a.ts)"
            " FROM unnest(%s::TEXT[], %s::TEXT[], %s::BIGINT[]) AS a (origin, media_id, ts)"
            " WHERE m.origin = a.origin AND m.media_id = a.media_id",
            ([origin for origin, _ in last_access], [media_id for _, media_id in last_access],
             list(last_access.values())),
        )

    async def delete_media(self, media_id: str) -> list[str] | None:
        async def delete(t: Transaction) -> list[str] | None:
            row = await t.fetch_one("DELETE FROM local_media WHERE media_id = %s RETURNING sha256",
                                    (media_id,))
            if row is None:
                return None
            return [] if row[0] is None else await _delete_unused_content(t, row[0])

        return await self._db.transaction("delete_media", delete)

    async def delete_remote_media(self, origin: str, media_id: str) -> list[str] | None:
        async def delete(t: Transaction) -> list[str] | None:
            row = await t.fetch_one("DELETE FROM remote_media WHERE origin = %s AND media_id = %s"
                                    " RETURNING sha256", (origin, media_id))
            return None if row is None else await _delete_unused_content(t, row[0])

        return await self._db.transaction("delete_remote_media", delete)

    async def media_accessed_before(self, before_ts: int, limit: int, size_gt: int = 0,
                                    keep: Collection[str] = ()) -> list[str]:
        rows = await self._db.fetch_all(
            "SELECT media_id FROM local_media WHERE sha256 IS NOT NULL"
            " AND COALESCE(last_access_ts, uploaded_ts) < %s AND length > %s"
            " AND quarantined_ts IS NULL AND NOT safe_from_quarantine AND media_id <> ALL(%s::TEXT[])"
            " LIMIT %s",
            (before_ts, size_gt, list(keep), limit),
        )
        return [row[0] for row in rows]

    async def remote_media_accessed_before(self, before_ts: int, limit: int) -> list[tuple[str, str]]:
        rows = await self._db.fetch_all(
            "SELECT origin, media_id FROM remote_media WHERE COALESCE(last_access_ts, fetched_ts) < %s"
            " AND quarantined_ts IS NULL LIMIT %s",
            (before_ts, limit),
        )
        return [(origin, media_id) for origin, media_id in rows]

    async def get_remote_media(self, origin: str, media_id: str) -> RemoteMedia | None:
        row = await self._db.fetch_one(
            "SELECT m.sha256, m.content_type, m.upload_name, m.length, c.image_width, c.image_height,"
            " m.quarantined_ts IS NOT NULL FROM remote_media AS m JOIN media_content AS c ON c.sha256 = m.sha256"
            " WHERE m.origin = %s AND m.media_id = %s",
            (origin, media_id),
        )
        if row is None:
            return None
        sha256, content_type, upload_name, length, width, height, quarantined = row
        return RemoteMedia(origin, media_id, sha256, content_type, upload_name, length,
                           (width, height) if width is not None else None, quarantined)

    async def add_remote_media(self, origin: str, media_id: str, content: NewContent, now_ms: int) -> None:
        await self._db.execute(
            f"WITH content AS ({_ADD_CONTENT}) INSERT INTO remote_media (origin, media_id, sha256,"
            " content_type, upload_name, length, fetched_ts) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (content.sha256, content.length, now_ms, origin, media_id, content.sha256, content.content_type,
             content.upload_name, content.length, now_ms),
        )


async def _delete_unused_content(t: Transaction, source: str) -> list[str]:
    """
    Delete the content row C{source} of a media just deleted, with its
    thumbnails' rows, unless a media id (local or remote) still uses it.

    @return: the hashes of the content rows deleted, whose files may go.
    """
    if await t.fetch_one("SELECT 1 FROM local_media WHERE sha256 = %s UNION ALL"
                         " SELECT 1 FROM remote_media WHERE sha256 = %s LIMIT 1", (source, source)):
        return []
    thumbnails = await t.fetch_all(
        "DELETE FROM media_thumbnails WHERE source_sha256 = %s RETURNING sha256", (source,))
    deleted = []
    for sha256 in dict.fromkeys([source, *(r[0] for r in thumbnails)]):
        gone = await t.fetch_one(
            "DELETE FROM media_content AS c WHERE sha256 = %s"
            " AND NOT EXISTS (SELECT 1 FROM local_media WHERE sha256 = c.sha256)"
            " AND NOT EXISTS (SELECT 1 FROM remote_media WHERE sha256 = c.sha256)"
            " AND NOT EXISTS (SELECT 1 FROM media_thumbnails"
            "   WHERE sha256 = c.sha256 OR source_sha256 = c.sha256)"
            " RETURNING sha256",
            (sha256,),
        )
        if gone:
            deleted.append(sha256)
    return deleted


async def _lock_user(t: Transaction, user_id: str) -> None:
    """Serialise a user's media writes (their pending count, their quota) until commit."""
    await t.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("media " + user_id,))


async def _check_quota(t: Transaction, user_id: str, length: int, quota: int | None) -> None:
    if quota is None:
        return
    await _lock_user(t, user_id)
    row = await t.fetch_one(
        "SELECT COALESCE(sum(length), 0) FROM local_media WHERE user_id = %s AND sha256 IS NOT NULL",
        (user_id,),
    )
    if row is not None and int(row[0]) + length > quota:
        raise UploadRefused("quota")


#: The content row of a new file (sha256, length, created_ts), if not there
#: yet: a CTE of the statement recording what uses it, whose foreign key is
#: checked at the end of that statement.
_ADD_CONTENT = ("INSERT INTO media_content (sha256, length, created_ts) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING")
