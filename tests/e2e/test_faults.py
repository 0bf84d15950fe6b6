"""
Faults through the real daemon: clients hanging up mid-request, identical
requests racing, the daemon killed with SIGKILL while it sends, and
PostgreSQL restarted under load. Whatever happens, no acknowledged write is
lost, a retried transaction id finds its first event, nobody else sees an
error, and nothing is left half-done.
"""
from __future__ import annotations

import itertools
import json
import random
import socket
import struct
import time

import psycopg2
import pytest_twisted
from twisted.internet import defer, reactor, threads
from twisted.internet.task import deferLater

_txns = itertools.count(1)


def txn_id(prefix: str = "t") -> str:
    return f"{prefix}{next(_txns)}x{random.randrange(10**9)}"


def hang_up_after(port: int, method: str, path: str, body: dict, token: str, delay_s: float) -> None:
    """
    Send a request on a raw socket and reset the connection after
    C{delay_s}, whether or not the answer came: a client that hangs up.
    Blocking: run it in a thread.
    """
    raw = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n".encode() + raw)
        time.sleep(delay_s)


def in_thread(fn, *args) -> defer.Deferred:
    return threads.deferToThread(fn, *args)


async def create_room(client, user, **body) -> str:
    response = await client.request("POST", "createRoom", body, token=user["access_token"])
    assert response.code == 200, response
    return response.json["room_id"]


def send_path(room_id: str, txn: str, event_type: str = "m.room.message") -> str:
    return f"/_matrix/client/v3/rooms/{room_id}/send/{event_type}/{txn}"


async def timeline_bodies(client, user, room_id: str) -> list[str]:
    """Every message body in the room, oldest first (paging back through /messages)."""
    bodies, token = [], None
    for _ in range(100):
        query = {"dir": "b", "limit": "100"}
        if token is not None:
            query["from"] = token
        page = await client.request("GET", f"rooms/{room_id}/messages", token=user["access_token"],
                                    query=query)
        assert page.code == 200, page
        bodies += [e["content"].get("body") for e in page.json["chunk"] if e["type"] == "m.room.message"]
        token = page.json.get("end")
        if token is None:
            break
    return bodies[::-1]


def quiet(d: defer.Deferred) -> defer.Deferred:
    """The hang-up threads may fail to connect after a kill: not what is tested."""
    return d.addErrback(lambda failure: None)


@pytest_twisted.ensureDeferred
async def test_hang_ups_never_hurt_anyone_else(start_homeserver, make_client):
    """
    While one client abandons sends and createRooms 0-20 ms in, another
    user's ordinary requests all succeed, and every room the first client
    created is whole: its creator joined, with power levels and join rules.
    """
    server = start_homeserver("[rate_limits]\nenabled = false\n")
    client = make_client(server)
    rude, polite = await client.register(), await client.register()
    rude_room = await create_room(client, rude)
    polite_room = await create_room(client, polite)
    rng = random.Random(8)

    async def hang_ups():
        for i in range(60):
            if i % 3 == 0:
                method, path, body = "POST", "/_matrix/client/v3/createRoom", {"name": f"r{i}"}
            else:
                method, path, body = "PUT", send_path(rude_room, txn_id()), {"msgtype": "m.text", "body": "x"}
            await in_thread(hang_up_after, server.port, method, path, body, rude["access_token"],
                            rng.uniform(0.0, 0.02))

    codes = []

    async def ordinary_requests():
        token = polite["access_token"]
        for i in range(60):
            for method, path, body, query in (
                ("PUT", send_path(polite_room, txn_id("p")), {"msgtype": "m.text", "body": f"p{i}"}, None),
                ("GET", "sync", None, {"timeout": "0"}),
                ("GET", f"rooms/{polite_room}/messages", None, {"dir": "b", "limit": "5"}),
                ("GET", "account/whoami", None, None),
            ):
                response = await client.request(method, path, body, token=token, query=query)
                codes.append((path.split("/")[-1] if method == "GET" else method, response.code,
                              (response.json or {}).get("errcode")))

    await defer.gatherResults([defer.ensureDeferred(hang_ups()),
                               defer.ensureDeferred(ordinary_requests())], consumeErrors=True)
    failed = [c for c in codes if c[1] != 200]
    assert failed == [], f"{len(failed)} of {len(codes)} requests failed: {failed[:10]}"
    assert len(await timeline_bodies(client, polite, polite_room)) == 60

    joined = await client.request("GET", "joined_rooms", token=rude["access_token"])
    for room_id in joined.json["joined_rooms"]:
        state = await client.request("GET", f"rooms/{room_id}/state", token=rude["access_token"])
        assert state.code == 200, state
        keys = {(e["type"], e["state_key"]) for e in state.json}
        assert {("m.room.create", ""), ("m.room.member", rude["user_id"]), ("m.room.power_levels", ""),
                ("m.room.join_rules", ""), ("m.room.history_visibility", "")} <= keys, (room_id, keys)
    # No room was left without its events (a room is created whole or not at all).
    with psycopg2.connect(server.dsn) as db, db.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM rooms r WHERE NOT EXISTS"
                       " (SELECT 1 FROM current_state c WHERE c.room_id = r.room_id"
                       "  AND c.type = 'm.room.power_levels')")
        assert cursor.fetchone() == (0,)


@pytest_twisted.ensureDeferred
async def test_a_retry_after_a_hang_up_finds_the_first_attempt(start_homeserver, make_client):
    """
    A send, a join and a send-to-device abandoned at random points and
    then retried with the same transaction id take effect exactly once,
    and the retry answers 200.
    """
    server = start_homeserver("[rate_limits]\nenabled = false\n")
    client = make_client(server)
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    rng = random.Random(11)
    sent = []
    for i in range(12):
        txn, body = txn_id(), {"msgtype": "m.text", "body": f"once {i}"}
        await in_thread(hang_up_after, server.port, "PUT", send_path(room_id, txn), body,
                        alice["access_token"], rng.uniform(0.0, 0.015))
        retry = await client.request("PUT", send_path(room_id, txn), body, token=alice["access_token"])
        assert retry.code == 200, retry
        again = await client.request("PUT", send_path(room_id, txn), body, token=alice["access_token"])
        assert again.json["event_id"] == retry.json["event_id"]
        sent.append(body["body"])
    bodies = await timeline_bodies(client, alice, room_id)
    assert [b for b in bodies if b in sent] == sent

    await in_thread(hang_up_after, server.port, "POST", f"/_matrix/client/v3/rooms/{room_id}/join", {},
                    bob["access_token"], 0.005)
    joined = await client.request("POST", f"rooms/{room_id}/join", {}, token=bob["access_token"])
    assert joined.code == 200, joined
    members = await client.request("GET", f"rooms/{room_id}/messages", token=alice["access_token"],
                                   query={"dir": "b", "limit": "100"})
    bob_joins = [e for e in members.json["chunk"] if e["type"] == "m.room.member"
                 and e["state_key"] == bob["user_id"] and e["content"]["membership"] == "join"]
    assert len(bob_joins) == 1, bob_joins

    since = (await client.request("GET", "sync", token=bob["access_token"],
                                  query={"timeout": "0"})).json["next_batch"]
    for i in range(6):
        txn = txn_id()
        path = f"/_matrix/client/v3/sendToDevice/org.example.ping/{txn}"
        body = {"messages": {bob["user_id"]: {bob["device_id"]: {"n": i}}}}
        await in_thread(hang_up_after, server.port, "PUT", path, body, alice["access_token"],
                        rng.uniform(0.0, 0.01))
        retry = await client.request("PUT", path, body, token=alice["access_token"])
        assert retry.code == 200, retry
    synced = await client.request("GET", "sync", token=bob["access_token"],
                                  query={"since": since, "timeout": "0"})
    received = [e["content"]["n"] for e in synced.json.get("to_device", {}).get("events", [])]
    assert sorted(received) == list(range(6))


@pytest_twisted.ensureDeferred
async def test_identical_create_room_requests_make_distinct_whole_rooms(client):
    """Ten identical createRoom requests at once make ten rooms (room ids from the create event's hash collide otherwise), never a 500."""
    alice = await client.register()
    body = {"preset": "private_chat", "name": "same"}
    responses = await defer.gatherResults([
        defer.ensureDeferred(client.request("POST", "createRoom", body, token=alice["access_token"]))
        for _ in range(10)
    ])
    assert [r.code for r in responses] == [200] * 10, responses
    room_ids = {r.json["room_id"] for r in responses}
    assert len(room_ids) == 10
    for room_id in room_ids:
        name = await client.request("GET", f"rooms/{room_id}/state/m.room.name/",
                                    token=alice["access_token"])
        assert name.json == {"name": "same"}


@pytest_twisted.ensureDeferred
async def test_sigkill_while_sending_loses_no_acknowledged_event(start_homeserver, make_client):
    """
    Eight senders run while the daemon is killed with SIGKILL. After a
    restart every acknowledged event is there, a retried transaction id
    answers its first event id, and the one in flight at the kill is sent
    exactly once.
    """
    server = start_homeserver("[rate_limits]\nenabled = false\n")
    client = make_client(server)
    senders = [(await client.register()) for _ in range(8)]
    rooms = [await create_room(client, user) for user in senders]
    acked: dict[tuple[int, str], str] = {}
    pending: dict[int, str] = {}
    stopping = []

    async def send_until_killed(i: int) -> None:
        user, room_id = senders[i], rooms[i]
        for n in itertools.count():
            if stopping:
                return
            txn = f"k{i}-{n}"
            pending[i] = txn
            try:
                response = await client.request("PUT", send_path(room_id, txn),
                                                {"msgtype": "m.text", "body": txn},
                                                token=user["access_token"], validate=False)
            except Exception:
                return  # the daemon died under this request
            assert response.code == 200, response
            acked[(i, txn)] = response.json["event_id"]

    running = [defer.ensureDeferred(send_until_killed(i)) for i in range(8)]
    await deferLater(reactor, 1.5, lambda: None)
    server.kill()
    stopping.append(True)
    await defer.gatherResults(running, consumeErrors=True)
    assert len(acked) > 50, "the senders should have sent for a while"

    server.start()
    for (i, txn), event_id in acked.items():
        retry = await client.request("PUT", send_path(rooms[i], txn), {"msgtype": "m.text", "body": txn},
                                     token=senders[i]["access_token"])
        assert retry.json == {"event_id": event_id}, (txn, retry)
    for i, txn in pending.items():
        retry = await client.request("PUT", send_path(rooms[i], txn), {"msgtype": "m.text", "body": txn},
                                     token=senders[i]["access_token"])
        assert retry.code == 200, retry
        bodies = await timeline_bodies(client, senders[i], rooms[i])
        assert bodies.count(txn) == 1, (txn, bodies[-5:])
        assert len(bodies) == len({t for (j, t) in acked if j == i} | {txn})


@pytest_twisted.ensureDeferred
async def test_postgres_restart_under_load(start_homeserver, make_client, pg_cluster, homeserver):
    """
    PostgreSQL stops and starts again under a stream of sends and syncs:
    meanwhile requests answer 503 M_UNKNOWN with Retry-After and
    retry_after_ms (never a 500), the daemon recovers by itself, every
    message retried until acknowledged is stored once, and the receiver's
    unread count matches what arrived.
    """
    server = start_homeserver("[rate_limits]\nenabled = false\n")
    client = make_client(server)
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    assert (await client.request("POST", f"rooms/{room_id}/join", {}, token=bob["access_token"])).code == 200
    outcomes = []
    acked = []

    async def sender() -> None:
        for n in range(40):
            txn, body = f"pg{n}", {"msgtype": "m.text", "body": f"pg{n}"}
            for _ in range(200):
                response = await client.request("PUT", send_path(room_id, txn), body,
                                                token=alice["access_token"])
                outcomes.append(response)
                if response.code == 200:
                    acked.append(body["body"])
                    break
                await deferLater(reactor, 0.1, lambda: None)
            await deferLater(reactor, 0.05, lambda: None)

    async def syncer() -> None:
        for _ in range(80):
            outcomes.append(await client.request("GET", "sync", token=bob["access_token"],
                                                 query={"timeout": "0"}))
            await deferLater(reactor, 0.05, lambda: None)

    async def outage() -> None:
        await deferLater(reactor, 0.8, lambda: None)
        await in_thread(pg_cluster.stop)
        try:
            await deferLater(reactor, 1.5, lambda: None)
        finally:
            await in_thread(pg_cluster.start)

    await defer.gatherResults([defer.ensureDeferred(f()) for f in (sender, syncer, outage)],
                              consumeErrors=True)
    codes = {r.code for r in outcomes}
    assert codes <= {200, 503}, [r for r in outcomes if r.code not in (200, 503)][:5]
    unavailable = [r for r in outcomes if r.code == 503]
    assert unavailable, "the outage should have been seen"
    for response in unavailable:
        assert response.json["errcode"] == "M_UNKNOWN", response
        assert response.json["retry_after_ms"] > 0 and int(response.headers["retry-after"]) >= 1
    assert acked == [f"pg{n}" for n in range(40)]
    assert [b for b in await timeline_bodies(client, bob, room_id) if b.startswith("pg")] == acked
    synced = await client.request("GET", "sync", token=bob["access_token"])
    counts = synced.json["rooms"]["join"][room_id]["unread_notifications"]
    assert counts["notification_count"] == 40
    assert server.process.poll() is None
    # The restart hit every daemon on the cluster: let the shared one recover.
    shared = make_client(homeserver)
    for _ in range(60):
        if (await shared.request("GET", "/_matrix/client/versions")).code == 200 and \
                (await shared.request("POST", "login", {"type": "m.login.password"}, validate=False)).code != 503:
            break
        await deferLater(reactor, 0.25, lambda: None)
