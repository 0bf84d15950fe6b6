"""
C{ruma-admin import-synapse}, the rooms: after a real Synapse's database is
moved into a new ruma_tx database (synapse_source.py, with the room history
of synapse_room_traffic.py), the old users find their rooms, history,
threads, edits, reactions, redactions, aliases, directory entry and read
receipts as they were, and their rooms go on from where Synapse left them.

The last tests move a Synapse that federated with another Synapse: rooms
shared with it keep working over federation once ruma_tx is that server
(its name, its signing key, its federation port).
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import psycopg2
import pytest
import pytest_twisted
from admin_helpers import ruma_admin
from signedjson.key import get_verify_key, read_signing_keys
from signedjson.sign import verify_signed_json
from synapse_peer import PEER_SCRIPT, SynapseCa, SynapseClient, peer_script
from synapse_source import import_target, imported, moved, needs_synapse, synapse_export  # noqa: F401
from twisted.internet import reactor
from twisted.internet.task import deferLater

from conftest import Homeserver, free_port
from ruma_tx.matrix.events import content_hash, event_id_for
from ruma_tx.matrix.redaction import redact

pytestmark = needs_synapse


@pytest.fixture
def history(synapse_export) -> dict:
    return synapse_export.manifest["history"]


async def login(client, manifest: dict, who: str) -> str:
    response = await client.login(manifest["users"][who], manifest["password"])
    assert response.code == 200, response
    return response.json["access_token"]


def stored_pdu(server: Homeserver, event_id: str) -> dict:
    """An event's PDU as ruma_tx stores (and serves over federation) it."""
    with psycopg2.connect(server.dsn) as db, db.cursor() as cursor:
        cursor.execute("SELECT pdu FROM events WHERE event_id = %s", (event_id,))
        row = cursor.fetchone()
    assert row is not None, event_id
    return json.loads(row[0])


def test_import_counts_rooms_events_and_receipts(imported):
    """The rooms, their events and their receipts are verified with the rest: Synapse's counts, all there."""
    _, done = imported
    counts = {name: (int(source), int(moved)) for name, source, moved in
              re.findall(r"^(rooms|room_events|receipts)\s+(\d+)\s+(\d+)\s+ok$", done.stdout, re.MULTILINE)}
    assert set(counts) == {"rooms", "room_events", "receipts"}, done.stdout
    assert all(source == moved > 0 for source, moved in counts.values()), counts


@pytest_twisted.ensureDeferred
async def test_old_user_sees_rooms_with_names_and_members(moved, synapse_export, history):
    """Alice's initial /sync has the rooms she was in on Synapse, named, with their members."""
    manifest = synapse_export.manifest
    token = await login(moved, manifest, "alice")
    sync = await moved.request("GET", "sync", token=token, query={"timeout": "0"})
    assert sync.code == 200, sync
    joined = sync.json["rooms"]["join"]
    assert {history["room_id"], manifest["lobby"]["room_id"], manifest["encrypted_room"]["room_id"]} <= set(joined)
    room = joined[history["room_id"]]
    state = {(e["type"], e.get("state_key")): e for e in room["state"]["events"] + room["timeline"]["events"]
             if "state_key" in e}
    assert state[("m.room.name", "")]["content"]["name"] == history["name"]
    assert state[("m.room.topic", "")]["content"]["topic"] == history["topic"]
    members = await moved.request("GET", f"rooms/{quote(history['room_id'])}/joined_members", token=token)
    assert members.code == 200, members
    assert set(members.json["joined"]) == {manifest["users"]["alice"], manifest["users"]["bob"]}
    # Synapse's timeline ends the room's, and the newest room is the last one moved.
    assert room["timeline"]["events"][-1]["event_id"] == history["last"]


@pytest_twisted.ensureDeferred
async def test_messages_return_old_history_in_order(moved, synapse_export, history):
    """Paging back through the room gives Synapse's events, with their ids, in their order."""
    token = await login(moved, synapse_export.manifest, "bob")
    seen: list[str] = []
    query = {"dir": "b", "limit": "7"}
    while True:
        page = await moved.request("GET", f"rooms/{quote(history['room_id'])}/messages", token=token, query=query)
        assert page.code == 200, page
        seen.extend(event["event_id"] for event in page.json["chunk"])
        if "end" not in page.json:
            break
        query = {**query, "from": page.json["end"]}
    seen.reverse()
    sent = history["timeline"]
    assert [event_id for event_id in seen if event_id in set(sent)] == sent
    assert seen[0] == history["room_id"].replace("!", "$", 1)  # a room version 12 create event's id


@pytest_twisted.ensureDeferred
async def test_thread_edit_and_reaction_still_aggregate(moved, synapse_export, history):
    """The thread root bundles its reply, the edited message its edit, and the reaction is listed."""
    token = await login(moved, synapse_export.manifest, "alice")
    room = quote(history["room_id"])
    root = await moved.request("GET", f"rooms/{room}/event/{quote(history['thread_root'])}", token=token)
    assert root.code == 200, root
    thread = root.json["unsigned"]["m.relations"]["m.thread"]
    assert thread["count"] == 1 and thread["latest_event"]["event_id"] == history["thread_reply"], thread
    edited = await moved.request("GET", f"rooms/{room}/event/{quote(history['edited'])}", token=token)
    assert edited.json["unsigned"]["m.relations"]["m.replace"]["event_id"] == history["edit"], edited
    reactions = await moved.request(
        "GET", f"/_matrix/client/v1/rooms/{room}/relations/{quote(history['edited'])}/m.annotation", token=token)
    assert reactions.code == 200, reactions
    assert [event["event_id"] for event in reactions.json["chunk"]] == [history["reaction"]]
    threads = await moved.request("GET", f"/_matrix/client/v1/rooms/{room}/threads", token=token)
    assert [event["event_id"] for event in threads.json["chunk"]] == [history["thread_root"]]


@pytest_twisted.ensureDeferred
async def test_redacted_message_stays_redacted(moved, synapse_export, history):
    """The message redacted on Synapse has no content here, and says what redacted it."""
    token = await login(moved, synapse_export.manifest, "bob")
    event = await moved.request("GET", f"rooms/{quote(history['room_id'])}/event/{quote(history['redacted'])}",
                                token=token)
    assert event.code == 200, event
    assert event.json["content"] == {}
    assert event.json["unsigned"]["redacted_because"]["event_id"] == history["redaction"]


@pytest_twisted.ensureDeferred
async def test_search_finds_an_old_message(moved, synapse_export, history):
    """Server-side search finds the message sent over Synapse (and not the redacted one)."""
    token = await login(moved, synapse_export.manifest, "alice")
    for term, expected in ((history["search_word"], [history["searched"]]), (history["redacted_word"], [])):
        found = await moved.request("POST", "search", {"search_categories": {"room_events": {"search_term": term}}},
                                    token=token)
        assert found.code == 200, found
        assert [result["result"]["event_id"] for result in found.json["search_categories"]["room_events"]["results"]] \
            == expected, term


@pytest_twisted.ensureDeferred
async def test_alias_and_directory(moved, history):
    """The room's alias resolves to it, and it is in the public room directory."""
    resolved = await moved.request("GET", f"directory/room/{quote(history['alias'])}")
    assert resolved.code == 200, resolved
    assert resolved.json["room_id"] == history["room_id"]
    public = await moved.request("GET", "publicRooms")
    assert public.code == 200, public
    listed = {room["room_id"]: room for room in public.json["chunk"]}
    assert listed[history["room_id"]]["name"] == history["name"]
    assert listed[history["room_id"]]["num_joined_members"] == 2


@pytest_twisted.ensureDeferred
async def test_read_receipts_are_kept(moved, synapse_export, history):
    """The read receipts sent over Synapse are in the room's /sync."""
    token = await login(moved, synapse_export.manifest, "bob")
    sync = await moved.request("GET", "sync", token=token, query={"timeout": "0"})
    ephemeral = sync.json["rooms"]["join"][history["room_id"]]["ephemeral"]["events"]
    read = {user_id: event_id for receipt in ephemeral if receipt["type"] == "m.receipt"
            for event_id, types in receipt["content"].items() for user_id in types.get("m.read", {})}
    assert read == history["receipts"]


def test_old_events_keep_their_signatures(imported, synapse_export, history):
    """Local events keep their event ids and Synapse's signatures, which the imported key verifies."""
    server, _ = imported
    key = get_verify_key(read_signing_keys(synapse_export.signing_key.read_text().splitlines())[0])
    for event_id in (history["thread_root"], history["edit"], history["last"]):
        pdu = stored_pdu(server, event_id)
        assert event_id_for(pdu, "12") == event_id
        assert content_hash(pdu) == pdu["hashes"]["sha256"]
        verify_signed_json(redact(pdu, "12"), synapse_export.server_name, key)  # signed redacted
    assert "unsigned" not in stored_pdu(server, history["last"])  # Synapse's bookkeeping left behind


@pytest_twisted.ensureDeferred
async def test_sending_continues_the_room(imported, moved, synapse_export):
    """A new message builds on Synapse's forward extremity, and both users see it after the old history."""
    server, _ = imported
    manifest = synapse_export.manifest
    room_id = manifest["lobby"]["room_id"]
    with psycopg2.connect(synapse_export.database) as synapse, synapse.cursor() as cursor:
        cursor.execute("SELECT event_id FROM event_forward_extremities WHERE room_id = %s", (room_id,))
        extremities = [row[0] for row in cursor.fetchall()]
    token = await login(moved, manifest, "alice")
    sent = await moved.request("PUT", f"rooms/{quote(room_id)}/send/m.room.message/{uuid.uuid4().hex}",
                               {"msgtype": "m.text", "body": "back on a new server"}, token=token)
    assert sent.code == 200, sent
    pdu = stored_pdu(server, sent.json["event_id"])
    assert pdu["prev_events"] == extremities
    assert pdu["depth"] == stored_pdu(server, extremities[0])["depth"] + 1
    bob = await login(moved, manifest, "bob")
    page = await moved.request("GET", f"rooms/{quote(room_id)}/messages", token=bob, query={"dir": "b", "limit": "3"})
    bodies = [event["content"].get("body") for event in reversed(page.json["chunk"])]
    assert bodies == [*manifest["lobby"]["texts"], "back on a new server"]


# ---------------------------------------------------- a federated Synapse


def _request(base_url: str, method: str, path: str, body=None, token: str | None = None) -> dict:
    request = urllib.request.Request(base_url + "/_matrix/client/v3/" + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _until(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, urllib.error.HTTPError):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}") from None
            time.sleep(0.5)


def _federated_traffic(a_url: str, a_name: str, b_url: str, b_name: str) -> dict:
    """
    On Synapse A and B: a room of B that A's users join, and a room of A
    with a member of B, where a thread reply of B and a topic change of A
    cross (two forward extremities).
    """
    def register(base_url: str, who: str) -> dict:
        return _request(base_url, "POST", "register", {"username": f"{who}{uuid.uuid4().hex[:6]}",
                                                        "password": "a long enough password 1",
                                                        "auth": {"type": "m.login.dummy"}})

    def send(base_url: str, user: dict, room_id: str, content: dict) -> str:
        return _request(base_url, "PUT", f"rooms/{quote(room_id)}/send/m.room.message/{uuid.uuid4().hex}",
                        content, user["access_token"])["event_id"]

    def seen_by(base_url: str, user: dict, room_id: str, event_id: str) -> None:
        _request(base_url, "GET", f"rooms/{quote(room_id)}/event/{quote(event_id)}", token=user["access_token"])

    anna, arne, bert = register(a_url, "anna"), register(a_url, "arne"), register(b_url, "bert")
    theirs = _request(b_url, "POST", "createRoom", {"name": "Their room", "preset": "public_chat"},
                      bert["access_token"])["room_id"]
    for user in (anna, arne):
        _request(a_url, "POST", f"join/{quote(theirs)}?server_name={quote(b_name)}", {}, user["access_token"])
    texts = [f"over there {index}" for index in range(6)]
    for index, text in enumerate(texts):
        sender, base_url = (anna, a_url) if index % 2 else (bert, b_url)
        event_id = send(base_url, sender, theirs, {"msgtype": "m.text", "body": text})
        _until(lambda: seen_by(a_url if base_url == b_url else b_url, anna if base_url == b_url else bert,
                               theirs, event_id), "the message to cross")
    ours = _request(a_url, "POST", "createRoom", {"name": "Our room", "preset": "public_chat"},
                    anna["access_token"])["room_id"]
    _request(b_url, "POST", f"join/{quote(ours)}?server_name={quote(a_name)}", {}, bert["access_token"])
    root = send(a_url, anna, ours, {"msgtype": "m.text", "body": "who is coming?"})
    _until(lambda: seen_by(b_url, bert, ours, root), "the root on B")
    # B's reply and A's topic change at once: each likely sent before the other arrives (a fork).
    with ThreadPoolExecutor(2) as pool:
        replying = pool.submit(send, b_url, bert, ours, {"msgtype": "m.text", "body": "me",
                                                         "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
        topic = pool.submit(_request, a_url, "PUT", f"rooms/{quote(ours)}/state/m.room.topic", {"topic": "the trip"},
                            anna["access_token"]).result()["event_id"]
        reply = replying.result()
    _until(lambda: seen_by(a_url, anna, ours, reply), "B's reply on A")
    _until(lambda: seen_by(b_url, bert, ours, topic), "A's topic on B")
    return {"anna": anna, "arne": arne, "bert": bert, "theirs": theirs, "texts": texts, "ours": ours,
            "root": root, "reply": reply}


@pytest.fixture(scope="module")
def federated(pg_cluster, tmp_path_factory):
    """
    Synapse A federating with Synapse B, moved into ruma_tx: ruma_tx takes
    A's name, key and federation port, and federates with B.
    """
    if not PEER_SCRIPT.exists():
        pytest.skip(f"no Synapse peer script at {PEER_SCRIPT}")
    home = tmp_path_factory.mktemp("federated-import")
    environment = {**os.environ, "FED_HOME": str(home / "fed")}
    b_env = {**environment, "FED_PORT": str(free_port()), "CLIENT_PORT": str(free_port())}
    b = peer_script(b_env, "start")
    a_env: dict[str, str] = {}
    server = None
    try:
        ca = SynapseCa(b_env, Path(b["CA_CERT"]))
        server = Homeserver(home / "ruma", pg_cluster.create_database(f"ruma_fed_import_{os.getpid()}"),
                            federation={}, ca=ca, extra_config="[rate_limits]\nenabled = false\n")
        a_env = {**environment, "FED_PORT": str(server.federation_port), "CLIENT_PORT": str(free_port())}
        a = peer_script(a_env, "start")
        assert a["SERVER_NAME"] == server.server_name
        traffic = _federated_traffic(a["CLIENT_URL"], a["SERVER_NAME"], b["CLIENT_URL"], b["SERVER_NAME"])
        peer_script(a_env, "stop")
        state = Path(a["STATE_DIR"])
        with sqlite3.connect(f"file:{state / 'homeserver.db'}?mode=ro", uri=True) as synapse_a:
            traffic["extremities"] = {room_id: sorted(row[0] for row in synapse_a.execute(
                "SELECT event_id FROM event_forward_extremities WHERE room_id = ?", (room_id,)))
                for room_id in (traffic["theirs"], traffic["ours"])}
        done = ruma_admin("import-synapse", "--config", server.config_path, "--synapse-db", state / "homeserver.db",
                          "--signing-key", next(state.glob("*.signing.key")), "--media-store", state / "media",
                          "--yes", timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        server.start()
        yield server, SynapseClient(b), traffic
    finally:
        if server is not None:
            server.stop()
        if a_env:
            peer_script(a_env, "stop")
        peer_script(b_env, "stop")


async def eventually(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await deferLater(reactor, 0.5, lambda: None)


@pytest_twisted.ensureDeferred
async def test_joined_room_history_and_members_after_the_move(federated, make_client):
    """Anna finds the room of the other server she joined, its members and the messages sent there."""
    server, _, traffic = federated
    client = make_client(server)
    login = await client.request("POST", "login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": traffic["anna"]["user_id"]},
        "password": "a long enough password 1"})
    assert login.code == 200, login
    token = login.json["access_token"]
    members = await client.request("GET", f"rooms/{quote(traffic['theirs'])}/joined_members", token=token)
    assert set(members.json["joined"]) == {traffic[who]["user_id"] for who in ("anna", "arne", "bert")}
    page = await client.request("GET", f"rooms/{quote(traffic['theirs'])}/messages", token=token,
                                query={"dir": "b", "limit": "50"})
    bodies = [event["content"].get("body") for event in reversed(page.json["chunk"])
              if event["type"] == "m.room.message"]
    assert bodies == traffic["texts"]


@pytest_twisted.ensureDeferred
async def test_federated_rooms_go_on_with_the_other_server(federated, make_client):
    """
    A message sent here builds on every forward extremity Synapse had and
    reaches the other server (signed with the imported key, on events it
    knows); the other server's next message reaches the moved users.
    """
    server, synapse_b, traffic = federated
    client = make_client(server)
    login = await client.request("POST", "login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": traffic["anna"]["user_id"]},
        "password": "a long enough password 1"})
    token = login.json["access_token"]
    ours = quote(traffic["ours"])
    sent = await client.request("PUT", f"rooms/{ours}/send/m.room.message/{uuid.uuid4().hex}",
                                {"msgtype": "m.text", "body": "hello from the new server"}, token=token)
    assert sent.code == 200, sent
    assert sorted(stored_pdu(server, sent.json["event_id"])["prev_events"]) == traffic["extremities"][traffic["ours"]]
    bert = traffic["bert"]["access_token"]

    async def on_b():
        answer = await synapse_b.request("GET", f"rooms/{ours}/event/{quote(sent.json['event_id'])}", token=bert)
        return answer.code == 200

    await eventually(on_b, "the other server to accept the new message")
    reply = await synapse_b.request("PUT", f"rooms/{ours}/send/m.room.message/{uuid.uuid4().hex}",
                                    {"msgtype": "m.text", "body": "welcome back"}, token=bert)
    assert reply.code == 200, reply

    async def here():
        answer = await client.request("GET", f"rooms/{ours}/event/{quote(reply.json['event_id'])}", token=token)
        return answer.code == 200

    await eventually(here, "the other server's message to arrive")
    thread = await client.request("GET", f"rooms/{ours}/event/{quote(traffic['root'])}", token=token)
    assert thread.json["unsigned"]["m.relations"]["m.thread"]["latest_event"]["event_id"] == traffic["reply"]
    topic = await client.request("GET", f"rooms/{ours}/state/m.room.topic", token=token)
    assert topic.json == {"topic": "the trip"}
