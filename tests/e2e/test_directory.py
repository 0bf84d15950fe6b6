"""
Room aliases and the published room directory through the real daemon:
creating, resolving and deleting aliases, who may do so, a room's local
aliases, publishing rooms, and listing, searching and paging /publicRooms.

The shared daemon's directory also holds other tests' rooms, so listings
are checked through a search term only one test's rooms carry.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import pytest_twisted
from conftest import unique_localpart

SERVER = "test.local"
RUMA_ADMIN = str(Path(sys.executable).parent / "ruma-admin")


# -- helpers ---------------------------------------------------------------

def alias_for(prefix: str = "room") -> str:
    return f"#{unique_localpart(prefix)}:{SERVER}"


def alias_path(alias: str) -> str:
    return "directory/room/" + quote(alias, safe="")


async def create_room(client, user: dict, **body) -> str:
    response = await client.request("POST", "createRoom", body, token=user["access_token"])
    assert response.code == 200, response
    return response.json["room_id"]


async def join(client, user: dict, room_id: str) -> None:
    response = await client.request("POST", f"rooms/{room_id}/join", {}, token=user["access_token"])
    assert response.code == 200, response


async def put_alias(client, user: dict, alias: str, room_id: str):
    return await client.request("PUT", alias_path(alias), {"room_id": room_id}, token=user["access_token"])


async def search(client, user: dict, term: str, **body):
    response = await client.request("POST", "publicRooms",
                                    {"filter": {"generic_search_term": term}, **body},
                                    token=user["access_token"])
    assert response.code == 200, response
    return response.json


def unique_term() -> str:
    return unique_localpart("Term")


# -- aliases ---------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_alias_create_resolve_delete(client):
    """A member maps an alias to the room; anyone resolves it without a token; deleting it makes it unknown."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    alias = alias_for()
    created = await put_alias(client, alice, alias, room_id)
    assert created.code == 200 and created.json == {}
    resolved = await client.request("GET", alias_path(alias))
    assert resolved.code == 200 and resolved.json == {"room_id": room_id, "servers": [SERVER]}
    deleted = await client.request("DELETE", alias_path(alias), token=alice["access_token"])
    assert deleted.code == 200 and deleted.json == {}
    gone = await client.request("GET", alias_path(alias))
    assert gone.code == 404 and gone.json["errcode"] == "M_NOT_FOUND"
    again = await client.request("DELETE", alias_path(alias), token=alice["access_token"])
    assert again.code == 404 and again.json["errcode"] == "M_NOT_FOUND"


@pytest_twisted.ensureDeferred
async def test_taken_alias_is_409(client):
    """Mapping an alias that already names a room answers 409 M_ROOM_IN_USE and keeps the first mapping."""
    alice = await client.register()
    first, second = await create_room(client, alice), await create_room(client, alice)
    alias = alias_for()
    assert (await put_alias(client, alice, alias, first)).code == 200
    taken = await put_alias(client, alice, alias, second)
    assert taken.code == 409 and taken.json["errcode"] == "M_ROOM_IN_USE"
    resolved = await client.request("GET", alias_path(alias))
    assert resolved.json["room_id"] == first


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("alias", [
    "#elsewhere:other.example", "nosigil:test.local", "#nocolon", "#:test.local", "#bad:not a server",
])
async def test_foreign_or_malformed_alias_is_400(client, alias):
    """An alias on another server, or not an alias at all, cannot be created: 400 M_INVALID_PARAM."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    response = await put_alias(client, alice, alias, room_id)
    assert response.code == 400 and response.json["errcode"] == "M_INVALID_PARAM"


@pytest_twisted.ensureDeferred
async def test_bad_room_id_or_body_is_refused(client):
    """The body must carry a room id: a missing one is M_MISSING_PARAM, a malformed one M_INVALID_PARAM."""
    alice = await client.register()
    token = alice["access_token"]
    missing = await client.request("PUT", alias_path(alias_for()), {}, token=token, validate=False)
    assert missing.code == 400 and missing.json["errcode"] == "M_MISSING_PARAM"
    bad = await client.request("PUT", alias_path(alias_for()), {"room_id": "nope"}, token=token,
                               validate=False)
    assert bad.code == 400 and bad.json["errcode"] == "M_INVALID_PARAM"


@pytest_twisted.ensureDeferred
async def test_resolving_another_servers_alias_is_not_possible(client):
    """Without federation another server's alias cannot be resolved: 502, as Synapse when unreachable."""
    response = await client.request("GET", alias_path("#somewhere:other.example"))
    assert response.code == 502 and response.json["errcode"] == "M_UNKNOWN"
    malformed = await client.request("GET", alias_path("#nocolon"), validate=False)
    assert malformed.code == 400 and malformed.json["errcode"] == "M_INVALID_PARAM"


@pytest_twisted.ensureDeferred
async def test_creating_an_alias_needs_membership(client):
    """Only a joined member may map an alias to a room (as Synapse); an unknown room is refused alike."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    outsider = await put_alias(client, bob, alias_for(), room_id)
    assert outsider.code == 403 and outsider.json["errcode"] == "M_FORBIDDEN"
    unknown = await put_alias(client, bob, alias_for(), f"!nosuchroom:{SERVER}")
    assert unknown.code == 403 and unknown.json["errcode"] == "M_FORBIDDEN"
    await join(client, bob, room_id)
    assert (await put_alias(client, bob, alias_for(), room_id)).code == 200


@pytest_twisted.ensureDeferred
async def test_delete_by_non_creator_without_power_is_403(client):
    """
    An alias may be deleted by its creator or by a member with the power to
    set the canonical alias, and by no one else.
    """
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    alices, bobs = alias_for("alice"), alias_for("bob")
    assert (await put_alias(client, alice, alices, room_id)).code == 200
    assert (await put_alias(client, bob, bobs, room_id)).code == 200
    refused = await client.request("DELETE", alias_path(alices), token=bob["access_token"])
    assert refused.code == 403 and refused.json["errcode"] == "M_FORBIDDEN"
    assert (await client.request("GET", alias_path(alices))).code == 200
    # Bob created his alias; Alice (the room's admin) may delete anyone's.
    assert (await client.request("DELETE", alias_path(alices), token=alice["access_token"])).code == 200
    assert (await client.request("DELETE", alias_path(bobs), token=bob["access_token"])).code == 200
    bobs2 = alias_for("bob")
    assert (await put_alias(client, bob, bobs2, room_id)).code == 200
    assert (await client.request("DELETE", alias_path(bobs2), token=alice["access_token"])).code == 200


@pytest_twisted.ensureDeferred
async def test_server_admin_may_delete_any_alias_and_publish_any_room(client, homeserver):
    """A server admin who is not in the room may still delete its aliases and publish it (as Synapse)."""
    alice = await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    alias = alias_for()
    assert (await put_alias(client, alice, alias, room_id)).code == 200
    localpart = unique_localpart("admin")
    done = subprocess.run(
        [RUMA_ADMIN, "register-user", "--config", str(homeserver.config_path), localpart,
         "--password", "admin pass", "--admin"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    login = await client.login(localpart, password="admin pass")
    assert login.code == 200, login
    token = login.json["access_token"]
    assert (await client.request("DELETE", alias_path(alias), token=token)).code == 200
    published = await client.request("PUT", f"directory/list/room/{room_id}", {"visibility": "public"},
                                     token=token)
    assert published.code == 200
    assert (await client.request("GET", f"directory/list/room/{room_id}")).json == {"visibility": "public"}


@pytest_twisted.ensureDeferred
async def test_deleting_the_canonical_alias_removes_it_from_the_room(client):
    """Deleting an alias the room lists in m.room.canonical_alias drops it from that event (as Synapse)."""
    alice = await client.register()
    name = unique_localpart("canon")
    room_id = await create_room(client, alice, room_alias_name=name)
    alias = f"#{name}:{SERVER}"
    path = f"rooms/{room_id}/state/m.room.canonical_alias"
    before = await client.request("GET", path, token=alice["access_token"])
    assert before.json == {"alias": alias}
    assert (await client.request("DELETE", alias_path(alias), token=alice["access_token"])).code == 200
    after = await client.request("GET", path, token=alice["access_token"])
    assert after.code == 200 and after.json == {}


@pytest_twisted.ensureDeferred
async def test_local_aliases_for_members_only(client):
    """GET /rooms/{roomId}/aliases lists the room's aliases to members, and refuses outsiders with 403."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    aliases = sorted([alias_for("a"), alias_for("b")])
    for alias in aliases:
        assert (await put_alias(client, alice, alias, room_id)).code == 200
    listed = await client.request("GET", f"rooms/{room_id}/aliases", token=alice["access_token"])
    assert listed.code == 200 and sorted(listed.json["aliases"]) == aliases
    outsider = await client.request("GET", f"rooms/{room_id}/aliases", token=bob["access_token"])
    assert outsider.code == 403 and outsider.json["errcode"] == "M_FORBIDDEN"
    empty_room = await create_room(client, alice)
    empty = await client.request("GET", f"rooms/{empty_room}/aliases", token=alice["access_token"])
    assert empty.code == 200 and empty.json == {"aliases": []}


@pytest_twisted.ensureDeferred
async def test_local_aliases_of_world_readable_room_for_anyone(client):
    """Anyone may list the aliases of a room whose history is world-readable."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, initial_state=[
        {"type": "m.room.history_visibility", "content": {"history_visibility": "world_readable"}},
    ])
    alias = alias_for()
    assert (await put_alias(client, alice, alias, room_id)).code == 200
    listed = await client.request("GET", f"rooms/{room_id}/aliases", token=bob["access_token"])
    assert listed.code == 200 and listed.json == {"aliases": [alias]}


@pytest_twisted.ensureDeferred
async def test_canonical_alias_must_point_to_the_room(client):
    """An m.room.canonical_alias naming an alias of another room is refused with 400 M_BAD_ALIAS."""
    alice = await client.register()
    room_id, other = await create_room(client, alice), await create_room(client, alice)
    alias = alias_for()
    assert (await put_alias(client, alice, alias, other)).code == 200
    response = await client.request("PUT", f"rooms/{room_id}/state/m.room.canonical_alias",
                                    {"alias": alias}, token=alice["access_token"])
    assert response.code == 400 and response.json["errcode"] == "M_BAD_ALIAS"


# -- publishing ------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_publish_and_unpublish(client):
    """A room's admin publishes and unpublishes it; the room appears in and leaves /publicRooms."""
    alice = await client.register()
    term = unique_term()
    room_id = await create_room(client, alice, preset="public_chat", name=term)
    path = f"directory/list/room/{room_id}"
    assert (await client.request("GET", path)).json == {"visibility": "private"}
    assert (await search(client, alice, term))["chunk"] == []
    published = await client.request("PUT", path, {"visibility": "public"}, token=alice["access_token"])
    assert published.code == 200 and published.json == {}
    assert (await client.request("GET", path)).json == {"visibility": "public"}
    assert [r["room_id"] for r in (await search(client, alice, term))["chunk"]] == [room_id]
    hidden = await client.request("PUT", path, {"visibility": "private"}, token=alice["access_token"])
    assert hidden.code == 200
    assert (await client.request("GET", path)).json == {"visibility": "private"}
    assert (await search(client, alice, term))["chunk"] == []
    # The spec: visibility defaults to public.
    assert (await client.request("PUT", path, {}, token=alice["access_token"])).code == 200
    assert (await client.request("GET", path)).json == {"visibility": "public"}


@pytest_twisted.ensureDeferred
async def test_publishing_needs_moderator_power(client):
    """A plain member or an outsider may not change the room's directory visibility: 403."""
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    path = f"directory/list/room/{room_id}"
    for user in (bob, carol):
        refused = await client.request("PUT", path, {"visibility": "public"}, token=user["access_token"])
        assert refused.code == 403 and refused.json["errcode"] == "M_FORBIDDEN"
    assert (await client.request("GET", path)).json == {"visibility": "private"}


@pytest_twisted.ensureDeferred
async def test_directory_visibility_of_unknown_room_is_404(client):
    """Reading or setting the visibility of a room the server does not know answers 404 M_NOT_FOUND."""
    alice = await client.register()
    path = f"directory/list/room/!unknown{unique_localpart()}:{SERVER}"
    got = await client.request("GET", path)
    assert got.code == 404 and got.json["errcode"] == "M_NOT_FOUND"
    put = await client.request("PUT", path, {"visibility": "public"}, token=alice["access_token"])
    assert put.code == 404 and put.json["errcode"] == "M_NOT_FOUND"


@pytest_twisted.ensureDeferred
async def test_bad_visibility_is_400(client):
    """A visibility other than public or private is refused with 400 M_INVALID_PARAM."""
    alice = await client.register()
    room_id = await create_room(client, alice)
    response = await client.request("PUT", f"directory/list/room/{room_id}", {"visibility": "loud"},
                                    token=alice["access_token"], validate=False)
    assert response.code == 400 and response.json["errcode"] == "M_INVALID_PARAM"


# -- listing ---------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_public_room_from_create_room_is_listed_without_a_token(client):
    """createRoom with visibility public lists the room, with its details, in GET /publicRooms without a token."""
    alice = await client.register()
    term = unique_term()
    alias_name = unique_localpart("pub")
    room_id = await create_room(client, alice, visibility="public", name=f"{term} room",
                                topic="All about it", room_alias_name=alias_name)
    found = None
    since = None
    while found is None:
        query = {"limit": "50", **({"since": since} if since else {})}
        page = await client.request("GET", "publicRooms", query=query)
        assert page.code == 200, page
        found = next((r for r in page.json["chunk"] if r["room_id"] == room_id), None)
        since = page.json.get("next_batch")
        if since is None:
            break
    assert found == {
        "room_id": room_id, "num_joined_members": 1, "name": f"{term} room", "topic": "All about it",
        "canonical_alias": f"#{alias_name}:{SERVER}", "join_rule": "public",
        "world_readable": False, "guest_can_join": False,
    }


@pytest_twisted.ensureDeferred
async def test_unpublished_or_invite_only_rooms_are_not_listed(client):
    """A private room is not listed; nor a published invite-only room that is not world-readable (as Synapse)."""
    alice = await client.register()
    term = unique_term()
    await create_room(client, alice, name=term)
    invite_only = await create_room(client, alice, name=term, preset="private_chat")
    path = f"directory/list/room/{invite_only}"
    assert (await client.request("PUT", path, {"visibility": "public"}, token=alice["access_token"])).code == 200
    assert (await search(client, alice, term))["chunk"] == []
    readable = await create_room(client, alice, name=term, preset="private_chat", visibility="public",
                                 initial_state=[{"type": "m.room.history_visibility",
                                                 "content": {"history_visibility": "world_readable"}}])
    listed = await search(client, alice, term)
    assert [(r["room_id"], r["world_readable"], r["join_rule"]) for r in listed["chunk"]] == \
        [(readable, True, "invite")]


@pytest_twisted.ensureDeferred
async def test_search_by_generic_search_term(client):
    """The search term matches name, topic or canonical alias, ignoring case; other rooms are left out."""
    alice = await client.register()
    term = unique_term()
    by_name = await create_room(client, alice, visibility="public", name=f"The {term.upper()} room")
    by_topic = await create_room(client, alice, visibility="public", topic=f"about {term.lower()}!")
    by_alias = await create_room(client, alice, visibility="public", room_alias_name=f"x{term}")
    await create_room(client, alice, visibility="public", name="Unrelated")
    result = await search(client, alice, term)
    assert sorted(r["room_id"] for r in result["chunk"]) == sorted([by_name, by_topic, by_alias])
    assert result["total_room_count_estimate"] == 3
    assert "next_batch" not in result and "prev_batch" not in result


@pytest_twisted.ensureDeferred
async def test_search_by_room_type(client):
    """filter.room_types keeps rooms of the listed types; null stands for rooms without a type."""
    alice = await client.register()
    term = unique_term()
    space = await create_room(client, alice, visibility="public", name=term,
                              creation_content={"type": "m.space"})
    plain = await create_room(client, alice, visibility="public", name=term)
    spaces = await search(client, alice, term, filter={"generic_search_term": term, "room_types": ["m.space"]})
    assert [r["room_id"] for r in spaces["chunk"]] == [space]
    assert spaces["chunk"][0]["room_type"] == "m.space"
    untyped = await search(client, alice, term, filter={"generic_search_term": term, "room_types": [None]})
    assert [r["room_id"] for r in untyped["chunk"]] == [plain]


@pytest_twisted.ensureDeferred
async def test_pagination_with_limit_and_since(client):
    """
    Pages of `limit` rooms, most joined members first, chain through
    next_batch to the end and back through prev_batch.
    """
    alice, bob = await client.register(), await client.register()
    term = unique_term()
    rooms = [await create_room(client, alice, visibility="public", name=f"{term} {n}") for n in range(5)]
    await join(client, bob, rooms[3])
    expected = [rooms[3]] + sorted(r for r in rooms if r != rooms[3])
    pages, since = [], None
    while True:
        body = {"limit": 2, **({"since": since} if since else {})}
        page = await search(client, alice, term, **body)
        assert page["total_room_count_estimate"] == 5
        pages.append(page)
        since = page.get("next_batch")
        if since is None:
            break
    assert [len(p["chunk"]) for p in pages] == [2, 2, 1]
    assert [r["room_id"] for p in pages for r in p["chunk"]] == expected
    assert pages[0]["chunk"][0]["num_joined_members"] == 2
    assert "prev_batch" not in pages[0] and "prev_batch" in pages[2]
    back = await search(client, alice, term, limit=2, since=pages[2]["prev_batch"])
    assert back["chunk"] == pages[1]["chunk"]
    assert "next_batch" in back and "prev_batch" in back
    first = await search(client, alice, term, limit=2, since=back["prev_batch"])
    assert first["chunk"] == pages[0]["chunk"] and "prev_batch" not in first
    assert "next_batch" in first


@pytest_twisted.ensureDeferred
async def test_get_pagination_without_token(client):
    """GET /publicRooms pages without a token: every published room once, each page at most `limit`."""
    alice = await client.register()
    term = unique_term()
    mine = {await create_room(client, alice, visibility="public", name=term) for _ in range(3)}
    seen, since = [], None
    while True:
        query = {"limit": "2", **({"since": since} if since else {})}
        page = await client.request("GET", "publicRooms", query=query)
        assert page.code == 200, page
        assert len(page.json["chunk"]) <= 2
        seen += [r["room_id"] for r in page.json["chunk"]]
        since = page.json.get("next_batch")
        if since is None:
            break
    assert len(seen) == len(set(seen))
    assert mine <= set(seen)


@pytest_twisted.ensureDeferred
async def test_public_rooms_bad_requests(client):
    """A foreign token, a bad limit or a bad server name is 400; another server's directory is out of reach (502)."""
    alice = await client.register()
    bad_token = await client.request("GET", "publicRooms", query={"since": "garbage!"})
    assert bad_token.code == 400 and bad_token.json["errcode"] == "M_INVALID_PARAM"
    for limit in ("-1", "two"):
        bad_limit = await client.request("GET", "publicRooms", query={"limit": limit}, validate=False)
        assert bad_limit.code == 400 and bad_limit.json["errcode"] == "M_INVALID_PARAM"
    bad_server = await client.request("GET", "publicRooms", query={"server": "not a server"}, validate=False)
    assert bad_server.code == 400 and bad_server.json["errcode"] == "M_INVALID_PARAM"
    other = await client.request("GET", "publicRooms", query={"server": "other.example"})
    assert other.code == 502
    ours = await client.request("GET", "publicRooms", query={"server": SERVER, "limit": "1"})
    assert ours.code == 200
    no_token = await client.request("POST", "publicRooms", {})
    assert no_token.code == 401
    bad_filter = await client.request("POST", "publicRooms", {"filter": "x"}, token=alice["access_token"],
                                      validate=False)
    assert bad_filter.code == 400 and bad_filter.json["errcode"] == "M_BAD_JSON"
    network = await client.request("POST", "publicRooms", {"third_party_instance_id": "irc"},
                                   token=alice["access_token"])
    assert network.code == 200 and network.json["chunk"] == []
