"""
Rooms shared with other servers (L{ruma_tx.services.federation_events},
L{ruma_tx.services.room_dag}) over a real database, with a fake
federation client and key ring standing for the remote server.
"""
from __future__ import annotations

import json

import pytest_twisted
from nacl.signing import VerifyKey
from signedjson.key import generate_signing_key, get_verify_key
from twisted.internet import reactor

from ruma_tx.matrix.events import build_pdu
from ruma_tx.matrix.room_versions import ROOM_VERSIONS
from ruma_tx.services.canonical_alias import CanonicalAliasCheck
from ruma_tx.services.event_spec import EventSpec
from ruma_tx.services.events import EventCreator
from ruma_tx.services.federation_events import EventReceiver
from ruma_tx.services.notifier import Notifier
from ruma_tx.services.ports.federation import RemoteMatrixError
from ruma_tx.services.push import PushEvaluator, PushRules
from ruma_tx.services.relations import RelationChecker
from ruma_tx.services.room_dag import RoomDag
from ruma_tx.services.server_acls import ServerAcls
from ruma_tx.services.streams import StreamIdGenerator, StreamWriter
from ruma_tx.storage.directory import DirectoryStore
from ruma_tx.storage.events import EventStore
from ruma_tx.storage.migrations import migrate
from ruma_tx.storage.push import PushStore
from ruma_tx.storage.relations import RelationStore
from ruma_tx.storage.room_dag import DagStore

from test_database import open_database

HERE, REMOTE = "hs.test", "remote.test"
ALICE, BOB, EVE = f"@alice:{HERE}", f"@bob:{REMOTE}", f"@eve:{REMOTE}"
KEYS = {HERE: generate_signing_key("h1"), REMOTE: generate_signing_key("r1")}
VERSION = ROOM_VERSIONS["11"]
TS = 1_700_000_000_000


class FakeKeyRing:
    async def verify_keys(self, server_name, key_ids, at_ms):
        key = KEYS.get(server_name)
        key_id = f"ed25519:{key.version}" if key else None
        return {key_id: VerifyKey(bytes(get_verify_key(key)))} if key_id in key_ids else {}


class FakeFederation:
    """The remote server: its events by id, and what it answers to get_missing_events and state_ids."""

    def __init__(self):
        self.events = {}
        self.missing = []
        self.state_ids = {}
        self.requests = []

    async def get_json(self, destination, path, *, query=None, timeout_s=None):
        self.requests.append(("GET", path, query))
        if "/event/" in path:
            event_id = next(e for e in self.events if path.endswith(e.replace("$", "%24")))
            return {"origin": REMOTE, "origin_server_ts": TS, "pdus": [self.events[event_id]]}
        if "/state_ids/" in path:
            return self.state_ids[query["event_id"]]
        raise RemoteMatrixError(destination, 404, "M_NOT_FOUND", "no")

    async def post_json(self, destination, path, body, *, query=None, timeout_s=None):
        self.requests.append(("POST", path, body))
        return {"events": self.missing if self.missing is not None else self._walk_back(body)}

    def _walk_back(self, body):
        """With C{missing = None}: a server's answer, the ancestors of latest_events back to earliest_events."""
        seen = {*body["earliest_events"], *body["latest_events"]}
        queue, answer = list(body["latest_events"]), []
        while queue and len(answer) < body["limit"]:
            for prev in self.events[queue.pop(0)]["prev_events"]:
                if prev not in seen and prev in self.events and len(answer) < body["limit"]:
                    seen.add(prev)
                    answer.append(self.events[prev])
                    queue.append(prev)
        return sorted(answer, key=lambda pdu: pdu["depth"])


class Room:
    """A room alice created here, and builders of the remote server's events in it."""

    def __init__(self, room_id, state):
        self.room_id = room_id
        self.state = dict(state)   # (type, state_key) -> event id, as the remote server sees it
        self.ts = TS

    def remote(self, sender, event_type, content, *, prev, depth, state_key=None, auth=None, key=REMOTE):
        self.ts += 1000
        auth_keys = [("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.member", sender)]
        if event_type == "m.room.member":
            auth_keys.append(("m.room.join_rules", ""))
        auth_events = auth if auth is not None else [self.state[k] for k in auth_keys if k in self.state]
        return build_pdu(room_version=VERSION, room_id=self.room_id, sender=sender, event_type=event_type,
                         content=content, state_key=state_key, prev_events=prev, auth_events=auth_events,
                         depth=depth, origin_server_ts=self.ts, server_name=key, signing_key=KEYS[key])


@pytest_twisted.async_yield_fixture
async def built(pg_cluster):
    """A room of ALICE's, and the pieces that receive events into it; the database closed after the test."""
    database = await open_database(pg_cluster, pool_size=2)
    await migrate(database, TS)
    events, dag_events, push_store = EventStore(database), DagStore(database), PushStore(database)
    streams = StreamWriter(StreamIdGenerator(0), Notifier(reactor, 0))
    dag = RoomDag(store=dag_events)
    creator = EventCreator(
        events=events, streams=streams, clock=reactor, server_name=HERE, signing_key=KEYS[HERE],
        check_canonical_alias=CanonicalAliasCheck(directory=DirectoryStore(database), events=events),
        push=PushEvaluator(rules=PushRules(store=push_store, streams=streams), store=push_store, server_name=HERE),
        relations=RelationChecker(store=RelationStore(database)).check, dag_events=dag_events, dag=dag)
    federation = FakeFederation()
    receiver = EventReceiver(creator=creator, events=events, dag_events=dag_events, dag=dag,
                             federation=federation, key_ring=FakeKeyRing(), acls=ServerAcls(events),
                             reactor=reactor)
    room_id = await creator.create_room(
        room_version=VERSION,
        create=EventSpec(f"!dag:{HERE}", ALICE, "m.room.create", {"room_version": "11"}, state_key=""),
        initial=[EventSpec(None, ALICE, "m.room.member", {"membership": "join"}, state_key=ALICE),
                 EventSpec(None, ALICE, "m.room.power_levels",
                           {"users": {ALICE: 100}, "events": {"m.room.topic": 0}}, state_key=""),
                 EventSpec(None, ALICE, "m.room.join_rules", {"join_rule": "public"}, state_key="")])
    state = {key: e.event_id for key, e in (await events.get_state(room_id)).items()}
    yield events, dag_events, creator, receiver, federation, Room(room_id, state)
    database.close()


async def _join_bob(events, receiver, room):
    head = await events.get_room_head(room.room_id)
    join_id, join = room.remote(BOB, "m.room.member", {"membership": "join"}, state_key=BOB,
                                prev=[head.last_event_id], depth=head.depth + 1)
    assert await receiver.receive_pdus(REMOTE, room.room_id, [join]) == {join_id: None}
    room.state[("m.room.member", BOB)] = join_id
    return join_id, join


def _line(stored):
    return [e.event_id for e in stored]


@pytest_twisted.ensureDeferred
async def test_remote_join_and_message_are_shown_once(built):
    """A remote user's join and message enter the room's line; the same PDU again changes nothing."""
    events, dag_events, creator, receiver, federation, room = built
    join_id, join = await _join_bob(events, receiver, room)
    message_id, message = room.remote(BOB, "m.room.message", {"msgtype": "m.text", "body": "hi"},
                                      prev=[join_id], depth=join["depth"] + 1)
    assert await receiver.receive_pdus(REMOTE, room.room_id, [message]) == {message_id: None}
    assert await receiver.receive_pdus(REMOTE, room.room_id, [message]) == {message_id: None}
    line = await events.get_room_events(room.room_id, after=None, upto=10**9, limit=50)
    assert _line(line)[-2:] == [join_id, message_id]
    assert (await events.get_members(room.room_id))[BOB] == "join"
    assert [e for e, _ in await dag_events.get_extremities(room.room_id)] == [message_id]
    assert federation.requests == [], "nothing was missing"


@pytest_twisted.ensureDeferred
async def test_fork_is_resolved_and_a_local_send_merges_it(built):
    """Two concurrent topics: the current state is their resolution; alice's next event names both extremities."""
    events, dag_events, creator, receiver, federation, room = built
    join_id, join = await _join_bob(events, receiver, room)
    local_topic = await creator.send(EventSpec(room.room_id, ALICE, "m.room.topic", {"topic": "alice's"},
                                               state_key=""))
    # Bob's topic, sent before bob's server saw alice's, and later (it wins the tie-break by timestamp).
    room.ts = int(reactor.seconds() * 1000) + 10**7
    remote_id, remote = room.remote(BOB, "m.room.topic", {"topic": "bob's"}, state_key="",
                                    prev=[join_id], depth=join["depth"] + 1)
    assert await receiver.receive_pdus(REMOTE, room.room_id, [remote]) == {remote_id: None}
    assert {e for e, _ in await dag_events.get_extremities(room.room_id)} == {local_topic, remote_id}
    topic = (await events.get_state(room.room_id, [("m.room.topic", "")]))[("m.room.topic", "")]
    assert topic.content == {"topic": "bob's"}
    after_id = await creator.send(EventSpec(room.room_id, ALICE, "m.room.message",
                                            {"msgtype": "m.text", "body": "merged"}))
    after = await events.get_event(after_id)
    assert set(after.pdu["prev_events"]) == {local_topic, remote_id}
    assert [e for e, _ in await dag_events.get_extremities(room.room_id)] == [after_id]


@pytest_twisted.ensureDeferred
async def test_missing_prev_events_are_fetched_first(built):
    """An event after one we lack: get_missing_events brings it, and both are shown, in order."""
    events, dag_events, creator, receiver, federation, room = built
    join_id, join = await _join_bob(events, receiver, room)
    first_id, first = room.remote(BOB, "m.room.message", {"msgtype": "m.text", "body": "1"},
                                  prev=[join_id], depth=join["depth"] + 1)
    second_id, second = room.remote(BOB, "m.room.message", {"msgtype": "m.text", "body": "2"},
                                    prev=[first_id], depth=join["depth"] + 2)
    federation.missing = [first]
    assert await receiver.receive_pdus(REMOTE, room.room_id, [second]) == {second_id: None}
    line = await events.get_room_events(room.room_id, after=None, upto=10**9, limit=50)
    assert _line(line)[-3:] == [join_id, first_id, second_id]
    assert federation.requests[0][0] == "POST" and "get_missing_events" in federation.requests[0][1]


@pytest_twisted.ensureDeferred
async def test_a_long_gap_is_fetched_in_several_requests(built):
    """30 messages missing before the one received (a sender catching up): all are fetched and shown, in order."""
    events, dag_events, creator, receiver, federation, room = built
    join_id, join = await _join_bob(events, receiver, room)
    line_ids, prev = [], join_id
    for n in range(31):
        prev, pdu = room.remote(BOB, "m.room.message", {"msgtype": "m.text", "body": str(n)},
                                prev=[prev], depth=join["depth"] + 1 + n)
        federation.events[prev] = pdu
        line_ids.append(prev)
    federation.missing = None
    assert await receiver.receive_pdus(REMOTE, room.room_id, [pdu]) == {prev: None}
    line = await events.get_room_events(room.room_id, after=None, upto=10**9, limit=50)
    assert _line(line)[-32:] == [join_id, *line_ids]
    posts = [r for r in federation.requests if r[0] == "POST"]
    assert len(posts) == 2 and all(r[2]["limit"] <= 20 for r in posts)
    assert not [r for r in federation.requests if "/state_ids/" in r[1]], "no gap was left"


@pytest_twisted.ensureDeferred
async def test_a_gap_is_filled_with_the_state_at_the_missing_event(built):
    """get_missing_events brings nothing: the state at the missing event is fetched, the event kept as an outlier."""
    events, dag_events, creator, receiver, federation, room = built
    join_id, join = await _join_bob(events, receiver, room)
    gap_id, gap = room.remote(BOB, "m.room.message", {"msgtype": "m.text", "body": "unseen"},
                              prev=[join_id], depth=join["depth"] + 1)
    next_id, after_gap = room.remote(BOB, "m.room.message", {"msgtype": "m.text", "body": "seen"},
                                     prev=[gap_id], depth=join["depth"] + 2)
    federation.events[gap_id] = gap
    federation.state_ids[gap_id] = {"pdu_ids": list(room.state.values()), "auth_chain_ids": []}
    assert await receiver.receive_pdus(REMOTE, room.room_id, [after_gap]) == {next_id: None}
    line = _line(await events.get_room_events(room.room_id, after=None, upto=10**9, limit=50))
    assert line[-2:] == [join_id, next_id], "the missing event is not shown"
    assert (await events.get_event(gap_id)).stream_ordering < 0
    assert (await dag_events.get_statuses([gap_id])) == {gap_id: "outlier"}


@pytest_twisted.ensureDeferred
async def test_bad_signature_is_dropped_and_bad_hash_is_redacted(built):
    """A PDU signed by the wrong key is not stored; one whose content changed is stored redacted."""
    events, dag_events, creator, receiver, federation, room = built
    join_id, join = await _join_bob(events, receiver, room)
    forged_id, forged = room.remote(BOB, "m.room.message", {"body": "forged"}, prev=[join_id],
                                    depth=join["depth"] + 1, key=HERE)
    outcome = await receiver.receive_pdus(REMOTE, room.room_id, [forged])
    assert "signature" in outcome[forged_id]
    assert await events.get_event(forged_id) is None
    changed_id, changed = room.remote(BOB, "m.room.message", {"msgtype": "m.text", "body": "original"},
                                      prev=[join_id], depth=join["depth"] + 1)
    changed["content"]["body"] = "tampered"
    assert await receiver.receive_pdus(REMOTE, room.room_id, [changed]) == {changed_id: None}
    assert (await events.get_event(changed_id)).content == {}


@pytest_twisted.ensureDeferred
async def test_auth_failure_is_rejected_and_current_state_soft_fails(built):
    """A non-member's message is rejected; bob's message after his ban (on an older branch) is soft-failed."""
    events, dag_events, creator, receiver, federation, room = built
    join_id, join = await _join_bob(events, receiver, room)
    eve_id, eve = room.remote(EVE, "m.room.message", {"msgtype": "m.text", "body": "spam"},
                              prev=[join_id], depth=join["depth"] + 1)
    assert (await receiver.receive_pdus(REMOTE, room.room_id, [eve]))[eve_id].startswith("rejected")
    assert await dag_events.get_statuses([eve_id]) == {eve_id: "rejected"}
    await creator.send(EventSpec(room.room_id, ALICE, "m.room.member", {"membership": "ban"}, state_key=BOB))
    extremities = await dag_events.get_extremities(room.room_id)
    late_id, late = room.remote(BOB, "m.room.message", {"msgtype": "m.text", "body": "after ban"},
                                prev=[join_id], depth=join["depth"] + 1)
    assert await receiver.receive_pdus(REMOTE, room.room_id, [late]) == {late_id: None}
    assert await dag_events.get_statuses([late_id]) == {late_id: "soft_failed"}
    line = _line(await events.get_room_events(room.room_id, after=None, upto=10**9, limit=50))
    assert late_id not in line
    assert await dag_events.get_extremities(room.room_id) == extremities


@pytest_twisted.ensureDeferred
async def test_unknown_auth_event_is_fetched_as_an_outlier(built):
    """An auth event we never saw is fetched from the sender and stored as an outlier, not shown."""
    events, dag_events, creator, receiver, federation, room = built
    join_id, join = await _join_bob(events, receiver, room)
    rename_id, rename = room.remote(BOB, "m.room.member", {"membership": "join", "displayname": "Bob"},
                                    state_key=BOB, prev=[join_id], depth=join["depth"] + 1)
    federation.events[rename_id] = rename
    room.state[("m.room.member", BOB)] = rename_id
    message_id, message = room.remote(BOB, "m.room.message", {"msgtype": "m.text", "body": "hi"},
                                      prev=[join_id], depth=join["depth"] + 1)
    assert await receiver.receive_pdus(REMOTE, room.room_id, [message]) == {message_id: None}
    assert await dag_events.get_statuses([rename_id]) == {rename_id: "outlier"}
    line = _line(await events.get_room_events(room.room_id, after=None, upto=10**9, limit=50))
    assert line[-1] == message_id and rename_id not in line


def _public_room_of_bob(room):
    """The first events of a public room BOB made on the remote server: C{[(event_id, pdu)]}."""
    chain = []
    for event_type, state_key, content in [
            ("m.room.create", "", {"room_version": "11"}),
            ("m.room.member", BOB, {"membership": "join"}),
            ("m.room.power_levels", "", {"users": {BOB: 100}}),
            ("m.room.join_rules", "", {"join_rule": "public"})]:
        event_id, pdu = room.remote(BOB, event_type, content, state_key=state_key,
                                    prev=[chain[-1][0]] if chain else [], depth=len(chain) + 1)
        chain.append((event_id, pdu))
        room.state[(event_type, state_key)] = event_id
    return chain


@pytest_twisted.ensureDeferred
async def test_joining_from_an_answer_as_json_text_checks_it_and_frees_it(built):
    """A send_join answer as the federation client gives it (JSON text), its auth chain repeating the
    state and carrying a forged event: the room is joined with that state, the forged event is not
    stored, and the answer's lists are emptied once read."""
    events, dag_events, creator, receiver, federation, _ = built
    room = Room(f"!text:{REMOTE}", {})
    chain = _public_room_of_bob(room)
    forged_id, forged = build_pdu(
        room_version=VERSION, room_id=room.room_id, sender=BOB, event_type="m.room.topic",
        content={"topic": "forged"}, state_key="", prev_events=[chain[-1][0]],
        auth_events=[room.state[k] for k in [("m.room.create", ""), ("m.room.power_levels", ""),
                                             ("m.room.member", BOB)]],
        depth=5, origin_server_ts=TS, server_name=REMOTE, signing_key=generate_signing_key("r1"))
    join_id, join = room.remote(ALICE, "m.room.member", {"membership": "join"}, state_key=ALICE,
                                prev=[chain[-1][0]], depth=5, key=HERE)
    state = [json.dumps(pdu).encode() for _, pdu in chain]
    auth_chain = [*state, json.dumps(forged).encode()]
    assert await receiver.join_room(REMOTE, VERSION, join, state, auth_chain) == room.room_id
    assert state == [] and auth_chain == []
    assert (await events.get_members(room.room_id)) == {BOB: "join", ALICE: "join"}
    assert await dag_events.get_statuses([*(e for e, _ in chain), forged_id]) == {
        e: "outlier" for e, _ in chain}
    assert (await events.get_state(room.room_id))[("m.room.join_rules", "")].event_id == chain[-1][0]
    assert _line(await events.get_room_events(room.room_id, after=None, upto=10**9, limit=50)) == [join_id]


@pytest_twisted.ensureDeferred
async def test_joining_a_remote_room_stores_its_state_as_outliers(built):
    """After send_join: the join is the room's only shown event, its state is current, later events build on it."""
    events, dag_events, creator, receiver, federation, _ = built
    room = Room(f"!remote:{REMOTE}", {})
    chain = _public_room_of_bob(room)
    join_id, join = room.remote(ALICE, "m.room.member", {"membership": "join"}, state_key=ALICE,
                                prev=[chain[-1][0]], depth=5, key=HERE)
    pdus = [pdu for _, pdu in chain]
    assert await receiver.join_room(REMOTE, VERSION, join, pdus, pdus) == room.room_id
    line = _line(await events.get_room_events(room.room_id, after=None, upto=10**9, limit=50))
    assert line == [join_id]
    assert (await events.get_members(room.room_id)) == {BOB: "join", ALICE: "join"}
    room.state[("m.room.member", ALICE)] = join_id
    message_id, message = room.remote(BOB, "m.room.message", {"msgtype": "m.text", "body": "welcome"},
                                      prev=[join_id], depth=6)
    assert await receiver.receive_pdus(REMOTE, room.room_id, [message]) == {message_id: None}
    line = _line(await events.get_room_events(room.room_id, after=None, upto=10**9, limit=50))
    assert line == [join_id, message_id]
