"""
Import step for the media repository: Synapse's local media ids, with
their files copied from its C{media_store/local_content/ab/cd/rest} layout
into ruma_tx's byte store (local disk or S3), named by content hash.

Thumbnails are not copied: ruma_tx makes them again when first asked.
Synapse's URL-preview images and media ids created but never uploaded are
not moved either; nor is the cache of other servers' media (fetched again
when asked).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from twisted.internet.threads import deferToThreadPool

from ruma_tx.storage.database import Transaction
from ruma_tx.storage.synapse_import import CopyStep

_CHUNK = 1 << 20


def synapse_media_path(media_store: Path, media_id: str) -> Path:
    """Where Synapse keeps a local media id's file."""
    return media_store / "local_content" / media_id[:2] / media_id[2:4] / media_id[4:]


def _copy_hashing(source: Path, temp_dir: Path) -> tuple[str, str, int]:
    """Copy C{source} into a new file in C{temp_dir}: its path, hex SHA-256 and length."""
    digest = hashlib.sha256()
    length = 0
    descriptor, temp_path = tempfile.mkstemp(dir=temp_dir, prefix="synapse-import-")
    try:
        with open(source, "rb") as reading, os.fdopen(descriptor, "wb") as writing:
            while chunk := reading.read(_CHUNK):
                digest.update(chunk)
                length += len(chunk)
                writing.write(chunk)
    except BaseException:
        os.unlink(temp_path)
        raise
    return temp_path, digest.hexdigest(), length


def _remove(path: str) -> None:
    """Remove a temporary file if the byte store left it (S3 uploads copy; local ones move)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class MediaStep(CopyStep):
    """Local media ids and their files; a file missing from Synapse's media store is reported and skipped."""

    name = "media"
    select = ("media_id, media_type, created_ts, upload_name, user_id, quarantined_by, last_access_ts"
              " FROM local_media_repository")
    where = "url_cache IS NULL AND media_length IS NOT NULL AND user_id IS NOT NULL"
    key = ("media_id",)
    imported = "SELECT COUNT(*) FROM local_media"

    async def prepare(self, rows: list[tuple]) -> list[tuple]:
        """Store each file in ruma_tx's byte store: the rows with their content's hash and length."""
        context = self.context
        pool = context.reactor.getThreadPool()
        await deferToThreadPool(context.reactor, pool, context.temp_dir.mkdir, parents=True, exist_ok=True)
        stored = []
        for row in rows:
            source = synapse_media_path(context.media_store, row[0])
            try:
                temp_path, sha256, length = await deferToThreadPool(
                    context.reactor, pool, _copy_hashing, source, context.temp_dir)
            except FileNotFoundError:
                context.warn(f"media {row[0]}: no file {source}; not imported")
                continue
            try:
                await context.media.store_file(sha256, temp_path)
            finally:
                await deferToThreadPool(context.reactor, pool, _remove, temp_path)
            stored.append((*row, sha256, length))
        return stored

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        contents: dict[str, tuple[str, int, int]] = {}
        for _, _, created, *_, sha256, length in rows:
            contents.setdefault(sha256, (sha256, length, created))
        await txn.insert_many("media_content", ("sha256", "length", "created_ts"), list(contents.values()),
                              "ON CONFLICT (sha256) DO NOTHING")
        await txn.insert_many(
            "local_media", ("media_id", "user_id", "created_ts", "sha256", "content_type", "upload_name", "length",
                            "uploaded_ts", "last_access_ts", "quarantined_ts"),
            [(media_id, user_id, created, sha256, content_type, upload_name, length, created, last_access,
              created if quarantined_by else None)
             for (media_id, content_type, created, upload_name, user_id, quarantined_by, last_access, sha256,
                  length) in rows],
            "ON CONFLICT (media_id) DO NOTHING")
