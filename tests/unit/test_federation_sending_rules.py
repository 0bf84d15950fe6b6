"""Which of our events a destination server gets (ruma_tx.matrix.federation_sending) and the EDUs we send."""
from ruma_tx.matrix.federation_edus import direct_to_device_by_server, receipt_content
from ruma_tx.matrix.federation_sending import (
    EventRow,
    MembershipWalk,
    latest_per_room,
    next_batch,
    pdu_errors,
    server_of,
)

US = "us.test"


def message(position, room_id="!r:us.test", sender="@alice:us.test"):
    return EventRow(position, room_id, "m.room.message", None, sender, None, "{}")


def member(position, user_id, membership, room_id="!r:us.test", sender="@alice:us.test"):
    return EventRow(position, room_id, "m.room.member", user_id, sender, membership, "{}")


def test_server_of_keeps_the_port():
    """The server of a user id is everything after its first colon, port included."""
    assert server_of("@a:example.org:8448") == "example.org:8448"


def test_the_destination_gets_our_events_while_one_of_its_users_is_joined():
    """Events before its user joins and after they leave are not the destination's; their own leave is."""
    bob = "@bob:remote.test"
    rows = [message(1), member(2, bob, "join", sender=bob), message(3), message(4, sender=bob),
            member(5, bob, "leave", sender=bob), message(6), member(7, bob, "ban"), message(8)]
    batch = next_batch(MembershipWalk("remote.test", US, {}), rows, 8)
    assert [row.position for row in batch.events] == [3, 7]
    assert batch.upto == 8


def test_a_batch_stops_at_its_limit():
    """A batch holds at most its limit; its position is that of its last event, so the rest follow."""
    rows = [message(n) for n in range(1, 8)]
    walk = MembershipWalk("remote.test", US, {"!r:us.test": ["@bob:remote.test"]})
    batch = next_batch(walk, rows, 20, limit=3)
    assert [row.position for row in batch.events] == [1, 2, 3]
    assert batch.upto == 3


def test_catching_up_keeps_the_latest_event_of_each_room():
    """After an outage only the latest event of each of the destination's rooms is sent, in stream order."""
    bob = ["@bob:remote.test"]
    walk = MembershipWalk("remote.test", US, {"!a:us.test": bob, "!b:us.test": bob})
    rows = [message(1, "!a:us.test"), message(2, "!b:us.test"), message(3, "!a:us.test"),
            message(4, "!c:us.test")]
    assert [row.position for row in latest_per_room(walk, rows)] == [2, 3]


def test_refused_pdus_are_read_from_the_answer():
    """The PDUs a destination refused are those of its answer with an error."""
    answer = {"pdus": {"$a": {}, "$b": {"error": "bad signature"}, "$c": "odd"}}
    assert pdu_errors(answer) == {"$b": "bad signature"}
    assert pdu_errors({}) == {}


def test_to_device_messages_are_split_by_server():
    """Each other server gets the messages of its own users; ours stay here."""
    by_server = direct_to_device_by_server(
        "@alice:us.test", "m.room_key_request", "mid",
        {"@bob:a.test": {"D1": {"k": 1}}, "@carol:b.test": {"*": {"k": 2}}, "@dan:us.test": {"D": {}}}, US)
    assert by_server == {
        "a.test": {"sender": "@alice:us.test", "type": "m.room_key_request", "message_id": "mid",
                   "messages": {"@bob:a.test": {"D1": {"k": 1}}}},
        "b.test": {"sender": "@alice:us.test", "type": "m.room_key_request", "message_id": "mid",
                   "messages": {"@carol:b.test": {"*": {"k": 2}}}},
    }


def test_a_threaded_receipt_carries_its_thread():
    """A receipt's data has its timestamp, and its thread when it has one."""
    assert receipt_content("!r", "m.read", "@a:us.test", "$e", 5, "$root") == {
        "!r": {"m.read": {"@a:us.test": {"event_ids": ["$e"], "data": {"ts": 5, "thread_id": "$root"}}}}}
