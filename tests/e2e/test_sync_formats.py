"""The filter's event_fields and event_format shape the events /sync returns."""
import json

import pytest_twisted


async def _room_with_message(client):
    user = await client.register()
    created = await client.request("POST", "createRoom", {}, token=user["access_token"])
    room_id = created.json["room_id"]
    sent = await client.request("PUT", f"rooms/{room_id}/send/m.room.message/t1",
                                {"msgtype": "m.text", "body": "hello"}, token=user["access_token"])
    assert sent.code == 200, sent
    return user, room_id, sent.json["event_id"]


@pytest_twisted.ensureDeferred
async def test_event_fields_keep_only_the_listed_fields(client):
    """With event_fields, each timeline event has only the listed (dotted) fields."""
    user, room_id, _ = await _room_with_message(client)
    sync_filter = {"event_fields": ["type", "content.body"], "room": {"timeline": {"limit": 1}}}
    response = await client.request("GET", "sync", token=user["access_token"],
                                    query={"filter": json.dumps(sync_filter)}, validate=False)
    assert response.code == 200
    [event] = response.json["rooms"]["join"][room_id]["timeline"]["events"]
    assert event == {"type": "m.room.message", "content": {"body": "hello"}}


@pytest_twisted.ensureDeferred
async def test_federation_format_returns_the_pdu(client):
    """With event_format federation, events come as stored PDUs (auth and prev events, depth, hashes)."""
    user, room_id, event_id = await _room_with_message(client)
    sync_filter = {"event_format": "federation", "room": {"timeline": {"limit": 1}}}
    response = await client.request("GET", "sync", token=user["access_token"],
                                    query={"filter": json.dumps(sync_filter)}, validate=False)
    [event] = response.json["rooms"]["join"][room_id]["timeline"]["events"]
    assert event["event_id"] == event_id
    assert {"auth_events", "prev_events", "depth", "hashes", "signatures"} <= set(event)
