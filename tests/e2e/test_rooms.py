"""
Rooms through the real daemon: createRoom (presets, options, room versions,
the order of the initial events) and membership (invite, join, leave, kick,
ban, unban, knock, join by alias, and what is forbidden).

Every event read back (state, sync timelines, stripped state) is checked
against the spec's event schemas.
"""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import pytest_twisted
from conftest import unique_localpart
from spec import needs_spec
from events_schema import (
    EventSchemaError,
    example_names,
    load_example,
    validate_event,
    validate_events,
    validate_stripped_state,
    validate_sync_response,
)

#: A timeline long enough for every event a createRoom sends here.
LONG_TIMELINE = json.dumps({"room": {"timeline": {"limit": 50}}})


# -- helpers ---------------------------------------------------------------

async def create_room(client, user: dict, **body) -> str:
    """createRoom as C{user}; assert 200 and return the room id."""
    response = await client.request("POST", "createRoom", body, token=user["access_token"])
    assert response.code == 200, response
    room_id = response.json["room_id"]
    assert room_id.startswith("!")
    return room_id


async def sync(client, user: dict, **query) -> dict:
    """GET /sync as C{user}; assert 200, validate every event, return the body."""
    response = await client.request("GET", "sync", token=user["access_token"], query=query or None)
    assert response.code == 200, response
    return validate_sync_response(response.json)


async def state_event(client, user: dict, room_id: str, event_type: str, state_key: str = ""):
    """The current state event of that key as GET /state lists it (or C{None})."""
    events = await room_state(client, user, room_id)
    for event in events:
        if event["type"] == event_type and event["state_key"] == state_key:
            return event
    return None


async def room_state(client, user: dict, room_id: str) -> list[dict]:
    response = await client.request("GET", f"rooms/{room_id}/state", token=user["access_token"])
    assert response.code == 200, response
    return validate_events(response.json)


async def state_content(client, user: dict, room_id: str, event_type: str, state_key: str = ""):
    response = await client.request(
        "GET", f"rooms/{room_id}/state/{event_type}/{state_key}", token=user["access_token"]
    )
    assert response.code == 200, response
    return response.json


def timeline(body: dict, room_id: str, section: str = "join") -> list[dict]:
    return body["rooms"][section][room_id]["timeline"]["events"]


async def membership_of(client, viewer: dict, room_id: str, user_id: str) -> dict:
    """The C{m.room.member} event of C{user_id}, read by C{viewer}."""
    event = await state_event(client, viewer, room_id, "m.room.member", user_id)
    assert event is not None, f"no member event for {user_id}"
    return event


async def post(client, user: dict, path: str, body: dict | None = None):
    return await client.request("POST", path, body if body is not None else {}, token=user["access_token"])


def assert_forbidden(response) -> None:
    assert response.code == 403, response
    assert response.json["errcode"] == "M_FORBIDDEN", response


# -- the event schema helper itself ----------------------------------------

@needs_spec
def test_event_schema_helper_accepts_spec_examples_and_rejects_broken_events():
    """Every event example in the spec matches its schema, and broken events do not."""
    checked = 0
    for name in example_names():
        example = load_example(name)
        if isinstance(example, list):
            for stripped in example:
                validate_stripped_state(stripped)
        elif "type" in example:
            validate_event(example)
        checked += 1
    assert checked > 50
    member = load_example("m.room.member")
    broken = [
        {**member, "content": {**member["content"], "membership": "joined"}},
        {k: v for k, v in member.items() if k != "event_id"},
        {k: v for k, v in member.items() if k != "room_id"},
        {k: v for k, v in member.items() if k != "state_key"},
        {**load_example("m.room.message$m.text"), "content": {"msgtype": "m.text"}},
        {**load_example("m.room.create"), "content": {"room_version": 11}},
    ]
    for event in broken:
        with pytest.raises(EventSchemaError):
            validate_event(event)
    # The same event from /sync (no room_id) is fine there.
    validate_event({k: v for k, v in member.items() if k != "room_id"}, in_sync=True)
    with pytest.raises(EventSchemaError):
        validate_stripped_state({"type": "m.room.member", "state_key": "@a:b", "content": {}})


# -- createRoom ------------------------------------------------------------

@pytest.mark.parametrize("preset, join_rule, guest_access", [
    ("private_chat", "invite", "can_join"),
    ("trusted_private_chat", "invite", "can_join"),
    ("public_chat", "public", "forbidden"),
])
@pytest_twisted.ensureDeferred
async def test_presets_set_join_rules_history_visibility_and_guest_access(client, preset, join_rule,
                                                                          guest_access):
    """Each preset gives the spec's join rule, history visibility and guest access."""
    alice = await client.register()
    room_id = await create_room(client, alice, preset=preset)
    assert await state_content(client, alice, room_id, "m.room.join_rules") == {"join_rule": join_rule}
    assert await state_content(client, alice, room_id, "m.room.history_visibility") == \
        {"history_visibility": "shared"}
    assert await state_content(client, alice, room_id, "m.room.guest_access") == \
        {"guest_access": guest_access}


@pytest.mark.parametrize("visibility, join_rule", [(None, "invite"), ("private", "invite"),
                                                   ("public", "public")])
@pytest_twisted.ensureDeferred
async def test_visibility_chooses_the_preset_when_none_is_given(client, visibility, join_rule):
    """Without a preset, visibility public means public_chat and private (the default) private_chat."""
    alice = await client.register()
    body = {} if visibility is None else {"visibility": visibility}
    room_id = await create_room(client, alice, **body)
    assert (await state_content(client, alice, room_id, "m.room.join_rules"))["join_rule"] == join_rule


@pytest_twisted.ensureDeferred
async def test_name_topic_and_alias_become_state(client):
    """name, topic and room_alias_name give m.room.name, m.room.topic and the canonical alias."""
    alice = await client.register()
    alias_name = unique_localpart("alias")
    room_id = await create_room(client, alice, name="The Room", topic="Things", room_alias_name=alias_name)
    assert await state_content(client, alice, room_id, "m.room.name") == {"name": "The Room"}
    assert (await state_content(client, alice, room_id, "m.room.topic"))["topic"] == "Things"
    canonical = await state_content(client, alice, room_id, "m.room.canonical_alias")
    assert canonical["alias"] == f"#{alias_name}:test.local"


@pytest_twisted.ensureDeferred
async def test_topic_has_a_text_plain_representation(client):
    """The topic createRoom sets carries an m.topic block with a text/plain representation."""
    alice = await client.register()
    room_id = await create_room(client, alice, topic="Things")
    topic = await state_content(client, alice, room_id, "m.room.topic")
    assert topic["m.topic"]["m.text"] == [{"body": "Things", "mimetype": "text/plain"}]


@pytest_twisted.ensureDeferred
async def test_taken_alias_is_refused(client):
    """A room_alias_name already in use answers 400 M_ROOM_IN_USE and creates no room."""
    alice = await client.register()
    alias_name = unique_localpart("taken")
    await create_room(client, alice, room_alias_name=alias_name)
    before = (await client.request("GET", "joined_rooms", token=alice["access_token"])).json["joined_rooms"]
    again = await client.request("POST", "createRoom", {"room_alias_name": alias_name},
                                 token=alice["access_token"])
    assert again.code == 400 and again.json["errcode"] == "M_ROOM_IN_USE", again
    after = (await client.request("GET", "joined_rooms", token=alice["access_token"])).json["joined_rooms"]
    assert after == before


@pytest_twisted.ensureDeferred
async def test_invitees_see_the_invite_with_stripped_state(client):
    """Users in 'invite' find the room in rooms.invite, with stripped state holding their invite."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, name="Invitation", invite=[bob["user_id"]])
    body = await sync(client, bob)
    assert room_id not in body.get("rooms", {}).get("join", {})
    stripped = body["rooms"]["invite"][room_id]["invite_state"]["events"]
    by_key = {(e["type"], e["state_key"]): e for e in stripped}
    invite = by_key[("m.room.member", bob["user_id"])]
    assert invite["content"]["membership"] == "invite"
    assert invite["sender"] == alice["user_id"]
    assert by_key[("m.room.name", "")]["content"] == {"name": "Invitation"}
    assert ("m.room.create", "") in by_key
    assert by_key[("m.room.join_rules", "")]["content"] == {"join_rule": "invite"}
    assert (await membership_of(client, alice, room_id, bob["user_id"]))["content"]["membership"] == "invite"


@pytest_twisted.ensureDeferred
async def test_is_direct_marks_the_invites(client):
    """With is_direct, the invitees' member events carry is_direct: true; the creator's does not."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, is_direct=True, invite=[bob["user_id"]],
                                preset="trusted_private_chat")
    invite = await membership_of(client, alice, room_id, bob["user_id"])
    assert invite["content"]["is_direct"] is True
    own = await membership_of(client, alice, room_id, alice["user_id"])
    assert "is_direct" not in own["content"]
    stripped = (await sync(client, bob))["rooms"]["invite"][room_id]["invite_state"]["events"]
    member = next(e for e in stripped if e["type"] == "m.room.member")
    assert member["content"]["is_direct"] is True


@pytest_twisted.ensureDeferred
async def test_initial_state_is_set_and_overrides_the_preset(client):
    """initial_state events become state, and override the preset's events of the same key."""
    alice = await client.register()
    room_id = await create_room(client, alice, preset="private_chat", initial_state=[
        {"type": "m.room.join_rules", "content": {"join_rule": "public"}},
        {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "joined"}},
        {"type": "org.example.custom", "state_key": "k1", "content": {"x": 1}},
    ])
    assert (await state_content(client, alice, room_id, "m.room.join_rules"))["join_rule"] == "public"
    assert (await state_content(client, alice, room_id, "m.room.history_visibility")) == \
        {"history_visibility": "joined"}
    assert await state_content(client, alice, room_id, "org.example.custom", "k1") == {"x": 1}
    # The preset's own events for overridden keys are not sent at all.
    body = await sync(client, alice, filter=LONG_TIMELINE)
    types = [e["type"] for e in timeline(body, room_id)]
    assert types.count("m.room.join_rules") == 1
    assert types.count("m.room.history_visibility") == 1


@pytest_twisted.ensureDeferred
async def test_name_and_topic_override_initial_state(client):
    """name and topic win over m.room.name and m.room.topic given in initial_state."""
    alice = await client.register()
    room_id = await create_room(client, alice, name="Final", topic="Final topic", initial_state=[
        {"type": "m.room.name", "content": {"name": "Initial"}},
        {"type": "m.room.topic", "content": {"topic": "Initial topic"}},
    ])
    assert await state_content(client, alice, room_id, "m.room.name") == {"name": "Final"}
    assert (await state_content(client, alice, room_id, "m.room.topic"))["topic"] == "Final topic"


@pytest_twisted.ensureDeferred
async def test_creation_content_is_added_but_server_keys_are_overwritten(client):
    """creation_content's keys reach m.room.create, except creator and room_version, which the server sets."""
    alice = await client.register()
    room_id = await create_room(client, alice, room_version="10", creation_content={
        "m.federate": False, "type": "org.example.kind", "creator": "@mallory:test.local",
        "room_version": "1",
    })
    create = await state_content(client, alice, room_id, "m.room.create")
    assert create["m.federate"] is False
    assert create["type"] == "org.example.kind"
    assert create["room_version"] == "10"
    assert create["creator"] == alice["user_id"]


@pytest_twisted.ensureDeferred
async def test_power_level_content_override_is_applied(client):
    """power_level_content_override's keys replace the defaults in m.room.power_levels."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, preset="public_chat", power_level_content_override={
        "events_default": 20, "users_default": 10, "kick": 5,
        "events": {"org.example.special": 99},
    })
    levels = await state_content(client, alice, room_id, "m.room.power_levels")
    assert levels["events_default"] == 20 and levels["users_default"] == 10 and levels["kick"] == 5
    assert levels["events"] == {"org.example.special": 99}
    assert levels["ban"] == 50  # untouched defaults stay
    # The override is in force: bob's level (users_default 10) is below events_default 20.
    assert (await post(client, bob, f"rooms/{room_id}/join")).code == 200
    sent = await client.request("PUT", f"rooms/{room_id}/send/m.room.message/t1",
                                {"msgtype": "m.text", "body": "hi"}, token=bob["access_token"])
    assert_forbidden(sent)


@pytest.mark.parametrize("version", [str(n) for n in range(1, 13)])
@pytest_twisted.ensureDeferred
async def test_supported_room_versions(client, version):
    """room_version 1 to 12 create rooms of that version, each with its create-event rules."""
    alice = await client.register()
    room_id = await create_room(client, alice, room_version=version)
    create = await state_event(client, alice, room_id, "m.room.create")
    assert create["content"]["room_version"] == version
    assert create["sender"] == alice["user_id"]
    if int(version) <= 10:
        assert create["content"]["creator"] == alice["user_id"]
    else:
        assert "creator" not in create["content"]  # v11+: the sender is the creator
    if version == "12":
        # v12: the room id is the create event's reference hash.
        assert room_id == "!" + create["event_id"][1:]
        levels = await state_content(client, alice, room_id, "m.room.power_levels")
        assert alice["user_id"] not in levels.get("users", {})
        assert levels["events"]["m.room.tombstone"] > levels["state_default"]
    else:
        assert room_id.endswith(":test.local")
        levels = await state_content(client, alice, room_id, "m.room.power_levels")
        assert levels["users"][alice["user_id"]] == 100


@pytest_twisted.ensureDeferred
async def test_default_room_version_is_12(client):
    """Without room_version, the room is version 12, as /capabilities would say."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    assert (await state_content(client, alice, room_id, "m.room.create"))["room_version"] == "12"


@pytest.mark.parametrize("version", ["13", "0", "1.0", "foo"])
@pytest_twisted.ensureDeferred
async def test_unsupported_room_version_is_refused(client, version):
    """An unsupported room_version answers 400 M_UNSUPPORTED_ROOM_VERSION."""
    alice = await client.register()
    response = await client.request("POST", "createRoom", {"room_version": version},
                                    token=alice["access_token"])
    assert response.code == 400, response
    assert response.json["errcode"] == "M_UNSUPPORTED_ROOM_VERSION"


@pytest.mark.parametrize("version", ["10", "12"])
@pytest_twisted.ensureDeferred
async def test_initial_events_come_in_the_spec_order(client, version):
    """createRoom's events appear in the timeline in the order the spec lists them."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(
        client, alice, room_version=version, preset="public_chat",
        room_alias_name=unique_localpart("order"), name="Ordered", topic="In order",
        invite=[bob["user_id"]],
        initial_state=[{"type": "org.example.first", "state_key": "", "content": {"n": 1}},
                       {"type": "org.example.second", "state_key": "", "content": {"n": 2}}],
    )
    body = await sync(client, alice, filter=LONG_TIMELINE)
    room = body["rooms"]["join"][room_id]
    assert room["timeline"]["limited"] is False
    events = room["timeline"]["events"]
    assert [(e["type"], e.get("state_key")) for e in events] == [
        ("m.room.create", ""),
        ("m.room.member", alice["user_id"]),
        ("m.room.power_levels", ""),
        ("m.room.canonical_alias", ""),
        ("m.room.join_rules", ""),
        ("m.room.history_visibility", ""),
        ("m.room.guest_access", ""),
        ("org.example.first", ""),
        ("org.example.second", ""),
        ("m.room.name", ""),
        ("m.room.topic", ""),
        ("m.room.member", bob["user_id"]),
    ]
    assert all(e["sender"] == alice["user_id"] for e in events)
    assert events[1]["content"]["membership"] == "join"
    assert events[-1]["content"]["membership"] == "invite"
    assert len({e["event_id"] for e in events}) == len(events)


@pytest.mark.parametrize("version", ["10", "11"])
@pytest_twisted.ensureDeferred
async def test_trusted_private_chat_gives_invitees_the_creators_level(client, version):
    """Before v12, trusted_private_chat gives each invitee the creator's power level (100)."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, room_version=version, preset="trusted_private_chat",
                                invite=[bob["user_id"]])
    levels = await state_content(client, alice, room_id, "m.room.power_levels")
    assert levels["users"][bob["user_id"]] == levels["users"][alice["user_id"]] == 100


@pytest_twisted.ensureDeferred
async def test_trusted_private_chat_v12_makes_invitees_additional_creators(client):
    """In v12, trusted_private_chat puts the invitees in m.room.create's additional_creators (spec SHOULD)."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, room_version="12", preset="trusted_private_chat",
                                invite=[bob["user_id"]])
    create = await state_content(client, alice, room_id, "m.room.create")
    assert create.get("additional_creators") == [bob["user_id"]]
    levels = await state_content(client, alice, room_id, "m.room.power_levels")
    assert bob["user_id"] not in levels.get("users", {})


@pytest.mark.parametrize("body, errcode", [
    ({"preset": "party"}, "M_INVALID_PARAM"),
    ({"visibility": "secret"}, "M_INVALID_PARAM"),
    ({"invite": ["not-a-user"]}, "M_INVALID_PARAM"),
    ({"initial_state": [{"type": "m.room.name"}]}, "M_BAD_JSON"),
    ({"room_alias_name": "has:colon"}, "M_INVALID_PARAM"),
    ({"name": 5}, "M_BAD_JSON"),
])
@pytest_twisted.ensureDeferred
async def test_bad_create_room_bodies_are_refused(client, body, errcode):
    """Malformed createRoom bodies answer 400 with the matching errcode."""
    alice = await client.register()
    response = await client.request("POST", "createRoom", body, token=alice["access_token"])
    assert response.code == 400, response
    assert response.json["errcode"] == errcode


# -- membership ------------------------------------------------------------

@pytest.mark.parametrize("version", ["10", "11", "12"])
@pytest_twisted.ensureDeferred
async def test_invite_join_leave(client, version):
    """An invited user joins, talks, and leaves; each step is a member event with the right sender."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, room_version=version)
    invited = await post(client, alice, f"rooms/{room_id}/invite", {"user_id": bob["user_id"]})
    assert invited.code == 200 and invited.json == {}
    invite = await membership_of(client, alice, room_id, bob["user_id"])
    assert invite["content"]["membership"] == "invite" and invite["sender"] == alice["user_id"]
    joined = await post(client, bob, f"rooms/{room_id}/join")
    assert joined.code == 200 and joined.json == {"room_id": room_id}
    join = await membership_of(client, alice, room_id, bob["user_id"])
    assert join["content"]["membership"] == "join" and join["sender"] == bob["user_id"]
    rooms = await client.request("GET", "joined_rooms", token=bob["access_token"])
    assert rooms.json == {"joined_rooms": [room_id]}
    sent = await client.request("PUT", f"rooms/{room_id}/send/m.room.message/m1",
                                {"msgtype": "m.text", "body": "hello"}, token=bob["access_token"])
    assert sent.code == 200, sent
    left = await post(client, bob, f"rooms/{room_id}/leave")
    assert left.code == 200 and left.json == {}
    leave = await membership_of(client, alice, room_id, bob["user_id"])
    assert leave["content"]["membership"] == "leave" and leave["sender"] == bob["user_id"]
    rooms = await client.request("GET", "joined_rooms", token=bob["access_token"])
    assert rooms.json == {"joined_rooms": []}


@pytest_twisted.ensureDeferred
async def test_rejecting_an_invite_is_a_leave(client):
    """An invitee who leaves rejects the invite and may no longer join an invite-only room."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, invite=[bob["user_id"]])
    assert (await post(client, bob, f"rooms/{room_id}/leave")).code == 200
    assert (await membership_of(client, alice, room_id, bob["user_id"]))["content"]["membership"] == "leave"
    assert_forbidden(await post(client, bob, f"rooms/{room_id}/join"))


@pytest_twisted.ensureDeferred
async def test_join_public_room_by_id_and_by_alias(client):
    """Anyone joins a public room by id, or by alias with POST /join/{alias}, which answers the room id."""
    alice = await client.register()
    bob = await client.register()
    carol = await client.register()
    alias_name = unique_localpart("pub")
    room_id = await create_room(client, alice, preset="public_chat", room_alias_name=alias_name)
    by_id = await post(client, bob, f"join/{room_id}")
    assert by_id.code == 200 and by_id.json == {"room_id": room_id}
    alias = f"#{alias_name}:test.local"
    by_alias = await post(client, carol, f"join/{quote(alias, safe='')}")
    assert by_alias.code == 200 and by_alias.json == {"room_id": room_id}, by_alias
    for user in (bob, carol):
        assert (await membership_of(client, alice, room_id, user["user_id"]))["content"]["membership"] == "join"
    unknown = await post(client, bob, f"join/{quote('#nothing-here:test.local', safe='')}")
    assert unknown.code == 404 and unknown.json["errcode"] == "M_NOT_FOUND"


@pytest_twisted.ensureDeferred
async def test_join_unknown_room_is_not_found(client):
    """Joining a room id that does not exist answers 404 M_NOT_FOUND."""
    bob = await client.register()
    response = await post(client, bob, "rooms/!doesnotexist:test.local/join")
    assert response.code == 404 and response.json["errcode"] == "M_NOT_FOUND", response


@pytest_twisted.ensureDeferred
async def test_reasons_are_carried_in_member_events(client):
    """The reason given to join, invite, kick, ban, unban and leave is in the member event's content."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    bob_id = bob["user_id"]

    async def reason_of(user_id):
        return (await membership_of(client, alice, room_id, user_id))["content"]

    assert (await post(client, bob, f"rooms/{room_id}/join", {"reason": "curious"})).code == 200
    content = await reason_of(bob_id)
    assert content["membership"] == "join" and content["reason"] == "curious"
    assert (await post(client, alice, f"rooms/{room_id}/kick", {"user_id": bob_id, "reason": "spam"})).code == 200
    content = await reason_of(bob_id)
    assert content["membership"] == "leave" and content["reason"] == "spam"
    assert (await post(client, alice, f"rooms/{room_id}/invite", {"user_id": bob_id, "reason": "sorry"})).code == 200
    content = await reason_of(bob_id)
    assert content["membership"] == "invite" and content["reason"] == "sorry"
    assert (await post(client, alice, f"rooms/{room_id}/ban", {"user_id": bob_id, "reason": "again"})).code == 200
    content = await reason_of(bob_id)
    assert content["membership"] == "ban" and content["reason"] == "again"
    assert (await post(client, alice, f"rooms/{room_id}/unban", {"user_id": bob_id, "reason": "ok"})).code == 200
    content = await reason_of(bob_id)
    assert content["membership"] == "leave" and content["reason"] == "ok"
    assert (await post(client, bob, f"rooms/{room_id}/join")).code == 200
    assert (await post(client, bob, f"rooms/{room_id}/leave", {"reason": "bye"})).code == 200
    content = await reason_of(bob_id)
    assert content["membership"] == "leave" and content["reason"] == "bye"


@pytest_twisted.ensureDeferred
async def test_kick(client):
    """A moderator kicks a member: the member event is a leave sent by the moderator; the user may rejoin."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    assert (await post(client, bob, f"rooms/{room_id}/join")).code == 200
    kicked = await post(client, alice, f"rooms/{room_id}/kick", {"user_id": bob["user_id"]})
    assert kicked.code == 200 and kicked.json == {}
    event = await membership_of(client, alice, room_id, bob["user_id"])
    assert event["content"]["membership"] == "leave" and event["sender"] == alice["user_id"]
    # Kicked is not banned: a public room can be joined again.
    assert (await post(client, bob, f"rooms/{room_id}/join")).code == 200
    body = await sync(client, bob)
    assert room_id in body["rooms"]["join"]


@pytest_twisted.ensureDeferred
async def test_ban_unban(client):
    """A banned user cannot join (403); after unban their membership is leave and they can join again."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    assert (await post(client, bob, f"rooms/{room_id}/join")).code == 200
    banned = await post(client, alice, f"rooms/{room_id}/ban", {"user_id": bob["user_id"]})
    assert banned.code == 200 and banned.json == {}
    event = await membership_of(client, alice, room_id, bob["user_id"])
    assert event["content"]["membership"] == "ban" and event["sender"] == alice["user_id"]
    assert_forbidden(await post(client, bob, f"rooms/{room_id}/join"))
    assert_forbidden(await post(client, bob, f"join/{room_id}"))
    # A banned user cannot be invited either.
    assert_forbidden(await post(client, alice, f"rooms/{room_id}/invite", {"user_id": bob["user_id"]}))
    unbanned = await post(client, alice, f"rooms/{room_id}/unban", {"user_id": bob["user_id"]})
    assert unbanned.code == 200 and unbanned.json == {}
    assert (await membership_of(client, alice, room_id, bob["user_id"]))["content"]["membership"] == "leave"
    assert (await post(client, bob, f"rooms/{room_id}/join")).code == 200


@pytest_twisted.ensureDeferred
async def test_ban_a_user_who_never_joined(client):
    """A user never in the room can be banned pre-emptively, and then cannot join."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    assert (await post(client, alice, f"rooms/{room_id}/ban", {"user_id": bob["user_id"]})).code == 200
    assert_forbidden(await post(client, bob, f"rooms/{room_id}/join"))


@pytest.mark.parametrize("version", ["10", "12"])
@pytest_twisted.ensureDeferred
async def test_knock_then_invite_then_join(client, version):
    """In a knock room, a user knocks (reason kept), sees rooms.knock in sync, is invited, and joins."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, room_version=version, name="Knock knock", initial_state=[
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}},
    ])
    assert_forbidden(await post(client, bob, f"rooms/{room_id}/join"))
    knocked = await post(client, bob, f"knock/{room_id}", {"reason": "let me in"})
    assert knocked.code == 200 and knocked.json == {"room_id": room_id}, knocked
    event = await membership_of(client, alice, room_id, bob["user_id"])
    assert event["content"]["membership"] == "knock" and event["content"]["reason"] == "let me in"
    assert event["sender"] == bob["user_id"]
    body = await sync(client, bob)
    stripped = body["rooms"]["knock"][room_id]["knock_state"]["events"]
    by_key = {(e["type"], e["state_key"]): e for e in stripped}
    assert by_key[("m.room.member", bob["user_id"])]["content"]["membership"] == "knock"
    assert by_key[("m.room.name", "")]["content"]["name"] == "Knock knock"
    # The knock is in the room's timeline for its members.
    alice_timeline = timeline(await sync(client, alice, filter=LONG_TIMELINE), room_id)
    assert any(e["type"] == "m.room.member" and e["state_key"] == bob["user_id"]
               and e["content"]["membership"] == "knock" for e in alice_timeline)
    assert (await post(client, alice, f"rooms/{room_id}/invite", {"user_id": bob["user_id"]})).code == 200
    assert (await post(client, bob, f"rooms/{room_id}/join")).code == 200
    assert (await membership_of(client, alice, room_id, bob["user_id"]))["content"]["membership"] == "join"


@pytest_twisted.ensureDeferred
async def test_knock_refused_where_join_rule_is_not_knock(client):
    """Knocking on an invite-only room (or a public one) answers 403 M_FORBIDDEN."""
    alice = await client.register()
    bob = await client.register()
    for preset in ("private_chat", "public_chat"):
        room_id = await create_room(client, alice, preset=preset)
        assert_forbidden(await post(client, bob, f"knock/{room_id}"))


@pytest_twisted.ensureDeferred
async def test_knock_can_be_denied_by_kick(client):
    """A moderator denies a knock with a kick: the knocker's membership becomes leave."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, initial_state=[
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}},
    ])
    assert (await post(client, bob, f"knock/{room_id}")).code == 200
    assert (await post(client, alice, f"rooms/{room_id}/kick", {"user_id": bob["user_id"]})).code == 200
    event = await membership_of(client, alice, room_id, bob["user_id"])
    assert event["content"]["membership"] == "leave" and event["sender"] == alice["user_id"]


@pytest_twisted.ensureDeferred
async def test_non_member_cannot_send_or_set_state(client):
    """A user not in the room gets 403 M_FORBIDDEN for messages and state."""
    alice = await client.register()
    mallory = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    sent = await client.request("PUT", f"rooms/{room_id}/send/m.room.message/x1",
                                {"msgtype": "m.text", "body": "hi"}, token=mallory["access_token"])
    assert_forbidden(sent)
    state = await client.request("PUT", f"rooms/{room_id}/state/m.room.topic/",
                                 {"topic": "mine"}, token=mallory["access_token"])
    assert_forbidden(state)


@pytest_twisted.ensureDeferred
async def test_uninvited_user_cannot_join_invite_only_room(client):
    """Joining an invite-only room without an invite answers 403 M_FORBIDDEN, by id and by alias."""
    alice = await client.register()
    bob = await client.register()
    alias_name = unique_localpart("private")
    room_id = await create_room(client, alice, preset="private_chat", room_alias_name=alias_name)
    assert_forbidden(await post(client, bob, f"rooms/{room_id}/join"))
    assert_forbidden(await post(client, bob, f"join/{quote(f'#{alias_name}:test.local', safe='')}"))
    assert (await client.request("GET", "joined_rooms", token=bob["access_token"])).json == {"joined_rooms": []}


@pytest_twisted.ensureDeferred
async def test_kick_and_ban_need_power(client):
    """A member without power may not kick or ban (403 M_FORBIDDEN), nor kick someone not in the room."""
    alice = await client.register()
    bob = await client.register()
    carol = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    for user in (bob, carol):
        assert (await post(client, user, f"rooms/{room_id}/join")).code == 200
    assert_forbidden(await post(client, bob, f"rooms/{room_id}/kick", {"user_id": carol["user_id"]}))
    assert_forbidden(await post(client, bob, f"rooms/{room_id}/ban", {"user_id": carol["user_id"]}))
    assert_forbidden(await post(client, bob, f"rooms/{room_id}/kick", {"user_id": alice["user_id"]}))
    assert (await membership_of(client, alice, room_id, carol["user_id"]))["content"]["membership"] == "join"
    outsider = await client.register()
    assert_forbidden(await post(client, alice, f"rooms/{room_id}/kick", {"user_id": outsider["user_id"]}))


@pytest_twisted.ensureDeferred
async def test_invite_needs_membership_and_power(client):
    """A non-member may not invite; in a room with invite level 50, a plain member may not either."""
    alice = await client.register()
    bob = await client.register()
    carol = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")  # invite level 50
    assert_forbidden(await post(client, bob, f"rooms/{room_id}/invite", {"user_id": carol["user_id"]}))
    assert (await post(client, bob, f"rooms/{room_id}/join")).code == 200
    assert_forbidden(await post(client, bob, f"rooms/{room_id}/invite", {"user_id": carol["user_id"]}))
    private = await create_room(client, alice, preset="private_chat")  # invite level 0
    assert (await post(client, alice, f"rooms/{private}/invite", {"user_id": bob["user_id"]})).code == 200
    assert (await post(client, bob, f"rooms/{private}/join")).code == 200
    assert (await post(client, bob, f"rooms/{private}/invite", {"user_id": carol["user_id"]})).code == 200


@pytest_twisted.ensureDeferred
async def test_inviting_a_member_is_refused(client):
    """Inviting someone already joined answers 403 M_FORBIDDEN."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    assert (await post(client, bob, f"rooms/{room_id}/join")).code == 200
    assert_forbidden(await post(client, alice, f"rooms/{room_id}/invite", {"user_id": bob["user_id"]}))


@pytest.mark.parametrize("path", ["invite", "kick", "ban", "unban"])
@pytest_twisted.ensureDeferred
async def test_membership_endpoints_need_a_user_id(client, path):
    """invite, kick, ban and unban without user_id answer 400 M_MISSING_PARAM (or M_BAD_JSON for a bad one)."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    missing = await post(client, alice, f"rooms/{room_id}/{path}", {})
    assert missing.code == 400 and missing.json["errcode"] in ("M_MISSING_PARAM", "M_BAD_JSON"), missing
    bad = await post(client, alice, f"rooms/{room_id}/{path}", {"user_id": "not a user id"})
    assert bad.code == 400, bad


@pytest_twisted.ensureDeferred
async def test_state_reads_need_membership(client):
    """A user who was never in a (not world-readable) room cannot read its state: 403 M_FORBIDDEN."""
    alice = await client.register()
    mallory = await client.register()
    room_id = await create_room(client, alice, preset="public_chat", name="Secret-ish")
    assert_forbidden(await client.request("GET", f"rooms/{room_id}/state", token=mallory["access_token"]))
    assert_forbidden(await client.request("GET", f"rooms/{room_id}/state/m.room.name/",
                                          token=mallory["access_token"]))


@pytest_twisted.ensureDeferred
async def test_left_user_reads_state_as_it_was_when_they_left(client):
    """After leaving, a user reads the room's state as it was when they left, not later changes."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, preset="public_chat", name="Before")
    assert (await post(client, bob, f"rooms/{room_id}/join")).code == 200
    assert (await post(client, bob, f"rooms/{room_id}/leave")).code == 200
    renamed = await client.request("PUT", f"rooms/{room_id}/state/m.room.name/", {"name": "After"},
                                   token=alice["access_token"])
    assert renamed.code == 200
    assert await state_content(client, bob, room_id, "m.room.name") == {"name": "Before"}
    assert await state_content(client, alice, room_id, "m.room.name") == {"name": "After"}


@pytest_twisted.ensureDeferred
async def test_guest_can_join_only_rooms_allowing_guests(client):
    """A guest joins a can_join room (private_chat preset) but gets 403 in a public_chat (forbidden) one."""
    alice = await client.register()
    guest = await client.register_guest()
    public = await create_room(client, alice, preset="public_chat")
    assert_forbidden(await post(client, guest, f"rooms/{public}/join"))
    open_to_guests = await create_room(client, alice, preset="public_chat", initial_state=[
        {"type": "m.room.guest_access", "content": {"guest_access": "can_join"}},
    ])
    assert (await post(client, guest, f"rooms/{open_to_guests}/join")).code == 200


@pytest.mark.parametrize("path", ["join/{room_id}", "rooms/{room_id}/join", "rooms/{room_id}/leave"])
@pytest_twisted.ensureDeferred
async def test_join_and_leave_accept_an_empty_body(client, path):
    """POST join or leave with no body at all is taken as {} (as Synapse), since real clients send none."""
    alice = await client.register()
    bob = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    if path.endswith("leave"):
        assert (await post(client, bob, f"rooms/{room_id}/join")).code == 200
    response = await client.request("POST", path.format(room_id=room_id), None, token=bob["access_token"])
    assert response.code == 200, response
    expected = "leave" if path.endswith("leave") else "join"
    assert (await membership_of(client, alice, room_id, bob["user_id"]))["content"]["membership"] == expected
