"""
L{ruma_tx.services.push_delivery.PushDelivery} with a fake store, a fake
gateway and a L{Clock}: order, retries with backoff, giving up, rejected
pushkeys, badge updates and resuming from the stored position.
"""
from __future__ import annotations

import json
from dataclasses import replace

from twisted.internet import defer
from twisted.internet.task import Clock

from ruma_tx.matrix.pushers import Pusher, RoomContext
from ruma_tx.services.notifier import Notifier
from ruma_tx.services.ports.events import NewEvent, PushOutcome
from ruma_tx.services.ports.outbound import OutboundError, OutboundResponse
from ruma_tx.services.ports.pushers import PendingNotification, PushAction
from ruma_tx.services.push_delivery import DeliverySettings, PushDelivery
from ruma_tx.services.streams import StreamIdGenerator, StreamWriter

ALICE = "@alice:example.org"
URL = "https://push.example.org/_matrix/push/v1/notify"
SETTINGS = DeliverySettings(backoff_initial_s=1.0, backoff_max_s=4.0, give_up_after_s=100.0)


class FakeStore:
    def __init__(self, pushers: list[Pusher]) -> None:
        self.pushers = {p.pusher_id: p for p in pushers}
        self.actions: list[tuple[str, int]] = []   # (user_id, stream_ordering)
        self.read: dict[str, int] = {}

    async def get_all_pusher_ids(self):
        return [(p.pusher_id, p.user_id) for p in self.pushers.values()]

    async def get_pusher_ids(self, user_id):
        return [p.pusher_id for p in self.pushers.values() if p.user_id == user_id]

    async def get_pusher(self, pusher_id):
        return self.pushers.get(pusher_id)

    async def get_pending(self, user_id, *, after, upto, limit):
        found = [PendingNotification(PushAction(so, "!room:example.org", True, False, None),
                                     {"event_id": f"$e{so}", "type": "m.room.message", "sender": "@bob:x",
                                      "content": {"body": str(so)}})
                 for user, so in self.actions
                 if user == user_id and after < so <= upto and so > self.read.get(user_id, 0)]
        return found[:limit]

    async def get_room_context(self, room_id, sender):
        return RoomContext(room_name="Room")

    async def get_unread_count(self, user_id, upto):
        return sum(1 for user, so in self.actions if user == user_id and self.read.get(user, 0) < so <= upto)

    async def mark_delivered(self, pusher_id, stream_ordering):
        pusher = self.pushers.get(pusher_id)
        if pusher is None:
            return False
        self.pushers[pusher_id] = replace(pusher, last_stream_ordering=max(pusher.last_stream_ordering,
                                                                             stream_ordering),
                                          failing_since=None)
        return True

    async def set_failing_since(self, pusher_id, failing_since):
        self.pushers[pusher_id] = replace(self.pushers[pusher_id], failing_since=failing_since)

    async def remove_pusher(self, pusher_id):
        self.pushers.pop(pusher_id, None)


class FakeGateway:
    """Answers each request as told: a status, an error, or never (a Deferred left waiting)."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.answer: object = 200
        self.rejected: list[str] = []
        self.hanging: list[defer.Deferred] = []

    async def request(self, method, url, *, headers=None, body=None, timeout_s=None, max_bytes=None):
        assert (method, url, headers) == ("POST", URL, {"Content-Type": "application/json"})
        self.sent.append(json.loads(body)["notification"])
        if self.answer == "hang":
            waiting: defer.Deferred = defer.Deferred()
            self.hanging.append(waiting)
            return await waiting
        if isinstance(self.answer, Exception):
            raise self.answer
        return OutboundResponse(self.answer, json.dumps({"rejected": self.rejected}).encode())

    def events(self) -> list[str]:
        return [n["event_id"] for n in self.sent if "event_id" in n]


def pusher(pusher_id: int = 1, position: int = 0, pushkey: str = "key") -> Pusher:
    return Pusher(pusher_id, ALICE, "PHONE", "org.example.app", pushkey, "http", "App", "Phone", None, "en",
                  {"url": URL}, 1_700_000_000_000, position)


def setup(*pushers: Pusher, settings: DeliverySettings = SETTINGS, start: int = 0):
    clock = Clock()
    clock.advance(1_800_000_000)
    store, gateway = FakeStore(list(pushers) or [pusher()]), FakeGateway()
    streams = StreamWriter(StreamIdGenerator(start), Notifier(clock, start))
    delivery = PushDelivery(store=store, http=gateway, streams=streams, clock=clock, settings=settings)
    return clock, store, gateway, streams, delivery


def notify(store: FakeStore, streams: StreamWriter, delivery: PushDelivery, user_id: str = ALICE) -> int:
    """Store an event notifying C{user_id}, as the event creator would."""
    async def persist(position: int) -> list[str]:
        store.actions.append((user_id, position))
        event = NewEvent(f"$e{position}", "!room:example.org", {"type": "m.room.message"}, "{}",
                         push=PushOutcome(actions=((user_id, True, False),)))
        delivery.event_stored(event, position)
        return [user_id]

    return streams.write(persist).result


def started(delivery: PushDelivery) -> None:
    d = defer.ensureDeferred(delivery.start())
    assert d.called


def test_notifications_go_in_order_with_growing_counts():
    """Each stored notification is posted once, in stream order, with the unread count at its position."""
    clock, store, gateway, streams, delivery = setup()
    started(delivery)
    for _ in range(3):
        notify(store, streams, delivery)
    assert gateway.events() == ["$e1", "$e2", "$e3"]
    assert [n["counts"]["unread"] for n in gateway.sent] == [1, 2, 3]
    assert gateway.sent[0]["room_name"] == "Room"
    assert store.pushers[1].last_stream_ordering == 3


def test_a_failing_gateway_is_retried_with_doubling_backoff():
    """
    After a failure the pusher waits 1 s, then 2 s, then 4 s (the cap)
    before trying again; later notifications wait behind the failed one
    and all go, in order, once the gateway answers.
    """
    clock, store, gateway, streams, delivery = setup()
    started(delivery)
    gateway.answer = 500
    notify(store, streams, delivery)
    notify(store, streams, delivery)
    assert gateway.events() == ["$e1"]
    assert store.pushers[1].failing_since == 1_800_000_000_000
    for wait in (1.0, 2.0, 4.0, 4.0):
        clock.advance(wait - 0.01)
        tries = len(gateway.sent)
        clock.advance(0.01)
        assert len(gateway.sent) == tries + 1
    gateway.answer = OutboundError("connection refused")
    clock.advance(4.0)
    gateway.answer = 200
    clock.advance(4.0)
    assert gateway.events()[-2:] == ["$e1", "$e2"]
    assert store.pushers[1].failing_since is None
    notify(store, streams, delivery)
    assert gateway.events()[-1] == "$e3"  # backoff reset: sent at once


def test_a_notification_failing_past_the_give_up_time_is_skipped():
    """A notification whose gateway has failed for give_up_after_s is dropped; the next one goes."""
    clock, store, gateway, streams, delivery = setup()
    started(delivery)
    gateway.answer = 503
    notify(store, streams, delivery)
    clock.pump([4.0] * 26)   # 104 s of failures
    gateway.answer = 200
    notify(store, streams, delivery)
    clock.advance(4.0)
    assert set(gateway.events()) == {"$e1", "$e2"}
    assert gateway.events()[-1] == "$e2"
    assert gateway.events().count("$e2") == 1
    assert store.pushers[1].last_stream_ordering == 2


def test_a_rejected_pushkey_removes_the_pusher():
    """The gateway rejecting the pusher's pushkey removes the pusher; nothing more is sent for it."""
    clock, store, gateway, streams, delivery = setup()
    started(delivery)
    gateway.rejected = ["key"]
    notify(store, streams, delivery)
    assert store.pushers == {}
    notify(store, streams, delivery)
    assert gateway.events() == ["$e1"]


def test_other_pushkeys_rejected_leave_the_pusher():
    """Only the pusher's own pushkey in C{rejected} removes it."""
    clock, store, gateway, streams, delivery = setup()
    started(delivery)
    gateway.rejected = ["someone-else"]
    notify(store, streams, delivery)
    notify(store, streams, delivery)
    assert gateway.events() == ["$e1", "$e2"] and 1 in store.pushers


def test_a_hanging_gateway_holds_its_pusher_only():
    """While one pusher's request hangs, its next notifications wait; another pusher still delivers."""
    clock, store, gateway, streams, delivery = setup(pusher(1), replace(pusher(2, pushkey="other"),
                                                                        user_id="@carol:example.org"))
    started(delivery)
    gateway.answer = "hang"
    notify(store, streams, delivery)
    notify(store, streams, delivery)
    assert gateway.events() == ["$e1"]
    gateway.answer = 200
    notify(store, streams, delivery, "@carol:example.org")
    assert gateway.events() == ["$e1", "$e3"]
    gateway.hanging[0].callback(OutboundResponse(200, b"{}"))
    assert gateway.events() == ["$e1", "$e3", "$e2"]


def test_badge_updates_only_when_the_count_changes():
    """A moved read position sends the count alone (low priority), and not again while it stays the same."""
    clock, store, gateway, streams, delivery = setup()
    started(delivery)
    notify(store, streams, delivery)
    notify(store, streams, delivery)
    store.read[ALICE] = 2
    delivery.read_moved(ALICE)
    delivery.read_moved(ALICE)
    badges = [n for n in gateway.sent if "event_id" not in n]
    assert badges == [{"prio": "low", "counts": {"unread": 0}, "devices": badges[0]["devices"]}]
    delivery.read_moved("@nobody:example.org")
    assert len(gateway.sent) == 3


def test_start_resumes_every_pusher_from_its_stored_position():
    """At start a pusher sends what it had not delivered, and nothing it had."""
    clock, store, gateway, streams, delivery = setup(pusher(position=1), start=3)
    store.actions = [(ALICE, 1), (ALICE, 2), (ALICE, 3)]
    started(delivery)
    assert gateway.events() == ["$e2", "$e3"]


def test_a_notification_is_read_only_once_its_position_is_visible():
    """An event stored above a position still being written is delivered once that position finishes."""
    clock, store, gateway, streams, delivery = setup()
    started(delivery)
    slow: defer.Deferred = defer.Deferred()

    async def slow_persist(position: int) -> list[str]:
        await slow
        return []

    pending = streams.write(slow_persist)
    notify_d = defer.ensureDeferred(_notify_async(store, streams, delivery))
    assert gateway.sent == [] and not notify_d.called
    slow.callback(None)
    assert pending.called and gateway.events() == ["$e2"]


async def _notify_async(store, streams, delivery):
    async def persist(position: int) -> list[str]:
        store.actions.append((ALICE, position))
        delivery.event_stored(NewEvent(f"$e{position}", "!room:example.org", {}, "{}",
                                       push=PushOutcome(actions=((ALICE, True, False),))), position)
        return [ALICE]

    return await streams.write(persist)


def test_stop_cancels_waits_and_requests():
    """After stop nothing is sent: retry timers are cancelled, a hanging request is abandoned."""
    clock, store, gateway, streams, delivery = setup()
    started(delivery)
    gateway.answer = 500
    notify(store, streams, delivery)
    delivery.stop()
    gateway.answer = 200
    clock.advance(10)
    notify(store, streams, delivery)
    assert gateway.events() == ["$e1"]
