"""
C{GET /notifications} through the real daemon: newest first with the
actions, the event, the read flag and the time; paging with C{from} and
C{next_token}; C{only=highlight}; and agreement with /sync's unread counts.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest_twisted

from push_gateway import create_room, group_room, join, send_message


async def notifications(client, user: dict, **query) -> dict:
    response = await client.request("GET", "notifications", token=user["access_token"],
                                    query={k: str(v) for k, v in query.items()} or None)
    assert response.code == 200, response
    return response.json


async def unread_count(client, user: dict, room_id: str) -> dict:
    response = await client.request("GET", "sync", token=user["access_token"])
    assert response.code == 200, response
    return response.json["rooms"]["join"][room_id]["unread_notifications"]


@pytest_twisted.ensureDeferred
async def test_notifications_are_listed_newest_first_and_paged(client):
    """
    Every message that notified the user is listed, newest first, with its
    actions, the event as /sync shows it, its room, its time and whether
    it is read; pages of C{limit} chain through C{next_token} until none.
    """
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await group_room(client, bob, alice, carol)
    sent = [await send_message(client, bob, room_id, f"message {i}") for i in range(5)]

    first = await notifications(client, alice, limit=2)
    assert [n["event"]["event_id"] for n in first["notifications"]] == [sent[4], sent[3]]
    entry = first["notifications"][0]
    assert entry["room_id"] == room_id
    assert entry["actions"] == ["notify"]
    assert entry["read"] is False
    assert entry["event"]["content"] == {"msgtype": "m.text", "body": "message 4"}
    assert entry["event"]["sender"] == bob["user_id"] and "room_id" not in entry["event"]
    assert entry["ts"] == entry["event"]["origin_server_ts"]

    second = await notifications(client, alice, limit=2, **{"from": first["next_token"]})
    assert [n["event"]["event_id"] for n in second["notifications"]] == [sent[2], sent[1]]
    last = await notifications(client, alice, limit=2, **{"from": second["next_token"]})
    assert [n["event"]["event_id"] for n in last["notifications"]] == [sent[0]]
    assert "next_token" not in last
    whole = await notifications(client, alice)
    assert [n["event"]["event_id"] for n in whole["notifications"]] == sent[::-1]
    assert "next_token" not in whole
    # Bob sent them: he was notified of nothing.
    assert (await notifications(client, bob))["notifications"] == []


@pytest_twisted.ensureDeferred
async def test_only_highlight_lists_the_highlights_with_their_actions(client):
    """C{only=highlight} keeps what highlights (a mention), listed with the actions its rule gave."""
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await group_room(client, bob, alice, carol)
    await send_message(client, bob, room_id, "plain")
    mention = await send_message(client, bob, room_id, "alice!",
                                 **{"m.mentions": {"user_ids": [alice["user_id"]]}})
    await send_message(client, bob, room_id, "plain again")
    body = await notifications(client, alice, only="highlight")
    assert [n["event"]["event_id"] for n in body["notifications"]] == [mention]
    assert body["notifications"][0]["actions"] == [
        "notify", {"set_tweak": "sound", "value": "default"}, {"set_tweak": "highlight"}]
    assert len((await notifications(client, alice))["notifications"]) == 3


@pytest_twisted.ensureDeferred
async def test_read_flags_follow_the_receipt_and_agree_with_sync(client):
    """
    A read receipt marks the notifications up to its event read; those
    after it stay unread, and /sync counts exactly those.
    """
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await group_room(client, bob, alice, carol)
    sent = [await send_message(client, bob, room_id, f"message {i}") for i in range(3)]
    response = await client.request("POST", f"rooms/{quote(room_id)}/receipt/m.read/{quote(sent[1])}", {},
                                    token=alice["access_token"])
    assert response.code == 200, response
    listed = (await notifications(client, alice))["notifications"]
    assert [(n["event"]["event_id"], n["read"]) for n in listed] == [
        (sent[2], False), (sent[1], True), (sent[0], True)]
    unread = [n for n in listed if not n["read"]]
    assert await unread_count(client, alice, room_id) == {"notification_count": len(unread),
                                                          "highlight_count": 0}


@pytest_twisted.ensureDeferred
async def test_a_direct_message_lists_its_sound(client):
    """In a room of two, the one-to-one rule's sound tweak is in the listed actions."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, bob)
    await join(client, alice, room_id)
    event_id = await send_message(client, bob, room_id, "just us")
    [entry] = (await notifications(client, alice))["notifications"]
    assert entry["event"]["event_id"] == event_id
    assert entry["actions"] == ["notify", {"set_tweak": "sound", "value": "default"}]


@pytest_twisted.ensureDeferred
async def test_bad_paging_parameters_are_refused(client):
    """A C{from} this server never gave, or a negative or non-numeric C{limit}, is a 400 M_INVALID_PARAM."""
    user = await client.register()
    for query in ({"from": "not-a-token"}, {"from": "-5"}, {"limit": "-1"}, {"limit": "ten"}):
        response = await client.request("GET", "notifications", token=user["access_token"], query=query)
        assert response.code == 400, (query, response)
        assert response.json["errcode"] == "M_INVALID_PARAM"
