"""
/sync with use_state_after=true (spec v1.16): each room's state up to the
end of its timeline comes in `state_after`, never in `state`, and includes
the state changes the timeline shows, since the client then takes no state
from the timeline.
"""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest_twisted
from events_schema import validate_sync_response
from room_helpers import create_room, join, ok


async def sync(client, user: dict, since: str | None = None, *, state_after: bool = True,
               sync_filter: dict | None = None) -> dict:
    """C{user}'s sync (with use_state_after unless told), validated."""
    query = {"timeout": "0", **({"use_state_after": "true"} if state_after else {}),
             **({"since": since} if since is not None else {}),
             **({"filter": json.dumps(sync_filter)} if sync_filter is not None else {})}
    return validate_sync_response(await ok(client, "GET", "sync", user=user, query=query))


def state_of(section: dict) -> dict[tuple[str, str], dict]:
    return {(e["type"], e["state_key"]): e for e in section["events"]}


@pytest_twisted.ensureDeferred
async def test_state_after_holds_the_state_at_the_end_of_the_timeline(client):
    """
    Initial and incremental syncs with use_state_after answer `state_after`
    and no `state`; an incremental one lists the name change its timeline
    shows, where a sync without the flag leaves it to the timeline.
    """
    alice = await client.register()
    room_id = await create_room(client, alice, name="Before")
    first = await sync(client, alice)
    room = first["rooms"]["join"][room_id]
    assert "state" not in room
    initial = state_of(room["state_after"])
    assert initial[("m.room.name", "")]["content"] == {"name": "Before"}
    assert ("m.room.create", "") in initial and ("m.room.member", alice["user_id"]) in initial

    renamed = (await ok(client, "PUT", f"rooms/{quote(room_id)}/state/m.room.name/", {"name": "After"},
                        user=alice))["event_id"]
    room = (await sync(client, alice, first["next_batch"]))["rooms"]["join"][room_id]
    assert "state" not in room
    assert [e["event_id"] for e in room["timeline"]["events"]] == [renamed]
    assert [(e["event_id"], e["content"]) for e in room["state_after"]["events"]] == [
        (renamed, {"name": "After"})]

    without = (await sync(client, alice, first["next_batch"], state_after=False))["rooms"]["join"][room_id]
    assert "state_after" not in without
    assert without["state"]["events"] == []


@pytest_twisted.ensureDeferred
async def test_lazy_loaded_state_after_keeps_the_members_the_timeline_changes(client):
    """
    With lazy-loaded members, `state_after` still carries the member event
    of someone invited in the timeline (not a sender), or the client would
    never learn of the invite.
    """
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice)
    lazy = {"room": {"state": {"lazy_load_members": True}}}
    since = (await sync(client, alice, sync_filter=lazy))["next_batch"]
    await ok(client, "POST", f"rooms/{quote(room_id)}/invite", {"user_id": bob["user_id"]}, user=alice)
    room = (await sync(client, alice, since, sync_filter=lazy))["rooms"]["join"][room_id]
    invite = state_of(room["state_after"])[("m.room.member", bob["user_id"])]
    assert invite["content"]["membership"] == "invite"


@pytest_twisted.ensureDeferred
async def test_rooms_without_new_events_and_left_rooms_use_state_after_too(client):
    """
    A room that only has a typing notice gets an empty `state_after`; a room
    the user left lists their leave in `state_after`; neither has `state`.
    """
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    alice_since = (await sync(client, alice))["next_batch"]
    bob_since = (await sync(client, bob))["next_batch"]

    await ok(client, "PUT", f"rooms/{quote(room_id)}/typing/{quote(bob['user_id'])}",
             {"typing": True, "timeout": 30000}, user=bob)
    typing_only = (await sync(client, alice, alice_since))["rooms"]["join"][room_id]
    assert typing_only["ephemeral"]["events"][0]["content"]["user_ids"] == [bob["user_id"]]
    assert typing_only["state_after"] == {"events": []} and "state" not in typing_only

    await ok(client, "POST", f"rooms/{quote(room_id)}/leave", {}, user=bob)
    left = (await sync(client, bob, bob_since))["rooms"]["leave"][room_id]
    assert "state" not in left
    assert state_of(left["state_after"])[("m.room.member", bob["user_id"])]["content"]["membership"] == "leave"


@pytest_twisted.ensureDeferred
async def test_use_state_after_must_be_a_boolean(client):
    """use_state_after=yes is refused with 400 M_INVALID_PARAM."""
    alice = await client.register()
    response = await client.request("GET", "sync", token=alice["access_token"],
                                    query={"use_state_after": "yes", "timeout": "0"})
    assert (response.code, response.json["errcode"]) == (400, "M_INVALID_PARAM")
