"""
Redactions sent with PUT /rooms/{roomId}/send/m.room.redaction/{txnId}
(spec v1.18: for every room version; before v11 the server moves
content.redacts to the top level) through the real daemon: the same event
and the same effects as PUT /redact, in every room version served.
"""
from __future__ import annotations

import itertools
import json

import pytest
import pytest_twisted

_txns = itertools.count(1)
VERSIONS = ["10", "11", "12"]
FEDERATION_FORMAT = json.dumps({"event_format": "federation", "room": {"timeline": {"limit": 50}}})


async def create_room(client, user: dict, room_version: str, **body) -> str:
    response = await client.request("POST", "createRoom", {"room_version": room_version, **body},
                                    token=user["access_token"])
    assert response.code == 200, response
    return response.json["room_id"]


async def send_message(client, user: dict, room_id: str, body: str) -> str:
    response = await client.request("PUT", f"rooms/{room_id}/send/m.room.message/m{next(_txns)}",
                                    {"msgtype": "m.text", "body": body}, token=user["access_token"])
    assert response.code == 200, response
    return response.json["event_id"]


async def redact_via_send(client, user: dict, room_id: str, content: dict, txn_id: str | None = None):
    return await client.request("PUT", f"rooms/{room_id}/send/m.room.redaction/{txn_id or f'r{next(_txns)}'}",
                                content, token=user["access_token"])


async def timeline(client, user: dict, room_id: str, sync_filter: str | None = None) -> list[dict]:
    query = {"filter": sync_filter} if sync_filter else {"filter": json.dumps({"room": {"timeline": {"limit": 50}}})}
    response = await client.request("GET", "sync", token=user["access_token"], query=query)
    assert response.code == 200, response
    return response.json["rooms"]["join"][room_id]["timeline"]["events"]


async def messages(client, user: dict, room_id: str) -> list[dict]:
    response = await client.request("GET", f"rooms/{room_id}/messages", token=user["access_token"],
                                    query={"dir": "b", "limit": "50"})
    assert response.code == 200, response
    return response.json["chunk"]


def assert_redacted(event: dict, redaction_id: str, reason: str | None = "oops") -> None:
    assert event["content"] == {}, event
    because = event["unsigned"]["redacted_because"]
    assert because["event_id"] == redaction_id
    if reason is not None:
        assert because["content"]["reason"] == reason


@pytest.mark.parametrize("room_version", VERSIONS)
@pytest_twisted.ensureDeferred
async def test_redaction_via_send_strips_the_target_everywhere(client, room_version):
    """The redacted message reads redacted in /sync, /messages and /event, for the sender and for others."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, room_version, preset="public_chat")
    assert (await client.request("POST", f"rooms/{room_id}/join", {}, token=bob["access_token"])).code == 200
    secret = await send_message(client, alice, room_id, "my password is hunter2")
    response = await redact_via_send(client, alice, room_id, {"redacts": secret, "reason": "oops"})
    assert response.code == 200, response
    redaction_id = response.json["event_id"]
    for reader in (alice, bob):
        synced = {e["event_id"]: e for e in await timeline(client, reader, room_id)}
        assert_redacted(synced[secret], redaction_id)
        assert synced[redaction_id]["redacts"] == secret
        assert synced[redaction_id]["content"]["redacts"] == secret
        paged = {e["event_id"]: e for e in await messages(client, reader, room_id)}
        assert_redacted(paged[secret], redaction_id)
        one = await client.request("GET", f"rooms/{room_id}/event/{secret}", token=reader["access_token"])
        assert one.code == 200, one
        assert_redacted(one.json, redaction_id)


@pytest.mark.parametrize("room_version", VERSIONS)
@pytest_twisted.ensureDeferred
async def test_redacts_is_where_the_room_version_wants_it(client, room_version):
    """The stored event has redacts top-level before v11 (moved out of content), in content from v11 on."""
    alice = await client.register()
    room_id = await create_room(client, alice, room_version)
    target = await send_message(client, alice, room_id, "typo")
    response = await redact_via_send(client, alice, room_id, {"redacts": target})
    assert response.code == 200, response
    pdus = {e["event_id"]: e for e in await timeline(client, alice, room_id, FEDERATION_FORMAT)}
    pdu = pdus[response.json["event_id"]]
    if room_version == "10":
        assert pdu["redacts"] == target and "redacts" not in pdu["content"], pdu
    else:
        assert pdu["content"]["redacts"] == target and "redacts" not in pdu, pdu


@pytest_twisted.ensureDeferred
async def test_via_send_and_via_redact_give_the_same_event(client):
    """A redaction through /send and one through /redact build the same kind of event: content, redacts, sender."""
    alice = await client.register()
    room_id = await create_room(client, alice, "12")
    first, second = (await send_message(client, alice, room_id, "one"),
                     await send_message(client, alice, room_id, "two"))
    via_send = await redact_via_send(client, alice, room_id, {"redacts": first, "reason": "r"})
    via_redact = await client.request("PUT", f"rooms/{room_id}/redact/{second}/x{next(_txns)}", {"reason": "r"},
                                      token=alice["access_token"])
    assert via_send.code == via_redact.code == 200
    events = {e["event_id"]: e for e in await messages(client, alice, room_id)}
    a, b = events[via_send.json["event_id"]], events[via_redact.json["event_id"]]
    assert (a["type"], a["sender"], a["content"]["reason"]) == (b["type"], b["sender"], b["content"]["reason"])
    assert a["content"] == {"reason": "r", "redacts": first}
    assert b["content"] == {"reason": "r", "redacts": second}


@pytest_twisted.ensureDeferred
async def test_a_retried_transaction_redacts_once(client):
    """The same transaction id sent twice answers the same event id, and the room holds one redaction."""
    alice = await client.register()
    room_id = await create_room(client, alice, "12")
    target = await send_message(client, alice, room_id, "twice")
    first = await redact_via_send(client, alice, room_id, {"redacts": target}, txn_id="same")
    again = await redact_via_send(client, alice, room_id, {"redacts": target}, txn_id="same")
    assert first.code == again.code == 200
    assert first.json["event_id"] == again.json["event_id"]
    redactions = [e for e in await messages(client, alice, room_id) if e["type"] == "m.room.redaction"]
    assert [e["event_id"] for e in redactions] == [first.json["event_id"]]


@pytest.mark.parametrize("room_version", VERSIONS)
@pytest_twisted.ensureDeferred
async def test_redacting_another_users_message_needs_power(client, room_version):
    """A member without the redact level gets 403 and nothing is stored; the room's creator may redact it."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, room_version, preset="public_chat")
    assert (await client.request("POST", f"rooms/{room_id}/join", {}, token=bob["access_token"])).code == 200
    alices = await send_message(client, alice, room_id, "mine")
    refused = await redact_via_send(client, bob, room_id, {"redacts": alices})
    assert refused.code == 403, refused
    assert refused.json["errcode"] == "M_FORBIDDEN"
    after = await messages(client, alice, room_id)
    assert not [e for e in after if e["type"] == "m.room.redaction"]
    assert next(e for e in after if e["event_id"] == alices)["content"]["body"] == "mine"
    bobs = await send_message(client, bob, room_id, "spam")
    allowed = await redact_via_send(client, alice, room_id, {"redacts": bobs})
    assert allowed.code == 200, allowed


@pytest.mark.parametrize("content, status, errcode", [
    ({}, 400, "M_MISSING_PARAM"),
    ({"redacts": 42}, 400, "M_BAD_JSON"),
    ({"redacts": "$unknown"}, 404, "M_NOT_FOUND"),
    ({"redacts": "TARGET", "reason": 7}, 400, "M_BAD_JSON"),
])
@pytest_twisted.ensureDeferred
async def test_bad_redactions_are_refused_and_send_nothing(client, content, status, errcode):
    """A missing or malformed content.redacts, an unknown event or a non-string reason is refused, nothing sent."""
    alice = await client.register()
    room_id = await create_room(client, alice, "12")
    target = await send_message(client, alice, room_id, "kept")
    if content.get("redacts") == "TARGET":
        content = {**content, "redacts": target}
    response = await redact_via_send(client, alice, room_id, content)
    assert response.code == status, response
    assert response.json["errcode"] == errcode
    after = await messages(client, alice, room_id)
    assert not [e for e in after if e["type"] == "m.room.redaction"]
    assert next(e for e in after if e["event_id"] == target)["content"]["body"] == "kept"
