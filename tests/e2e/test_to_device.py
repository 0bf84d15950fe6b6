"""
Send-to-device messaging through the real daemon: PUT /sendToDevice queues
messages per device, /sync delivers them (at most 100 a response) until the
device acknowledges them with a later since token.
"""
from __future__ import annotations

import time

import pytest_twisted
from polling import LONG_POLL_MS, within_deadline
from conftest import password_auth
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

EVENT_TYPE = "org.example.ping"


def sleep(seconds: float) -> defer.Deferred:
    return deferLater(reactor, seconds, lambda: None)


async def put_to_device(client, sender: dict, messages: dict, *, txn_id: str | None = None,
                        event_type: str = EVENT_TYPE):
    """PUT /sendToDevice; return the response."""
    txn_id = txn_id or f"t{time.monotonic_ns()}"
    return await client.request("PUT", f"sendToDevice/{event_type}/{txn_id}", {"messages": messages},
                                token=sender["access_token"])


async def send_to_device(client, sender: dict, messages: dict, **kwargs) -> None:
    response = await put_to_device(client, sender, messages, **kwargs)
    assert response.code == 200, response
    assert response.json == {}


async def sync(client, device: dict, since: str | None = None, *, timeout: int = 0) -> dict:
    query = {"timeout": str(timeout)}
    if since is not None:
        query["since"] = since
    response = await client.request("GET", "sync", token=device["access_token"], query=query)
    assert response.code == 200, response
    return response.json


def to_device(body: dict) -> list[dict]:
    return body.get("to_device", {}).get("events", [])


async def second_device(client, user: dict, **extra) -> dict:
    response = await client.login(user["user_id"], **extra)
    assert response.code == 200, response
    return response.json


@pytest_twisted.ensureDeferred
async def test_message_reaches_only_the_addressed_device(client):
    """A message sent to one device of a user shows in that device's sync only, with sender, type and content."""
    alice = await client.register()
    alice_phone = await second_device(client, alice)
    bob = await client.register()
    await send_to_device(client, bob, {alice["user_id"]: {alice_phone["device_id"]: {"n": 1}}})
    await send_to_device(client, alice, {bob["user_id"]: {bob["device_id"]: {"n": 2}}})
    assert to_device(await sync(client, alice_phone)) == [
        {"sender": bob["user_id"], "type": EVENT_TYPE, "content": {"n": 1}}]
    assert to_device(await sync(client, alice)) == []
    assert to_device(await sync(client, bob)) == [
        {"sender": alice["user_id"], "type": EVENT_TYPE, "content": {"n": 2}}]


@pytest_twisted.ensureDeferred
async def test_star_reaches_every_device_of_the_user(client):
    """Device id "*" queues the message for every device the user has when it is sent."""
    alice = await client.register()
    devices = [alice, await second_device(client, alice), await second_device(client, alice)]
    bob = await client.register()
    await send_to_device(client, bob, {alice["user_id"]: {"*": {"all": True}}})
    later = await second_device(client, alice)
    for device in devices:
        assert [e["content"] for e in to_device(await sync(client, device))] == [{"all": True}]
    assert to_device(await sync(client, later)) == []
    assert to_device(await sync(client, bob)) == []


@pytest_twisted.ensureDeferred
async def test_unknown_users_devices_and_remote_users_are_skipped(client):
    """Messages to unknown devices, unknown users and other servers are dropped while the known ones arrive."""
    alice = await client.register()
    bob = await client.register()
    await send_to_device(client, bob, {
        alice["user_id"]: {"NOSUCHDEVICE": {"n": 0}, alice["device_id"]: {"n": 1}},
        "@nobody-here:test.local": {"*": {"n": 2}},
        "@someone:elsewhere.example": {"DEV": {"n": 3}},
    })
    assert [e["content"] for e in to_device(await sync(client, alice))] == [{"n": 1}]


@pytest_twisted.ensureDeferred
async def test_messages_arrive_in_order(client):
    """Messages sent one after another arrive in the order they were sent, also across event types."""
    alice = await client.register()
    bob = await client.register()
    for n in range(6):
        await send_to_device(client, bob, {alice["user_id"]: {alice["device_id"]: {"n": n}}},
                             event_type=f"org.example.t{n % 2}")
    events = to_device(await sync(client, alice))
    assert [e["content"]["n"] for e in events] == list(range(6))
    assert [e["type"] for e in events] == [f"org.example.t{n % 2}" for n in range(6)]


@pytest_twisted.ensureDeferred
async def test_retry_with_the_same_transaction_id_delivers_once(client):
    """A retried or concurrently duplicated transaction id delivers once; another event type or device is a new transaction."""
    alice = await client.register()
    bob = await client.register()
    bob_laptop = await second_device(client, bob)
    target = {alice["user_id"]: {alice["device_id"]: {"n": 1}}}
    await send_to_device(client, bob, target, txn_id="same")
    await send_to_device(client, bob, target, txn_id="same")
    duplicates = await defer.gatherResults([
        defer.ensureDeferred(put_to_device(client, bob, {alice["user_id"]: {alice["device_id"]: {"n": 2}}},
                                           txn_id="concurrent"))
        for _ in range(3)])
    assert [r.code for r in duplicates] == [200, 200, 200]
    await send_to_device(client, bob, {alice["user_id"]: {alice["device_id"]: {"n": 3}}},
                         txn_id="same", event_type="org.example.other")
    await send_to_device(client, bob_laptop, {alice["user_id"]: {alice["device_id"]: {"n": 4}}},
                         txn_id="same")
    events = to_device(await sync(client, alice))
    assert [e["content"]["n"] for e in events] == [1, 2, 3, 4]


@pytest_twisted.ensureDeferred
async def test_long_poll_is_woken_by_a_to_device_message(client):
    """A device waiting on sync is woken by a message sent to it (never woken: the deadline fails it)."""
    alice = await client.register()
    bob = await client.register()
    token = (await sync(client, alice))["next_batch"]
    waiting = within_deadline(defer.ensureDeferred(sync(client, alice, token, timeout=LONG_POLL_MS)))
    await sleep(0.5)
    assert not waiting.called, "the long-poll answered before anything happened"
    await send_to_device(client, bob, {alice["user_id"]: {alice["device_id"]: {"wake": "up"}}})
    body = await waiting
    assert [e["content"] for e in to_device(body)] == [{"wake": "up"}]


@pytest_twisted.ensureDeferred
async def test_message_for_another_device_does_not_fill_a_sync(client):
    """A device's long-poll woken by a message for another device of its user answers no to_device events."""
    alice = await client.register()
    alice_phone = await second_device(client, alice)
    bob = await client.register()
    token = (await sync(client, alice))["next_batch"]
    waiting = defer.ensureDeferred(sync(client, alice, token, timeout=1500))
    await sleep(0.2)
    await send_to_device(client, bob, {alice["user_id"]: {alice_phone["device_id"]: {"n": 1}}})
    body = await waiting
    assert "to_device" not in body
    assert [e["content"] for e in to_device(await sync(client, alice_phone))] == [{"n": 1}]


@pytest_twisted.ensureDeferred
async def test_a_long_queue_arrives_100_at_a_time_without_loss_or_duplicates(client):
    """150 queued messages arrive as 100 then 50 over two syncs, the second answered at once, none lost or repeated."""
    alice = await client.register()
    bob = await client.register()
    token = (await sync(client, alice))["next_batch"]
    for n in range(150):
        await send_to_device(client, bob, {alice["user_id"]: {alice["device_id"]: {"n": n}}})
    first = await sync(client, alice, token, timeout=10_000)
    assert [e["content"]["n"] for e in to_device(first)] == list(range(100))
    # The rest of the queue answers at once, not at the poll's timeout (the deadline).
    second = await within_deadline(defer.ensureDeferred(
        sync(client, alice, first["next_batch"], timeout=LONG_POLL_MS)))
    assert [e["content"]["n"] for e in to_device(second)] == list(range(100, 150))
    third = await sync(client, alice, second["next_batch"], timeout=0)
    assert to_device(third) == []


@pytest_twisted.ensureDeferred
async def test_messages_are_redelivered_until_acknowledged_by_a_later_since(client):
    """A sync repeated with the old since gets the messages again; once a sync uses a later since they are gone for good."""
    alice = await client.register()
    bob = await client.register()
    old = (await sync(client, alice))["next_batch"]
    await send_to_device(client, bob, {alice["user_id"]: {alice["device_id"]: {"n": 1}}})
    await send_to_device(client, bob, {alice["user_id"]: {alice["device_id"]: {"n": 2}}})
    first = await sync(client, alice, old)
    assert [e["content"]["n"] for e in to_device(first)] == [1, 2]
    retried = await sync(client, alice, old)  # as if the first response was lost
    assert [e["content"]["n"] for e in to_device(retried)] == [1, 2]
    acknowledging = await sync(client, alice, retried["next_batch"])
    assert to_device(acknowledging) == []
    assert to_device(await sync(client, alice, old)) == []
    assert to_device(await sync(client, alice)) == []


@pytest_twisted.ensureDeferred
async def test_deleting_a_device_deletes_its_queue(client):
    """Messages queued for a deleted device never reach a new device logged in with the same device id."""
    alice = await client.register()
    alice_phone = await second_device(client, alice, device_id="PHONE")
    bob = await client.register()
    await send_to_device(client, bob, {alice["user_id"]: {"PHONE": {"lost": True}}})
    path = f"devices/{alice_phone['device_id']}"
    challenge = await client.request("DELETE", path, {}, token=alice["access_token"])
    assert challenge.code == 401
    deleted = await client.request("DELETE", path, {"auth": password_auth(alice["user_id"], challenge.json["session"])},
                                   token=alice["access_token"])
    assert deleted.code == 200, deleted
    again = await second_device(client, alice, device_id="PHONE")
    assert to_device(await sync(client, again)) == []
    await send_to_device(client, bob, {alice["user_id"]: {"PHONE": {"fresh": True}}})
    assert [e["content"] for e in to_device(await sync(client, again))] == [{"fresh": True}]


@pytest_twisted.ensureDeferred
async def test_guests_can_send_to_device_messages(client):
    """A guest may send to-device messages (the endpoint is on the guest allow-list)."""
    guest = await client.register_guest()
    alice = await client.register()
    await send_to_device(client, guest, {alice["user_id"]: {alice["device_id"]: {"from": "guest"}}})
    events = to_device(await sync(client, alice))
    assert events == [{"sender": guest["user_id"], "type": EVENT_TYPE, "content": {"from": "guest"}}]


@pytest_twisted.ensureDeferred
async def test_malformed_messages_are_rejected(client):
    """A missing or non-object messages answers 400 M_BAD_JSON/M_MISSING_PARAM, a bad user id 400 M_INVALID_PARAM, and nothing is queued."""
    alice = await client.register()
    path = "sendToDevice/org.example.ping/"
    token = alice["access_token"]
    missing = await client.request("PUT", path + "a", {}, token=token, validate=False)
    assert (missing.code, missing.json["errcode"]) == (400, "M_MISSING_PARAM")
    not_object = await client.request("PUT", path + "b", {"messages": []}, token=token, validate=False)
    assert (not_object.code, not_object.json["errcode"]) == (400, "M_BAD_JSON")
    bad_content = await client.request(
        "PUT", path + "c", {"messages": {alice["user_id"]: {alice["device_id"]: "text"}}},
        token=token, validate=False)
    assert (bad_content.code, bad_content.json["errcode"]) == (400, "M_BAD_JSON")
    bad_user = await client.request("PUT", path + "d", {"messages": {"@no-server": {"*": {}}}},
                                    token=token, validate=False)
    assert (bad_user.code, bad_user.json["errcode"]) == (400, "M_INVALID_PARAM")
    assert to_device(await sync(client, alice)) == []
    unauthenticated = await client.request("PUT", path + "e", {"messages": {}})
    assert unauthenticated.code == 401
