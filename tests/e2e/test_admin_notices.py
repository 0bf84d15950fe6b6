"""
The admin API's server notices, through the real daemon: an admin sends a
notice, the user is invited to their notices room, joins and reads it;
later notices go to the same room; a retried PUT sends once.
"""
from urllib.parse import quote

import pytest
import pytest_twisted

from admin_helpers import ADMIN, register_admin
from room_helpers import join, ok

NOTICES_CONFIG = '[server_notices]\nsystem_mxid_localpart = "notices"\nsystem_mxid_display_name = "Notices"\n' \
                 'room_topic = "From the admins"\n'


@pytest.fixture(scope="module")
def notices_server(start_homeserver):
    """A daemon with server notices on, from @notices."""
    return start_homeserver("[rate_limits]\nenabled = false\n" + NOTICES_CONFIG)


@pytest.fixture
def notices_client(notices_server, make_client):
    return make_client(notices_server)


def _message(body: str) -> dict:
    return {"msgtype": "m.text", "body": body}


async def _notify(client, admin: dict, user_id: str, content: dict, txn_id: str | None = None, **extra):
    path = f"{ADMIN}/v1/send_server_notice" + (f"/{txn_id}" if txn_id is not None else "")
    return await client.request("PUT" if txn_id is not None else "POST", path,
                                {"user_id": user_id, "content": content, **extra}, token=admin["access_token"])


async def _sent(client, admin: dict, user_id: str, content: dict, txn_id: str | None = None, **extra) -> str:
    response = await _notify(client, admin, user_id, content, txn_id, **extra)
    assert response.code == 200, response
    assert set(response.json) == {"event_id"}
    return response.json["event_id"]


async def _invites(client, user: dict) -> dict:
    return (await ok(client, "GET", "sync", user=user)).get("rooms", {}).get("invite", {})


async def _messages(client, user: dict, room_id: str) -> list[dict]:
    page = await ok(client, "GET", f"rooms/{quote(room_id)}/messages", user=user, query={"dir": "b", "limit": "50"})
    return [event for event in page["chunk"] if event["type"] == "m.room.message"][::-1]


@pytest_twisted.ensureDeferred
async def test_user_is_invited_to_the_notices_room_and_reads_the_notice(notices_client):
    """The invite comes from @notices to a tagged "Server Notices" room; joined, the user reads the notice."""
    client = notices_client
    admin, alice = await register_admin(client), await client.register()
    notices_user = f"@notices:{client.server.server_name}"
    event_id = await _sent(client, admin, alice["user_id"], _message("Maintenance at noon"))

    invites = await _invites(client, alice)
    assert len(invites) == 1
    room_id, invite = next(iter(invites.items()))
    state = {(e["type"], e.get("state_key")): e for e in invite["invite_state"]["events"]}
    assert state[("m.room.member", alice["user_id"])]["sender"] == notices_user
    assert state[("m.room.name", "")]["content"]["name"] == "Server Notices"

    await join(client, alice, room_id)
    [notice] = await _messages(client, alice, room_id)
    assert (notice["event_id"], notice["sender"], notice["content"]["body"]) == \
        (event_id, notices_user, "Maintenance at noon")
    tags = await ok(client, "GET", f"user/{quote(alice['user_id'])}/rooms/{quote(room_id)}/tags", user=alice)
    assert "m.server_notice" in tags["tags"]
    topic = await ok(client, "GET", f"rooms/{quote(room_id)}/state/m.room.topic", user=alice)
    assert topic["topic"] == "From the admins"
    profile = await ok(client, "GET", f"profile/{quote(notices_user)}", user=alice)
    assert profile.get("displayname") == "Notices"
    # Only the notices account writes in the room.
    reply = await client.request("PUT", f"rooms/{quote(room_id)}/send/m.room.message/r1", _message("ok?"),
                                 token=alice["access_token"])
    assert (reply.code, reply.json["errcode"]) == (403, "M_FORBIDDEN")


@pytest_twisted.ensureDeferred
async def test_later_notices_go_to_the_same_room_until_the_user_leaves_it(notices_client):
    """A second notice (user invited, then joined) lands in the same room; after leaving, a new room."""
    client = notices_client
    admin, bob = await register_admin(client), await client.register()
    await _sent(client, admin, bob["user_id"], _message("first"))
    await _sent(client, admin, bob["user_id"], _message("second, still invited"))
    [room_id] = await _invites(client, bob)
    await join(client, bob, room_id)
    await _sent(client, admin, bob["user_id"], _message("third, joined"))
    assert [e["content"]["body"] for e in await _messages(client, bob, room_id)] == \
        ["first", "second, still invited", "third, joined"]

    await ok(client, "POST", f"rooms/{quote(room_id)}/leave", {}, user=bob)
    await _sent(client, admin, bob["user_id"], _message("after leaving"))
    [new_room] = await _invites(client, bob)
    assert new_room != room_id


@pytest_twisted.ensureDeferred
async def test_put_with_the_same_transaction_id_sends_once(notices_client):
    """A retried PUT answers the first event id and the user has one notice; a new txn id sends another."""
    client = notices_client
    admin, carol = await register_admin(client), await client.register()
    first = await _sent(client, admin, carol["user_id"], _message("once"), "txn1")
    assert await _sent(client, admin, carol["user_id"], _message("once"), "txn1") == first
    other = await _sent(client, admin, carol["user_id"], _message("twice"), "txn2")
    assert other != first
    [room_id] = await _invites(client, carol)
    await join(client, carol, room_id)
    assert [e["content"]["body"] for e in await _messages(client, carol, room_id)] == ["once", "twice"]


@pytest_twisted.ensureDeferred
async def test_notice_may_be_a_state_event_of_another_type(notices_client):
    """type and state_key make the notice a state event the user sees in the room."""
    client = notices_client
    admin, dave = await register_admin(client), await client.register()
    await _sent(client, admin, dave["user_id"], {"level": "high"}, type="org.example.alert", state_key="")
    [room_id] = await _invites(client, dave)
    await join(client, dave, room_id)
    alert = await ok(client, "GET", f"rooms/{quote(room_id)}/state/org.example.alert", user=dave)
    assert alert == {"level": "high"}


@pytest_twisted.ensureDeferred
async def test_bad_notices_are_refused(notices_client):
    """Another server's user 400, an unknown user 404, a missing field 400; the notices account cannot log in."""
    client = notices_client
    admin, erin = await register_admin(client), await client.register()
    remote = await _notify(client, admin, "@someone:elsewhere.example", _message("hi"))
    assert remote.code == 400, remote
    unknown = await _notify(client, admin, f"@nobody:{client.server.server_name}", _message("hi"))
    assert (unknown.code, unknown.json["errcode"]) == (404, "M_NOT_FOUND")
    malformed = await _notify(client, admin, "not a user id", _message("hi"))
    assert (malformed.code, malformed.json["errcode"]) == (400, "M_INVALID_PARAM")
    no_content = await client.request("POST", f"{ADMIN}/v1/send_server_notice", {"user_id": erin["user_id"]},
                                      token=admin["access_token"])
    assert (no_content.code, no_content.json["errcode"]) == (400, "M_MISSING_PARAM")
    membership = await _notify(client, admin, erin["user_id"], {"membership": "join"}, type="m.room.member",
                               state_key=erin["user_id"])
    assert membership.code == 400, membership
    redaction = await _notify(client, admin, erin["user_id"], {}, type="m.room.redaction")
    assert (redaction.code, redaction.json["errcode"]) == (400, "M_INVALID_PARAM")
    assert await _invites(client, erin) == {}

    await _sent(client, admin, erin["user_id"], _message("hello"))  # the notices account exists now
    login = await client.login("notices", "")
    assert login.code in (400, 403), login
    forbidden = await _notify(client, erin, erin["user_id"], _message("from a user"))
    assert (forbidden.code, forbidden.json["errcode"]) == (403, "M_FORBIDDEN")


@pytest_twisted.ensureDeferred
async def test_notices_are_refused_when_not_configured(client):
    """Without [server_notices], sending is 400 M_UNKNOWN saying notices are off (as Synapse)."""
    admin, user = await register_admin(client), await client.register()
    response = await _notify(client, admin, user["user_id"], _message("hello"))
    assert (response.code, response.json["errcode"]) == (400, "M_UNKNOWN")
    assert "not enabled" in response.json["error"]


@pytest_twisted.ensureDeferred
async def test_auto_join_puts_the_user_in_the_room_at_once(start_homeserver, make_client):
    """With auto_join, the user is joined to their notices room by the first notice and reads it."""
    client = make_client(start_homeserver(NOTICES_CONFIG + "auto_join = true\n"))
    admin, frank = await register_admin(client), await client.register()
    await _sent(client, admin, frank["user_id"], _message("welcome"))
    joined = await ok(client, "GET", "joined_rooms", user=frank)
    [room_id] = joined["joined_rooms"]
    assert [e["content"]["body"] for e in await _messages(client, frank, room_id)] == ["welcome"]
