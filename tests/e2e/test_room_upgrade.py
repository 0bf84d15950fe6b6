"""Room upgrades (POST /rooms/{roomId}/upgrade) through the real daemon, as clients see them."""
from urllib.parse import quote

import pytest_twisted
from twisted.internet import defer

from conftest import unique_localpart
from room_helpers import create_room, join, ok


async def _state(client, user, room_id, event_type, state_key=""):
    return await ok(client, "GET", f"rooms/{quote(room_id)}/state/{event_type}/{quote(state_key)}", user=user)


async def _upgrade(client, user, room_id, new_version="12", **body):
    return await client.request("POST", f"rooms/{quote(room_id)}/upgrade", {"new_version": new_version, **body},
                                token=user["access_token"])


@pytest_twisted.ensureDeferred
async def test_upgraded_room_carries_state_aliases_and_settings(client):
    """
    A version 11 room upgraded to 12: the new room has the old one's state,
    bans and power levels, its alias and directory entry; the old room is
    tombstoned and restricted; members' tags and push rules follow.
    """
    alice, bob, carol, dave = [await client.register() for _ in range(4)]
    alias_name = unique_localpart("upgrade")
    old = await create_room(client, alice, room_version="11", preset="public_chat", visibility="public",
                            room_alias_name=alias_name, name="Old name", topic="Old topic",
                            initial_state=[{"type": "m.room.encryption",
                                            "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
                            power_level_content_override={"users": {alice["user_id"]: 100, bob["user_id"]: 50}})
    alias = f"#{alias_name}:{client.server.server_name}"
    await join(client, bob, old)
    await join(client, dave, old)
    await ok(client, "POST", f"rooms/{quote(old)}/ban", {"user_id": carol["user_id"], "reason": "spam"},
             user=alice)
    for user, tag in ((alice, "m.favourite"), (bob, "u.work")):
        await ok(client, "PUT", f"user/{quote(user['user_id'])}/rooms/{quote(old)}/tags/{tag}", {"order": 0.5},
                 user=user)
    await ok(client, "PUT", f"pushrules/global/room/{quote(old)}", {"actions": ["notify"]}, user=bob)
    await ok(client, "PUT", f"user/{quote(alice['user_id'])}/account_data/m.direct", {carol["user_id"]: [old]},
             user=alice)

    response = await _upgrade(client, alice, old, "12")
    assert response.code == 200, response
    new = response.json["replacement_room"]
    assert new != old

    create = await _state(client, alice, new, "m.room.create")
    assert create["room_version"] == "12"
    assert create["predecessor"]["room_id"] == old
    assert (await _state(client, alice, new, "m.room.name"))["name"] == "Old name"
    assert (await _state(client, alice, new, "m.room.topic"))["topic"] == "Old topic"
    assert (await _state(client, alice, new, "m.room.join_rules"))["join_rule"] == "public"
    assert (await _state(client, alice, new, "m.room.encryption"))["algorithm"] == "m.megolm.v1.aes-sha2"
    levels = await _state(client, alice, new, "m.room.power_levels")
    assert levels["users"] == {bob["user_id"]: 50}  # alice is the version 12 room's creator
    assert (await _state(client, alice, new, "m.room.member", carol["user_id"]))["membership"] == "ban"

    tombstone = await _state(client, bob, old, "m.room.tombstone")
    assert tombstone["replacement_room"] == new and tombstone["body"]
    old_levels = await _state(client, alice, old, "m.room.power_levels")
    assert (old_levels["events_default"], old_levels["invite"]) == (50, 50)
    refused = await client.request("PUT", f"rooms/{quote(old)}/send/m.room.message/after",
                                   {"msgtype": "m.text", "body": "still here?"}, token=dave["access_token"])
    assert (refused.code, refused.json["errcode"]) == (403, "M_FORBIDDEN")

    resolved = await client.request("GET", f"directory/room/{quote(alias)}")
    assert resolved.json["room_id"] == new
    assert (await _state(client, alice, new, "m.room.canonical_alias"))["alias"] == alias
    assert "alias" not in await _state(client, alice, old, "m.room.canonical_alias")
    assert (await client.request("GET", f"directory/list/room/{quote(new)}")).json["visibility"] == "public"
    assert (await client.request("GET", f"directory/list/room/{quote(old)}")).json["visibility"] == "private"

    for user, tag in ((alice, "m.favourite"), (bob, "u.work")):
        tags = await ok(client, "GET", f"user/{quote(user['user_id'])}/rooms/{quote(new)}/tags", user=user)
        assert tag in tags["tags"], (user["user_id"], tags)
    rule = await ok(client, "GET", f"pushrules/global/room/{quote(new)}", user=bob)
    assert rule["actions"] == ["notify"] and rule["enabled"] is True
    direct = await ok(client, "GET", f"user/{quote(alice['user_id'])}/account_data/m.direct", user=alice)
    assert direct == {carol["user_id"]: [old, new]}
    await join(client, bob, new)


@pytest_twisted.ensureDeferred
async def test_moderator_is_raised_while_copying_then_restored(client):
    """A moderator allowed to send the tombstone upgrades; everyone, them included, keeps their level."""
    alice, bob = await client.register(), await client.register()
    old = await create_room(client, alice, room_version="11", preset="public_chat", power_level_content_override={
        "users": {alice["user_id"]: 100, bob["user_id"]: 50}, "events": {"m.room.tombstone": 50}})
    await join(client, bob, old)
    response = await _upgrade(client, bob, old, "11")
    assert response.code == 200, response
    new = response.json["replacement_room"]
    levels = await _state(client, bob, new, "m.room.power_levels")
    assert levels["users"] == {alice["user_id"]: 100, bob["user_id"]: 50}
    assert levels["events"]["m.room.tombstone"] == 50
    create = await _state(client, bob, new, "m.room.create")
    assert create["predecessor"]["room_id"] == old and "event_id" in create["predecessor"]


@pytest_twisted.ensureDeferred
async def test_upgrading_a_space_copies_its_children(client):
    """A space stays a space, with its children."""
    alice = await client.register()
    child = await create_room(client, alice, preset="public_chat")
    space = await create_room(client, alice, preset="public_chat", creation_content={"type": "m.space"})
    await ok(client, "PUT", f"rooms/{quote(space)}/state/m.space.child/{quote(child)}",
             {"via": [client.server.server_name], "order": "a"}, user=alice)
    new = (await _upgrade(client, alice, space, "12")).json["replacement_room"]
    assert (await _state(client, alice, new, "m.room.create"))["type"] == "m.space"
    assert (await _state(client, alice, new, "m.space.child", child))["order"] == "a"


@pytest_twisted.ensureDeferred
async def test_upgrade_needs_the_power_to_send_the_tombstone(client):
    """A member without tombstone power or a stranger gets 403; an unknown room 404; nothing is made."""
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    old = await create_room(client, alice, preset="public_chat")
    await join(client, bob, old)
    for user in (bob, carol):
        refused = await _upgrade(client, user, old)
        assert (refused.code, refused.json["errcode"]) == (403, "M_FORBIDDEN")
    unknown = await _upgrade(client, alice, f"!nope:{client.server.server_name}")
    assert (unknown.code, unknown.json["errcode"]) == (404, "M_NOT_FOUND")
    assert (await client.request("GET", f"rooms/{quote(old)}/state/m.room.tombstone/",
                                 token=alice["access_token"])).code == 404
    joined = await ok(client, "GET", "joined_rooms", user=bob)
    assert joined["joined_rooms"] == [old]


@pytest_twisted.ensureDeferred
async def test_unknown_version_is_refused(client):
    """An unknown version is 400 M_UNSUPPORTED_ROOM_VERSION; a missing one M_MISSING_PARAM."""
    alice = await client.register()
    old = await create_room(client, alice)
    refused = await _upgrade(client, alice, old, "999")
    assert (refused.code, refused.json["errcode"]) == (400, "M_UNSUPPORTED_ROOM_VERSION")
    missing = await client.request("POST", f"rooms/{quote(old)}/upgrade", {}, token=alice["access_token"])
    assert (missing.code, missing.json["errcode"]) == (400, "M_MISSING_PARAM")
    assert (await ok(client, "GET", "joined_rooms", user=alice))["joined_rooms"] == [old]


@pytest_twisted.ensureDeferred
async def test_a_retried_upgrade_makes_one_room(client):
    """The same upgrade sent twice at once, then again, answers one replacement room."""
    alice = await client.register()
    old = await create_room(client, alice, preset="private_chat")
    first, second = await defer.gatherResults([
        defer.ensureDeferred(_upgrade(client, alice, old, "12")),
        defer.ensureDeferred(_upgrade(client, alice, old, "12"))])
    assert first.code == second.code == 200, (first, second)
    again = await _upgrade(client, alice, old, "12")
    assert again.code == 200, again
    assert first.json == second.json == again.json
    joined = await ok(client, "GET", "joined_rooms", user=alice)
    assert sorted(joined["joined_rooms"]) == sorted([old, first.json["replacement_room"]])


@pytest_twisted.ensureDeferred
async def test_additional_creators_are_creators_of_the_new_room(client):
    """Upgrading to 12 with additional_creators lists them in the create event, not in the power levels."""
    alice, bob = await client.register(), await client.register()
    old = await create_room(client, alice, room_version="11", preset="public_chat",
                            power_level_content_override={"users": {alice["user_id"]: 100, bob["user_id"]: 100}})
    response = await _upgrade(client, alice, old, "12", additional_creators=[bob["user_id"]])
    assert response.code == 200, response
    new = response.json["replacement_room"]
    assert (await _state(client, alice, new, "m.room.create"))["additional_creators"] == [bob["user_id"]]
    assert (await _state(client, alice, new, "m.room.power_levels"))["users"] == {}


@pytest_twisted.ensureDeferred
async def test_a_half_made_upgrade_is_finished_not_repeated(client):
    """
    A replacement room left without its tombstone (as by a crash half-way)
    is found by its predecessor and finished by the retry, not made again.
    """
    alice = await client.register()
    alias_name = unique_localpart("halfway")
    old = await create_room(client, alice, room_version="11", preset="public_chat", room_alias_name=alias_name)
    half_made = await create_room(client, alice, room_version="12", preset="public_chat",
                                  creation_content={"predecessor": {"room_id": old}})
    response = await _upgrade(client, alice, old, "12")
    assert response.code == 200, response
    assert response.json["replacement_room"] == half_made
    assert (await _state(client, alice, old, "m.room.tombstone"))["replacement_room"] == half_made
    resolved = await client.request("GET", f"directory/room/{quote(f'#{alias_name}:{client.server.server_name}')}")
    assert resolved.json["room_id"] == half_made
    joined = await ok(client, "GET", "joined_rooms", user=alice)
    assert sorted(joined["joined_rooms"]) == sorted([old, half_made])
