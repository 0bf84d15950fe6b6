"""
The federation sending queue (ruma_tx.services.federation_sender) over a
real database, with a fake FederationClient standing for the other servers
and a task.Clock for the backoff waits.
"""
from __future__ import annotations

import itertools
import json
import uuid

import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import Clock, deferLater

from ruma_tx.matrix.ephemeral import Receipt
from ruma_tx.services.federation_edus import FederationEdus
from ruma_tx.services.federation_sender import FederationSender
from ruma_tx.services.ports.events import NewEvent
from ruma_tx.services.ports.federation import FederationDenied, FederationError, RemoteMatrixError
from ruma_tx.services.ports.room_dag import DagUpdate, StateAfter
from ruma_tx.storage.database import Database
from ruma_tx.storage.federation_queue import FederationQueueStore
from ruma_tx.storage.migrations import migrate

US = "us.test"
DEADLINE_S = 30
START_S = 1_700_000_000


class Streams:
    """The stream writer, as far as the sender sees it: everything written is visible."""

    def __init__(self) -> None:
        self.current = 0

    def until_visible(self, position: int) -> defer.Deferred:
        return defer.succeed(None)


class Federation:
    """
    The other servers: records each transaction; C{answers[destination]}
    (an exception to raise, or a Deferred to wait on) says how one answers.
    """

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict]] = []
        self.answers: dict[str, list] = {}

    async def put_json(self, destination, path, body, *, query=None, timeout_s=None):
        txn_id = path.removeprefix("/_matrix/federation/v1/send/")
        self.sent.append((destination, txn_id, json.loads(json.dumps(body))))
        queued = self.answers.get(destination)
        answer = queued.pop(0) if queued else None
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, defer.Deferred):
            await answer
        return {"pdus": {}}

    def to(self, destination: str) -> list[tuple[str, dict]]:
        return [(txn_id, body) for d, txn_id, body in self.sent if d == destination]

    def pdu_bodies(self, destination: str) -> list[str]:
        return [pdu["content"]["body"] for _, body in self.to(destination) for pdu in body["pdus"]
                if "body" in pdu["content"]]


class World:
    """A database with rooms whose events are written by hand, and a sender over it."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.queue = FederationQueueStore(database)
        self.streams = Streams()
        self.federation = Federation()
        self.clock = Clock()
        self.clock.advance(START_S)
        self.sender = self.new_sender()
        self._event_ids = itertools.count(1)

    def new_sender(self) -> FederationSender:
        return FederationSender(queue=self.queue, client=self.federation, streams=self.streams,
                                clock=self.clock, random=lambda: 0.5, server_name=US)

    async def event(self, room_id: str, sender: str, body: str | None = None, *,
                    member: str | None = None, membership: str | None = None, tell: bool = True) -> int:
        """Store an event (a message, or the membership of C{member}); tell the sender if C{tell}."""
        position = self.streams.current + 1
        event_id = f"$e{next(self._event_ids)}"
        pdu = {"room_id": room_id, "sender": sender, "type": "m.room.message",
               "content": {"body": body or f"event {position}"}, "origin_server_ts": position,
               "depth": position, "prev_events": [], "auth_events": [], "unsigned": {"local": 1}}
        if member is not None:
            pdu.update(type="m.room.member", state_key=member, content={"membership": membership})
        await self.database.execute(
            "INSERT INTO events (stream_ordering, event_id, room_id, type, state_key, sender,"
            " origin_server_ts, depth, membership, pdu) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (position, event_id, room_id, pdu["type"], member, sender, position, position, membership,
             json.dumps(pdu)))
        if member is not None:
            await self.database.execute(
                "INSERT INTO current_state (room_id, type, state_key, event_id, stream_ordering, membership)"
                " VALUES (%s, 'm.room.member', %s, %s, %s, %s) ON CONFLICT (room_id, type, state_key)"
                " DO UPDATE SET event_id = EXCLUDED.event_id, stream_ordering = EXCLUDED.stream_ordering,"
                " membership = EXCLUDED.membership", (room_id, member, event_id, position, membership))
        self.streams.current = position
        if tell:
            # The rooms here are shared with other servers: their events carry a DAG update.
            dag = DagUpdate(StateAfter(None, {}), ())
            self.sender.event_stored(NewEvent(event_id, room_id, pdu, json.dumps(pdu), dag=dag), position)
        return position

    async def room(self, room_id: str, *members: str) -> None:
        """A room created by @alice:us.test, joined by C{members}, told to nobody."""
        await self.event(room_id, f"@alice:{US}", member=f"@alice:{US}", membership="join", tell=False)
        for user_id in members:
            await self.event(room_id, user_id, member=user_id, membership="join", tell=False)

    async def acked(self, destination: str) -> int | None:
        row = await self.queue.get_destination(destination)
        return None if row is None else row.last_acked_position

    async def until(self, predicate, what: str) -> None:
        """Wait (on the real reactor) until C{predicate()} holds, or fail."""
        for _ in range(DEADLINE_S * 100):
            result = predicate()
            if isinstance(result, defer.Deferred) or hasattr(result, "__await__"):
                result = await result
            if result:
                return
            await deferLater(reactor, 0.01, lambda: None)
        raise AssertionError(f"timed out waiting for {what}")

    async def settled(self, destination: str) -> None:
        """Wait until the destination has acknowledged every position written."""
        async def done():
            return await self.acked(destination) == self.streams.current
        await self.until(done, f"{destination} to catch up")


@pytest_twisted.async_yield_fixture
async def world(pg_cluster):
    """A sender over a fresh database, stopped and closed after the test."""
    database = Database(pg_cluster.create_database(f"ruma_fed_{uuid.uuid4().hex}"), 2, reactor)
    await database.open()
    await migrate(database, 0)
    made = World(database)
    yield made
    made.sender.stop()
    made.database.close()


@pytest_twisted.ensureDeferred
async def test_transactions_hold_at_most_50_pdus_and_100_edus(world):
    """120 events and 150 EDUs go in order, in transactions of at most 50 PDUs and 100 EDUs."""
    await world.room("!r:us.test", "@bob:remote.test")
    blocked = defer.Deferred()
    world.federation.answers["remote.test"] = [blocked]
    await world.event("!r:us.test", f"@alice:{US}", "first")
    await world.until(lambda: world.federation.to("remote.test"), "the first transaction")
    for n in range(119):
        await world.event("!r:us.test", f"@alice:{US}", f"m{n}")
    for n in range(150):
        await world.sender.send_edu(["remote.test"], "m.receipt", {"n": n})
    blocked.callback(None)
    await world.settled("remote.test")
    await world.until(lambda: sum(len(b["edus"]) for _, b in world.federation.to("remote.test")) == 150,
                      "every EDU")
    sent = world.federation.to("remote.test")
    assert [len(body["pdus"]) for _, body in sent] == [1, 50, 50, 19]
    assert [len(body["edus"]) for _, body in sent] == [0, 100, 50, 0]
    assert world.federation.pdu_bodies("remote.test") == ["first"] + [f"m{n}" for n in range(119)]
    assert [edu["content"]["n"] for _, body in sent for edu in body["edus"]] == list(range(150))
    assert all("unsigned" not in pdu for _, body in sent for pdu in body["pdus"])
    assert len({txn_id for txn_id, _ in sent}) == len(sent)


@pytest_twisted.ensureDeferred
async def test_only_our_events_of_rooms_the_destination_is_in(world):
    """
    A destination gets our events of its rooms since its user joined, and an
    invite of its user; never others' events.
    """
    await world.room("!shared:us.test", "@bob:remote.test", "@carol:third.test")
    await world.room("!private:us.test")
    await world.event("!private:us.test", f"@alice:{US}", "private")
    await world.event("!shared:us.test", "@bob:remote.test", "from bob")
    await world.event("!shared:us.test", "@carol:third.test", "from carol")
    await world.event("!shared:us.test", f"@alice:{US}", "shared")
    await world.event("!private:us.test", f"@alice:{US}", member="@dan:remote.test", membership="invite")
    await world.settled("remote.test")
    await world.settled("third.test")
    assert world.federation.pdu_bodies("remote.test") == ["shared"]
    invites = [pdu for _, body in world.federation.to("remote.test") for pdu in body["pdus"]
               if pdu["type"] == "m.room.member"]
    assert [pdu["state_key"] for pdu in invites] == ["@dan:remote.test"]
    assert world.federation.pdu_bodies("third.test") == ["shared"]
    assert world.federation.to(US) == []
    # Bob leaves: our later messages there are no longer his server's.
    await world.event("!shared:us.test", "@bob:remote.test", member="@bob:remote.test", membership="leave")
    await world.event("!shared:us.test", f"@alice:{US}", "after bob left")
    await world.settled("third.test")
    await world.sender.send_edu(["remote.test"], "m.receipt", {})
    await world.settled("remote.test")
    assert world.federation.pdu_bodies("third.test") == ["shared", "after bob left"]
    assert world.federation.pdu_bodies("remote.test") == ["shared"]


@pytest_twisted.ensureDeferred
async def test_backoff_doubles_keeps_the_transaction_id_and_resets_on_success(world):
    """A failing destination is retried after 2 s, then 4 s, with the same transaction id; a success resets the wait."""
    await world.room("!r:us.test", "@bob:remote.test")
    down = FederationError("remote.test", "connection refused")
    world.federation.answers["remote.test"] = [down, down]
    await world.event("!r:us.test", f"@alice:{US}", "hello")
    await world.until(lambda: len(world.federation.to("remote.test")) == 1, "the first try")
    await world.until(lambda: world.clock.getDelayedCalls(), "a retry to be planned")
    await world.event("!r:us.test", f"@alice:{US}", "while down")
    world.clock.advance(1.9)
    assert len(world.federation.to("remote.test")) == 1
    world.clock.advance(0.1)
    await world.until(lambda: len(world.federation.to("remote.test")) == 2, "the second try")
    async def backed_off_4s():
        row = await world.queue.get_destination("remote.test")
        return row.backoff_ms == 4000 and row.failing_since_ms == START_S * 1000
    await world.until(backed_off_4s, "a second retry to be planned")
    assert (world.sender.backing_off, world.sender.destinations_pending) == (1, 1)   # the metrics' gauges
    world.clock.advance(3.9)
    assert len(world.federation.to("remote.test")) == 2
    world.clock.advance(0.1)
    await world.settled("remote.test")
    sent = world.federation.to("remote.test")
    assert [txn_id for txn_id, _ in sent[:3]] == [sent[0][0]] * 3
    assert [body["pdus"] for _, body in sent[:3]] == [sent[0][1]["pdus"]] * 3
    assert world.federation.pdu_bodies("remote.test")[-1] == "while down"
    assert sent[-1][0] != sent[0][0]
    row = await world.queue.get_destination("remote.test")
    assert row is not None and (row.backoff_ms, row.failing_since_ms, row.retry_at_ms) == (0, None, None)
    assert (world.sender.backing_off, world.sender.destinations_pending) == (0, 0)
    # Failing again starts from 2 s again.
    world.federation.answers["remote.test"] = [down]
    await world.event("!r:us.test", f"@alice:{US}", "again")
    await world.until(lambda: world.clock.getDelayedCalls(), "a retry to be planned")
    world.clock.advance(2.0)
    await world.settled("remote.test")
    assert world.federation.pdu_bodies("remote.test")[-2:] == ["again", "again"]


@pytest_twisted.ensureDeferred
async def test_a_request_from_a_destination_ends_its_wait(world):
    """A destination backing off that calls us is retried at once; a second call within 2 s does not retry again."""
    await world.room("!r:us.test", "@bob:remote.test")
    down = FederationError("remote.test", "connection refused")
    world.federation.answers["remote.test"] = [down, down, down]

    async def backing_off(ms):
        row = await world.queue.get_destination("remote.test")
        return row is not None and row.backoff_ms == ms

    await world.event("!r:us.test", f"@alice:{US}", "hello")
    await world.until(lambda: backing_off(2000), "a first retry to be planned")
    world.clock.advance(2.0)
    await world.until(lambda: backing_off(4000), "a second retry to be planned")
    assert len(world.federation.to("remote.test")) == 2
    world.sender.peer_alive("elsewhere.test")   # nothing waits for it
    world.sender.peer_alive("remote.test")
    await world.until(lambda: backing_off(8000), "the retry made at once, and a third planned")
    assert len(world.federation.to("remote.test")) == 3
    world.sender.peer_alive("remote.test")
    await deferLater(reactor, 0.1, lambda: None)
    assert len(world.federation.to("remote.test")) == 3, "woken twice within 2 s"
    world.clock.advance(2.0)
    world.sender.peer_alive("remote.test")
    await world.settled("remote.test")
    assert world.federation.pdu_bodies("remote.test") == ["hello"] * 4


@pytest_twisted.ensureDeferred
async def test_a_refused_transaction_is_dropped_not_retried(world):
    """A 4xx answer drops the transaction (no retry, even an hour later); the next event goes in a new one."""
    await world.room("!r:us.test", "@bob:remote.test")
    world.federation.answers["remote.test"] = [RemoteMatrixError("remote.test", 400, "M_BAD_JSON", "no")]
    await world.event("!r:us.test", f"@alice:{US}", "refused")
    await world.settled("remote.test")
    assert world.clock.getDelayedCalls() == []
    world.clock.advance(3600)
    await world.event("!r:us.test", f"@alice:{US}", "next")
    await world.settled("remote.test")
    assert world.federation.pdu_bodies("remote.test") == ["refused", "next"]


@pytest_twisted.ensureDeferred
async def test_a_transaction_the_destination_could_not_authenticate_is_retried(world):
    """A 401 answer (our new key not fetched yet, after a rotation) is retried after the backoff, not dropped."""
    await world.room("!r:us.test", "@bob:remote.test")
    world.federation.answers["remote.test"] = [
        RemoteMatrixError("remote.test", 401, "M_UNAUTHORIZED", "Unknown key")]
    await world.event("!r:us.test", f"@alice:{US}", "signed anew")

    async def backing_off():
        row = await world.queue.get_destination("remote.test")
        return row is not None and row.backoff_ms == 2000

    await world.until(backing_off, "a retry to be planned")
    world.clock.advance(3.0)
    await world.settled("remote.test")
    assert world.federation.pdu_bodies("remote.test") == ["signed anew", "signed anew"]


@pytest_twisted.ensureDeferred
async def test_a_slow_destination_does_not_hold_up_another(world):
    """While one server never answers, another gets its events at once, and the slow one still gets its own later."""
    await world.room("!r:us.test", "@bob:slow.test", "@carol:fast.test")
    hung = defer.Deferred()
    world.federation.answers["slow.test"] = [hung]
    await world.event("!r:us.test", f"@alice:{US}", "one")
    await world.until(lambda: world.federation.to("slow.test"), "the slow server's first transaction")
    await world.event("!r:us.test", f"@alice:{US}", "two")
    await world.settled("fast.test")
    assert world.federation.pdu_bodies("fast.test") == ["one", "two"]
    assert world.federation.pdu_bodies("slow.test") == ["one"]
    hung.callback(None)
    await world.settled("slow.test")
    assert world.federation.pdu_bodies("slow.test") == ["one", "two"]


@pytest_twisted.ensureDeferred
async def test_catching_up_after_an_outage_sends_the_latest_event_of_each_room(world):
    """
    After an outage with more than a transaction's worth waiting, the
    destination gets the latest event of each room.
    """
    for room_id in ("!a:us.test", "!b:us.test", "!c:us.test"):
        await world.room(room_id, "@bob:remote.test")
    world.federation.answers["remote.test"] = [FederationError("remote.test", "down")]
    await world.event("!a:us.test", f"@alice:{US}", "before")
    await world.until(lambda: world.clock.getDelayedCalls(), "a retry to be planned")
    for n in range(40):
        for room_id in ("!a:us.test", "!b:us.test", "!c:us.test"):
            await world.event(room_id, f"@alice:{US}", f"{room_id} {n}")
    world.clock.advance(2)
    await world.settled("remote.test")
    assert world.federation.pdu_bodies("remote.test") == [
        "before", "before", "!a:us.test 39", "!b:us.test 39", "!c:us.test 39"]
    # Caught up: the next events go one by one again.
    await world.event("!a:us.test", f"@alice:{US}", "live 1")
    await world.event("!b:us.test", f"@alice:{US}", "live 2")
    await world.settled("remote.test")
    assert world.federation.pdu_bodies("remote.test")[-2:] == ["live 1", "live 2"]


@pytest_twisted.ensureDeferred
async def test_a_restart_resumes_what_was_not_acknowledged(world):
    """
    What a stopped sender had not got acknowledged (events and durable EDUs)
    is sent by the next one, after its backoff.
    """
    await world.room("!r:us.test", "@bob:remote.test")
    world.federation.answers["remote.test"] = [FederationError("remote.test", "down")]
    await world.event("!r:us.test", f"@alice:{US}", "unsent")
    await world.sender.send_edu(["remote.test"], "m.direct_to_device", {"message_id": "m1"})
    async def backing_off():
        row = await world.queue.get_destination("remote.test")
        return row.retry_at_ms == (START_S + 2) * 1000
    await world.until(backing_off, "the retry time to be stored")
    first_txn = world.federation.to("remote.test")[0][0]
    world.sender.stop()
    world.clock.advance(1)
    world.sender = world.new_sender()
    await world.sender.start()
    assert len(world.federation.to("remote.test")) == 1   # still backing off
    world.clock.advance(1)
    await world.settled("remote.test")
    txn_id, body = world.federation.to("remote.test")[-1]
    assert txn_id != first_txn, world.federation.sent
    assert [pdu["content"]["body"] for pdu in body["pdus"]] == ["unsent"]
    assert body["edus"] == [{"edu_type": "m.direct_to_device", "content": {"message_id": "m1"}}]
    assert await world.queue.get_edus("remote.test", 10) == []
    # Nothing left for a third start.
    world.sender.stop()
    world.sender = world.new_sender()
    await world.sender.start()
    assert len(world.federation.to("remote.test")) == 2


@pytest_twisted.ensureDeferred
async def test_a_denied_destination_is_skipped(world):
    """A destination federation may not reach (FederationDenied) is moved past, never retried."""
    await world.room("!r:us.test", "@bob:denied.test")
    world.federation.answers["denied.test"] = [FederationDenied("denied.test", "not allowed")]
    await world.event("!r:us.test", f"@alice:{US}", "one")
    await world.settled("denied.test")
    assert world.clock.getDelayedCalls() == []


@pytest_twisted.ensureDeferred
async def test_typing_and_receipts_reach_the_servers_of_the_room(world):
    """
    Our users' typing and public receipts go to the room's other servers; a
    private receipt and others' typing do not.
    """
    await world.room("!r:us.test", "@bob:remote.test")
    edus = FederationEdus(sender=world.sender, queue=world.queue, server_name=US)
    edus.typing_changed("!r:us.test", "@bob:remote.test", True)
    edus.typing_changed("!r:us.test", f"@alice:{US}", True)
    await world.until(lambda: world.federation.to("remote.test"), "the typing EDU")
    await edus.receipt_stored(Receipt("!r:us.test", f"@alice:{US}", "m.read.private", None, "$e1", 7))
    await edus.receipt_stored(Receipt("!r:us.test", f"@alice:{US}", "m.read", None, "$e1", 8))
    await world.until(lambda: len(world.federation.to("remote.test")) == 2, "the receipt")
    assert [body["edus"] for _, body in world.federation.to("remote.test")] == [
        [{"edu_type": "m.typing", "content": {"room_id": "!r:us.test", "user_id": f"@alice:{US}",
                                               "typing": True}}],
        [{"edu_type": "m.receipt", "content": {"!r:us.test": {"m.read": {f"@alice:{US}": {
            "event_ids": ["$e1"], "data": {"ts": 8}}}}}}],
    ]
