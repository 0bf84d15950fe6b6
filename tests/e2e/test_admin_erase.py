"""
Erasure (Synapse's admin deactivation with C{erase}, the spec's
C{/account/deactivate} with C{erase}): the erased user's events are served
pruned to those who were not joined when they were sent, whole to those
who were.
"""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest_twisted
from admin_helpers import ADMIN, register_admin
from conftest import PASSWORD
from room_helpers import create_room, join, ok, send_text

_SECRET = "the erasable secret"


async def _room_with_message(client) -> tuple[dict, dict, str, str]:
    """A public room of bob's where alice said something: C{(alice, bob, room_id, event_id)}."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, bob, preset="public_chat")
    await join(client, alice, room_id)
    event_id = await send_text(client, alice, room_id, _SECRET, "erase-1")
    return alice, bob, room_id, event_id


async def _admin_deactivate(client, user: dict, *, erase: bool) -> None:
    admin = await register_admin(client)
    await ok(client, "POST", f"{ADMIN}/v1/deactivate/{quote(user['user_id'])}", {"erase": erase}, user=admin)


async def _seen(client, reader: dict, room_id: str, event_id: str) -> dict:
    """The message's content as C{reader} gets it from /messages, /context, /event and an initial /sync."""
    room = quote(room_id)
    messages = await ok(client, "GET", f"rooms/{room}/messages", user=reader, query={"dir": "b", "limit": "50"})
    context = await ok(client, "GET", f"rooms/{room}/context/{quote(event_id)}", user=reader)
    event = await ok(client, "GET", f"rooms/{room}/event/{quote(event_id)}", user=reader)
    sync_filter = json.dumps({"room": {"timeline": {"limit": 50}}})
    sync = await ok(client, "GET", "sync", user=reader, query={"filter": sync_filter})
    timeline = sync["rooms"]["join"][room_id]["timeline"]["events"]
    contents = {
        "messages": [e["content"] for e in messages["chunk"] if e["event_id"] == event_id],
        "context": [context["event"]["content"]],
        "event": [event["content"]],
        "sync": [e["content"] for e in timeline if e["event_id"] == event_id],
    }
    for where, found in contents.items():
        assert len(found) == 1, (where, found)
    return {where: found[0] for where, found in contents.items()}


async def _search(client, reader: dict) -> list[str]:
    found = await ok(client, "POST", "search", {"search_categories": {"room_events": {"search_term": "erasable"}}},
                     user=reader)
    return [r["result"]["event_id"] for r in found["search_categories"]["room_events"]["results"]]


@pytest_twisted.ensureDeferred
async def test_erased_messages_are_pruned_for_later_joiners_only(client):
    alice, bob, room_id, event_id = await _room_with_message(client)
    await _admin_deactivate(client, alice, erase=True)
    carol = await client.register()
    await join(client, carol, room_id)

    whole = {"msgtype": "m.text", "body": _SECRET}
    assert await _seen(client, bob, room_id, event_id) == dict.fromkeys(("messages", "context", "event", "sync"),
                                                                        whole)
    assert await _seen(client, carol, room_id, event_id) == dict.fromkeys(("messages", "context", "event", "sync"),
                                                                          {})
    assert await _search(client, bob) == [event_id]
    assert await _search(client, carol) == []


@pytest_twisted.ensureDeferred
async def test_deactivation_without_erase_keeps_messages_whole(client):
    alice, _, room_id, event_id = await _room_with_message(client)
    await _admin_deactivate(client, alice, erase=False)
    carol = await client.register()
    await join(client, carol, room_id)

    whole = {"msgtype": "m.text", "body": _SECRET}
    assert await _seen(client, carol, room_id, event_id) == dict.fromkeys(("messages", "context", "event", "sync"),
                                                                          whole)
    assert await _search(client, carol) == [event_id]


@pytest_twisted.ensureDeferred
async def test_own_deactivation_with_erase_and_reactivation(client):
    """The client API's C{erase} erases too; an admin's reactivation lifts it (as Synapse)."""
    alice, _, room_id, event_id = await _room_with_message(client)
    auth = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": alice["user_id"]},
            "password": PASSWORD}
    done = await ok(client, "POST", "account/deactivate", {"auth": auth, "erase": True}, user=alice)
    assert done == {"id_server_unbind_result": "success"}
    carol = await client.register()
    await join(client, carol, room_id)
    assert (await _seen(client, carol, room_id, event_id))["event"] == {}

    admin = await register_admin(client)
    user = await ok(client, "PUT", f"{ADMIN}/v2/users/{quote(alice['user_id'])}",
                    {"deactivated": False, "password": "a new password 1"}, user=admin)
    assert (user["deactivated"], user["erased"]) == (False, False)
    assert (await _seen(client, carol, room_id, event_id))["event"] == {"msgtype": "m.text", "body": _SECRET}
