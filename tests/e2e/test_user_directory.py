"""
The user directory (POST /user_directory/search) through the real daemon:
who may be found (room mates, members of public and world-readable rooms,
everyone with search_all_users), ranking, profile and membership changes,
deactivated users, and bad requests.
"""
from __future__ import annotations

import itertools
import os

import pytest
import pytest_twisted

_words = itertools.count(1)
AVATAR = "mxc://test.local/AvatarOfSomeone"


def word(prefix: str = "zork") -> str:
    """A word no other test's users have in their names."""
    return f"{prefix}{os.getpid()}q{next(_words)}"


async def set_name(client, user: dict, name: str) -> None:
    response = await client.request("PUT", f"profile/{user['user_id']}/displayname", {"displayname": name},
                                    token=user["access_token"])
    assert response.code == 200, response


async def create_room(client, user: dict, **body) -> str:
    response = await client.request("POST", "createRoom", body, token=user["access_token"])
    assert response.code == 200, response
    return response.json["room_id"]


async def join(client, user: dict, room_id: str) -> None:
    response = await client.request("POST", f"rooms/{room_id}/join", {}, token=user["access_token"])
    assert response.code == 200, response


async def search(client, user: dict, term: str, **extra) -> dict:
    response = await client.request("POST", "user_directory/search", {"search_term": term, **extra},
                                    token=user["access_token"])
    assert response.code == 200, response
    return response.json


async def found(client, user: dict, term: str) -> list[str]:
    return [r["user_id"] for r in (await search(client, user, term))["results"]]


async def named_user(client, name: str) -> dict:
    user = await client.register()
    await set_name(client, user, name)
    return user


@pytest_twisted.ensureDeferred
async def test_room_mates_are_found_strangers_are_not(client):
    """A user sharing a private room with the searcher is found; one sharing none is not."""
    name = word()
    alice = await client.register()
    mate = await named_user(client, f"{name} Mate")
    stranger = await named_user(client, f"{name} Stranger")
    room_id = await create_room(client, alice, preset="private_chat", invite=[mate["user_id"]])
    await join(client, mate, room_id)
    body = await search(client, alice, name)
    assert [r["user_id"] for r in body["results"]] == [mate["user_id"]]
    assert body["results"][0]["display_name"] == f"{name} Mate"
    assert body["limited"] is False
    # The stranger, in a private room of their own, is still not found.
    await create_room(client, stranger, preset="private_chat")
    assert await found(client, alice, name) == [mate["user_id"]]
    # Room mates find each other both ways.
    assert alice["user_id"] in await found(client, mate, alice["user_id"])


@pytest_twisted.ensureDeferred
async def test_members_of_public_and_world_readable_rooms_are_found(client):
    """Anyone finds members of a public room, or of a world-readable one, until the room stops being either."""
    name = word()
    searcher = await client.register()
    member = await named_user(client, f"{name} Public")
    room_id = await create_room(client, member, preset="public_chat")
    assert await found(client, searcher, name) == [member["user_id"]]

    rules = await client.request("PUT", f"rooms/{room_id}/state/m.room.join_rules/",
                                 {"join_rule": "invite"}, token=member["access_token"])
    assert rules.code == 200, rules
    assert await found(client, searcher, name) == []

    readable = await client.request("PUT", f"rooms/{room_id}/state/m.room.history_visibility/",
                                    {"history_visibility": "world_readable"}, token=member["access_token"])
    assert readable.code == 200, readable
    assert await found(client, searcher, name) == [member["user_id"]]


@pytest_twisted.ensureDeferred
async def test_membership_changes_count_at_once(client):
    """A room mate who leaves the only shared room is no longer found; one who joins is found at once."""
    name = word()
    alice = await client.register()
    bob = await named_user(client, f"{name} Bob")
    room_id = await create_room(client, alice, preset="private_chat", invite=[bob["user_id"]])
    assert await found(client, alice, name) == []  # invited is not joined
    await join(client, bob, room_id)
    assert await found(client, alice, name) == [bob["user_id"]]
    left = await client.request("POST", f"rooms/{room_id}/leave", {}, token=bob["access_token"])
    assert left.code == 200, left
    assert await found(client, alice, name) == []


@pytest_twisted.ensureDeferred
async def test_searcher_is_found_only_through_a_public_room(client):
    """As Synapse: a searcher never finds themself through a shared room, but does through a public room."""
    name = word()
    alice = await named_user(client, f"{name} Alice")
    await create_room(client, alice, preset="private_chat")
    assert await found(client, alice, name) == []
    await create_room(client, alice, preset="public_chat")
    assert await found(client, alice, name) == [alice["user_id"]]


@pytest_twisted.ensureDeferred
async def test_ranking_exact_then_prefix_then_word(client):
    """Exact name matches come first, then names starting with the term, then names with a word starting so."""
    name = word()
    searcher = await client.register()
    later_word = await named_user(client, f"Someone {name}zz")
    whole_prefix = await named_user(client, f"{name}yy Someone")
    exact = await named_user(client, name.upper())   # case does not matter
    room_id = await create_room(client, searcher, preset="public_chat")
    for user in (later_word, whole_prefix, exact):
        await join(client, user, room_id)
    assert await found(client, searcher, name) == [exact["user_id"], whole_prefix["user_id"],
                                                     later_word["user_id"]]


@pytest_twisted.ensureDeferred
async def test_words_of_ids_and_names_match_by_prefix(client):
    """Every word of the term must start a word of the localpart or display name; a whole user id finds its user."""
    first, last = word("ada"), word("lovelace")
    searcher = await client.register()
    user = await named_user(client, f"{first.capitalize()} {last.capitalize()}")
    room_id = await create_room(client, searcher, preset="public_chat")
    await join(client, user, room_id)
    for term in (f"{first[:5]}", f"{last[:6]} {first[:4]}", f"{first}-{last}", user["user_id"],
                 user["user_id"].split(":")[0]):
        assert await found(client, searcher, term) == [user["user_id"]], term
    assert await found(client, searcher, f"{first} nosuchword{os.getpid()}") == []
    assert await found(client, searcher, "  ") == []


@pytest_twisted.ensureDeferred
async def test_profile_changes_are_reflected(client):
    """A new display name finds the user and the old one no longer does; the avatar is in the result."""
    old, new = word("old"), word("new")
    searcher = await client.register()
    bob = await named_user(client, old)
    room_id = await create_room(client, searcher, preset="public_chat")
    await join(client, bob, room_id)
    assert await found(client, searcher, old) == [bob["user_id"]]
    await set_name(client, bob, new)
    avatar = await client.request("PUT", f"profile/{bob['user_id']}/avatar_url", {"avatar_url": AVATAR},
                                  token=bob["access_token"])
    assert avatar.code == 200, avatar
    assert await found(client, searcher, old) == []
    body = await search(client, searcher, new)
    assert body["results"] == [{"user_id": bob["user_id"], "display_name": new, "avatar_url": AVATAR}]


@pytest_twisted.ensureDeferred
async def test_limit_and_limited(client):
    """limit caps the results and limited says more matched; the default limit is 10."""
    name = word()
    searcher = await client.register()
    room_id = await create_room(client, searcher, preset="public_chat")
    users = []
    for i in range(12):
        user = await named_user(client, f"{name} number{i}")
        await join(client, user, room_id)
        users.append(user["user_id"])
    two = await search(client, searcher, name, limit=2)
    assert len(two["results"]) == 2 and two["limited"] is True
    default = await search(client, searcher, name)
    assert len(default["results"]) == 10 and default["limited"] is True
    everyone = await search(client, searcher, name, limit=50)
    assert sorted(r["user_id"] for r in everyone["results"]) == sorted(users)
    assert everyone["limited"] is False


@pytest_twisted.ensureDeferred
async def test_bad_requests(client):
    """A missing search_term is 400 M_MISSING_PARAM, a wrongly typed field 400 M_BAD_JSON; guests may not search."""
    user = await client.register()
    token = user["access_token"]
    missing = await client.request("POST", "user_directory/search", {"limit": 3}, token=token)
    assert (missing.code, missing.json["errcode"]) == (400, "M_MISSING_PARAM")
    for body in ({"search_term": 5}, {"search_term": "a", "limit": "3"}, {"search_term": "a", "limit": True}):
        bad = await client.request("POST", "user_directory/search", body, token=token)
        assert (bad.code, bad.json["errcode"]) == (400, "M_BAD_JSON"), body
    guest = await client.register_guest()
    refused = await client.request("POST", "user_directory/search", {"search_term": "a"},
                                   token=guest["access_token"])
    assert (refused.code, refused.json["errcode"]) == (403, "M_GUEST_ACCESS_FORBIDDEN")


@pytest.fixture(scope="module")
def all_users_server(start_homeserver):
    return start_homeserver("[user_directory]\nsearch_all_users = true\n[rate_limits]\nenabled = false\n")


@pytest_twisted.ensureDeferred
async def test_search_all_users_finds_strangers_but_not_deactivated(all_users_server, make_client):
    """With search_all_users every other local user is found, never the searcher nor a deactivated user."""
    client = make_client(all_users_server)
    name = word()
    alice = await named_user(client, f"{name} Alice")
    stranger = await named_user(client, f"{name} Stranger")
    leaving = await named_user(client, f"{name} Leaving")
    assert sorted(await found(client, alice, name)) == sorted([stranger["user_id"], leaving["user_id"]])
    deactivated = await client.with_password_uia("POST", "account/deactivate", {}, leaving)
    assert deactivated.code == 200, deactivated
    assert await found(client, alice, name) == [stranger["user_id"]]
    assert await found(client, alice, leaving["user_id"]) == []
