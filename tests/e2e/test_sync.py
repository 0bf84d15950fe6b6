"""
/sync through the real daemon: initial and incremental responses,
long-polling, timeline limits and filters, invites and leaves, and what an
observer sees while many users send at once.

Every event in every response is checked against the spec's event schemas.
"""
from __future__ import annotations

import json
import time

import pytest
import pytest_twisted
from events_schema import validate_sync_response
from polling import LONG_POLL_MS, within_deadline
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

BIG_TIMELINE = {"room": {"timeline": {"limit": 200}}}


async def create_room(client, user: dict, **body) -> str:
    response = await client.request("POST", "createRoom", body, token=user["access_token"])
    assert response.code == 200, response
    return response.json["room_id"]


async def join(client, user: dict, room_id: str) -> None:
    response = await client.request("POST", f"rooms/{room_id}/join", {}, token=user["access_token"])
    assert response.code == 200, response


async def send(client, user: dict, room_id: str, body: str, txn_id: str | None = None) -> str:
    txn_id = txn_id or f"t{time.monotonic_ns()}"
    response = await client.request("PUT", f"rooms/{room_id}/send/m.room.message/{txn_id}",
                                    {"msgtype": "m.text", "body": body}, token=user["access_token"])
    assert response.code == 200, response
    return response.json["event_id"]


async def sync(client, user: dict, since: str | None = None, *, timeout: int | None = None,
               sync_filter=None, **query) -> dict:
    """GET /sync; assert 200, validate every event, return the body."""
    if since is not None:
        query["since"] = since
    if timeout is not None:
        query["timeout"] = str(timeout)
    if sync_filter is not None:
        query["filter"] = sync_filter if isinstance(sync_filter, str) else json.dumps(sync_filter)
    response = await client.request("GET", "sync", token=user["access_token"], query=query or None)
    assert response.code == 200, response
    return validate_sync_response(response.json)


def joined(body: dict) -> dict:
    return body.get("rooms", {}).get("join", {})


def messages(room: dict) -> list[dict]:
    return [e for e in room["timeline"]["events"] if e["type"] == "m.room.message"]


def bodies(room: dict) -> list[str]:
    return [e["content"]["body"] for e in messages(room)]


def sleep(seconds: float) -> defer.Deferred:
    return deferLater(reactor, seconds, lambda: None)


# -- initial sync ------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_initial_sync_shows_joined_rooms_with_timeline_state_and_summary(client):
    """An initial sync lists each joined room with its timeline, state and member summary."""
    alice = await client.register()
    bob = await client.register()
    carol = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    invite = await client.request("POST", f"rooms/{room_id}/invite", {"user_id": carol["user_id"]},
                                  token=alice["access_token"])
    assert invite.code == 200
    hello = await send(client, bob, room_id, "hello")
    body = await sync(client, alice)
    assert isinstance(body["next_batch"], str) and body["next_batch"]
    room = joined(body)[room_id]
    events = room["timeline"]["events"]
    assert events[-1]["event_id"] == hello and events[-1]["sender"] == bob["user_id"]
    assert all("room_id" not in e for e in events)
    assert isinstance(room["timeline"]["prev_batch"], str)
    # Timeline plus state covers the whole current state, without repeats.
    timeline_ids = {e["event_id"] for e in events}
    state_events = room["state"]["events"]
    assert not timeline_ids & {e["event_id"] for e in state_events}
    keys = {(e["type"], e["state_key"]) for e in state_events + events if "state_key" in e}
    assert {("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.join_rules", ""),
            ("m.room.member", alice["user_id"]), ("m.room.member", bob["user_id"]),
            ("m.room.member", carol["user_id"])} <= keys
    summary = room["summary"]
    assert summary["m.joined_member_count"] == 2
    assert summary["m.invited_member_count"] == 1
    # No name or alias: heroes name the room; the syncing user is not one of them.
    assert set(summary["m.heroes"]) == {bob["user_id"], carol["user_id"]}


@pytest_twisted.ensureDeferred
async def test_initial_sync_of_a_new_user_is_empty_but_has_a_token(client):
    """A user in no room gets a next_batch and no joined rooms."""
    alice = await client.register()
    body = await sync(client, alice)
    assert body["next_batch"]
    assert joined(body) == {}


@pytest_twisted.ensureDeferred
async def test_initial_sync_splits_state_from_a_limited_timeline(client):
    """With a short timeline, the earlier state events are in state, and limited is true."""
    alice = await client.register()
    room_id = await create_room(client, alice, name="Split")
    for i in range(3):
        await send(client, alice, room_id, f"m{i}")
    body = await sync(client, alice, sync_filter={"room": {"timeline": {"limit": 2}}})
    room = joined(body)[room_id]
    assert room["timeline"]["limited"] is True
    assert bodies(room) == ["m1", "m2"]
    state_keys = {(e["type"], e["state_key"]) for e in room["state"]["events"]}
    assert {("m.room.create", ""), ("m.room.name", ""), ("m.room.member", alice["user_id"])} <= state_keys


@pytest_twisted.ensureDeferred
async def test_initial_sync_state_is_the_state_at_the_start_of_the_timeline(client):
    """A key set before and again inside a limited initial timeline: state holds the earlier value."""
    alice = await client.register()
    room_id = await create_room(client, alice, name="Old name")
    old = await client.request("GET", f"rooms/{room_id}/state/m.room.name/", token=alice["access_token"],
                               query={"format": "event"}, validate=False)
    for i in range(3):
        await send(client, alice, room_id, f"m{i}")
    new = await client.request("PUT", f"rooms/{room_id}/state/m.room.name/", {"name": "New name"},
                               token=alice["access_token"])
    await send(client, alice, room_id, "last")
    body = await sync(client, alice, sync_filter={"room": {"timeline": {"limit": 2}}})
    room = joined(body)[room_id]
    assert room["timeline"]["events"][0]["event_id"] == new.json["event_id"]
    names = [e["event_id"] for e in room["state"]["events"] if e["type"] == "m.room.name"]
    assert names == [old.json["event_id"]]


# -- incremental sync ---------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_incremental_sync_returns_only_new_events(client):
    """With since, only events after the token appear, and rooms without news are left out."""
    alice = await client.register()
    busy = await create_room(client, alice)
    quiet = await create_room(client, alice)
    await send(client, alice, busy, "old")
    first = await sync(client, alice)
    new_ids = [await send(client, alice, busy, "new1"), await send(client, alice, busy, "new2")]
    second = await sync(client, alice, first["next_batch"])
    assert quiet not in joined(second)
    room = joined(second)[busy]
    assert [e["event_id"] for e in room["timeline"]["events"]] == new_ids
    assert room["timeline"]["limited"] is False
    assert room["state"]["events"] == []
    assert second["next_batch"] != first["next_batch"]
    # Nothing new since the second: an immediate empty answer.
    third = await sync(client, alice, second["next_batch"])
    assert joined(third) == {}
    assert third["next_batch"] == second["next_batch"]


@pytest_twisted.ensureDeferred
async def test_incremental_sync_gap_puts_changed_state_in_state(client):
    """When an incremental timeline is limited, state changed in the gap is in the state section."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    token = (await sync(client, alice))["next_batch"]
    renamed = await client.request("PUT", f"rooms/{room_id}/state/m.room.name/", {"name": "Renamed"},
                                   token=alice["access_token"])
    for i in range(4):
        await send(client, alice, room_id, f"after{i}")
    body = await sync(client, alice, token, sync_filter={"room": {"timeline": {"limit": 2}}})
    room = joined(body)[room_id]
    assert room["timeline"]["limited"] is True
    assert bodies(room) == ["after2", "after3"]
    names = [e for e in room["state"]["events"] if e["type"] == "m.room.name"]
    assert [e["event_id"] for e in names] == [renamed.json["event_id"]]


@pytest_twisted.ensureDeferred
async def test_gap_state_is_the_state_at_the_start_of_the_timeline(client):
    """A key changed both in the gap and in the timeline: state holds the gap's value, the timeline the new one."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    token = (await sync(client, alice))["next_batch"]
    path = f"rooms/{room_id}/state/m.room.name/"
    first = await client.request("PUT", path, {"name": "One"}, token=alice["access_token"])
    for i in range(3):
        await send(client, alice, room_id, f"gap{i}")
    second = await client.request("PUT", path, {"name": "Two"}, token=alice["access_token"])
    await send(client, alice, room_id, "last")
    body = await sync(client, alice, token, sync_filter={"room": {"timeline": {"limit": 2}}})
    room = joined(body)[room_id]
    assert room["timeline"]["limited"] is True
    assert [e["event_id"] for e in room["timeline"]["events"]][0] == second.json["event_id"]
    names = [e["event_id"] for e in room["state"]["events"] if e["type"] == "m.room.name"]
    # Spec: state is the change "between the since token and the start of the timeline".
    assert names == [first.json["event_id"]]


@pytest_twisted.ensureDeferred
async def test_newly_joined_room_comes_with_its_state(client):
    """A room joined since the last sync appears with its full state in the incremental response."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, preset="public_chat", name="Joinable")
    token = (await sync(client, bob))["next_batch"]
    await join(client, bob, room_id)
    body = await sync(client, bob, token)
    room = joined(body)[room_id]
    everything = room["state"]["events"] + room["timeline"]["events"]
    keys = {(e["type"], e["state_key"]) for e in everything if "state_key" in e}
    assert {("m.room.create", ""), ("m.room.name", ""), ("m.room.member", alice["user_id"]),
            ("m.room.member", bob["user_id"])} <= keys
    assert room["timeline"]["events"][-1]["state_key"] == bob["user_id"]
    assert room["summary"]["m.joined_member_count"] == 2


@pytest_twisted.ensureDeferred
async def test_incremental_sync_sends_the_summary_when_counts_change(client):
    """When someone joins or is invited, the members' next incremental sync carries the new counts."""
    alice = await client.register()
    bob = await client.register()
    carol = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    token = (await sync(client, alice))["next_batch"]
    await join(client, bob, room_id)
    await client.request("POST", f"rooms/{room_id}/invite", {"user_id": carol["user_id"]},
                         token=alice["access_token"])
    body = await sync(client, alice, token)
    summary = joined(body)[room_id].get("summary", {})
    # Spec: each count "may be omitted" only "if this field has not changed since the last sync".
    assert summary.get("m.joined_member_count") == 2, summary
    assert summary.get("m.invited_member_count") == 1, summary


@pytest_twisted.ensureDeferred
async def test_incremental_summary_of_an_unnamed_room_names_its_heroes(client):
    """An unnamed room's summary after a join lists the other members as heroes, joined ones first, by user id."""
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await client.request("POST", f"rooms/{room_id}/invite", {"user_id": carol["user_id"]},
                         token=alice["access_token"])
    token = (await sync(client, alice))["next_batch"]
    await join(client, bob, room_id)
    summary = joined(await sync(client, alice, token))[room_id]["summary"]
    assert summary["m.heroes"] == [bob["user_id"], carol["user_id"]]
    assert (summary["m.joined_member_count"], summary["m.invited_member_count"]) == (2, 1)


@pytest_twisted.ensureDeferred
async def test_a_message_synced_with_lazy_members_carries_no_summary(client):
    """Lazy-loading the sender's member event is not a membership change: no summary is resent."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    lazy = '{"room": {"state": {"lazy_load_members": true}}}'
    token = (await sync(client, alice, sync_filter=lazy))["next_batch"]
    await send(client, bob, room_id, "hello")
    room = joined(await sync(client, alice, token, sync_filter=lazy))[room_id]
    assert [e["state_key"] for e in room["state"]["events"]] == [bob["user_id"]]  # lazy-loaded sender
    assert "summary" not in room or room["summary"] == {}, room


@pytest_twisted.ensureDeferred
async def test_full_state_returns_all_state(client):
    """full_state=true with a since token returns the room's whole state."""
    alice = await client.register()
    room_id = await create_room(client, alice, name="Full")
    token = (await sync(client, alice))["next_batch"]
    await send(client, alice, room_id, "x")
    body = await sync(client, alice, token, full_state="true")
    room = joined(body)[room_id]
    keys = {(e["type"], e["state_key"]) for e in room["state"]["events"] + room["timeline"]["events"]
            if "state_key" in e}
    assert ("m.room.create", "") in keys and ("m.room.name", "") in keys


@pytest.mark.parametrize("since", ["garbage", "s1", "s-1_0", "sabc_0", "99999999999999999999999"])
@pytest_twisted.ensureDeferred
async def test_invalid_since_token_is_refused(client, since):
    """A since token this server did not make answers 400."""
    alice = await client.register()
    response = await client.request("GET", "sync", token=alice["access_token"], query={"since": since})
    assert response.code == 400, response
    assert response.json["errcode"].startswith("M_")


@pytest.mark.parametrize("timeout", ["-1", "abc", "1.5"])
@pytest_twisted.ensureDeferred
async def test_invalid_timeout_is_refused(client, timeout):
    """A timeout that is not a non-negative integer answers 400."""
    alice = await client.register()
    response = await client.request("GET", "sync", token=alice["access_token"],
                                    query={"timeout": timeout}, validate=False)
    assert response.code == 400, response


# -- long-polling -------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_long_poll_returns_promptly_when_another_user_sends(client):
    """A waiting sync answers once another member sends, with that event (never woken: the deadline fails it)."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    token = (await sync(client, alice))["next_batch"]
    waiting = within_deadline(defer.ensureDeferred(sync(client, alice, token, timeout=LONG_POLL_MS)))
    await sleep(0.5)
    assert not waiting.called, "the long-poll answered before anything happened"
    event_id = await send(client, bob, room_id, "wake up")
    body = await waiting
    assert [e["event_id"] for e in messages(joined(body)[room_id])] == [event_id]


@pytest_twisted.ensureDeferred
async def test_long_poll_wakes_for_an_invite(client):
    """A user in no room waiting on sync is woken by an invite."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice)
    token = (await sync(client, bob))["next_batch"]
    waiting = within_deadline(defer.ensureDeferred(sync(client, bob, token, timeout=LONG_POLL_MS)))
    await sleep(0.3)
    assert not waiting.called, "the long-poll answered before anything happened"
    response = await client.request("POST", f"rooms/{room_id}/invite", {"user_id": bob["user_id"]},
                                    token=alice["access_token"])
    assert response.code == 200
    body = await waiting
    assert room_id in body["rooms"]["invite"]


@pytest_twisted.ensureDeferred
async def test_long_poll_with_nothing_new_times_out_with_the_same_token(client):
    """A sync with nothing new keeps waiting, then answers next_batch equal to since at its timeout."""
    alice = await client.register()
    await create_room(client, alice)
    token = (await sync(client, alice))["next_batch"]
    waiting = within_deadline(defer.ensureDeferred(sync(client, alice, token, timeout=2000)))
    await sleep(0.5)
    assert not waiting.called, "the long-poll answered before its timeout with nothing new"
    body = await waiting
    assert body["next_batch"] == token
    assert joined(body) == {}


@pytest_twisted.ensureDeferred
async def test_long_poll_ignores_other_users_rooms(client):
    """Activity in a room the user is not in does not end their long-poll."""
    alice = await client.register()
    bob = await client.register()
    await create_room(client, alice)
    other = await create_room(client, bob)
    token = (await sync(client, alice))["next_batch"]
    waiting = within_deadline(defer.ensureDeferred(sync(client, alice, token, timeout=2000)))
    await sleep(0.2)
    await send(client, bob, other, "not for alice")
    await sleep(0.5)
    assert not waiting.called, "activity in another user's room ended the long poll"
    body = await waiting
    assert joined(body) == {}


# -- filters -------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_inline_filter_limits_the_timeline(client):
    """An inline filter with timeline limit 2 gives the 2 latest events, limited=true and a prev_batch."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    for i in range(5):
        await send(client, alice, room_id, f"n{i}")
    body = await sync(client, alice, sync_filter='{"room":{"timeline":{"limit":2}}}')
    room = joined(body)[room_id]
    timeline = room["timeline"]
    assert len(timeline["events"]) == 2
    assert bodies(room) == ["n3", "n4"]
    assert timeline["limited"] is True
    assert isinstance(timeline["prev_batch"], str) and timeline["prev_batch"]


@pytest_twisted.ensureDeferred
async def test_filter_upload_get_and_use(client):
    """A filter uploaded with POST /user/{id}/filter reads back unchanged and applies via filter=<id>."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    for i in range(3):
        await send(client, alice, room_id, f"f{i}")
    definition = {"room": {"timeline": {"limit": 1, "types": ["m.room.message"]}},
                  "presence": {"not_types": ["*"]}}
    uploaded = await client.request("POST", f"user/{alice['user_id']}/filter", definition,
                                    token=alice["access_token"])
    assert uploaded.code == 200, uploaded
    filter_id = uploaded.json["filter_id"]
    assert isinstance(filter_id, str) and not filter_id.startswith("{")
    got = await client.request("GET", f"user/{alice['user_id']}/filter/{filter_id}",
                               token=alice["access_token"])
    assert got.code == 200 and got.json == definition
    body = await sync(client, alice, sync_filter=filter_id)
    room = joined(body)[room_id]
    assert [e["content"]["body"] for e in room["timeline"]["events"]] == ["f2"]
    assert room["timeline"]["limited"] is True


@pytest_twisted.ensureDeferred
async def test_filters_are_private_and_unknown_ids_refused(client):
    """Another user's filter cannot be read or created (403); an unknown filter id is 404 or a 400 in sync."""
    alice = await client.register()
    bob = await client.register()
    uploaded = await client.request("POST", f"user/{alice['user_id']}/filter", {},
                                    token=alice["access_token"])
    filter_id = uploaded.json["filter_id"]
    peek = await client.request("GET", f"user/{alice['user_id']}/filter/{filter_id}",
                                token=bob["access_token"])
    assert peek.code == 403 and peek.json["errcode"] == "M_FORBIDDEN"
    forge = await client.request("POST", f"user/{alice['user_id']}/filter", {}, token=bob["access_token"])
    assert forge.code == 403 and forge.json["errcode"] == "M_FORBIDDEN"
    unknown = await client.request("GET", f"user/{alice['user_id']}/filter/999999",
                                   token=alice["access_token"])
    assert unknown.code == 404 and unknown.json["errcode"] == "M_NOT_FOUND"
    # Bob cannot use Alice's filter id as his own.
    response = await client.request("GET", "sync", token=bob["access_token"], query={"filter": filter_id})
    assert response.code == 400, response


@pytest_twisted.ensureDeferred
async def test_filter_with_not_rooms_hides_a_room(client):
    """A room filter's not_rooms keeps a room out of the sync."""
    alice = await client.register()
    shown = await create_room(client, alice)
    hidden = await create_room(client, alice)
    body = await sync(client, alice, sync_filter={"room": {"not_rooms": [hidden]}})
    assert shown in joined(body) and hidden not in joined(body)


@pytest_twisted.ensureDeferred
async def test_invalid_inline_filter_is_refused(client):
    """An inline filter that is not valid answers 400."""
    alice = await client.register()
    response = await client.request("GET", "sync", token=alice["access_token"],
                                    query={"filter": '{"room": {"timeline": {"limit": "two"}}}'})
    assert response.code == 400, response


@pytest_twisted.ensureDeferred
async def test_state_hidden_by_the_timeline_filter_is_still_in_state(client):
    """With a timeline filter for messages only, the room's state (name, members) still arrives in state."""
    alice = await client.register()
    room_id = await create_room(client, alice, name="Filtered")
    await send(client, alice, room_id, "only messages")
    body = await sync(client, alice, sync_filter={"room": {"timeline": {"types": ["m.room.message"]}}})
    room = joined(body)[room_id]
    assert {e["type"] for e in room["timeline"]["events"]} == {"m.room.message"}
    state_keys = {(e["type"], e["state_key"]) for e in room["state"]["events"]}
    assert {("m.room.create", ""), ("m.room.name", ""), ("m.room.member", alice["user_id"])} <= state_keys


# -- invites and leaves ---------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_invite_appears_in_rooms_invite_then_moves_to_join(client):
    """An invite shows under rooms.invite; once accepted the room is under rooms.join instead."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, name="Party")
    token = (await sync(client, bob))["next_batch"]
    await client.request("POST", f"rooms/{room_id}/invite", {"user_id": bob["user_id"]},
                         token=alice["access_token"])
    body = await sync(client, bob, token)
    invite_state = body["rooms"]["invite"][room_id]["invite_state"]["events"]
    member = [e for e in invite_state if e["type"] == "m.room.member" and e["state_key"] == bob["user_id"]]
    assert member and member[0]["content"]["membership"] == "invite"
    assert any(e["type"] == "m.room.name" and e["content"]["name"] == "Party" for e in invite_state)
    assert room_id not in joined(body)
    # The invite is still in an initial sync.
    assert room_id in (await sync(client, bob))["rooms"]["invite"]
    await join(client, bob, room_id)
    after = await sync(client, bob, body["next_batch"])
    assert room_id in joined(after)
    assert room_id not in after.get("rooms", {}).get("invite", {})
    assert room_id not in (await sync(client, bob)).get("rooms", {}).get("invite", {})


@pytest_twisted.ensureDeferred
async def test_leaving_puts_the_room_in_rooms_leave(client):
    """After leaving, the next incremental sync has the room under rooms.leave with the leave event."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    token = (await sync(client, bob))["next_batch"]
    left = await client.request("POST", f"rooms/{room_id}/leave", {}, token=bob["access_token"])
    assert left.code == 200
    body = await sync(client, bob, token)
    assert room_id not in joined(body)
    leave = body["rooms"]["leave"][room_id]
    last = leave["timeline"]["events"][-1]
    assert last["type"] == "m.room.member" and last["state_key"] == bob["user_id"]
    assert last["content"]["membership"] == "leave"
    # Later messages in the room do not reach bob.
    after_token = body["next_batch"]
    await send(client, alice, room_id, "after bob left")
    later = await sync(client, bob, after_token)
    assert room_id not in joined(later)
    assert room_id not in later.get("rooms", {}).get("leave", {})
    # An initial sync leaves it out, unless include_leave asks for it.
    assert room_id not in (await sync(client, bob)).get("rooms", {}).get("leave", {})
    with_leave = await sync(client, bob, sync_filter={"room": {"include_leave": True}})
    assert room_id in with_leave["rooms"]["leave"]


@pytest_twisted.ensureDeferred
async def test_kicked_user_sees_the_kick_in_rooms_leave(client):
    """A kicked user's sync shows the room under rooms.leave, ending with the kick by the moderator."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    token = (await sync(client, bob))["next_batch"]
    await client.request("POST", f"rooms/{room_id}/kick", {"user_id": bob["user_id"], "reason": "bye"},
                         token=alice["access_token"])
    body = await sync(client, bob, token)
    last = body["rooms"]["leave"][room_id]["timeline"]["events"][-1]
    assert last["sender"] == alice["user_id"] and last["state_key"] == bob["user_id"]
    assert last["content"]["membership"] == "leave" and last["content"]["reason"] == "bye"


@pytest_twisted.ensureDeferred
async def test_banned_user_and_withdrawn_invite_land_in_rooms_leave(client):
    """A ban, and an invite withdrawn by a kick, show the room under rooms.leave with that member event."""
    alice = await client.register()
    bob = await client.register()
    carol = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    await client.request("POST", f"rooms/{room_id}/invite", {"user_id": carol["user_id"]},
                         token=alice["access_token"])
    bob_token = (await sync(client, bob))["next_batch"]
    carol_token = (await sync(client, carol))["next_batch"]
    await client.request("POST", f"rooms/{room_id}/ban", {"user_id": bob["user_id"]}, token=alice["access_token"])
    await client.request("POST", f"rooms/{room_id}/kick", {"user_id": carol["user_id"]},
                         token=alice["access_token"])
    for user, token, membership in ((bob, bob_token, "ban"), (carol, carol_token, "leave")):
        body = await sync(client, user, token)
        last = body["rooms"]["leave"][room_id]["timeline"]["events"][-1]
        assert last["state_key"] == user["user_id"] and last["content"]["membership"] == membership
        assert room_id not in body["rooms"].get("invite", {}) and room_id not in joined(body)


@pytest_twisted.ensureDeferred
async def test_withdrawn_invitee_does_not_see_messages_in_rooms_leave(client):
    """A user only ever invited (shared history) sees no room messages in rooms.leave when the invite is withdrawn."""
    alice = await client.register()
    carol = await client.register()
    room_id = await create_room(client, alice, invite=[carol["user_id"]])  # history_visibility shared
    token = (await sync(client, carol))["next_batch"]
    await send(client, alice, room_id, "members only")
    await client.request("POST", f"rooms/{room_id}/kick", {"user_id": carol["user_id"]},
                         token=alice["access_token"])
    body = await sync(client, carol, token)
    room = body["rooms"]["leave"][room_id]
    assert bodies(room) == []
    assert room["timeline"]["events"][-1]["content"]["membership"] == "leave"


@pytest_twisted.ensureDeferred
async def test_other_members_see_joins_and_leaves_in_the_timeline(client):
    """Members see others' joins and leaves as member events in their incremental timeline."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    token = (await sync(client, alice))["next_batch"]
    await join(client, bob, room_id)
    await client.request("POST", f"rooms/{room_id}/leave", {}, token=bob["access_token"])
    body = await sync(client, alice, token)
    members = [(e["state_key"], e["content"]["membership"]) for e in joined(body)[room_id]["timeline"]["events"]
               if e["type"] == "m.room.member"]
    assert members == [(bob["user_id"], "join"), (bob["user_id"], "leave")]


# -- concurrency ------------------------------------------------------------------

SENDERS = 8
PER_SENDER = 15


async def _observe(client, observer: dict, token: str, expected: int, done: list) -> dict:
    """
    Incremental syncs in a loop until C{expected} messages were seen (or a
    minute passes): C{room_id -> [message events]} in the order seen.
    """
    seen: dict[str, list[dict]] = {}
    count = 0
    deadline = time.monotonic() + 60
    tokens = [token]
    while count < expected and time.monotonic() < deadline:
        body = await sync(client, observer, tokens[-1], timeout=2000, sync_filter=BIG_TIMELINE)
        for room_id, room in joined(body).items():
            assert room["timeline"]["limited"] is False, "the observer missed events (limited timeline)"
            new = messages(room)
            seen.setdefault(room_id, []).extend(new)
            count += len(new)
        tokens.append(body["next_batch"])
    done.append(tokens)
    return seen


async def _send_all(client, user: dict, room_id: str, index: int) -> list[str]:
    """One sender's messages, one after another (the senders run side by side)."""
    return [await send(client, user, room_id, f"u{index}m{n}", txn_id=f"c{index}-{n}")
            for n in range(PER_SENDER)]


def _check_observed(seen_events: list[dict], room_timeline: list[dict], senders: dict) -> None:
    """Seen exactly once, in the room's order, and each sender's messages in sending order."""
    seen_ids = [e["event_id"] for e in seen_events]
    assert len(seen_ids) == len(set(seen_ids)), "an event was delivered twice"
    final_ids = [e["event_id"] for e in room_timeline if e["type"] == "m.room.message"]
    assert seen_ids == final_ids, "the observer's order differs from the room's"
    for user_id, index in senders.items():
        own = [e["content"]["body"] for e in seen_events if e["sender"] == user_id]
        assert own == [f"u{index}m{n}" for n in range(PER_SENDER)]


@pytest_twisted.ensureDeferred
async def test_observer_sees_every_event_once_in_order_one_room(client):
    """8 users sending 15 messages each into one room at once: an observer syncing sees each exactly once, in order."""
    observer = await client.register()
    users = [await client.register() for _ in range(SENDERS)]
    room_id = await create_room(client, observer, preset="public_chat")
    for user in users:
        await join(client, user, room_id)
    token = (await sync(client, observer))["next_batch"]
    done: list = []
    watching = defer.ensureDeferred(_observe(client, observer, token, SENDERS * PER_SENDER, done))
    sent = await defer.gatherResults([
        defer.ensureDeferred(_send_all(client, user, room_id, i)) for i, user in enumerate(users)
    ], consumeErrors=True)
    seen = await watching
    all_sent = {event_id for ids in sent for event_id in ids}
    assert len(all_sent) == SENDERS * PER_SENDER
    assert set(seen) == {room_id}
    assert {e["event_id"] for e in seen[room_id]} == all_sent
    final = await sync(client, observer, sync_filter=BIG_TIMELINE)
    _check_observed(seen[room_id], joined(final)[room_id]["timeline"]["events"],
                    {u["user_id"]: i for i, u in enumerate(users)})
    tokens = done[0]
    assert len(tokens) > 1


@pytest_twisted.ensureDeferred
async def test_observer_sees_every_event_once_in_order_many_rooms(client):
    """8 users each sending 15 messages into their own room at once: an observer sees each once, in order."""
    observer = await client.register()
    users = [await client.register() for _ in range(SENDERS)]
    rooms = []
    for user in users:
        room_id = await create_room(client, user, preset="public_chat")
        await join(client, observer, room_id)
        rooms.append(room_id)
    token = (await sync(client, observer))["next_batch"]
    done: list = []
    watching = defer.ensureDeferred(_observe(client, observer, token, SENDERS * PER_SENDER, done))
    sent = await defer.gatherResults([
        defer.ensureDeferred(_send_all(client, user, rooms[i], i)) for i, user in enumerate(users)
    ], consumeErrors=True)
    seen = await watching
    assert set(seen) == set(rooms)
    final = await sync(client, observer, sync_filter=BIG_TIMELINE)
    for i, (user, room_id) in enumerate(zip(users, rooms)):
        assert [e["event_id"] for e in seen[room_id]] == sent[i]
        _check_observed(seen[room_id], joined(final)[room_id]["timeline"]["events"], {user["user_id"]: i})
