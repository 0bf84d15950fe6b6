"""
Received transactions: their limits, which EDUs are believed (only those
about the sending server's users), and the receiver's once-per-transaction
answers (L{ruma_tx.services.federation_inbound}).
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import pytest_twisted
from twisted.internet import defer

from ruma_tx.matrix.errors import BadRequest, Forbidden, forbidden
from ruma_tx.matrix.federation_transactions import (
    DeviceListUpdate,
    DirectToDevice,
    PresenceUpdate,
    ReceiptUpdate,
    SigningKeyUpdate,
    Typing,
    parse_edus,
    parse_transaction,
)
from ruma_tx.services.federation_inbound import EduServices, TransactionReceiver
from ruma_tx.services.server_acls import ServerAcls

ORIGIN = "remote.example"


def txn(pdus=(), edus=(), origin=ORIGIN):
    return {"origin": origin, "origin_server_ts": 1, "pdus": list(pdus), "edus": list(edus)}


def test_transaction_of_another_origin_is_refused():
    with pytest.raises(BadRequest):
        parse_transaction(txn(origin="other.example"), ORIGIN)


def test_transaction_limits():
    parse_transaction(txn(pdus=[{}] * 50, edus=[{}] * 100), ORIGIN)
    with pytest.raises(BadRequest):
        parse_transaction(txn(pdus=[{}] * 51), ORIGIN)
    with pytest.raises(BadRequest):
        parse_transaction(txn(edus=[{}] * 101), ORIGIN)
    with pytest.raises(BadRequest):
        parse_transaction({"origin": ORIGIN, "origin_server_ts": "1", "pdus": []}, ORIGIN)


def test_edus_about_other_servers_users_are_dropped():
    edus = [
        {"edu_type": "m.typing", "content": {"room_id": "!r:x", "user_id": "@a:remote.example", "typing": True}},
        {"edu_type": "m.typing", "content": {"room_id": "!r:x", "user_id": "@a:victim.example", "typing": True}},
        {"edu_type": "m.receipt", "content": {"!r:x": {"m.read": {
            "@b:remote.example": {"event_ids": ["$e"], "data": {"ts": 1, "thread_id": "main"}},
            "@b:victim.example": {"event_ids": ["$e"], "data": {"ts": 1}}}}}},
        {"edu_type": "m.presence", "content": {"push": [
            {"user_id": "@c:remote.example", "presence": "online", "last_active_ago": 5},
            {"user_id": "@c:victim.example", "presence": "online", "last_active_ago": 5}]}},
        {"edu_type": "m.direct_to_device", "content": {
            "sender": "@d:remote.example", "type": "m.room_key_request", "message_id": "m1",
            "messages": {"@local:here": {"DEV": {"x": 1}}}}},
        {"edu_type": "m.device_list_update", "content": {
            "user_id": "@e:remote.example", "device_id": "D", "stream_id": 7, "prev_id": [6]}},
        {"edu_type": "m.typing", "content": "not an object"},
        {"edu_type": "m.unknown", "content": {}},
    ]
    assert list(parse_edus(edus, ORIGIN)) == [
        Typing("!r:x", "@a:remote.example", True),
        ReceiptUpdate("!r:x", "@b:remote.example", "m.read", ("$e",), "main"),
        PresenceUpdate("@c:remote.example", "online", None),
        DirectToDevice("@d:remote.example", "m.room_key_request", "m1", {"@local:here": {"DEV": {"x": 1}}}),
        DeviceListUpdate("@e:remote.example", "D", 7, (6,), False, None),
    ]


class FakeRooms:
    def __init__(self):
        self.calls = []
        self.release = None

    async def __call__(self, origin, room_id, pdus):
        self.calls.append((origin, room_id, [p["event_id"] for p in pdus]))
        if self.release is not None:
            await self.release
        return {p["event_id"]: (None if p.get("ok", True) else "refused") for p in pdus}


class FakeEdus:
    def __init__(self):
        self.seen = []

    async def typing(self, update):
        self.seen.append(update)
        raise forbidden("not in room")   # a refused EDU does not stop the others

    async def receipt(self, update):
        self.seen.append(update)

    async def presence(self, update):
        self.seen.append(update)

    async def to_device(self, message):
        self.seen.append(message)

    async def device_list(self, update):
        self.seen.append(update)


@pytest_twisted.ensureDeferred
async def test_pdus_go_to_their_rooms_in_order_and_answer_per_event():
    rooms, edus = FakeRooms(), FakeEdus()
    receiver = TransactionReceiver(room_pdus=rooms, edus=edus)
    answer = await receiver.receive(ORIGIN, "t1", txn(
        pdus=[{"room_id": "!a:x", "event_id": "$1"}, {"room_id": "!b:x", "event_id": "$2", "ok": False},
              {"room_id": "!a:x", "event_id": "$3"}],
        edus=[{"edu_type": "m.typing", "content": {"room_id": "!a:x", "user_id": "@u:remote.example",
                                                    "typing": True}},
              {"edu_type": "m.presence", "content": {"push": [{"user_id": "@u:remote.example",
                                                               "presence": "online"}]}}]))
    assert answer == {"pdus": {"$1": {}, "$2": {"error": "refused"}, "$3": {}}}
    assert sorted(rooms.calls) == [(ORIGIN, "!a:x", ["$1", "$3"]), (ORIGIN, "!b:x", ["$2"])]
    assert [type(e).__name__ for e in edus.seen] == ["Typing", "PresenceUpdate"]


@pytest_twisted.ensureDeferred
async def test_a_retried_transaction_is_answered_once():
    rooms, edus = FakeRooms(), FakeEdus()
    rooms.release = defer.Deferred()
    receiver = TransactionReceiver(room_pdus=rooms, edus=edus)
    body = txn(pdus=[{"room_id": "!a:x", "event_id": "$1"}])
    first = defer.ensureDeferred(receiver.receive(ORIGIN, "t1", body))
    second = defer.ensureDeferred(receiver.receive(ORIGIN, "t1", body))   # while the first runs
    rooms.release.callback(None)
    assert await first == await second == {"pdus": {"$1": {}}}
    rooms.release = None
    assert await receiver.receive(ORIGIN, "t1", body) == {"pdus": {"$1": {}}}
    assert len(rooms.calls) == 1
    # The same id from another server is another transaction.
    await receiver.receive("other.example", "t1", txn(pdus=[{"room_id": "!a:x", "event_id": "$9"}],
                                                       origin="other.example"))
    assert len(rooms.calls) == 2


@pytest_twisted.ensureDeferred
async def test_each_transaction_tells_that_its_origin_is_up():
    """A transaction, even a retried one, says its origin is up (what waits for it is sent then)."""
    up = []
    receiver = TransactionReceiver(room_pdus=FakeRooms(), edus=FakeEdus(), origin_up=up.append)
    body = txn(pdus=[{"room_id": "!a:x", "event_id": "$1"}])
    await receiver.receive(ORIGIN, "t1", body)
    await receiver.receive(ORIGIN, "t1", body)
    assert up == [ORIGIN, ORIGIN]


class RoomsWithAcl:
    """Rooms' current state holding only their m.room.server_acl content: C{room_id -> content}."""

    def __init__(self, acls):
        self.acls = acls

    async def get_state(self, room_id, keys=None):
        content = self.acls.get(room_id)
        return {} if content is None else {("m.room.server_acl", ""): SimpleNamespace(content=content)}


class Recorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        async def record(*args):
            self.calls.append((name, *args))
        return record


@pytest_twisted.ensureDeferred
async def test_edu_services_apply_updates_as_the_remote_users():
    typing, receipts, presence, to_device, device_lists = Recorder(), Recorder(), Recorder(), Recorder(), Recorder()
    services = EduServices(typing=typing, receipts=receipts, presence=presence, to_device=to_device,
                           device_lists=device_lists, acls=ServerAcls(RoomsWithAcl({})))
    await services.typing(Typing("!r:x", "@u:remote.example", True))
    await services.receipt(ReceiptUpdate("!r:x", "@u:remote.example", "m.read", ("$a", "$b"), None))
    await services.receipt(ReceiptUpdate("!r:x", "@u:remote.example", "m.read.private", ("$a",), None))
    await services.presence(PresenceUpdate("@u:remote.example", "unavailable", "away"))
    await services.to_device(DirectToDevice("@u:remote.example", "m.x", "m1", {"@l:here": {"*": {}}}))
    update = DeviceListUpdate("@u:remote.example", "D", 1, (), False, None)
    signing = SigningKeyUpdate("@u:remote.example", {"usage": ["master"]}, None)
    await services.device_list(update)
    await services.device_list(signing)
    assert typing.calls == [("set_typing", "@u:remote.example", "!r:x", "@u:remote.example", True, 30000)]
    assert receipts.calls == [("send_receipt", "@u:remote.example", "!r:x", "m.read", "$b", None)]
    assert presence.calls == [("set_status", "@u:remote.example", "@u:remote.example", "unavailable", "away")]
    assert to_device.calls == [("receive", "@u:remote.example", "m.x", "m1", {"@l:here": {"*": {}}})]
    assert device_lists.calls == [("update", update), ("signing_keys", signing)]


@pytest_twisted.ensureDeferred
async def test_typing_and_receipts_of_a_server_denied_by_the_room_acl_are_refused():
    """A room whose ACL denies remote.example refuses its users' typing and receipts (403), while the
    same updates for a room without an ACL are applied."""
    typing, receipts = Recorder(), Recorder()
    acls = RoomsWithAcl({"!closed:x": {"allow": ["*"], "deny": ["remote.example"]}})
    services = EduServices(typing=typing, receipts=receipts, presence=Recorder(), to_device=Recorder(),
                           device_lists=Recorder(), acls=ServerAcls(acls))
    with pytest.raises(Forbidden):
        await services.typing(Typing("!closed:x", "@u:remote.example", True))
    with pytest.raises(Forbidden):
        await services.receipt(ReceiptUpdate("!closed:x", "@u:remote.example", "m.read", ("$a",), None))
    await services.typing(Typing("!open:x", "@u:remote.example", True))
    await services.receipt(ReceiptUpdate("!open:x", "@u:remote.example", "m.read", ("$a",), None))
    assert [call[2] for call in typing.calls] == ["!open:x"]
    assert [call[2] for call in receipts.calls] == ["!open:x"]
