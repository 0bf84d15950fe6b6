"""
A hostile server against a ruma_tx daemon: requests and PDUs signed with
B's real key (so they pass request authentication) but forged to break
the rules: bad signatures, auth events that do not authorise, unknown
prev events, oversized PDUs, unknown room versions, replayed and oversized
transactions, events for rooms A is not in or of users of other servers
(PDUs, EDUs, invites), joins for others and joins of banned users. Each
is refused as the spec says and changes nothing alice (on A) can see; an
honest event sent afterwards shows that what she sees is up to date. And
a server flooding another is rate-limited, per origin.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest
import pytest_twisted

from federation_forging import Forger, path_of, recent_events, room_state
from federation_helpers import SyncWatcher, bodies_of, invite_to, message_with_body, shared_room
from room_helpers import create_room, ok, send_text
from test_federation_transport import federation_http  # noqa: F401 (a fixture)

from ruma_tx.matrix.room_versions import ROOM_VERSIONS


@pytest.fixture(scope="module")
def pair(start_federating):
    return start_federating(), start_federating()


@pytest.fixture
def servers(pair, make_client):
    return make_client(pair[0]), make_client(pair[1])


@pytest.fixture
def forger(pair, federation_http):  # noqa: F811 (the imported fixture)
    """B's key, speaking to A."""
    a, b = pair
    return Forger(federation_http, b, a)


async def honest_message_arrives(a, alice, forger, room_id, bob, body):
    """bob's well-signed message, sent by hand after the forgery, reaches alice: her view is current."""
    state = await room_state(a, alice, room_id)
    event_id, pdu = await forger.event(room_id, state, sender=bob["user_id"],
                                       content={"msgtype": "m.text", "body": body})
    code, answer = await forger.send([pdu])
    assert (code, answer) == (200, {"pdus": {event_id: {}}})
    await SyncWatcher(a, alice).wait_for(message_with_body(body, room_id), "the honest message")


@pytest_twisted.ensureDeferred
async def test_well_signed_pdu_is_accepted(servers, forger):
    """The forging kit itself: bob's message signed with B's key and sent by hand shows in alice's room."""
    a, _ = servers
    alice, bob, room_id = await shared_room(servers)
    await honest_message_arrives(a, alice, forger, room_id, bob, "hand-made but honest")
    assert "hand-made but honest" in bodies_of(await recent_events(a, alice, room_id))


@pytest_twisted.ensureDeferred
async def test_bad_signatures_are_refused(servers, forger):
    """A tampered signature, a signature by an unknown key, and a message claiming alice (of A) as its
    sender but signed by B only: each is answered with an error and none shows."""
    a, _ = servers
    alice, bob, room_id = await shared_room(servers)
    state = await room_state(a, alice, room_id)

    tampered_id, tampered = await forger.event(room_id, state, sender=bob["user_id"],
                                               content={"msgtype": "m.text", "body": "tampered"})
    [(key_id, signature)] = tampered["signatures"][forger.name].items()
    tampered["signatures"][forger.name][key_id] = ("A" if signature[0] != "A" else "B") + signature[1:]
    unknown_key_id, unknown_key = await forger.event(room_id, state, sender=bob["user_id"],
                                                     content={"msgtype": "m.text", "body": "unknown key"})
    unknown_key["signatures"] = {forger.name: {"ed25519:nosuchkey": signature}}
    impostor_id, impostor = await forger.event(room_id, state, sender=alice["user_id"],
                                               content={"msgtype": "m.text", "body": "I am alice"})
    code, answer = await forger.send([tampered, unknown_key, impostor])
    assert code == 200, answer
    assert set(answer["pdus"]) == {tampered_id, unknown_key_id, impostor_id}
    for event_id in (tampered_id, unknown_key_id, impostor_id):
        assert "signature" in answer["pdus"][event_id]["error"], answer

    await honest_message_arrives(a, alice, forger, room_id, bob, "after the bad signatures")
    assert not {"tampered", "unknown key", "I am alice"} & set(bodies_of(await recent_events(a, alice, room_id)))
    for event_id in (tampered_id, unknown_key_id, impostor_id):
        seen = await a.request("GET", f"rooms/{quote(room_id)}/event/{quote(event_id)}",
                               token=alice["access_token"])
        assert seen.code == 404, seen


@pytest_twisted.ensureDeferred
async def test_content_altered_after_signing_is_kept_redacted(servers, forger):
    """A message whose body was changed after B signed it fails its content hash: as the spec asks it is
    kept redacted, so alice never reads the altered body."""
    a, _ = servers
    alice, bob, room_id = await shared_room(servers)
    state = await room_state(a, alice, room_id)
    event_id, pdu = await forger.event(room_id, state, sender=bob["user_id"],
                                       content={"msgtype": "m.text", "body": "signed text"})
    pdu["content"]["body"] = "altered text"
    code, answer = await forger.send([pdu])
    assert (code, answer) == (200, {"pdus": {event_id: {}}})
    await honest_message_arrives(a, alice, forger, room_id, bob, "after the altered one")
    events = await recent_events(a, alice, room_id)
    assert "altered text" not in bodies_of(events) and "signed text" not in bodies_of(events)
    [kept] = [e for e in events if e["event_id"] == event_id]
    assert kept["content"] == {}


@pytest_twisted.ensureDeferred
async def test_forged_auth_events_are_rejected(servers, forger):
    """bob (power 0) raising himself to 100, a message citing another room's auth events, one citing no
    membership, and one by a B user who never joined: all rejected; the power levels stay alice's."""
    a, _ = servers
    alice, bob, room_id = await shared_room(servers)
    other_owner, _, other_room = await shared_room(servers)
    state = await room_state(a, alice, room_id)
    other_state = await room_state(a, other_owner, other_room)
    power = state[("m.room.power_levels", "")]["content"]

    coup_id, coup = await forger.event(
        room_id, state, sender=bob["user_id"], event_type="m.room.power_levels", state_key="",
        content={**power, "users": {**power["users"], bob["user_id"]: 100}})
    version = ROOM_VERSIONS[state[("m.room.create", "")]["content"].get("room_version", "1")]
    cited = [("m.room.power_levels", ""), ("m.room.join_rules", "")]
    if not version.room_id_from_create_event:
        cited.append(("m.room.create", ""))
    elsewhere_id, elsewhere = forger.pdu(
        version.identifier, room_id=room_id, sender=bob["user_id"], event_type="m.room.message",
        content={"msgtype": "m.text", "body": "other room's auth"},
        auth_events=[other_state[key]["event_id"] for key in cited]
        + [state[("m.room.member", bob["user_id"])]["event_id"]],
        prev_events=coup["prev_events"], depth=coup["depth"])
    no_member_id, no_member = await forger.event(room_id, state, sender=bob["user_id"],
                                                 content={"msgtype": "m.text", "body": "no membership cited"},
                                                 auth_keys=[("m.room.power_levels", "")])
    stranger = f"@stranger:{forger.name}"
    stranger_id, stranger_pdu = await forger.event(
        room_id, state, sender=stranger, content={"msgtype": "m.text", "body": "never joined"},
        auth_keys=[("m.room.power_levels", "")])
    code, answer = await forger.send([coup, elsewhere, no_member, stranger_pdu])
    assert code == 200, answer
    for event_id in (coup_id, elsewhere_id, no_member_id, stranger_id):
        assert "rejected" in answer["pdus"][event_id].get("error", ""), answer

    await honest_message_arrives(a, alice, forger, room_id, bob, "after the forged auth")
    after = await room_state(a, alice, room_id)
    assert after[("m.room.power_levels", "")]["event_id"] == state[("m.room.power_levels", "")]["event_id"]
    assert after[("m.room.power_levels", "")]["content"]["users"].get(bob["user_id"]) is None
    assert not {"other room's auth", "no membership cited", "never joined"} & set(
        bodies_of(await recent_events(a, alice, room_id)))


@pytest_twisted.ensureDeferred
async def test_oversized_pdu_is_refused(servers, forger):
    """A message over 64 KiB is refused with a size error and never shows."""
    a, _ = servers
    alice, bob, room_id = await shared_room(servers)
    state = await room_state(a, alice, room_id)
    event_id, pdu = await forger.event(room_id, state, sender=bob["user_id"],
                                       content={"msgtype": "m.text", "body": "x" * 70_000})
    code, answer = await forger.send([pdu])
    assert code == 200, answer
    assert "65536" in answer["pdus"][event_id]["error"], answer
    await honest_message_arrives(a, alice, forger, room_id, bob, "after the big one")
    assert all(len(body or "") < 65536 for body in bodies_of(await recent_events(a, alice, room_id)))


@pytest_twisted.ensureDeferred
async def test_invite_in_an_unknown_room_version_is_refused(servers, forger):
    """An invite of carol (on A) into a room of version "99": 400 M_INCOMPATIBLE_ROOM_VERSION naming it,
    and carol's /sync shows no invite; the same invite in version 11 does show."""
    a, b = servers
    carol, bob = await a.register(), await b.register()
    localpart = carol['user_id'][1:].split(':')[0]
    room_id, other_room = f"!hostile{localpart}:{forger.name}", f"!fine{localpart}:{forger.name}"
    event_id, invite = forger.pdu("11", room_id=room_id, sender=bob["user_id"], event_type="m.room.member",
                                  state_key=carol["user_id"], content={"membership": "invite"},
                                  auth_events=[], prev_events=[], depth=1)
    path = "/_matrix/federation/v2/invite/" + path_of(room_id, event_id)
    code, answer = await forger.request("PUT", path, {"event": invite, "room_version": "99",
                                                      "invite_room_state": []})
    assert code == 400 and answer["errcode"] == "M_INCOMPATIBLE_ROOM_VERSION", answer
    assert answer["room_version"] == "99"

    other_id, other = forger.pdu("11", room_id=other_room, sender=bob["user_id"], event_type="m.room.member",
                                 state_key=carol["user_id"], content={"membership": "invite"},
                                 auth_events=[], prev_events=[], depth=1)
    code, answer = await forger.request("PUT", "/_matrix/federation/v2/invite/" + path_of(other_room, other_id),
                                        {"event": other, "room_version": "11", "invite_room_state": []})
    assert code == 200, answer
    carol_sync = SyncWatcher(a, carol)
    await carol_sync.wait_for(invite_to(other_room), "the version 11 invite")
    assert all(room_id not in seen.get("rooms", {}).get("invite", {}) for seen in carol_sync.seen)


@pytest_twisted.ensureDeferred
async def test_replayed_transaction_gets_the_same_answer_and_stores_nothing_twice(servers, forger):
    """The same transaction id twice, then the same PDU in another transaction: one answer, one message."""
    a, _ = servers
    alice, bob, room_id = await shared_room(servers)
    state = await room_state(a, alice, room_id)
    event_id, pdu = await forger.event(room_id, state, sender=bob["user_id"],
                                       content={"msgtype": "m.text", "body": "only once"})
    first = await forger.send([pdu], txn_id="replayed")
    again = await forger.send([pdu], txn_id="replayed")
    other = await forger.send([pdu], txn_id="replayed-elsewhere")
    assert first == again == other == (200, {"pdus": {event_id: {}}})
    await honest_message_arrives(a, alice, forger, room_id, bob, "after the replays")
    assert bodies_of(await recent_events(a, alice, room_id)).count("only once") == 1


@pytest_twisted.ensureDeferred
async def test_transactions_over_the_limits_are_refused_whole(servers, forger):
    """51 PDUs or 101 EDUs: 400 M_BAD_JSON, and none of the transaction's messages or typing shows."""
    a, _ = servers
    alice, bob, room_id = await shared_room(servers)
    state = await room_state(a, alice, room_id)
    _, first = await forger.event(room_id, state, sender=bob["user_id"],
                                  content={"msgtype": "m.text", "body": "bulk 0"})
    version = state[("m.room.create", "")]["content"].get("room_version", "1")
    pdus = [first] + [forger.pdu(version, room_id=room_id, sender=bob["user_id"], event_type="m.room.message",
                                 content={"msgtype": "m.text", "body": f"bulk {i}"},
                                 auth_events=first["auth_events"], prev_events=first["prev_events"],
                                 depth=first["depth"])[1] for i in range(1, 51)]
    code, answer = await forger.send(pdus)
    assert (code, answer["errcode"]) == (400, "M_BAD_JSON"), answer
    typing = {"edu_type": "m.typing", "content": {"room_id": room_id, "user_id": bob["user_id"], "typing": True}}
    code, answer = await forger.send([], [typing] * 101)
    assert (code, answer["errcode"]) == (400, "M_BAD_JSON"), answer

    await honest_message_arrives(a, alice, forger, room_id, bob, "after the bulk")
    assert not any(body.startswith("bulk") for body in bodies_of(await recent_events(a, alice, room_id)) if body)
    alice_sync = SyncWatcher(a, alice)
    response = await alice_sync.sync_once()
    ephemeral = response["rooms"]["join"][room_id].get("ephemeral", {}).get("events", [])
    assert not any(e["type"] == "m.typing" and e["content"]["user_ids"] for e in ephemeral)


@pytest_twisted.ensureDeferred
async def test_pdus_for_rooms_we_are_not_in_change_nothing(servers, forger):
    """An invite of alice sent as a PDU of a room A is not in does not make that room appear in her /sync."""
    a, b = servers
    alice, bob = await a.register(), await b.register()
    bob_room = await create_room(b, bob, preset="public_chat")
    event_id, invite = forger.pdu("11", room_id=bob_room, sender=bob["user_id"], event_type="m.room.member",
                                  state_key=alice["user_id"], content={"membership": "invite"},
                                  auth_events=[], prev_events=[], depth=5)
    code, answer = await forger.send([invite])
    # Answered with an error or not at all (as Synapse, which skips PDUs of rooms it does not know).
    assert code == 200 and "error" in answer["pdus"].get(event_id, {"error": "skipped"}), answer
    # A real invite afterwards does arrive: alice's /sync was following.
    alice_sync = SyncWatcher(a, alice)
    await alice_sync.sync_once()
    second = await create_room(b, bob, preset="private_chat")
    await ok(b, "POST", f"rooms/{quote(second)}/invite", {"user_id": alice["user_id"]}, user=bob)
    await alice_sync.wait_for(invite_to(second), "the real invite")
    assert all(bob_room not in seen.get("rooms", {}).get("invite", {}) and
               bob_room not in seen.get("rooms", {}).get("join", {}) for seen in alice_sync.seen)


@pytest_twisted.ensureDeferred
async def test_send_join_for_another_user_is_refused(servers, forger):
    """B sending alice's (A's) join, or a join whose state_key is someone else: refused, nobody joins."""
    a, _ = servers
    alice, bob, room_id = await shared_room(servers)
    carol = await a.register()
    code, answer = await forger.make_join(room_id, f"@mallory:{forger.name}")
    assert code == 200, answer
    template = answer["event"]
    version = answer["room_version"]
    base = dict(room_id=room_id, event_type="m.room.member", auth_events=template["auth_events"],
                prev_events=template["prev_events"], depth=template["depth"], content={"membership": "join"})
    as_carol_id, as_carol = forger.pdu(version, sender=carol["user_id"], state_key=carol["user_id"], **base)
    for_other_id, for_other = forger.pdu(version, sender=f"@mallory:{forger.name}",
                                         state_key=f"@eve:{forger.name}", **base)
    code, answer = await forger.request("PUT", "/_matrix/federation/v2/send_join/" + path_of(room_id, as_carol_id),
                                        as_carol)
    assert (code, answer["errcode"]) == (403, "M_FORBIDDEN"), answer
    code, answer = await forger.request("PUT", "/_matrix/federation/v2/send_join/" + path_of(room_id, for_other_id),
                                        for_other)
    assert (code, answer["errcode"]) == (400, "M_BAD_JSON"), answer
    # The path's event id must be the event's own.
    code, answer = await forger.request("PUT", "/_matrix/federation/v2/send_join/" + path_of(room_id, as_carol_id),
                                        for_other)
    assert code in (400, 403), answer

    await honest_message_arrives(a, alice, forger, room_id, bob, "after the joins")
    members = await ok(a, "GET", f"rooms/{quote(room_id)}/joined_members", user=alice)
    assert set(members["joined"]) == {alice["user_id"], bob["user_id"]}


@pytest_twisted.ensureDeferred
async def test_banned_user_cannot_get_or_send_a_join(servers, forger):
    """mallory of B, banned by alice: make_join answers 403 M_FORBIDDEN, and a join built on an older
    template is refused too; mallory stays banned. make_join for a user of another server: 403."""
    a, _ = servers
    alice, bob, room_id = await shared_room(servers)
    mallory = f"@mallory{alice['user_id'][1:].split(':')[0]}:{forger.name}"
    code, answer = await forger.make_join(room_id, mallory)
    assert code == 200, answer
    old_template, version = answer["event"], answer["room_version"]
    await ok(a, "POST", f"rooms/{quote(room_id)}/ban", {"user_id": mallory, "reason": "spam"}, user=alice)

    code, answer = await forger.make_join(room_id, mallory)
    assert (code, answer["errcode"]) == (403, "M_FORBIDDEN"), answer
    code, answer = await forger.make_join(room_id, alice["user_id"])
    assert (code, answer["errcode"]) == (403, "M_FORBIDDEN"), answer

    join_id, join = forger.pdu(version, room_id=room_id, sender=mallory, state_key=mallory,
                               event_type="m.room.member", content={"membership": "join"},
                               auth_events=old_template["auth_events"], prev_events=old_template["prev_events"],
                               depth=old_template["depth"])
    code, answer = await forger.request("PUT", "/_matrix/federation/v2/send_join/" + path_of(room_id, join_id), join)
    assert (code, answer["errcode"]) == (403, "M_FORBIDDEN"), answer

    await honest_message_arrives(a, alice, forger, room_id, bob, "after mallory")
    state = await room_state(a, alice, room_id)
    assert state[("m.room.member", mallory)]["content"]["membership"] == "ban"


@pytest_twisted.ensureDeferred
async def test_a_message_sent_by_the_real_server_still_flows(servers):
    """After all that, B's own daemon still talks to A: bob's message sent through B's client API arrives."""
    a, b = servers
    alice, bob, room_id = await shared_room(servers)
    await send_text(b, bob, room_id, "business as usual", "t1")
    await SyncWatcher(a, alice).wait_for(message_with_body("business as usual", room_id), "bob's message")


@pytest_twisted.ensureDeferred
async def test_each_origin_is_rate_limited_on_its_own(pair, start_federating, federation_http):  # noqa: F811
    """A server allowing each origin a burst of 3 requests answers B's fourth with 429 M_LIMIT_EXCEEDED
    and a retry time, while A's requests are still served."""
    a, b = pair
    strict = start_federating({"rate_limit_per_second": 0.01, "rate_limit_burst_count": 3},
                              extra_config="[rate_limits]\nenabled = true\n")
    from_b, from_a = Forger(federation_http, b, strict), Forger(federation_http, a, strict)
    query = {"user_id": f"@nobody:{strict.server_name}"}
    for _ in range(3):
        code, answer = await from_b.request("GET", "/_matrix/federation/v1/query/profile", query=query)
        assert (code, answer["errcode"]) == (404, "M_NOT_FOUND"), answer
    code, answer = await from_b.request("GET", "/_matrix/federation/v1/query/profile", query=query)
    assert (code, answer["errcode"]) == (429, "M_LIMIT_EXCEEDED"), answer
    assert answer["retry_after_ms"] > 0
    code, answer = await from_a.request("GET", "/_matrix/federation/v1/query/profile", query=query)
    assert (code, answer["errcode"]) == (404, "M_NOT_FOUND"), answer


@pytest_twisted.ensureDeferred
async def test_edus_about_users_of_another_server_are_dropped(servers, forger):
    """B says alice (of A) is typing, next to bob's own typing in the same transaction: only bob's shows."""
    a, _ = servers
    alice, bob, room_id = await shared_room(servers)
    typing = [{"edu_type": "m.typing", "content": {"room_id": room_id, "user_id": user_id, "typing": True}}
              for user_id in (alice["user_id"], bob["user_id"])]
    code, answer = await forger.send([], typing)
    assert code == 200, answer

    def typists(response):
        room = response.get("rooms", {}).get("join", {}).get(room_id, {})
        return next((set(e["content"]["user_ids"]) for e in room.get("ephemeral", {}).get("events", [])
                     if e["type"] == "m.typing" and e["content"]["user_ids"]), None)

    assert await SyncWatcher(a, alice).wait_for(typists, "bob typing") == {bob["user_id"]}


@pytest_twisted.ensureDeferred
async def test_a_pdu_citing_unknown_prev_events_is_rejected(servers, forger):
    """bob's message built on events nobody has: A asks B for them and for the state there, gets nothing,
    and rejects it; the room goes on."""
    a, _ = servers
    alice, bob, room_id = await shared_room(servers)
    state = await room_state(a, alice, room_id)
    version, _, depth = await forger.head(room_id)
    event_id, pdu = forger.pdu(version, room_id=room_id, sender=bob["user_id"], event_type="m.room.message",
                               content={"msgtype": "m.text", "body": "from nowhere"},
                               auth_events=[state[key]["event_id"] for key in
                                            (("m.room.power_levels", ""), ("m.room.member", bob["user_id"]))],
                               prev_events=["$" + "A" * 43], depth=depth)
    code, answer = await forger.send([pdu])
    assert code == 200 and "rejected" in answer["pdus"][event_id].get("error", ""), answer
    await honest_message_arrives(a, alice, forger, room_id, bob, "after the orphan")
    assert "from nowhere" not in bodies_of(await recent_events(a, alice, room_id))


@pytest_twisted.ensureDeferred
async def test_invites_for_others_are_refused(servers, forger):
    """An invite of a user of B (not A's), and one sent in the name of a user of A: 400 and 403; the
    invitee's /sync shows neither."""
    a, _ = servers
    carol = await a.register()
    room_id = f"!invites{carol['user_id'][1:].split(':')[0]}:{forger.name}"
    base = dict(room_id=room_id, event_type="m.room.member", content={"membership": "invite"},
                auth_events=[], prev_events=[], depth=1)
    not_ours_id, not_ours = forger.pdu("11", sender=f"@bob:{forger.name}", state_key=f"@eve:{forger.name}", **base)
    impostor_id, impostor = forger.pdu("11", sender=f"@dave:{a.server.server_name}", state_key=carol["user_id"],
                                       **base)
    for event_id, pdu, expected in ((not_ours_id, not_ours, 400), (impostor_id, impostor, 403)):
        code, answer = await forger.request("PUT", "/_matrix/federation/v2/invite/" + path_of(room_id, event_id),
                                            {"event": pdu, "room_version": "11", "invite_room_state": []})
        assert code == expected, answer
    response = await SyncWatcher(a, carol).sync_once()
    assert room_id not in response.get("rooms", {}).get("invite", {})
