"""
The upload spool (ruma_tx.http.uploads): bodies written and hashed in
batches off the reactor thread, the connection paused while too much
waits, and nothing left behind by a body over the limit or abandoned.
Threads are replaced by a pool that runs each job when the test says.
"""
import hashlib

import pytest
import pytest_twisted
from twisted.internet import defer

from ruma_tx.http.uploads import BATCH, HIGH_WATER, UploadBodies, UploadSpool
from ruma_tx.matrix.errors import BadRequest


class StepPool:
    """A thread pool whose jobs wait until C{run_all}; the reactor's callFromThread runs at once."""

    def __init__(self):
        self.jobs = []

    def callInThreadWithCallback(self, on_result, fn, *args, **kwargs):  # noqa: N802
        self.jobs.append((on_result, fn, args, kwargs))

    def callFromThread(self, fn, *args, **kwargs):  # noqa: N802  (the reactor's)
        fn(*args, **kwargs)

    def run_all(self):
        while self.jobs:
            on_result, fn, args, kwargs = self.jobs.pop(0)
            try:
                result = fn(*args, **kwargs)
            except Exception as e:  # pragma: no cover - reported to the waiter
                on_result(False, e)
            else:
                on_result(True, result)


class Flow:
    def __init__(self):
        self.paused = False
        self.pauses = 0

    def pause(self):
        self.paused = True
        self.pauses += 1

    def resume(self):
        self.paused = False


def spool(tmp_path, pool, flow, max_bytes=10 * 1024 * 1024) -> UploadSpool:
    return UploadSpool(tmp_path, max_bytes, pool, pool, lambda head: ("sniffed", head[:2].decode()),
                       flow.pause, flow.resume)


@pytest_twisted.ensureDeferred
async def test_a_body_is_written_in_batches_and_hashed(tmp_path):
    """Chunks wait until a batch is full; the claimed file holds the body, with its hash and sniffed type."""
    pool, flow = StepPool(), Flow()
    body = spool(tmp_path, pool, flow)
    chunks = [bytes([i]) * (BATCH // 4) for i in range(10)]
    for chunk in chunks[:3]:
        assert body.write(chunk)
    assert pool.jobs == []  # under one batch: nothing written yet
    body.write(chunks[3])
    assert len(pool.jobs) == 1
    for chunk in chunks[4:]:
        body.write(chunk)
    pool.run_all()
    claiming = defer.ensureDeferred(body.claim())
    pool.run_all()
    upload = await claiming
    data = b"".join(chunks)
    assert (upload.length, upload.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert upload.sniffed == ("sniffed", "\x00\x00")
    with open(upload.path, "rb") as f:
        assert f.read() == data
    body.release()
    pool.run_all()
    assert list(tmp_path.iterdir()) == []


def test_reading_pauses_while_too_much_waits(tmp_path):
    """Past the high-water mark the connection is paused, and resumed once the writes catch up."""
    pool, flow = StepPool(), Flow()
    body = spool(tmp_path, pool, flow)
    chunk = b"x" * 65536
    sent = 0
    while not flow.paused:
        body.write(chunk)
        sent += len(chunk)
        assert sent <= HIGH_WATER + BATCH + len(chunk)
    pool.run_all()
    assert not flow.paused and flow.pauses == 1


def test_a_body_over_the_limit_keeps_nothing(tmp_path):
    """Once over the limit the spool refuses more, and its file is deleted when the writes end."""
    pool, flow = StepPool(), Flow()
    body = spool(tmp_path, pool, flow, max_bytes=BATCH * 2)
    assert body.write(b"a" * BATCH)
    assert body.write(b"b" * BATCH)
    assert not body.write(b"c")
    assert not body.write(b"d")
    pool.run_all()
    assert list(tmp_path.iterdir()) == []


@pytest_twisted.ensureDeferred
async def test_an_abandoned_upload_cannot_be_claimed(tmp_path):
    """A body released unclaimed (its client left) is deleted; an endpoint claiming it later is refused."""
    pool, flow = StepPool(), Flow()
    body = spool(tmp_path, pool, flow)
    body.write(b"z" * (BATCH + 1))
    body.release_unclaimed()
    pool.run_all()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(BadRequest):
        await body.claim()


def test_leftovers_of_a_crash_are_removed_at_start(tmp_path):
    """Temporary files found at start (left by a crash) are deleted."""
    (tmp_path / "upload-left").write_bytes(b"old")
    bodies = UploadBodies(directory=tmp_path, max_bytes=10, reactor=StepPool(), pool=StepPool(),
                          accepts=lambda method, path: path == b"/up", sniff=lambda head: ())
    assert list(tmp_path.iterdir()) == []
    assert bodies.accepts(b"POST", b"/up?filename=x") and not bodies.accepts(b"POST", b"/down")
