"""
Responses as the spec gives them, through the real daemon: the profiles in
/joined_members, the `end` token of /messages as a client pages with it,
and redactions naming an event the room does not have.
"""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import pytest_twisted
from test_history import create_room, create_room_with_visibility, join, page_ok, send

# -- /joined_members -------------------------------------------------------


async def joined_members(client, user: dict, room_id: str) -> dict:
    response = await client.request("GET", f"rooms/{room_id}/joined_members", token=user["access_token"])
    assert response.code == 200, response
    return response.json["joined"]


async def set_profile(client, user: dict, field: str, value: str | None) -> None:
    path = f"profile/{quote(user['user_id'])}/{field}"
    if value is None:
        response = await client.request("DELETE", path, token=user["access_token"])
    else:
        response = await client.request("PUT", path, {field: value}, token=user["access_token"])
    assert response.code == 200, response


@pytest_twisted.ensureDeferred
async def test_joined_members_follow_profile_changes_and_member_events(client):
    """/joined_members gives each member's display_name and avatar_url as set now, and leaves out what is unset."""
    alice, bob = await client.register(), await client.register()
    await set_profile(client, alice, "displayname", "Alice")
    await set_profile(client, alice, "avatar_url", "mxc://test.local/alice")
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    await set_profile(client, bob, "displayname", "Bob")
    joined = await joined_members(client, alice, room_id)
    assert joined[alice["user_id"]] == {"display_name": "Alice", "avatar_url": "mxc://test.local/alice"}
    assert joined[bob["user_id"]] == {"display_name": "Bob"}

    # A profile change after joining reaches the room.
    await set_profile(client, bob, "avatar_url", "mxc://test.local/bob")
    assert (await joined_members(client, alice, room_id))[bob["user_id"]] == {
        "display_name": "Bob", "avatar_url": "mxc://test.local/bob"}
    # So does a per-room member event.
    response = await client.request(
        "PUT", f"rooms/{room_id}/state/m.room.member/{quote(bob['user_id'])}",
        {"membership": "join", "displayname": "Bobby", "avatar_url": "mxc://test.local/bobby"},
        token=bob["access_token"])
    assert response.code == 200, response
    assert (await joined_members(client, bob, room_id))[bob["user_id"]] == {
        "display_name": "Bobby", "avatar_url": "mxc://test.local/bobby"}
    # An avatar removed from the profile is gone from the answer.
    await set_profile(client, alice, "avatar_url", None)
    assert (await joined_members(client, bob, room_id))[alice["user_id"]] == {"display_name": "Alice"}


# -- /messages: paging with `end` ------------------------------------------


async def walk(client, user: dict, room_id: str, **query) -> list[dict]:
    """
    Page through /messages as a client does, from `end` to `end` until it
    is left out; return the pages. Backwards, a page with `end` is full
    (a short one means the start was reached); forwards, the room may
    still grow, so `end` comes with every page that is not empty.
    """
    pages, token = [], None
    limit = int(query["limit"])
    for _ in range(100):
        body = await page_ok(client, user, room_id, **query, **({"from": token} if token else {}))
        pages.append(body)
        if "end" not in body:
            return pages
        if query["dir"] == "b":
            assert len(body["chunk"]) == limit, body
        else:
            assert body["chunk"], body
        assert body["end"] != token, body  # paging moves on
        token = body["end"]
    raise AssertionError("/messages never left `end` out")


def ids(pages: list[dict]) -> list[str]:
    return [event["event_id"] for page in pages for event in page["chunk"]]


@pytest.mark.parametrize("limit", [1, 3, 4, 50])
@pytest_twisted.ensureDeferred
async def test_paging_with_end_reaches_the_start_then_end_is_left_out(client, limit):
    """Paging back with `end` returns the whole room exactly once, ending at m.room.create with no `end`; forwards likewise to the newest event."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    for i in range(11):
        await send(client, alice, room_id, f"m{i}")

    back = await walk(client, alice, room_id, dir="b", limit=str(limit))
    everything = ids(back)
    assert len(everything) == len(set(everything))
    assert back[-1]["chunk"][-1]["type"] == "m.room.create"
    # `end` is left out exactly when nothing is left, not one empty page later.
    assert len(back) == -(-len(everything) // limit)
    assert [e["content"]["body"] for page in back for e in page["chunk"]
            if e["type"] == "m.room.message"] == [f"m{i}" for i in reversed(range(11))]

    forward = await walk(client, alice, room_id, dir="f", limit=str(limit))
    assert ids(forward) == list(reversed(everything))
    assert forward[-1]["chunk"] == []


@pytest_twisted.ensureDeferred
async def test_filtered_paging_ends_at_the_first_matching_event(client):
    """With a types filter, `end` is given while matching events remain and left out after the oldest one."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    for i in range(5):
        await send(client, alice, room_id, f"m{i}")
        await send(client, alice, room_id, f"p{i}", event_type="org.example.ping")
    pages = await walk(client, alice, room_id, dir="b", limit="2",
                       filter=json.dumps({"types": ["org.example.ping"]}))
    assert [e["content"]["body"] for page in pages for e in page["chunk"]] == [
        "p4", "p3", "p2", "p1", "p0"]
    assert len(pages) == 3


@pytest_twisted.ensureDeferred
async def test_paging_steps_over_what_the_user_may_not_see(client):
    """Under `joined` visibility a later joiner pages in full pages over the messages before their join, to the room's start."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room_with_visibility(client, alice, "joined")
    for i in range(4):
        await send(client, alice, room_id, f"before {i}")
    await join(client, bob, room_id)
    for i in range(4):
        await send(client, alice, room_id, f"after {i}")
    pages = await walk(client, bob, room_id, dir="b", limit="2")
    events = [e for page in pages for e in page["chunk"]]
    assert [e["content"]["body"] for e in events if e["type"] == "m.room.message"] == [
        f"after {i}" for i in reversed(range(4))]
    assert events[-1]["type"] == "m.room.create"
    # Alice, who saw it all, gets the same pages plus the messages bob may not see.
    assert len(ids(await walk(client, alice, room_id, dir="b", limit="2"))) == len(events) + 4


# -- redacting an event the room does not have -----------------------------


async def timeline(client, user: dict, room_id: str) -> list[dict]:
    body = await page_ok(client, user, room_id, dir="b", limit="1000")
    assert "end" not in body
    return body["chunk"]


@pytest.mark.parametrize("target", ["other room", "$doesnotexist", "not-an-event-id"])
@pytest_twisted.ensureDeferred
async def test_redacting_an_event_not_in_the_room_is_refused_and_sends_nothing(client, target):
    """Redacting an event of another room, or none at all, is a 404 naming the event, and neither room gets a redaction."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    other_room = await create_room(client, alice)
    other_event = await send(client, alice, other_room, "keep me")
    event_id = other_event if target == "other room" else target
    before = {room: [e["event_id"] for e in await timeline(client, alice, room)]
              for room in (room_id, other_room)}

    response = await client.request("PUT", f"rooms/{room_id}/redact/{quote(event_id)}/r1",
                                    {"reason": "spam"}, token=alice["access_token"])
    assert response.code in (400, 404), response
    assert response.json["errcode"] in ("M_NOT_FOUND", "M_INVALID_PARAM"), response
    assert event_id in response.json["error"] and room_id in response.json["error"], response

    for room in (room_id, other_room):
        after = await timeline(client, alice, room)
        assert [e["event_id"] for e in after] == before[room]
        assert not [e for e in after if e["type"] == "m.room.redaction"]
    kept = await client.request("GET", f"rooms/{other_room}/event/{other_event}",
                                token=alice["access_token"])
    assert kept.code == 200 and kept.json["content"]["body"] == "keep me", kept
