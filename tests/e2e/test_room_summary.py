"""Room summaries (GET /_matrix/client/v1/room_summary/...) and mutual rooms through the real daemon."""
from urllib.parse import quote

import pytest_twisted

from conftest import unique_localpart
from room_helpers import create_room, join

SUMMARY = "/_matrix/client/v1/room_summary/"
MUTUAL = "/_matrix/client/v1/mutual_rooms"
UNSTABLE_MUTUAL = "/_matrix/client/unstable/uk.half-shot.msc2666/user/mutual_rooms"


@pytest_twisted.ensureDeferred
async def test_public_room_summary_by_id_and_alias(client):
    """A public room's summary is open to anyone; with a token it says the requester's membership."""
    alice, bob = await client.register(), await client.register()
    alias_name = unique_localpart("summary")
    room_id = await create_room(client, alice, preset="public_chat", name="Lobby", topic="Welcome",
                                room_alias_name=alias_name)
    alias = f"#{alias_name}:{client.server.server_name}"
    anonymous = await client.request("GET", SUMMARY + quote(room_id))
    assert anonymous.code == 200, anonymous
    assert anonymous.json["room_id"] == room_id
    assert (anonymous.json["name"], anonymous.json["topic"]) == ("Lobby", "Welcome")
    assert (anonymous.json["join_rule"], anonymous.json["canonical_alias"]) == ("public", alias)
    assert anonymous.json["num_joined_members"] == 1 and anonymous.json["room_version"] == "12"
    assert "membership" not in anonymous.json
    by_alias = await client.request("GET", SUMMARY + quote(alias), token=bob["access_token"])
    assert (by_alias.json["room_id"], by_alias.json["membership"]) == (room_id, "leave")
    mine = await client.request("GET", SUMMARY + quote(room_id), token=alice["access_token"])
    assert mine.json["membership"] == "join"
    unstable = await client.request("GET", "/_matrix/client/unstable/im.nheko.summary/summary/" + quote(alias))
    assert (unstable.code, unstable.json["room_id"]) == (200, room_id)


@pytest_twisted.ensureDeferred
async def test_private_room_summary_only_for_members(client):
    """An invite-only room is 404 to strangers and anonymous callers; members and invitees see it."""
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="private_chat", name="Secret")
    for token in (None, bob["access_token"]):
        hidden = await client.request("GET", SUMMARY + quote(room_id), token=token)
        assert (hidden.code, hidden.json["errcode"]) == (404, "M_NOT_FOUND")
    invite = await client.request("POST", f"rooms/{quote(room_id)}/invite", {"user_id": carol["user_id"]},
                                  token=alice["access_token"])
    assert invite.code == 200, invite
    invited = await client.request("GET", SUMMARY + quote(room_id), token=carol["access_token"])
    assert (invited.code, invited.json["membership"], invited.json["name"]) == (200, "invite", "Secret")
    member = await client.request("GET", SUMMARY + quote(room_id), token=alice["access_token"])
    assert (member.json["membership"], member.json["join_rule"]) == ("join", "invite")


@pytest_twisted.ensureDeferred
async def test_unknown_room_summary_is_404(client):
    """An unknown room id or alias is 404 M_NOT_FOUND; something else is 400."""
    alice = await client.register()
    for name in (f"!unknown:{client.server.server_name}", f"#unknown:{client.server.server_name}"):
        response = await client.request("GET", SUMMARY + quote(name), token=alice["access_token"])
        assert (response.code, response.json["errcode"]) == (404, "M_NOT_FOUND")
    bad = await client.request("GET", SUMMARY + "nonsense", token=alice["access_token"])
    assert (bad.code, bad.json["errcode"]) == (400, "M_INVALID_PARAM")


@pytest_twisted.ensureDeferred
async def test_mutual_rooms_lists_only_rooms_both_joined(client):
    """Only rooms both users are joined to are listed (not invites, not rooms left), with their count."""
    alice, bob = await client.register(), await client.register()
    shared = sorted([await create_room(client, alice, preset="public_chat") for _ in range(2)])
    for room_id in shared:
        await join(client, bob, room_id)
    await create_room(client, alice, preset="public_chat")  # alice's alone
    invited = await create_room(client, alice, preset="private_chat")
    await client.request("POST", f"rooms/{quote(invited)}/invite", {"user_id": bob["user_id"]},
                         token=alice["access_token"])
    left = await create_room(client, alice, preset="public_chat")
    await join(client, bob, left)
    await client.request("POST", f"rooms/{quote(left)}/leave", {}, token=bob["access_token"])

    response = await client.request("GET", MUTUAL, token=alice["access_token"], query={"user_id": bob["user_id"]})
    assert response.code == 200, response
    assert response.json == {"joined": shared, "count": 2}
    unstable = await client.request("GET", UNSTABLE_MUTUAL,
                                    token=bob["access_token"], query={"user_id": alice["user_id"]})
    assert unstable.json["joined"] == shared
    nobody = await client.request("GET", MUTUAL, token=alice["access_token"],
                                  query={"user_id": f"@nobody:{client.server.server_name}"})
    assert nobody.json == {"joined": [], "count": 0}


@pytest_twisted.ensureDeferred
async def test_mutual_rooms_bad_requests(client):
    """Without user_id, with one's own, a malformed one or a bad token: 400."""
    alice = await client.register()
    for query in ({}, {"user_id": alice["user_id"]}, {"user_id": "bob"},
                  {"user_id": f"@bob:{client.server.server_name}", "from": "%%%"}):
        response = await client.request("GET", MUTUAL, token=alice["access_token"], query=query)
        assert response.code == 400, (query, response)
        assert response.json["errcode"] in ("M_MISSING_PARAM", "M_INVALID_PARAM"), response


@pytest_twisted.ensureDeferred
async def test_mutual_rooms_pages_on_both_paths(client):
    """Past 100 shared rooms the list pages: next_batch/from on v1, next_batch_token/batch_token on MSC2666's path."""
    alice, bob = await client.register(), await client.register()
    shared = sorted([await create_room(client, alice, preset="public_chat") for _ in range(101)])
    for room_id in shared:
        await join(client, bob, room_id)
    for path, token_in, token_out in ((MUTUAL, "from", "next_batch"),
                                      (UNSTABLE_MUTUAL, "batch_token", "next_batch_token")):
        first = await client.request("GET", path, token=alice["access_token"], query={"user_id": bob["user_id"]})
        assert len(first.json["joined"]) == 100 and first.json["count"] == 101, first
        second = await client.request("GET", path, token=alice["access_token"],
                                      query={"user_id": bob["user_id"], token_in: first.json[token_out]})
        assert first.json["joined"] + second.json["joined"] == shared, second
        assert token_out not in second.json
