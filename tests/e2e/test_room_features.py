"""Redactions, forgetting rooms, profile propagation and restricted joins, through the real daemon."""
import pytest_twisted


async def _room(client, owner, **body):
    response = await client.request("POST", "createRoom", body, token=owner["access_token"])
    assert response.code == 200, response
    return response.json["room_id"]


async def _timeline(client, user, room_id, **query):
    response = await client.request("GET", "sync", token=user["access_token"], query=query)
    assert response.code == 200, response
    return response.json["rooms"]["join"][room_id]["timeline"]["events"]


async def _send(client, user, room_id, body, txn):
    response = await client.request(
        "PUT", f"rooms/{room_id}/send/m.room.message/{txn}",
        {"msgtype": "m.text", "body": body}, token=user["access_token"])
    assert response.code == 200, response
    return response.json["event_id"]


@pytest_twisted.ensureDeferred
async def test_redaction_prunes_content_for_everyone(client):
    """A user redacts their message: others then see it without content and with redacted_because."""
    alice, bob = await client.register(), await client.register()
    room_id = await _room(client, alice, preset="public_chat")
    assert (await client.request("POST", f"rooms/{room_id}/join", {}, token=bob["access_token"])).code == 200
    secret = await _send(client, alice, room_id, "my password is hunter2", "m1")
    redaction = await client.request("PUT", f"rooms/{room_id}/redact/{secret}/r1", {"reason": "oops"},
                                     token=alice["access_token"])
    assert redaction.code == 200, redaction
    events = {e["event_id"]: e for e in await _timeline(client, bob, room_id)}
    assert events[secret]["content"] == {}
    assert events[secret]["unsigned"]["redacted_because"]["event_id"] == redaction.json["event_id"]
    assert events[secret]["unsigned"]["redacted_because"]["content"]["reason"] == "oops"


@pytest_twisted.ensureDeferred
async def test_redacting_someone_elses_message_needs_power(client):
    """A member without the redact level cannot redact another's message (403), the moderator can."""
    alice, bob = await client.register(), await client.register()
    room_id = await _room(client, alice, preset="public_chat")
    await client.request("POST", f"rooms/{room_id}/join", {}, token=bob["access_token"])
    message = await _send(client, alice, room_id, "hello", "m1")
    refused = await client.request("PUT", f"rooms/{room_id}/redact/{message}/r1", {},
                                   token=bob["access_token"])
    assert (refused.code, refused.json["errcode"]) == (403, "M_FORBIDDEN")
    bobs = await _send(client, bob, room_id, "spam", "m2")
    allowed = await client.request("PUT", f"rooms/{room_id}/redact/{bobs}/r2", {},
                                   token=alice["access_token"])
    assert allowed.code == 200, allowed


@pytest_twisted.ensureDeferred
async def test_redacting_an_unknown_event_is_404(client):
    """Redacting an event that is not in the room answers 404 M_NOT_FOUND."""
    alice = await client.register()
    room_id = await _room(client, alice)
    response = await client.request("PUT", f"rooms/{room_id}/redact/$nope/r1", {},
                                    token=alice["access_token"])
    assert (response.code, response.json["errcode"]) == (404, "M_NOT_FOUND")


@pytest_twisted.ensureDeferred
async def test_forgotten_room_leaves_the_archive(client):
    """A left room shows under rooms.leave with include_leave until the user forgets it."""
    alice = await client.register()
    room_id = await _room(client, alice)
    refused = await client.request("POST", f"rooms/{room_id}/forget", {}, token=alice["access_token"])
    assert refused.code == 400
    assert (await client.request("POST", f"rooms/{room_id}/leave", {}, token=alice["access_token"])).code == 200
    archive = '{"room":{"include_leave":true}}'
    before = await client.request("GET", "sync", token=alice["access_token"], query={"filter": archive})
    assert room_id in before.json["rooms"]["leave"]
    assert (await client.request("POST", f"rooms/{room_id}/forget", {}, token=alice["access_token"])).code == 200
    after = await client.request("GET", "sync", token=alice["access_token"], query={"filter": archive})
    assert room_id not in after.json.get("rooms", {}).get("leave", {})


@pytest_twisted.ensureDeferred
async def test_display_name_change_reaches_the_rooms(client):
    """Changing one's display name sends a new member event into each joined room."""
    alice = await client.register()
    room_id = await _room(client, alice)
    response = await client.request("PUT", f"profile/{alice['user_id']}/displayname",
                                     {"displayname": "Alice Liddell"}, token=alice["access_token"])
    assert response.code == 200
    members = [e for e in await _timeline(client, alice, room_id)
               if e["type"] == "m.room.member" and e["state_key"] == alice["user_id"]]
    assert members[-1]["content"]["displayname"] == "Alice Liddell"
    assert members[-1]["content"]["membership"] == "join"


@pytest_twisted.ensureDeferred
async def test_restricted_room_admits_members_of_the_allowed_room(client):
    """A restricted room lets in members of its allowed room, vouched for by a member, and refuses others."""
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    space = await _room(client, alice, preset="public_chat")
    restricted = await _room(client, alice, initial_state=[{
        "type": "m.room.join_rules", "state_key": "",
        "content": {"join_rule": "restricted",
                    "allow": [{"type": "m.room_membership", "room_id": space}]},
    }])
    assert (await client.request("POST", f"rooms/{space}/join", {}, token=bob["access_token"])).code == 200
    joined = await client.request("POST", f"rooms/{restricted}/join", {}, token=bob["access_token"])
    assert joined.code == 200, joined
    refused = await client.request("POST", f"rooms/{restricted}/join", {}, token=carol["access_token"])
    assert (refused.code, refused.json["errcode"]) == (403, "M_FORBIDDEN")
    state = await client.request("GET", f"rooms/{restricted}/state/m.room.member/{bob['user_id']}",
                                 token=bob["access_token"])
    assert state.json["join_authorised_via_users_server"] == alice["user_id"]


@pytest_twisted.ensureDeferred
async def test_deactivated_user_leaves_their_rooms(client):
    """Deactivating an account makes it leave every room it was in, as Synapse does."""
    alice, bob = await client.register(), await client.register()
    room_id = await _room(client, alice, preset="public_chat")
    assert (await client.request("POST", f"rooms/{room_id}/join", {}, token=bob["access_token"])).code == 200
    response = await client.with_password_uia("POST", "account/deactivate", {}, bob)
    assert response.code == 200, response
    members = await client.request("GET", f"rooms/{room_id}/joined_members", token=alice["access_token"])
    assert bob["user_id"] not in members.json["joined"]
