"""
Presence through the real daemon: setting and reading one's status, who
may read it, and how it reaches room-mates in /sync.
"""
from __future__ import annotations

import pytest_twisted
from events_schema import validate_sync_response
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater


async def sync(client, user: dict, **query) -> dict:
    response = await client.request("GET", "sync", token=user["access_token"],
                                    query={k: str(v) for k, v in query.items()} or None)
    assert response.code == 200, response
    return validate_sync_response(response.json)


async def room_with_two(client) -> tuple[dict, dict, str]:
    alice, bob = await client.register(), await client.register()
    created = await client.request("POST", "createRoom", {"preset": "public_chat"},
                                   token=alice["access_token"])
    room_id = created.json["room_id"]
    joined = await client.request("POST", f"rooms/{room_id}/join", {}, token=bob["access_token"])
    assert joined.code == 200, joined
    return alice, bob, room_id


async def set_presence(client, user: dict, body: dict, who: str | None = None):
    return await client.request("PUT", f"presence/{who or user['user_id']}/status", body,
                                token=user["access_token"])


def presence_of(body: dict, user_id: str) -> dict | None:
    for event in body.get("presence", {}).get("events", []):
        if event["sender"] == user_id:
            assert event["type"] == "m.presence"
            return event["content"]
    return None


@pytest_twisted.ensureDeferred
async def test_set_and_get_own_presence(client):
    """A user sets their presence and status message and reads them back with a fresh last_active_ago."""
    user = await client.register()
    put = await set_presence(client, user, {"presence": "online", "status_msg": "At lunch"})
    assert put.code == 200 and put.json == {}
    got = await client.request("GET", f"presence/{user['user_id']}/status", token=user["access_token"])
    assert got.code == 200
    assert got.json["presence"] == "online" and got.json["status_msg"] == "At lunch"
    assert got.json["currently_active"] is True and 0 <= got.json["last_active_ago"] < 10_000
    await set_presence(client, user, {"presence": "unavailable"})
    got = await client.request("GET", f"presence/{user['user_id']}/status", token=user["access_token"])
    assert got.json["presence"] == "unavailable" and "status_msg" not in got.json


@pytest_twisted.ensureDeferred
async def test_presence_never_set_is_offline(client):
    """A user who never set a presence reads as offline."""
    user = await client.register()
    got = await client.request("GET", f"presence/{user['user_id']}/status", token=user["access_token"])
    assert got.code == 200 and got.json == {"presence": "offline"}


@pytest_twisted.ensureDeferred
async def test_presence_refusals(client):
    """Setting another user's presence is 403; an unknown state is 400."""
    alice, bob = await client.register(), await client.register()
    other = await set_presence(client, bob, {"presence": "online"}, who=alice["user_id"])
    assert other.code == 403 and other.json["errcode"] == "M_FORBIDDEN"
    bad = await client.request("PUT", f"presence/{alice['user_id']}/status", {"presence": "asleep"},
                               token=alice["access_token"], validate=False)
    assert bad.code == 400
    missing = await set_presence(client, alice, {"status_msg": "no state"})
    assert missing.code == 400 and missing.json["errcode"] == "M_MISSING_PARAM"


@pytest_twisted.ensureDeferred
async def test_presence_is_readable_by_room_mates_only(client):
    """A room-mate reads a user's presence; a user sharing no room with them gets 403."""
    alice, bob, _ = await room_with_two(client)
    await set_presence(client, alice, {"presence": "online", "status_msg": "hi"})
    mate = await client.request("GET", f"presence/{alice['user_id']}/status", token=bob["access_token"])
    assert mate.code == 200 and mate.json["presence"] == "online" and mate.json["status_msg"] == "hi"
    stranger = await client.register()
    refused = await client.request("GET", f"presence/{alice['user_id']}/status",
                                   token=stranger["access_token"])
    assert refused.code == 403 and refused.json["errcode"] == "M_FORBIDDEN"


@pytest_twisted.ensureDeferred
async def test_presence_reaches_room_mates_in_sync(client):
    """A room-mate's presence shows in an initial sync, and a change of it answers their next long-poll."""
    alice, bob, _ = await room_with_two(client)
    await set_presence(client, alice, {"presence": "online", "status_msg": "here"})
    initial = await sync(client, bob)
    content = presence_of(initial, alice["user_id"])
    assert content["presence"] == "online" and content["status_msg"] == "here"
    assert content["currently_active"] is True

    await set_presence(client, alice, {"presence": "unavailable", "status_msg": "away"})
    body = await sync(client, bob, since=initial["next_batch"], timeout=10000)
    changed = presence_of(body, alice["user_id"])
    assert changed["presence"] == "unavailable" and changed["status_msg"] == "away"
    assert "currently_active" not in changed


@pytest_twisted.ensureDeferred
async def test_presence_wakes_the_users_own_sync(client):
    """A user's own presence change wakes their waiting sync and shows in it."""
    user = await client.register()
    since = (await sync(client, user))["next_batch"]
    await set_presence(client, user, {"presence": "unavailable", "status_msg": "brb"})
    body = await sync(client, user, since=since, timeout=10000)
    assert presence_of(body, user["user_id"])["status_msg"] == "brb"


@pytest_twisted.ensureDeferred
async def test_presence_of_strangers_does_not_sync(client):
    """Presence of users sharing no room never appears in a sync."""
    alice, stranger = await client.register(), await client.register()
    await set_presence(client, stranger, {"presence": "online"})
    assert presence_of(await sync(client, alice), stranger["user_id"]) is None


@pytest_twisted.ensureDeferred
async def test_syncing_sets_presence(client):
    """A sync marks its user online (or idle with set_presence=unavailable); set_presence=offline leaves presence alone."""
    alice, bob, _ = await room_with_two(client)
    path = f"presence/{alice['user_id']}/status"
    await sync(client, alice, set_presence="offline")
    assert (await client.request("GET", path, token=bob["access_token"])).json == {"presence": "offline"}
    await sync(client, alice)
    online = await client.request("GET", path, token=bob["access_token"])
    assert online.json["presence"] == "online" and online.json["currently_active"] is True
    await sync(client, alice, set_presence="unavailable")
    idle = await client.request("GET", path, token=bob["access_token"])
    assert idle.json["presence"] == "unavailable"
    bad = await client.request("GET", "sync", token=alice["access_token"], query={"set_presence": "busy"},
                               validate=False)
    assert bad.code == 400


@pytest_twisted.ensureDeferred
async def test_presence_change_during_a_timed_out_poll_is_not_lost(client):
    """A room-mate's presence change made while a sync waits and times out still reaches the next sync."""
    alice, bob, room_id = await room_with_two(client)
    since = (await sync(client, bob))["next_batch"]
    polling = defer.ensureDeferred(sync(client, bob, since=since, timeout=1500, set_presence="offline"))
    await deferLater(reactor, 0.3, lambda: None)
    await set_presence(client, alice, {"presence": "unavailable", "status_msg": "gone fishing"})
    timed_out = await polling
    await client.request("PUT", f"rooms/{room_id}/send/m.room.message/fish",
                         {"msgtype": "m.text", "body": "fish"}, token=alice["access_token"])
    body = await sync(client, bob, since=timed_out["next_batch"], set_presence="offline")
    assert (presence_of(timed_out, alice["user_id"]) or presence_of(body, alice["user_id"]) or {}) \
        .get("status_msg") == "gone fishing"
