"""
Push delivery through the real daemon to a real push gateway running in
the test process: what the gateway receives (checked against the Push
Gateway API's schema), counts, priorities and tweaks, both formats,
rejected pushkeys, retries while the gateway fails or is down, restarts
(SIGTERM and SIGKILL) with undelivered notifications, a hanging gateway
that must not slow sends, badge updates on read, and a gateway in a
blocked address range that is never reached.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from polling import DEADLINE_S
from push_gateway import (
    PUSH_CONFIG,
    PushGateway,
    create_room,
    get_pushers,
    group_room,
    join,
    send_message,
    set_pusher,
)


@pytest.fixture(scope="module")
def push_server(start_homeserver):
    """A daemon that may reach loopback push gateways, retrying fast."""
    return start_homeserver(PUSH_CONFIG)


@pytest.fixture
def push_client(push_server, make_client):
    return make_client(push_server)


@pytest.fixture
def gateway():
    gateway = PushGateway().listen()
    yield gateway
    pytest_twisted.blockon(defer.ensureDeferred(gateway.close()))


async def until(check, what: str):
    """Poll C{await check()} until it is true, failing at the deadline (never a stopwatch)."""
    for _ in range(DEADLINE_S * 10):
        if await check():
            return
        await deferLater(reactor, 0.1, lambda: None)
    raise AssertionError(f"never happened: {what}")


async def log_says(server, text: str, after: int = 0) -> None:
    """Wait until the daemon's log says C{text}, past its first C{after} characters."""
    async def found():
        return text in server.log()[after:]
    await until(found, f"the daemon logs {text!r}")


async def set_display_name(client, user: dict, name: str) -> None:
    response = await client.request("PUT", f"profile/{quote(user['user_id'])}/displayname",
                                    {"displayname": name}, token=user["access_token"])
    assert response.code == 200, response


# -- what the gateway receives ----------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_full_format_notifications_as_the_push_gateway_api_says(push_client, gateway):
    """
    An invite, then messages: each notification carries the event's fields,
    the room's name and alias, the sender's display name, the unread count
    (growing), the priority and tweaks the push rules give, and the pusher
    as a device with its data minus the url.
    """
    client = push_client
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    await set_display_name(client, bob, "Bob the Builder")
    body = await set_pusher(client, alice, gateway.url, data={"custom": {"kept": True}})
    alias_name = f"push{bob['user_id'][1:].split(':')[0]}"
    room_id = await create_room(client, bob, name="Team room", room_alias_name=alias_name,
                                invite=[alice["user_id"]])

    [invite] = await gateway.wait_for(1)
    assert invite["type"] == "m.room.member" and invite["room_id"] == room_id
    assert invite["sender"] == bob["user_id"]
    assert invite["user_is_target"] is True
    assert invite["content"]["membership"] == "invite"
    assert invite["prio"] == "high"  # .m.rule.invite_for_me makes a sound
    assert invite["counts"] == {"unread": 1}  # a pending invite counts, as in Synapse
    assert invite["devices"] == [{
        "app_id": body["app_id"], "pushkey": body["pushkey"],
        "pushkey_ts": invite["devices"][0]["pushkey_ts"],
        "data": {"custom": {"kept": True}}, "tweaks": {"sound": "default"},
    }]
    assert isinstance(invite["devices"][0]["pushkey_ts"], int)
    assert 1_500_000_000 < invite["devices"][0]["pushkey_ts"] < 10_000_000_000  # seconds, not ms

    await join(client, alice, room_id)
    await join(client, carol, room_id)
    first = await send_message(client, bob, room_id, "first")
    second = await send_message(client, bob, room_id, "second")
    mention = await send_message(client, bob, room_id, "hey alice",
                                 **{"m.mentions": {"user_ids": [alice["user_id"]]}})
    received = await gateway.wait_for(4, events_only=True)
    messages = received[1:]
    assert [n["event_id"] for n in messages] == [first, second, mention]
    plain = messages[0]
    assert plain == {
        "event_id": first, "room_id": room_id, "type": "m.room.message", "sender": bob["user_id"],
        "sender_display_name": "Bob the Builder", "room_name": "Team room",
        "room_alias": f"#{alias_name}:test.local", "prio": "low",
        "content": {"msgtype": "m.text", "body": "first"}, "counts": {"unread": 1},
        "devices": [{"app_id": body["app_id"], "pushkey": body["pushkey"],
                     "pushkey_ts": plain["devices"][0]["pushkey_ts"], "data": {"custom": {"kept": True}}}],
    }
    assert [n["counts"]["unread"] for n in messages] == [1, 2, 3]
    assert messages[2]["prio"] == "high"
    assert messages[2]["devices"][0]["tweaks"] == {"sound": "default", "highlight": True}
    assert gateway.invalid == []


@pytest_twisted.ensureDeferred
async def test_event_id_only_format_sends_ids_counts_and_devices(push_client, gateway):
    """With data.format event_id_only the gateway gets the ids, priority, counts and device: no event fields."""
    client = push_client
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await group_room(client, bob, alice, carol)
    await set_pusher(client, alice, gateway.url, data={"format": "event_id_only"})
    event_id = await send_message(client, bob, room_id, "secret words")
    [notification] = await gateway.wait_for(1)
    assert set(notification) == {"event_id", "room_id", "prio", "counts", "devices"}
    assert (notification["event_id"], notification["room_id"]) == (event_id, room_id)
    assert notification["counts"] == {"unread": 1}
    assert notification["devices"][0]["data"] == {"format": "event_id_only"}
    assert "tweaks" not in notification["devices"][0]
    assert gateway.invalid == []


@pytest_twisted.ensureDeferred
async def test_include_content_false_keeps_content_off_the_gateway(start_homeserver, make_client, gateway):
    """With [push] include_content = false the full format has every field but the content."""
    server = start_homeserver(PUSH_CONFIG.replace("[push]\n", "[push]\ninclude_content = false\n"))
    client = make_client(server)
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await group_room(client, bob, alice, carol)
    await set_pusher(client, alice, gateway.url)
    event_id = await send_message(client, bob, room_id, "not for the gateway")
    [notification] = await gateway.wait_for(1)
    assert notification["event_id"] == event_id
    assert notification["type"] == "m.room.message" and notification["sender"] == bob["user_id"]
    assert "content" not in notification
    assert gateway.invalid == []


# -- the gateway's answers ----------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_rejected_pushkey_removes_the_pusher(push_client, gateway):
    """A pushkey the gateway rejects loses its pusher; the user's other pusher goes on delivering."""
    client = push_client
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await group_room(client, bob, alice, carol)
    await set_pusher(client, alice, gateway.url, pushkey="doomed")
    gateway.rejected = ["doomed"]
    first = await send_message(client, bob, room_id, "one")
    [notification] = await gateway.wait_for(1)
    assert notification["event_id"] == first

    async def removed():
        return await get_pushers(client, alice) == []
    await until(removed, "the rejected pusher is removed")

    await set_pusher(client, alice, gateway.url, pushkey="healthy")
    second = await send_message(client, bob, room_id, "two")
    received = await gateway.wait_for(2)
    assert [(n["event_id"], n["devices"][0]["pushkey"]) for n in received] == [
        (first, "doomed"), (second, "healthy")]
    assert [p["pushkey"] for p in await get_pushers(client, alice)] == ["healthy"]


@pytest_twisted.ensureDeferred
async def test_failing_then_down_gateway_gets_everything_in_order_once_back(push_client, push_server, gateway):
    """
    A gateway answering 500 is retried until it takes the notification;
    one that is down (connections refused) gets what was sent meanwhile
    once it is back, in order, counts included.
    """
    client = push_client
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await group_room(client, bob, alice, carol)
    await set_pusher(client, alice, gateway.url)
    gateway.status = 500
    first = await send_message(client, bob, room_id, "one")
    await gateway.wait_for(2)  # tried, failed, tried again
    gateway.status = 200
    received = await gateway.wait_for(3)
    assert {n["event_id"] for n in received} == {first}

    await gateway.close()
    logged = len(push_server.log())
    second = await send_message(client, bob, room_id, "two")
    third = await send_message(client, bob, room_id, "three")
    await log_says(push_server, f"push to {gateway.url} for {alice['user_id']} failed", logged)
    gateway.listen()
    received = await gateway.wait_for_events(second, third)
    # The gateway was cut off right after taking the first one: its answer
    # may have been lost, and the first one sent again (gateways drop
    # duplicates by event id, as the spec asks).
    ids = [n["event_id"] for n in received]
    assert ids[ids.index(second):] == [second, third]
    assert set(ids[:ids.index(second)]) == {first}
    assert [n["counts"]["unread"] for n in received[-2:]] == [2, 3]


@pytest_twisted.ensureDeferred
async def test_a_hanging_gateway_does_not_slow_sends(start_homeserver, make_client, gateway):
    """
    While the gateway holds a notification without answering, every send
    still succeeds and is visible to the recipient; the pusher waits in
    order behind the notification in flight.
    """
    server = start_homeserver(PUSH_CONFIG.replace("[push]\n", "timeout_s = 600.0\n[push]\n"))
    client = make_client(server)
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await group_room(client, bob, alice, carol)
    await set_pusher(client, alice, gateway.url)
    gateway.hang = True
    sent = [await send_message(client, bob, room_id, "first")]
    await gateway.wait_for(1)
    for i in range(5):
        sent.append(await send_message(client, bob, room_id, f"more {i}"))
    response = await client.request("GET", f"rooms/{quote(room_id)}/messages",
                                    token=alice["access_token"], query={"dir": "b", "limit": "10"})
    assert response.code == 200, response
    shown = [e["event_id"] for e in response.json["chunk"] if e["type"] == "m.room.message"]
    assert shown == list(reversed(sent))
    assert len(gateway.hanging) == 1 and len(gateway.received) == 1


# -- restarts -----------------------------------------------------------------------

@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
@pytest_twisted.ensureDeferred
async def test_undelivered_notifications_arrive_after_a_restart(start_homeserver, make_client, gateway, how):
    """
    Notifications stored while the gateway was down are delivered after
    the daemon restarts, whether it was stopped (SIGTERM) or killed
    (SIGKILL): the queue is the database.
    """
    server = start_homeserver(PUSH_CONFIG)
    client = make_client(server)
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await group_room(client, bob, alice, carol)
    await set_pusher(client, alice, gateway.url)
    await gateway.close()
    sent = [await send_message(client, bob, room_id, f"while down {i}") for i in range(3)]
    await log_says(server, f"push to {gateway.url} for {alice['user_id']} failed")
    if how == "sigterm":
        server.stop()
    else:
        server.kill()
    gateway.listen()
    server.start()
    received = await gateway.wait_for(3)
    assert [n["event_id"] for n in received] == sent
    assert [n["counts"]["unread"] for n in received] == [1, 2, 3]


# -- badges ------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_reading_sends_a_badge_update(push_client, gateway):
    """
    When a read receipt moves the user's read position, the gateway gets
    the new unread count by itself: no event, low priority.
    """
    client = push_client
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await group_room(client, bob, alice, carol)
    await set_pusher(client, alice, gateway.url)
    await send_message(client, bob, room_id, "one")
    last = await send_message(client, bob, room_id, "two")
    await gateway.wait_for(2)
    response = await client.request("POST", f"rooms/{quote(room_id)}/receipt/m.read/{quote(last)}", {},
                                    token=alice["access_token"])
    assert response.code == 200, response
    received = await gateway.wait_for(3)
    badge = received[2]
    assert badge["counts"] == {"unread": 0}
    assert badge["prio"] == "low"
    assert "event_id" not in badge and "room_id" not in badge
    assert badge["devices"][0]["pushkey"] == f"key-{alice['user_id']}"
    assert gateway.invalid == []


# -- blocked addresses ----------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_a_gateway_in_a_blocked_range_is_never_reached(homeserver, client, gateway):
    """
    With the default outbound blocklist a loopback gateway gets nothing:
    the daemon tries, refuses to connect, and says so.
    """
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await group_room(client, bob, alice, carol)
    await set_pusher(client, alice, gateway.url)
    await send_message(client, bob, room_id, "never pushed")
    await log_says(homeserver, f"push to {gateway.url} for {alice['user_id']} failed")
    assert "is in a blocked range" in homeserver.log()
    assert gateway.received == []
