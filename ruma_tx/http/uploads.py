"""
Media upload bodies, streamed to disk with bounded memory.

Twisted keeps a request body in memory (or in an anonymous temporary file
it writes on the reactor thread). For the media upload paths only,
L{MatrixRequest} hands the body to an L{UploadSpool} instead: chunks are
queued as they arrive and written, and hashed (SHA-256), in the media I/O
thread pool, one batch at a time, into a temporary file under
C{data_dir/media/tmp}. While more than L{HIGH_WATER} bytes wait to be
written the connection stops being read (TCP pushes back on the client),
so a 200 MB upload holds a few MB of memory at most.

A body over the size limit, or cut short by the client, leaves nothing
behind: the temporary file is deleted.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from ruma_tx.logs import logger
from ruma_tx.matrix.errors import BadRequest
from ruma_tx.services.ports.media import SNIFF_BYTES, SpooledUpload

log = logger(__name__)

#: Bytes waiting to be written past which the connection stops being read,
#: and below which it is read again.
HIGH_WATER = 2 * 1024 * 1024
LOW_WATER = 512 * 1024
#: Chunks are written in batches of at least this many bytes (the last one
#: goes with closing the file), so an upload costs few trips to a thread.
BATCH = 1024 * 1024


class UploadSpool:
    """
    One upload body on its way to a temporary file.

    The request feeds it with L{write}; the endpoint takes the finished
    file with L{claim} and gives it back with L{release}. Whoever holds it
    last deletes the file: the endpoint after storing it (a store that
    keeps it has moved it away by then), or the request when it ends
    without an endpoint claiming it (refused before, or client gone).
    """

    def __init__(self, directory: Path, max_bytes: int, reactor: IReactorFromThreads, pool: ThreadPool,
                 sniff: Callable[[bytes], tuple[str, ...]], pause: Callable[[], None],
                 resume: Callable[[], None]) -> None:
        self._directory = directory
        self._sniff = sniff
        self._max_bytes = max_bytes
        self._reactor = reactor
        self._pool = pool
        self._pause = pause
        self._resume = resume
        self._paused = False
        self._queue: list[bytes] = []
        self._queued = 0
        self._writing: defer.Deferred[None] | None = None
        self._failure: Failure | None = None
        self._file: BinaryIO | None = None
        self._path: str | None = None
        self._hash = hashlib.sha256()
        self._head = b""
        self.length = 0
        self.claimed = False
        self._released = False

    def write(self, data: bytes) -> bool:
        """
        Queue a chunk of the body (on the reactor thread).

        @return: C{False} once the body is over the size limit: the spool
            is released and takes nothing more.
        """
        if self._released:
            return False
        self.length += len(data)
        if self.length > self._max_bytes:
            self.release()
            return False
        if len(self._head) < SNIFF_BYTES:
            self._head += data[:SNIFF_BYTES - len(self._head)]
        self._queue.append(data)
        self._queued += len(data)
        if self._writing is None:
            if self._queued >= BATCH:
                self._write_queued()
        elif self._queued > HIGH_WATER and not self._paused:
            self._paused = True
            self._pause()
        return True

    def _write_queued(self) -> None:
        chunks, self._queue, self._queued = self._queue, [], 0
        self._writing = deferToThreadPool(self._reactor, self._pool, self._write_chunks, chunks)
        self._writing.addCallbacks(self._written, self._write_failed)

    def _write_chunks(self, chunks: list[bytes]) -> None:
        """In a thread: append to the file (made on the first batch) and the hash."""
        if self._file is None:
            self._directory.mkdir(parents=True, exist_ok=True)
            descriptor, self._path = tempfile.mkstemp(dir=self._directory, prefix="upload-")
            self._file = os.fdopen(descriptor, "wb")
        for chunk in chunks:
            self._file.write(chunk)
            self._hash.update(chunk)

    def _written(self, _: None) -> None:
        self._writing = None
        if self._queued >= BATCH and not self._released:
            self._write_queued()
        if self._paused and self._queued < LOW_WATER:
            self._paused = False
            self._resume()

    def _write_failed(self, failure: Failure) -> None:
        self._writing = None
        self._failure = failure
        log.failure("could not write an upload to {directory}", failure, directory=str(self._directory))
        self._queue, self._queued = [], 0
        if self._paused:
            self._paused = False
            self._resume()

    async def _drained(self) -> None:
        """Once every queued chunk is written (or writing failed)."""
        while self._writing is not None:
            await _observe(self._writing)

    async def claim(self) -> SpooledUpload:
        """
        The whole body, in its temporary file (the body has been received).

        @raise BadRequest: when the upload was given up (its client left
            before the endpoint took it).
        """
        if self._released:
            raise BadRequest("M_UNKNOWN", "The upload was abandoned")
        self.claimed = True
        await self._drained()
        if self._failure is not None:
            self._failure.raiseException()
        rest, self._queue, self._queued = self._queue, [], 0
        sniffed = await deferToThreadPool(self._reactor, self._pool, self._close, rest)
        assert self._path is not None
        return SpooledUpload(self._path, self._hash.hexdigest(), self.length, sniffed)

    def _close(self, rest: list[bytes]) -> tuple[str, ...]:
        """
        In a thread: write the last chunks and close the file (made now if
        not yet); sniff the content type (in the same trip to a thread).
        """
        self._write_chunks(rest)
        assert self._file is not None
        self._file.close()
        return self._sniff(self._head)

    def release(self) -> None:
        """Delete the temporary file, once any write in progress ends. Idempotent."""
        if self._released:
            return
        self._released = True
        self._queue, self._queued = [], 0
        defer.ensureDeferred(self._delete())

    def release_unclaimed(self) -> None:
        """At the end of the request: release the file unless an endpoint holds it."""
        if not self.claimed:
            self.release()

    async def _delete(self) -> None:
        try:
            await self._drained()
            await deferToThreadPool(self._reactor, self._pool, self._remove)
        except Exception:
            log.failure("could not delete an upload's temporary file")

    def _remove(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._path is not None:
            Path(self._path).unlink(missing_ok=True)


def _observe(d: defer.Deferred[None]) -> defer.Deferred[None]:
    """A Deferred that fires when C{d} does, without taking its result."""
    observer: defer.Deferred[None] = defer.Deferred()

    def fire(result: object) -> object:
        observer.callback(None)
        return result

    d.addBoth(fire)
    return observer


class UploadBodies:
    """
    Which requests' bodies are uploads (and where they go): the site asks
    it at the end of each request's headers.

    @param accepts: whether C{(method, path)} (bytes, the path without its
        query) is an upload endpoint.
    @param sniff: the content types found in a file's first bytes.
    @param directory: where the temporary files go (emptied at start:
        whatever is there was left by a crash).
    """

    def __init__(self, *, directory: Path, max_bytes: int, reactor: IReactorFromThreads, pool: ThreadPool,
                 accepts: Callable[[bytes, bytes], bool], sniff: Callable[[bytes], tuple[str, ...]]) -> None:
        self._directory = directory
        self._sniff = sniff
        self.max_bytes = max_bytes
        self._reactor = reactor
        self._pool = pool
        self._accepts = accepts
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.iterdir():
            leftover.unlink(missing_ok=True)

    def accepts(self, method: bytes, uri: bytes) -> bool:
        return self._accepts(method, uri.split(b"?", 1)[0])

    def open(self, pause: Callable[[], None], resume: Callable[[], None]) -> UploadSpool:
        return UploadSpool(self._directory, self.max_bytes, self._reactor, self._pool, self._sniff, pause,
                           resume)
