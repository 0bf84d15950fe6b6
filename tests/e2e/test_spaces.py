"""The space hierarchy (GET /_matrix/client/v1/rooms/{roomId}/hierarchy) through the real daemon."""
from urllib.parse import quote

import pytest_twisted

from room_helpers import create_room, join, ok


async def _add_child(client, owner, space, child, **content):
    await ok(client, "PUT", f"rooms/{quote(space)}/state/m.space.child/{quote(child)}",
             {"via": [client.server.server_name], **content}, user=owner)


async def _hierarchy(client, user, room_id, **query):
    return await client.request("GET", f"/_matrix/client/v1/rooms/{quote(room_id)}/hierarchy",
                                token=user["access_token"], query=query)


async def _space_tree(client):
    """
    A public space with, in order: a public sub-space (holding one public
    room), a suggested public room, an invite-only room and a room
    restricted to the space's members. Returns the owner and the room ids.
    """
    owner = await client.register()
    space = await create_room(client, owner, preset="public_chat", name="Space",
                              creation_content={"type": "m.space"})
    sub = await create_room(client, owner, preset="public_chat", name="Sub", creation_content={"type": "m.space"})
    deep = await create_room(client, owner, preset="public_chat", name="Deep")
    public = await create_room(client, owner, preset="public_chat", name="Public", topic="Hello")
    private = await create_room(client, owner, preset="private_chat", name="Private")
    restricted = await create_room(client, owner, name="Restricted", initial_state=[{
        "type": "m.room.join_rules",
        "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}}])
    await _add_child(client, owner, space, sub, order="a")
    await _add_child(client, owner, space, public, order="b", suggested=True)
    await _add_child(client, owner, space, private, order="c")
    await _add_child(client, owner, space, restricted, order="d")
    await _add_child(client, owner, sub, deep)
    await _add_child(client, owner, sub, space)  # a loop back to the root
    return owner, {"space": space, "sub": sub, "deep": deep, "public": public, "private": private,
                   "restricted": restricted}


def _ids(response):
    return [room["room_id"] for room in response.json["rooms"]]


@pytest_twisted.ensureDeferred
async def test_hierarchy_walks_the_tree_in_order(client):
    """A space member sees the tree depth first in the children's order; the invite-only room is skipped."""
    owner, rooms = await _space_tree(client)
    member = await client.register()
    await join(client, member, rooms["space"])
    response = await _hierarchy(client, member, rooms["space"])
    assert response.code == 200, response
    assert _ids(response) == [rooms[name] for name in ("space", "sub", "deep", "public", "restricted")]
    assert "next_batch" not in response.json
    root = response.json["rooms"][0]
    assert root["room_type"] == "m.space" and root["name"] == "Space" and root["num_joined_members"] == 2
    assert [child["state_key"] for child in root["children_state"]] == [
        rooms[name] for name in ("sub", "public", "private", "restricted")]
    assert all(isinstance(child["origin_server_ts"], int) for child in root["children_state"])
    restricted = response.json["rooms"][-1]
    assert restricted["join_rule"] == "restricted" and restricted["allowed_room_ids"] == [rooms["space"]]
    public = response.json["rooms"][3]
    assert (public["topic"], public["children_state"]) == ("Hello", [])
    # The owner, joined to every room, sees the invite-only one too.
    assert rooms["private"] in _ids(await _hierarchy(client, owner, rooms["space"]))


@pytest_twisted.ensureDeferred
async def test_restricted_room_is_hidden_from_outsiders(client):
    """Someone not in the space sees its public rooms, not the room restricted to its members."""
    _, rooms = await _space_tree(client)
    outsider = await client.register()
    response = await _hierarchy(client, outsider, rooms["space"])
    assert _ids(response) == [rooms[name] for name in ("space", "sub", "deep", "public")]


@pytest_twisted.ensureDeferred
async def test_depth_and_suggested_only(client):
    """max_depth 0 is the root alone, 1 its children; suggested_only keeps suggested children."""
    owner, rooms = await _space_tree(client)
    assert _ids(await _hierarchy(client, owner, rooms["space"], max_depth="0")) == [rooms["space"]]
    assert _ids(await _hierarchy(client, owner, rooms["space"], max_depth="1")) == [
        rooms[name] for name in ("space", "sub", "public", "private", "restricted")]
    suggested = await _hierarchy(client, owner, rooms["space"], suggested_only="true")
    assert _ids(suggested) == [rooms["space"], rooms["public"]]
    assert [c["state_key"] for c in suggested.json["rooms"][0]["children_state"]] == [rooms["public"]]


@pytest_twisted.ensureDeferred
async def test_pages_follow_the_token_of_the_same_query(client):
    """Pages of 2 give the whole tree once; a token used with another max_depth is 400 M_INVALID_PARAM."""
    owner, rooms = await _space_tree(client)
    seen, token, pages = [], None, 0
    while True:
        query = {"limit": "2", **({"from": token} if token else {})}
        response = await _hierarchy(client, owner, rooms["space"], **query)
        assert response.code == 200, response
        assert len(response.json["rooms"]) <= 2
        seen += _ids(response)
        pages += 1
        token = response.json.get("next_batch")
        if token is None:
            break
    assert seen == [rooms[name] for name in ("space", "sub", "deep", "public", "private", "restricted")]
    assert pages == 3
    first = await _hierarchy(client, owner, rooms["space"], limit="2")
    mismatched = await _hierarchy(client, owner, rooms["space"], limit="2", max_depth="1",
                                  **{"from": first.json["next_batch"]})
    assert (mismatched.code, mismatched.json["errcode"]) == (400, "M_INVALID_PARAM")
    unknown = await _hierarchy(client, owner, rooms["space"], **{"from": "not-a-token"})
    assert (unknown.code, unknown.json["errcode"]) == (400, "M_INVALID_PARAM")
    bad_limit = await _hierarchy(client, owner, rooms["space"], limit="0")
    assert (bad_limit.code, bad_limit.json["errcode"]) == (400, "M_INVALID_PARAM")


@pytest_twisted.ensureDeferred
async def test_inaccessible_root_is_403(client):
    """A private space one is not in, or a room that does not exist, is 403."""
    owner = await client.register()
    stranger = await client.register()
    space = await create_room(client, owner, preset="private_chat", creation_content={"type": "m.space"})
    for room_id in (space, f"!unknown:{client.server.server_name}"):
        response = await _hierarchy(client, stranger, room_id)
        assert (response.code, response.json["errcode"]) == (403, "M_FORBIDDEN")
    assert _ids(await _hierarchy(client, owner, space)) == [space]
