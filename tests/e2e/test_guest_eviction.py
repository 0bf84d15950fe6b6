"""
Guests and a room's guest access through the real daemon: when
m.room.guest_access stops being can_join, the room's guests leave it
(spec, module "Guest Access", "Server behaviour"); and a guest refused
POST /join/{roomIdOrAlias} is told the endpoint it may use.
"""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest_twisted
from test_guests import localpart_of, upgrade

CAN_JOIN = {"type": "m.room.guest_access", "content": {"guest_access": "can_join"}}


async def create_guest_room(client, owner: dict, **extra) -> str:
    response = await client.request("POST", "createRoom", {
        "preset": "public_chat", "initial_state": [CAN_JOIN], **extra,
    }, token=owner["access_token"])
    assert response.code == 200, response
    return response.json["room_id"]


async def join(client, user: dict, room_id: str) -> None:
    response = await client.request("POST", f"rooms/{quote(room_id)}/join", {}, token=user["access_token"])
    assert response.code == 200, response


async def set_guest_access(client, owner: dict, room_id: str, value: str) -> str:
    response = await client.request("PUT", f"rooms/{quote(room_id)}/state/m.room.guest_access/",
                                    {"guest_access": value}, token=owner["access_token"])
    assert response.code == 200, response
    return response.json["event_id"]


async def sync(client, user: dict, since: str | None = None) -> dict:
    query = {"filter": json.dumps({"room": {"timeline": {"limit": 50}}})}
    if since is not None:
        query.update(since=since, timeout="5000")
    response = await client.request("GET", "sync", token=user["access_token"], query=query)
    assert response.code == 200, response
    return response.json


async def members(client, user: dict, room_id: str) -> dict[str, dict]:
    """The room's current member events by user id."""
    response = await client.request("GET", f"rooms/{quote(room_id)}/members", token=user["access_token"])
    assert response.code == 200, response
    return {event["state_key"]: event for event in response.json["chunk"]}


async def timeline_until(client, user: dict, room_id: str, since: str, done) -> list[dict]:
    """
    Follow the room's timeline through /sync (each call waits for news)
    until C{done(events)} holds for the events seen since C{since}.
    """
    events: list[dict] = []
    for _ in range(20):
        body = await sync(client, user, since)
        since = body["next_batch"]
        room = body.get("rooms", {}).get("join", {}).get(room_id, {})
        events += room.get("timeline", {}).get("events", [])
        if done(events):
            return events
    raise AssertionError(f"the guests never left: {events}")


@pytest_twisted.ensureDeferred
async def test_guests_leave_when_guest_access_is_forbidden(client):
    """Turning guest access off makes every joined or invited guest leave, by their own leave, and only guests."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_guest_room(client, alice)
    joined_guests = [await client.register_guest() for _ in range(2)]
    for guest in joined_guests:
        await join(client, guest, room_id)
    invited_guest = await client.register_guest()
    response = await client.request("POST", f"rooms/{quote(room_id)}/invite",
                                    {"user_id": invited_guest["user_id"]}, token=alice["access_token"])
    assert response.code == 200, response
    await join(client, bob, room_id)
    # A guest upgraded to a full account is no longer a guest: it stays.
    upgraded = await client.register_guest()
    await join(client, upgraded, room_id)
    assert (await upgrade(client, upgraded, localpart_of(upgraded["user_id"]))).code == 200

    # Other changes, and guest access staying can_join, leave guests alone.
    response = await client.request("PUT", f"rooms/{quote(room_id)}/state/m.room.name/",
                                    {"name": "still open"}, token=alice["access_token"])
    assert response.code == 200, response
    await set_guest_access(client, alice, room_id, "can_join")

    since = (await sync(client, alice))["next_batch"]
    change = await set_guest_access(client, alice, room_id, "forbidden")
    guests = {guest["user_id"] for guest in [*joined_guests, invited_guest]}

    def all_left(events: list[dict]) -> bool:
        return guests <= {e["state_key"] for e in events
                          if e["type"] == "m.room.member" and e["content"]["membership"] == "leave"}

    events = await timeline_until(client, alice, room_id, since, all_left)
    assert events[0]["event_id"] == change  # nothing left before guest access changed
    leaves = [e for e in events if e["type"] == "m.room.member"]
    assert {e["state_key"] for e in leaves} == guests  # the upgraded account and bob stay
    for leave in leaves:
        assert leave["sender"] == leave["state_key"]  # the guest leaves; nobody kicks them (as Synapse)
        assert leave["content"]["membership"] == "leave"

    now = {user_id: event["content"]["membership"] for user_id, event in
           (await members(client, alice, room_id)).items()}
    assert now == {alice["user_id"]: "join", bob["user_id"]: "join", upgraded["user_id"]: "join",
                   **{user_id: "leave" for user_id in guests}}
    # And the door is shut: a guest cannot come back.
    response = await client.request("POST", f"rooms/{quote(room_id)}/join", {},
                                    token=joined_guests[0]["access_token"])
    assert (response.code, response.json["errcode"]) == (403, "M_FORBIDDEN"), response


@pytest_twisted.ensureDeferred
async def test_removing_can_join_by_other_content_also_makes_guests_leave(client):
    """Any guest_access value other than can_join (here an unknown one) counts as forbidden."""
    alice = await client.register()
    room_id = await create_guest_room(client, alice)
    guest = await client.register_guest()
    await join(client, guest, room_id)
    since = (await sync(client, alice))["next_batch"]
    await set_guest_access(client, alice, room_id, "org.example.maybe")

    def left(events: list[dict]) -> bool:
        return any(e["type"] == "m.room.member" and e["state_key"] == guest["user_id"]
                   and e["content"]["membership"] == "leave" for e in events)

    await timeline_until(client, alice, room_id, since, left)
    assert (await members(client, alice, room_id))[guest["user_id"]]["content"]["membership"] == "leave"


@pytest_twisted.ensureDeferred
async def test_guest_join_by_id_or_alias_is_refused_with_the_endpoint_to_use(client):
    """POST /join/{roomIdOrAlias} refuses a guest with 403 M_GUEST_ACCESS_FORBIDDEN naming POST /rooms/{roomId}/join, which works."""
    alice = await client.register()
    alias_localpart = f"guests{localpart_of(alice['user_id'])}"
    room_id = await create_guest_room(client, alice, room_alias_name=alias_localpart)
    guest = await client.register_guest()
    for target in (room_id, f"#{alias_localpart}:test.local"):
        response = await client.request("POST", f"join/{quote(target)}", {}, token=guest["access_token"])
        assert (response.code, response.json["errcode"]) == (403, "M_GUEST_ACCESS_FORBIDDEN"), response
        assert "POST /_matrix/client/v3/rooms/{roomId}/join" in response.json["error"], response
    await join(client, guest, room_id)
    # Other endpoints closed to guests keep the plain message.
    response = await client.request("GET", "capabilities", token=guest["access_token"])
    assert (response.code, response.json) == (
        403, {"errcode": "M_GUEST_ACCESS_FORBIDDEN", "error": "Guest access not allowed"})


@pytest_twisted.ensureDeferred
async def test_a_guest_cannot_join_through_its_member_state_a_room_closed_to_guests(client):
    """PUT /state/m.room.member/{own id} with a join is held to guest access as POST /join is: 403 when forbidden, 200 with can_join."""
    alice = await client.register()
    room_id = await create_guest_room(client, alice)
    guest = await client.register_guest()
    path = f"rooms/{quote(room_id)}/state/m.room.member/{quote(guest['user_id'])}"
    await set_guest_access(client, alice, room_id, "forbidden")
    refused = await client.request("PUT", path, {"membership": "join"}, token=guest["access_token"])
    assert (refused.code, refused.json["errcode"]) == (403, "M_FORBIDDEN"), refused
    assert guest["user_id"] not in await members(client, alice, room_id)
    await set_guest_access(client, alice, room_id, "can_join")
    joined = await client.request("PUT", path, {"membership": "join"}, token=guest["access_token"])
    assert joined.code == 200, joined
    assert (await members(client, alice, room_id))[guest["user_id"]]["content"]["membership"] == "join"
