"""
Sliding-sync connections (MSC4186 "Connections") and their C{pos}:
L{ruma_tx.services.sliding_connections.Connections} over a fake store and
a fake clock, and L{ruma_tx.matrix.stream_token.SlidingPos}. A client
resumes with the C{pos} of the last response it processed, may retry it,
and is told C{M_UNKNOWN_POS} for any other.
"""
from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock

from ruma_tx.matrix.errors import BadRequest
from ruma_tx.matrix.sliding_sync import ConnectionState, RequiredState, RoomConfig, RoomSent
from ruma_tx.matrix.stream_token import InvalidToken, SlidingPos, StreamToken
from ruma_tx.services.sliding_connections import CONNECTION_LIFETIME_MS, Connections, Resumed

KEY = ("@me:hs", "PHONE", "main")


class FakeStore:
    """Connections as JSON text by key, as the database keeps them; C{gate} holds a save until fired."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], str] = {}
        self.saved: list[tuple[list[tuple[str, str, str]], int]] = []
        self.loads = 0
        self.fail = False
        self.gate: Deferred[None] | None = None
        self.deleted_before: int | None = None

    async def load_connection(self, user_id, device_id, conn_id):
        self.loads += 1
        text = self.rows.get((user_id, device_id, conn_id))
        return None if text is None else json.loads(text)

    async def save_connections(self, rows, now_ms):
        if self.gate is not None:
            await self.gate
        if self.fail:
            raise ConnectionError("database unavailable")
        self.saved.append(([tuple(row[:3]) for row in rows], now_ms))
        for user_id, device_id, conn_id, data in rows:
            self.rows[(user_id, device_id, conn_id)] = json.dumps(data)

    async def delete_connections_before(self, before_ms):
        self.deleted_before = before_ms


def sent(stream: int) -> ConnectionState:
    """What a response sent: a room up to C{stream}."""
    config = RoomConfig(10, (RequiredState(frozenset({("m.room.name", "")}), frozenset(), True),))
    return ConnectionState(stream, {"!a:hs": RoomSent(stream, "join", config, frozenset({"@bob:hs"}))})


def respond(connections: Connections, resumed: Resumed, stream: int) -> str:
    return connections.commit(resumed, sent(stream), StreamToken(stream, 3))


async def sync(connections: Connections, pos: str | None, stream: int, key=KEY) -> str:
    """One request answered at C{stream}; the response's pos."""
    return respond(connections, await connections.resume(key, pos), stream)


async def unknown(connections: Connections, pos: str, key=KEY) -> str:
    with pytest.raises(BadRequest) as caught:
        await connections.resume(key, pos)
    return caught.value.errcode


def connections_over(store: FakeStore, max_cached: int = 10, clock: Clock | None = None) -> Connections:
    return Connections(store=store, clock=clock or Clock(), max_cached=max_cached)


# -- the pos --------------------------------------------------------------------


def test_a_pos_reads_back_and_starts_a_pagination():
    """MSC4186: a pos can be used in /messages like a /sync next_batch."""
    pos = SlidingPos(StreamToken(58, 2), "0a1b2c3d", 7)
    assert SlidingPos.parse(str(pos)) == pos
    assert StreamToken.parse(str(pos)) == StreamToken(58, 2)


@pytest.mark.parametrize("text", ["s58_2", "s58_2_0a1b", "s58_2_0A1B_7", "s58_2_nonce_", "58_2_ab_1", ""])
def test_what_is_not_a_pos(text):
    with pytest.raises(InvalidToken):
        SlidingPos.parse(text)


# -- resuming -------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_pos_resumes_from_what_its_response_sent():
    connections = connections_over(FakeStore())
    first = await connections.resume(KEY, None)
    assert first.previous is None  # a connection's first request: everything is initial
    pos = respond(connections, first, 5)
    assert SlidingPos.parse(pos).token == StreamToken(5, 3)
    resumed = await connections.resume(KEY, pos)
    assert resumed.previous == sent(5)


@pytest.mark.parametrize("pos", ["garbage", "s5_3", "s5_3_ffffffff_1"])
@pytest_twisted.ensureDeferred
async def test_a_pos_never_handed_out_is_m_unknown_pos(pos):
    connections = connections_over(FakeStore())
    await sync(connections, None, 5)
    assert await unknown(connections, pos) == "M_UNKNOWN_POS"


@pytest.mark.parametrize("other", [("@me:hs", "PHONE", "other-conn"), ("@me:hs", "LAPTOP", "main"),
                                   ("@eve:hs", "PHONE", "main")])
@pytest_twisted.ensureDeferred
async def test_a_pos_from_another_connection_device_or_user_is_m_unknown_pos(other):
    """MSC4186: a pos not issued to the requesting user and device is rejected."""
    connections = connections_over(FakeStore())
    mine = await sync(connections, None, 5)
    await sync(connections, None, 5, key=other)
    assert await unknown(connections, mine, key=other) == "M_UNKNOWN_POS"


@pytest_twisted.ensureDeferred
async def test_a_pos_of_an_earlier_connection_on_the_same_conn_id_is_m_unknown_pos():
    """A request without pos starts over: the old connection's pos no longer works, even at the same stream."""
    connections = connections_over(FakeStore())
    old = await sync(connections, None, 5)
    new = await sync(connections, None, 5)
    assert new != old
    assert await unknown(connections, old) == "M_UNKNOWN_POS"
    assert (await connections.resume(KEY, new)).previous == sent(5)


@pytest_twisted.ensureDeferred
async def test_a_pos_with_a_forged_stream_is_m_unknown_pos():
    connections = connections_over(FakeStore())
    pos = SlidingPos.parse(await sync(connections, None, 5))
    forged = SlidingPos(StreamToken(9, 3), pos.nonce, pos.generation)
    assert await unknown(connections, str(forged)) == "M_UNKNOWN_POS"


@pytest_twisted.ensureDeferred
async def test_a_retry_with_the_same_pos_resumes_from_the_same_state():
    """
    The client never processed the answer to P1: it sends P1 again and
    gets everything since P1 again; the answer it abandoned is dropped.
    """
    connections = connections_over(FakeStore())
    p1 = await sync(connections, None, 5)
    lost = await sync(connections, p1, 8)
    retried = await connections.resume(KEY, p1)
    assert retried.previous == sent(5)
    p2 = respond(connections, retried, 9)
    assert await unknown(connections, lost) == "M_UNKNOWN_POS"
    assert (await connections.resume(KEY, p2)).previous == sent(9)


@pytest_twisted.ensureDeferred
async def test_a_newer_pos_drops_the_older_states():
    """Once the client sends P2, P1 may not be used again (MSC4186: the server may clean up before it)."""
    connections = connections_over(FakeStore())
    p1 = await sync(connections, None, 5)
    p2 = await sync(connections, p1, 8)
    await sync(connections, p2, 9)
    assert await unknown(connections, p1) == "M_UNKNOWN_POS"
    assert (await connections.resume(KEY, p2)).previous == sent(8)


@pytest_twisted.ensureDeferred
async def test_the_answer_to_a_superseded_request_is_not_remembered():
    """
    The client cancelled a request and sent another with the same pos: the
    first one's answer, computed later, hands out a pos that does not work.
    """
    connections = connections_over(FakeStore())
    p1 = await sync(connections, None, 5)
    cancelled = await connections.resume(KEY, p1)
    current = await connections.resume(KEY, p1)
    latest = respond(connections, current, 7)
    abandoned = respond(connections, cancelled, 8)
    assert await unknown(connections, abandoned) == "M_UNKNOWN_POS"
    assert (await connections.resume(KEY, latest)).previous == sent(7)


@pytest_twisted.ensureDeferred
async def test_a_long_poll_left_running_on_an_old_connection_does_not_break_the_new_one():
    """
    The client gave up on a long poll and started the connection over
    (no pos); the old long poll ends later. The new connection's pos still
    works.
    """
    connections = connections_over(FakeStore())
    p1 = await sync(connections, None, 5)
    long_poll = await connections.resume(KEY, p1)
    fresh = await sync(connections, None, 6)
    respond(connections, long_poll, 7)
    assert (await connections.resume(KEY, fresh)).previous == sent(6)


# -- saving, eviction, restarts --------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_saved_connection_resumes_after_a_restart():
    store = FakeStore()
    connections = connections_over(store)
    pos = await sync(connections, None, 5)
    await connections.save()
    restarted = connections_over(store)
    assert (await restarted.resume(KEY, pos)).previous == sent(5)
    assert store.loads == 1


@pytest_twisted.ensureDeferred
async def test_after_a_crash_a_pos_newer_than_the_saved_state_is_m_unknown_pos():
    """The client is told to start over; its new connection does not accept the old connection's pos."""
    store = FakeStore()
    connections = connections_over(store)
    saved = await sync(connections, None, 5)
    await connections.save()
    lost = await sync(connections, saved, 8)
    restarted = connections_over(store)
    assert await unknown(restarted, lost) == "M_UNKNOWN_POS"
    new = await sync(restarted, None, 5)
    assert await unknown(restarted, saved) == "M_UNKNOWN_POS"
    assert (await restarted.resume(KEY, new)).previous == sent(5)


@pytest_twisted.ensureDeferred
async def test_saves_write_only_changed_connections_stamped_with_the_clock():
    store = FakeStore()
    clock = Clock()
    connections = connections_over(store, clock=clock)
    other = ("@me:hs", "PHONE", "other")
    pos = await sync(connections, None, 5)
    await sync(connections, None, 5, key=other)
    clock.advance(12)
    await connections.save()
    assert sorted(store.saved[-1][0]) == sorted([KEY, other]) and store.saved[-1][1] == 12_000
    await sync(connections, pos, 6)
    await connections.save()
    assert store.saved[-1][0] == [KEY]


@pytest_twisted.ensureDeferred
async def test_connections_unused_for_their_lifetime_are_deleted():
    store = FakeStore()
    clock = Clock()
    clock.advance(CONNECTION_LIFETIME_MS / 1000 + 60)
    await connections_over(store, clock=clock).expire()
    assert store.deleted_before == 60_000


@pytest_twisted.ensureDeferred
async def test_an_evicted_connection_not_yet_saved_still_resumes_and_is_saved():
    """Dropped from memory before the periodic save: kept aside, not lost."""
    store = FakeStore()
    connections = connections_over(store, max_cached=1)
    mine = await sync(connections, None, 5)
    await sync(connections, None, 5, key=("@other:hs", "TABLET", ""))  # evicts mine
    assert (await connections.resume(KEY, mine)).previous == sent(5)
    assert store.loads == 0
    await connections.save()
    assert KEY in store.rows and ("@other:hs", "TABLET", "") in store.rows
    assert (await connections_over(store).resume(KEY, mine)).previous == sent(5)


@pytest_twisted.ensureDeferred
async def test_an_evicted_saved_connection_is_read_back_from_the_database():
    store = FakeStore()
    connections = connections_over(store, max_cached=1)
    mine = await sync(connections, None, 5)
    await connections.save()
    await sync(connections, None, 5, key=("@other:hs", "TABLET", ""))  # evicts mine
    mine = await sync(connections, mine, 6)
    assert store.loads == 1
    assert (await connections.resume(KEY, mine)).previous == sent(6)


@pytest_twisted.ensureDeferred
async def test_a_failed_save_is_retried_by_the_next_one():
    store = FakeStore()
    connections = connections_over(store)
    pos = await sync(connections, None, 5)
    store.fail = True
    with pytest.raises(ConnectionError):
        await connections.save()
    assert store.rows == {}
    store.fail = False
    await connections.save()
    assert (await connections_over(store).resume(KEY, pos)).previous == sent(5)


@pytest_twisted.ensureDeferred
async def test_a_connection_started_over_during_a_failed_save_is_the_one_saved_next():
    """
    The client starts its connection over while a save of the old one is
    under way and fails: the next save writes the new connection, so its
    pos works after a restart.
    """
    store = FakeStore()
    connections = connections_over(store)
    await sync(connections, None, 5)
    store.gate, store.fail = Deferred(), True
    saving = ensureDeferred(connections.save())
    fresh = await sync(connections, None, 6)
    gate, store.gate = store.gate, None
    gate.callback(None)
    saving.addErrback(lambda failure: failure.trap(ConnectionError))
    store.fail = False
    await connections.save()
    assert (await connections_over(store).resume(KEY, fresh)).previous == sent(6)
