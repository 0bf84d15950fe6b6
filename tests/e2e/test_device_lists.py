"""
Device-list tracking through the real daemon: /sync's device_lists
(changed when a room-mate's keys change or a room starts being shared, left
when the last shared room is left), long polls woken by key changes, and
/keys/changes between two sync tokens.
"""
from __future__ import annotations


import pytest_twisted
from events_schema import validate_sync_response
from polling import LONG_POLL_MS, within_deadline
from signedjson.sign import sign_json
from test_cross_signing import (
    public_key,
    shared_room,
    upload_cross_signing,
    upload_device_keys,
    upload_signatures,
)
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

#: Long polls wait this long at most; a wake-up must come well before.


async def sync(client, user: dict, **query) -> dict:
    response = await client.request("GET", "sync", token=user["access_token"],
                                    query={k: str(v) for k, v in query.items()} or None)
    assert response.code == 200, response
    return validate_sync_response(response.json)


async def since_now(client, user: dict) -> str:
    """A token for 'now', from a sync that returns at once."""
    return (await sync(client, user, timeout=0))["next_batch"]


def device_lists(body: dict) -> dict:
    return body.get("device_lists", {"changed": [], "left": []})


async def new_device(client, user: dict) -> dict:
    """Log the user in again: a new device, which has no keys yet."""
    response = await client.login(user["user_id"])
    assert response.code == 200, response
    return response.json


async def leave(client, user: dict, room_id: str) -> None:
    response = await client.request("POST", f"rooms/{room_id}/leave", {}, token=user["access_token"])
    assert response.code == 200, response


async def keys_changes(client, user: dict, from_token: str, to_token: str) -> dict:
    response = await client.request("GET", "keys/changes", token=user["access_token"],
                                    query={"from": from_token, "to": to_token})
    assert response.code == 200, response
    return response.json


@pytest_twisted.ensureDeferred
async def test_room_mates_see_a_users_new_device_keys_in_changed(client):
    """When Alice uploads keys for a new device, Bob (sharing a room) and Alice get her in changed; Carol does not."""
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    await shared_room(client, alice, bob)
    bob_since, alice_since = await since_now(client, bob), await since_now(client, alice)
    carol_since = await since_now(client, carol)
    await upload_device_keys(client, await new_device(client, alice))
    assert device_lists(await sync(client, bob, since=bob_since)) == {"changed": [alice["user_id"]], "left": []}
    assert alice["user_id"] in device_lists(await sync(client, alice, since=alice_since))["changed"]
    assert "device_lists" not in await sync(client, carol, since=carol_since)


@pytest_twisted.ensureDeferred
async def test_a_key_upload_wakes_a_room_mates_long_poll(client):
    """A long-polling /sync of a room-mate returns soon after a user uploads new device keys."""
    alice, bob = await client.register(), await client.register()
    await shared_room(client, alice, bob)
    since = await since_now(client, bob)
    poll = within_deadline(defer.ensureDeferred(sync(client, bob, since=since, timeout=LONG_POLL_MS)))
    await deferLater(reactor, 0.3, lambda: None)
    assert not poll.called
    await upload_device_keys(client, await new_device(client, alice))
    body = await poll
    assert device_lists(body)["changed"] == [alice["user_id"]]


@pytest_twisted.ensureDeferred
async def test_deleting_or_logging_out_a_device_puts_the_user_in_changed(client):
    """Deleting a device (DELETE /devices) or logging it out is a device-list change for room-mates."""
    alice, bob = await client.register(), await client.register()
    await shared_room(client, alice, bob)
    second = await new_device(client, alice)
    await upload_device_keys(client, second)
    since = await since_now(client, bob)
    deleted = await client.with_password_uia("DELETE", f"devices/{second['device_id']}", {}, alice)
    assert deleted.code == 200, deleted
    # Deletions are announced through the database (whatever deleted the
    # device), so the change reaches a waiting long-poll within moments.
    assert device_lists(await sync(client, bob, since=since, timeout=10000))["changed"] == [alice["user_id"]]
    third = await new_device(client, alice)
    since = await since_now(client, bob)
    logged_out = await client.request("POST", "logout", {}, token=third["access_token"])
    assert logged_out.code == 200, logged_out
    assert device_lists(await sync(client, bob, since=since, timeout=10000))["changed"] == [alice["user_id"]]


@pytest_twisted.ensureDeferred
async def test_cross_signing_keys_upload_puts_the_user_in_changed(client):
    """Uploading cross-signing keys is a device-list change for the user's room-mates."""
    alice, bob = await client.register(), await client.register()
    await shared_room(client, alice, bob)
    since = await since_now(client, bob)
    await upload_cross_signing(client, alice)
    assert device_lists(await sync(client, bob, since=since))["changed"] == [alice["user_id"]]


@pytest_twisted.ensureDeferred
async def test_signing_another_users_master_key_is_a_change_only_the_signer_sees(client):
    """Alice's user-signing signature on Bob's master key puts Bob in Alice's changed, not in Bob's."""
    alice, bob = await client.register(), await client.register()
    await shared_room(client, alice, bob)
    alice_keys = await upload_cross_signing(client, alice)
    bob_keys = await upload_cross_signing(client, bob)
    alice_since, bob_since = await since_now(client, alice), await since_now(client, bob)
    signed = sign_json(bob_keys.body()["master_key"], alice["user_id"], alice_keys.user_signing)
    answer = await upload_signatures(client, alice, {bob["user_id"]: {public_key(bob_keys.master): signed}})
    assert answer["failures"] == {}
    assert device_lists(await sync(client, alice, since=alice_since))["changed"] == [bob["user_id"]]
    assert "device_lists" not in await sync(client, bob, since=bob_since, timeout=0)


@pytest_twisted.ensureDeferred
async def test_no_device_lists_without_changes_or_in_initial_sync(client):
    """An initial sync has no device_lists, and an incremental one has them only after a change."""
    alice, bob = await client.register(), await client.register()
    await shared_room(client, alice, bob)
    await upload_device_keys(client, alice)
    initial = await sync(client, bob)
    assert "device_lists" not in initial
    quiet = await sync(client, bob, since=initial["next_batch"], timeout=0)
    assert "device_lists" not in quiet


@pytest_twisted.ensureDeferred
async def test_starting_to_share_a_room_puts_each_user_in_the_others_changed(client):
    """When Bob joins Alice's room, Bob is in Alice's changed and Alice in Bob's."""
    alice, bob = await client.register(), await client.register()
    created = await client.request("POST", "createRoom", {"preset": "public_chat"},
                                   token=alice["access_token"])
    room_id = created.json["room_id"]
    alice_since, bob_since = await since_now(client, alice), await since_now(client, bob)
    joined = await client.request("POST", f"rooms/{room_id}/join", {}, token=bob["access_token"])
    assert joined.code == 200
    assert device_lists(await sync(client, alice, since=alice_since)) == {"changed": [bob["user_id"]], "left": []}
    assert device_lists(await sync(client, bob, since=bob_since)) == {"changed": [alice["user_id"]], "left": []}


@pytest_twisted.ensureDeferred
async def test_leaving_the_last_shared_room_puts_each_user_in_the_others_left(client):
    """Leaving one of two shared rooms changes nothing; leaving the last puts each user in the other's left."""
    alice, bob = await client.register(), await client.register()
    first = await shared_room(client, alice, bob)
    second = await shared_room(client, alice, bob)
    alice_since, bob_since = await since_now(client, alice), await since_now(client, bob)
    await leave(client, bob, first)
    assert device_lists(await sync(client, alice, since=alice_since))["left"] == []
    alice_since = await since_now(client, alice)
    await leave(client, bob, second)
    assert device_lists(await sync(client, alice, since=alice_since)) == {"changed": [], "left": [bob["user_id"]]}
    assert device_lists(await sync(client, bob, since=bob_since)) == {"changed": [], "left": [alice["user_id"]]}


@pytest_twisted.ensureDeferred
async def test_keys_changes_lists_users_whose_keys_changed_between_tokens(client):
    """/keys/changes reports room-mates who uploaded keys after 'from', and users no longer sharing a room."""
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await shared_room(client, alice, bob, carol)
    start = await since_now(client, alice)
    await upload_device_keys(client, await new_device(client, bob))
    await leave(client, carol, room_id)
    end = await since_now(client, alice)
    assert await keys_changes(client, alice, start, end) == {"changed": [bob["user_id"]],
                                                             "left": [carol["user_id"]]}
    assert await keys_changes(client, alice, end, end) == {"changed": [], "left": []}
    bad = await client.request("GET", "keys/changes", token=alice["access_token"],
                               query={"from": "nonsense", "to": end}, validate=False)
    assert bad.code == 400 and bad.json["errcode"] == "M_INVALID_PARAM"
