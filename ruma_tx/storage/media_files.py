"""
The media repository's byte stores (the C{MediaFiles} port): files named by
their content hash, on local disk (the default, under C{data_dir/media})
or in an S3-compatible bucket (boto3).

Every blocking call (file system, boto3) runs in the media I/O thread pool,
never on the reactor thread; a file is read in chunks, never whole.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, BinaryIO, Callable, TypeVar

from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")


def content_path(sha256: str) -> str:
    """Where a content lives inside a store: C{ab/cd/abcd...}, so no directory grows too large."""
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


class _Threads:
    """Runs blocking calls in the media I/O pool."""

    def __init__(self, reactor: IReactorFromThreads, pool: ThreadPool) -> None:
        self._reactor = reactor
        self._pool = pool

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await deferToThreadPool(self._reactor, self._pool, fn, *args)


class _FileReader:
    """A local file read in chunks, each in a thread, up to a byte limit."""

    def __init__(self, threads: _Threads, file: BinaryIO, remaining: int | None) -> None:
        self._threads = threads
        self._file = file
        self._remaining = remaining

    async def read(self, size: int) -> bytes:
        if self._remaining is not None:
            size = min(size, self._remaining)
        if size <= 0:
            return b""
        data = await self._threads.run(self._file.read, size)
        if self._remaining is not None:
            self._remaining -= len(data)
        return data

    async def close(self) -> None:
        await self._threads.run(self._file.close)


class LocalMediaFiles:
    """
    Files under C{root/content/ab/cd/<sha256>}. A stored upload is renamed
    into place from its temporary file (on the same file system: C{root/tmp}),
    so storing costs no copy.
    """

    def __init__(self, root: Path, reactor: IReactorFromThreads, pool: ThreadPool) -> None:
        self._content = root / "content"
        self._threads = _Threads(reactor, pool)

    def _path(self, sha256: str) -> Path:
        return self._content / content_path(sha256)

    async def store_file(self, sha256: str, path: str) -> None:
        await self._threads.run(self._move_into_place, Path(path), self._path(sha256))

    @staticmethod
    def _move_into_place(source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)
        except OSError:  # another file system: copy, then rename atomically
            partial = target.with_name(target.name + ".partial")
            shutil.copyfile(source, partial)
            os.replace(partial, target)

    async def store_bytes(self, sha256: str, data: bytes) -> None:
        await self._threads.run(self._write, self._path(sha256), data)

    @staticmethod
    def _write(target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, partial = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
        with os.fdopen(descriptor, "wb") as f:
            f.write(data)
        os.replace(partial, target)

    async def open(self, sha256: str, first: int = 0, last: int | None = None) -> _FileReader:
        file = await self._threads.run(self._open_at, self._path(sha256), first)
        return _FileReader(self._threads, file, None if last is None else last - first + 1)

    @staticmethod
    def _open_at(path: Path, first: int) -> BinaryIO:
        file = open(path, "rb", buffering=0)
        try:
            file.seek(first)
        except BaseException:
            file.close()
            raise
        return file

    @asynccontextmanager
    async def local_copy(self, sha256: str) -> AsyncIterator[str]:
        path = self._path(sha256)
        if not await self._threads.run(path.is_file):
            raise FileNotFoundError(sha256)
        yield str(path)

    async def delete(self, sha256: str) -> None:
        await self._threads.run(self._path(sha256).unlink, True)


class _S3Reader:
    """The streamed body of an S3 GetObject, read in chunks in threads."""

    def __init__(self, threads: _Threads, body: Any) -> None:
        self._threads = threads
        self._body = body

    async def read(self, size: int) -> bytes:
        data: bytes = await self._threads.run(self._body.read, size)
        return data

    async def close(self) -> None:
        await self._threads.run(self._body.close)


class S3MediaFiles:
    """
    Files in an S3-compatible bucket, as objects C{<prefix>ab/cd/<sha256>}.
    Uploads stream from the temporary file (boto3's managed, multipart
    C{upload_fileobj}); downloads stream the object's body.

    @param client: a boto3 S3 client (thread-safe; every call of it runs
        in the media I/O pool).
    """

    def __init__(self, client: Any, bucket: str, prefix: str, reactor: IReactorFromThreads,
                 pool: ThreadPool, temp_dir: Path) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix
        self._threads = _Threads(reactor, pool)
        self._temp_dir = temp_dir

    def _key(self, sha256: str) -> str:
        return self._prefix + content_path(sha256)

    async def store_file(self, sha256: str, path: str) -> None:
        await self._threads.run(self._upload, path, self._key(sha256))

    def _upload(self, path: str, key: str) -> None:
        with open(path, "rb") as f:
            self._client.upload_fileobj(f, self._bucket, key)

    async def store_bytes(self, sha256: str, data: bytes) -> None:
        await self._threads.run(
            lambda: self._client.put_object(Bucket=self._bucket, Key=self._key(sha256), Body=data))

    async def open(self, sha256: str, first: int = 0, last: int | None = None) -> _S3Reader:
        byte_range = f"bytes={first}-{'' if last is None else last}"
        body = await self._threads.run(self._get, self._key(sha256), byte_range)
        return _S3Reader(self._threads, body)

    def _get(self, key: str, byte_range: str) -> Any:
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=key, Range=byte_range)
        except self._client.exceptions.NoSuchKey:
            raise FileNotFoundError(key) from None
        return answer["Body"]

    @asynccontextmanager
    async def local_copy(self, sha256: str) -> AsyncIterator[str]:
        descriptor, path = tempfile.mkstemp(dir=self._temp_dir, prefix="s3-")
        os.close(descriptor)
        try:
            await self._threads.run(self._download, self._key(sha256), path)
            yield path
        finally:
            await self._threads.run(Path(path).unlink, True)

    def _download(self, key: str, path: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self._client.download_file(self._bucket, key, path)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise FileNotFoundError(key) from None
            raise

    async def delete(self, sha256: str) -> None:
        await self._threads.run(
            lambda: self._client.delete_object(Bucket=self._bucket, Key=self._key(sha256)))
