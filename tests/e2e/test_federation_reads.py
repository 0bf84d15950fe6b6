"""
Reading rooms over federation between ruma_tx daemons: a user of B who
joins a room of A with history pages back through it with /messages (B
backfills from A); each read endpoint answers a server in the room and
refuses one that is not; no endpoint gives away a room through an event of
another; history visibility decides what a server gets unredacted; and
timestamp_to_event asks the other server for history B does not have.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from federation_forging import Forger, path_of
from federation_helpers import SyncWatcher, bodies_of, membership_of, page_back, room_with_messages, shared_room
from room_helpers import create_room, ok, send_text
from test_federation_transport import federation_http  # noqa: F401 (a fixture)

V1 = "/_matrix/federation/v1"


@pytest.fixture(scope="module")
def trio(start_federating):
    """A (the rooms' server), B (joins them) and C (in no room)."""
    return start_federating(), start_federating(), start_federating()


@pytest.fixture
def clients(trio, make_client):
    return make_client(trio[0]), make_client(trio[1])


@pytest.fixture
def as_b(trio, federation_http):  # noqa: F811 (the imported fixture)
    return Forger(federation_http, trio[1], trio[0])


@pytest.fixture
def as_c(trio, federation_http):  # noqa: F811 (the imported fixture)
    return Forger(federation_http, trio[2], trio[0])


@pytest_twisted.ensureDeferred
async def test_a_user_joining_later_pages_back_through_30_earlier_messages(clients):
    """bob of B joins a room with 30 messages; /messages backfills them from A, in order, each once."""
    a, b = clients
    alice, bob = await a.register(), await b.register()
    room_id = await room_with_messages(a, alice, "earlier", name="History")
    await ok(b, "POST", f"join/{quote(room_id)}", {}, user=bob, query={"via": a.server.server_name})

    events = await page_back(b, bob, room_id)
    assert bodies_of(events) == [f"earlier {i}" for i in range(30, 0, -1)]
    assert (events[0]["type"], events[0]["state_key"]) == ("m.room.member", bob["user_id"])
    assert events[-1]["type"] == "m.room.create"   # the whole history, down to the room's first event
    assert any(e["type"] == "m.room.name" and e["content"] == {"name": "History"} for e in events)
    assert len({e["event_id"] for e in events}) == len(events)

    # Now stored on B: paging again, or forwards from the start, reads the same history.
    again = await page_back(b, bob, room_id, limit=25)
    assert [e["event_id"] for e in again] == [e["event_id"] for e in events]
    forward = await ok(b, "GET", f"rooms/{quote(room_id)}/messages", user=bob, query={"dir": "f", "limit": "100"})
    assert [e["event_id"] for e in forward["chunk"]] == [e["event_id"] for e in reversed(events)]


@pytest_twisted.ensureDeferred
async def test_each_read_answers_a_server_in_the_room_and_refuses_others(clients, as_b, as_c):
    """B (bob is joined) reads event, state, auth chain, backfill, missing events, timestamps; C gets 403."""
    a, _ = clients
    alice, _, room_id = await shared_room(clients, name="Readable")
    event_id = await send_text(a, alice, room_id, "hello servers", "h1")
    room = path_of(room_id)

    code, answer = await as_b.request("GET", f"{V1}/event/{path_of(event_id)}")
    assert code == 200, answer
    hello = answer["pdus"][0]
    assert hello["content"]["body"] == "hello servers" and answer["origin"] == a.server.server_name

    code, state = await as_b.request("GET", f"{V1}/state/{room}", query={"event_id": event_id})
    assert code == 200, state
    assert {"m.room.create", "m.room.power_levels", "m.room.name"} <= {p["type"] for p in state["pdus"]}
    assert "m.room.create" in {p["type"] for p in state["auth_chain"]}
    code, ids = await as_b.request("GET", f"{V1}/state_ids/{room}", query={"event_id": event_id})
    assert code == 200, ids
    assert len(ids["pdu_ids"]) == len(state["pdus"]) and len(ids["auth_chain_ids"]) == len(state["auth_chain"])

    code, auth = await as_b.request("GET", f"{V1}/event_auth/{room}/{path_of(event_id)}")
    assert code == 200, auth
    assert {"m.room.create", "m.room.power_levels", "m.room.member"} <= {p["type"] for p in auth["auth_chain"]}

    code, backfill = await as_b.request("GET", f"{V1}/backfill/{room}", query={"v": [event_id], "limit": "3"})
    assert code == 200, backfill
    assert len(backfill["pdus"]) == 3 and backfill["pdus"][0] == hello
    assert backfill["pdus"][1]["type"] == "m.room.member"   # bob's join, just before
    code, missing = await as_b.request("POST", f"{V1}/get_missing_events/{room}",
                                       {"earliest_events": [], "latest_events": [event_id], "limit": 2})
    assert code == 200, missing
    assert [p["type"] for p in missing["events"]] == [p["type"] for p in reversed(backfill["pdus"][1:])]

    code, found = await as_b.request("GET", f"{V1}/timestamp_to_event/{room}",
                                     query={"ts": str(hello["origin_server_ts"]), "dir": "b"})
    assert (code, found) == (200, {"event_id": event_id, "origin_server_ts": hello["origin_server_ts"]})

    for method, path, query, body in [
        ("GET", f"{V1}/event/{path_of(event_id)}", None, None),
        ("GET", f"{V1}/state/{room}", {"event_id": event_id}, None),
        ("GET", f"{V1}/state_ids/{room}", {"event_id": event_id}, None),
        ("GET", f"{V1}/event_auth/{room}/{path_of(event_id)}", None, None),
        ("GET", f"{V1}/backfill/{room}", {"v": [event_id], "limit": "3"}, None),
        ("POST", f"{V1}/get_missing_events/{room}", None, {"earliest_events": [], "latest_events": [event_id]}),
        ("GET", f"{V1}/timestamp_to_event/{room}", {"ts": str(hello["origin_server_ts"]), "dir": "b"}, None),
    ]:
        code, refused = await as_c.request(method, path, body, query=query)
        assert (code, refused.get("errcode")) == (403, "M_FORBIDDEN"), (path, refused)

    code, bad = await as_b.request("GET", f"{V1}/backfill/{room}", query={"limit": "3"})
    assert (code, bad["errcode"]) == (400, "M_MISSING_PARAM")


@pytest_twisted.ensureDeferred
async def test_an_event_of_another_room_gives_nothing_of_that_room_away(clients, as_b):
    """B, in one room of A, names an event of a private room of A it is not in: no state, no events."""
    a, _ = clients
    alice, _, room_id = await shared_room(clients)
    private = await create_room(a, alice, preset="private_chat", name="Secret room")
    secret = await send_text(a, alice, private, "secret", "s1")
    room = path_of(room_id)

    for path, query in [(f"{V1}/state_ids/{room}", {"event_id": secret}),
                        (f"{V1}/state/{room}", {"event_id": secret}),
                        (f"{V1}/event_auth/{room}/{path_of(secret)}", None)]:
        code, answer = await as_b.request("GET", path, query=query)
        assert (code, answer.get("errcode")) == (404, "M_NOT_FOUND"), (path, answer)
        assert "pdus" not in answer and "pdu_ids" not in answer and "auth_chain" not in answer
    for path, query in [(f"{V1}/state_ids/{path_of(private)}", {"event_id": secret}),
                        (f"{V1}/event/{path_of(secret)}", None)]:
        code, answer = await as_b.request("GET", path, query=query)
        assert (code, answer.get("errcode")) == (403, "M_FORBIDDEN"), (path, answer)

    code, answer = await as_b.request("GET", f"{V1}/backfill/{room}", query={"v": [secret], "limit": "10"})
    assert (code, answer["pdus"]) == (200, [])
    code, answer = await as_b.request("POST", f"{V1}/get_missing_events/{room}",
                                      {"earliest_events": [], "latest_events": [secret], "limit": 10})
    assert (code, answer) == (200, {"events": []})


@pytest_twisted.ensureDeferred
async def test_joined_history_is_redacted_for_a_server_that_was_not_there(clients, as_b):
    """In a "joined" room, B gets what was said before bob joined redacted, and no state there."""
    a, b = clients
    alice, bob = await a.register(), await b.register()
    room_id = await create_room(a, alice, preset="public_chat", initial_state=[
        {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "joined"}}])
    before = await send_text(a, alice, room_id, "before bob", "b1")
    await ok(b, "POST", f"join/{quote(room_id)}", {}, user=bob, query={"via": a.server.server_name})
    await SyncWatcher(a, alice).wait_for(membership_of(bob["user_id"], "join", room_id), "bob's join")
    after = await send_text(a, alice, room_id, "after bob", "b2")
    room = path_of(room_id)

    code, answer = await as_b.request("GET", f"{V1}/backfill/{room}", query={"v": [after], "limit": "10"})
    assert code == 200, answer
    assert [p["content"] for p in answer["pdus"] if p["type"] == "m.room.message"] == [
        {"msgtype": "m.text", "body": "after bob"}, {}]
    code, answer = await as_b.request("GET", f"{V1}/event/{path_of(before)}")
    assert (code, answer["pdus"][0]["content"]) == (200, {})
    code, answer = await as_b.request("GET", f"{V1}/state_ids/{room}", query={"event_id": before})
    assert (code, answer.get("errcode")) == (403, "M_FORBIDDEN")
    code, answer = await as_b.request("GET", f"{V1}/state_ids/{room}", query={"event_id": after})
    assert code == 200, answer

    events = await page_back(b, bob, room_id)
    assert bodies_of(events) == ["after bob"]


@pytest_twisted.ensureDeferred
async def test_timestamp_to_event_finds_history_on_the_other_server(clients):
    """bob asks B for the message at a time before he joined: B asks A, backfills it, and answers it."""
    a, b = clients
    alice, bob = await a.register(), await b.register()
    room_id = await create_room(a, alice, preset="public_chat")
    sent = []
    for i in range(1, 6):
        sent.append(await send_text(a, alice, room_id, f"timed {i}", f"t{i}"))
        await deferLater(reactor, 0.01, lambda: None)   # distinct timestamps
    third = await ok(a, "GET", f"rooms/{quote(room_id)}/event/{quote(sent[2])}", user=alice)
    await ok(b, "POST", f"join/{quote(room_id)}", {}, user=bob, query={"via": a.server.server_name})

    found = await ok(b, "GET", f"/_matrix/client/v1/rooms/{quote(room_id)}/timestamp_to_event", user=bob,
                     query={"ts": str(third["origin_server_ts"]), "dir": "f"})
    assert found == {"event_id": sent[2], "origin_server_ts": third["origin_server_ts"]}
    event = await ok(b, "GET", f"rooms/{quote(room_id)}/event/{quote(sent[2])}", user=bob)
    assert event["content"]["body"] == "timed 3"
    context = await ok(b, "GET", f"rooms/{quote(room_id)}/context/{quote(sent[2])}", user=bob,
                       query={"limit": "2"})
    assert bodies_of(context["events_after"]) == ["timed 4"]


@pytest_twisted.ensureDeferred
async def test_a_server_the_acl_denies_reads_nothing(clients, as_b):
    """Once the room's server ACL denies B (every test server is named localhost), B's reads are 403."""
    a, _ = clients
    alice, _, room_id = await shared_room(clients)
    event_id = await send_text(a, alice, room_id, "before the ACL", "a1")
    await ok(a, "PUT", f"rooms/{quote(room_id)}/state/m.room.server_acl/",
             {"allow": ["*"], "deny": ["localhost"]}, user=alice)
    for path, query in [(f"{V1}/event/{path_of(event_id)}", None),
                        (f"{V1}/backfill/{path_of(room_id)}", {"v": [event_id], "limit": "5"})]:
        code, answer = await as_b.request("GET", path, query=query)
        assert (code, answer.get("errcode")) == (403, "M_FORBIDDEN"), (path, answer)
