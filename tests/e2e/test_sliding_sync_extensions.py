"""
Sliding sync extensions through the real daemon, on both paths:
to-device messages (delivered until a later since acknowledges them),
e2ee (key counts and device-list changes), account data, receipts and
typing, the room-level parts scoped by the extension's lists and rooms.
"""
from __future__ import annotations

import time
from urllib.parse import quote

import pytest_twisted
from sliding_helpers import (
    Connection,
    both_paths,
    call,
    create_room,
    join,
    second_device,
    send,
    set_account_data,
)
from test_cross_signing import upload_device_keys
from test_keys_upload_claim import ALG, Device

EVENT_TYPE = "org.example.ping"


def extension(body: dict, name: str) -> dict:
    return (body.get("extensions") or {}).get(name) or {}


async def send_to_device(client, sender: dict, messages: dict) -> None:
    await call(client, "PUT", f"sendToDevice/{EVENT_TYPE}/t{time.monotonic_ns()}", {"messages": messages},
               user=sender)


@both_paths
@pytest_twisted.ensureDeferred
async def test_to_device_messages_until_acknowledged(client, path):
    """
    The syncing device gets its own to-device messages with a next_batch;
    a request with since = that next_batch gets only newer ones, and the
    same since again (the answer lost) gets them again.
    """
    alice, bob = await client.register(), await client.register()
    phone = await second_device(client, alice)
    conn = Connection(client, path, alice, extensions={"to_device": {"enabled": True}})

    async def messages() -> tuple[list, str]:
        to_device = extension(await conn.sync(), "to_device")
        return [(e["sender"], e["type"], e["content"]) for e in to_device.get("events", [])], \
            to_device.get("next_batch")

    await send_to_device(client, bob, {alice["user_id"]: {alice["device_id"]: {"n": 1},
                                                          phone["device_id"]: {"n": "phone"}}})
    got, since = await messages()
    assert got == [(bob["user_id"], EVENT_TYPE, {"n": 1})]
    assert isinstance(since, str)
    conn.extensions = {"to_device": {"enabled": True, "since": since}}
    await send_to_device(client, bob, {alice["user_id"]: {alice["device_id"]: {"n": 2}}})
    got, _ = await messages()  # this answer is lost
    assert [content for _, _, content in got] == [{"n": 2}]
    got, since = await messages()
    assert [content for _, _, content in got] == [{"n": 2}]
    conn.extensions = {"to_device": {"enabled": True, "since": since}}
    assert (await messages())[0] == []


@both_paths
@pytest_twisted.ensureDeferred
async def test_e2ee_key_counts_and_device_list_changes(client, path):
    """
    The first response counts the device's one-time keys and names its
    unused fallback key type; later ones show a claimed key gone and a
    room-mate who uploaded keys for a new device in device_lists.changed.
    """
    alice = Device(await client.register())
    bob = await client.register()
    await call(client, "POST", "keys/upload", {
        "device_keys": alice.device_keys(), "one_time_keys": alice.one_time_keys(3),
        "fallback_keys": {f"{ALG}:FB1": alice.signed_key(fallback=True)}}, user=alice.login)
    room_id = await create_room(client, alice.login, preset="public_chat")
    await join(client, bob, room_id)
    conn = Connection(client, path, alice.login, extensions={"e2ee": {"enabled": True}})
    e2ee = extension(await conn.sync(), "e2ee")
    assert e2ee["device_one_time_keys_count"] == {ALG: 3}
    assert e2ee["device_unused_fallback_key_types"] == [ALG]

    claimed = await call(client, "POST", "keys/claim", {"one_time_keys": {alice.user_id: {alice.device_id: ALG}}},
                         user=bob)
    assert claimed["one_time_keys"][alice.user_id][alice.device_id]
    await upload_device_keys(client, await second_device(client, bob))
    e2ee = extension(await conn.sync(), "e2ee")
    assert e2ee["device_one_time_keys_count"] == {ALG: 2}
    assert bob["user_id"] in e2ee["device_lists"]["changed"]


@both_paths
@pytest_twisted.ensureDeferred
async def test_account_data_global_and_scoped_rooms(client, path):
    """
    Global account data comes whole at first and then as changes; room
    account data only for the rooms the extension's lists and rooms name
    (a room outside every range, or subscribed but not named, gets none).
    """
    alice = await client.register()
    older = await create_room(client, alice)
    newer = await create_room(client, alice)
    await set_account_data(client, alice, "org.example.global", {"v": 1})
    for room_id, value in ((older, "older"), (newer, "newer")):
        await set_account_data(client, alice, "org.example.room", {"v": value}, room_id)
    top = {"main": path.list_config(0, 0)}

    def room_data(account_data: dict) -> dict:
        return {room_id: [(e["type"], e["content"]) for e in events]
                for room_id, events in (account_data.get("rooms") or {}).items() if events}

    conn = Connection(client, path, alice, lists=top, extensions={"account_data": {"enabled": True}})
    account_data = extension(await conn.sync(), "account_data")
    assert ("org.example.global", {"v": 1}) in [(e["type"], e["content"]) for e in account_data["global"]]
    assert room_data(account_data) == {newer: [("org.example.room", {"v": "newer"})]}
    await set_account_data(client, alice, "org.example.later", {"v": 2})
    account_data = extension(await conn.sync(), "account_data")
    assert [(e["type"], e["content"]) for e in account_data["global"]] == [("org.example.later", {"v": 2})]
    assert room_data(account_data) == {}

    subscribed = {older: path.room_config()}
    for scope, expected in (({"lists": ["main"], "rooms": []}, {newer}),
                            ({"lists": [], "rooms": [older]}, {older}),
                            ({}, {newer, older})):
        scoped = Connection(client, path, alice, lists=top, room_subscriptions=subscribed, conn_id="scoped",
                            extensions={"account_data": {"enabled": True, **scope}})
        assert set(room_data(extension(await scoped.sync(), "account_data"))) == expected, scope


@both_paths
@pytest_twisted.ensureDeferred
async def test_receipts_and_typing_only_for_rooms_in_scope(client, path):
    """
    Bob's receipt and typing show for the room in the list's range; the
    room outside it gets none unless subscribed and in the extension's
    scope; Bob stopping typing is sent as an empty m.typing.
    """
    alice, bob = await client.register(), await client.register()
    older = await create_room(client, alice, preset="public_chat")
    await join(client, bob, older)
    older_event = await send(client, bob, older, "older")
    newer = await create_room(client, alice, preset="public_chat")
    await join(client, bob, newer)
    newer_event = await send(client, bob, newer, "newer")
    for room_id, event_id in ((older, older_event), (newer, newer_event)):
        await call(client, "PUT", f"rooms/{quote(room_id)}/typing/{quote(bob['user_id'])}",
                   {"typing": True, "timeout": 30000}, user=bob)
        await call(client, "POST", f"rooms/{quote(room_id)}/receipt/m.read/{quote(event_id)}", {}, user=bob)
    top = {"main": path.list_config(0, 0)}
    both = {"typing": {"enabled": True}, "receipts": {"enabled": True}}

    def ephemeral(body: dict) -> tuple[dict, dict]:
        return extension(body, "typing").get("rooms") or {}, extension(body, "receipts").get("rooms") or {}

    conn = Connection(client, path, alice, lists=top, extensions=both)
    typing, receipts = ephemeral(await conn.sync())
    assert typing == {newer: {"type": "m.typing", "content": {"user_ids": [bob["user_id"]]}}}
    assert set(receipts) == {newer}
    assert receipts[newer]["type"] == "m.receipt"
    assert isinstance(receipts[newer]["content"][newer_event]["m.read"][bob["user_id"]]["ts"], int)

    await call(client, "PUT", f"rooms/{quote(newer)}/typing/{quote(bob['user_id'])}", {"typing": False}, user=bob)
    typing, receipts = ephemeral(await conn.sync())
    assert typing == {newer: {"type": "m.typing", "content": {"user_ids": []}}}
    assert receipts == {}

    subscribed = {older: path.room_config()}
    scoped_out = {name: {"enabled": True, "lists": ["main"], "rooms": []} for name in both}
    for extensions, expected in ((scoped_out, set()), (both, {older})):
        scoped = Connection(client, path, alice, lists=top, room_subscriptions=subscribed, conn_id="scoped",
                            extensions=extensions)
        typing, receipts = ephemeral(await scoped.sync())
        assert set(typing) - {newer} == expected and set(receipts) - {newer} == expected, extensions
