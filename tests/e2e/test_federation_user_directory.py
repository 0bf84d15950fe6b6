"""
Other servers' users in the user directory, with two ruma_tx daemons: a
user of B joined to a room of A is found by A's users by the name of their
join event, under the same rules as local users (a room mate, or a member
of a public room); renames follow, and a user who left is not found.
"""
from __future__ import annotations

import itertools
import os
from urllib.parse import quote

import pytest
import pytest_twisted

from federation_helpers import SyncWatcher, invite_to, membership_of, shared_room, timeline_events
from room_helpers import create_room, ok

_words = itertools.count(1)


def word(prefix: str) -> str:
    """A word no other user has in their name."""
    return f"{prefix}{os.getpid()}x{next(_words)}"


@pytest.fixture(scope="module")
def pair(start_federating):
    return start_federating(), start_federating()


@pytest.fixture
def servers(pair, make_client):
    return make_client(pair[0]), make_client(pair[1])


async def named(client, name: str) -> dict:
    """A new user of C{client}'s server with display name C{name}."""
    user = await client.register()
    await ok(client, "PUT", f"profile/{quote(user['user_id'])}/displayname", {"displayname": name}, user=user)
    return user


async def found(client, searcher: dict, term: str) -> dict[str, str | None]:
    """C{user_id -> display name} of the users C{searcher} finds with C{term}."""
    answer = await ok(client, "POST", "user_directory/search", {"search_term": term}, user=searcher)
    return {result["user_id"]: result.get("display_name") for result in answer["results"]}


def member_named(user_id: str, name: str, room_id: str):
    """A /sync predicate: C{user_id}'s join event in the room, with display name C{name}."""
    def found_it(response: dict) -> dict | None:
        for event in timeline_events(response, room_id):
            if event.get("type") == "m.room.member" and event.get("state_key") == user_id \
                    and event["content"].get("membership") == "join" and event["content"].get("displayname") == name:
                return event
        return None
    return found_it


@pytest_twisted.ensureDeferred
async def test_member_of_a_public_room_is_found_by_name(servers):
    """bob of B, joined to alice's public room of A, is found by name by alice and by dave who is in no room."""
    a, b = servers
    name = word("Bobby")
    alice, bob, room_id = await shared_room(servers)
    await ok(b, "PUT", f"profile/{quote(bob['user_id'])}/displayname", {"displayname": f"{name} Remote"}, user=bob)
    await SyncWatcher(a, alice).wait_for(member_named(bob["user_id"], f"{name} Remote", room_id), "bob's new name")
    dave = await a.register()

    assert await found(a, alice, name) == {bob["user_id"]: f"{name} Remote"}
    assert await found(a, dave, name.lower()) == {bob["user_id"]: f"{name} Remote"}
    # By the localpart, as local users are.
    assert bob["user_id"] in await found(a, dave, bob["user_id"][1:].split(":")[0])


@pytest_twisted.ensureDeferred
async def test_private_room_mate_is_found_only_by_room_mates(servers):
    """carol of B, in alice's private room only, is found by alice; dave of A, sharing no room, does not find her."""
    a, b = servers
    name = word("Carola")
    alice, dave = await a.register(), await a.register()
    carol = await named(b, name)
    room_id = await create_room(a, alice, preset="private_chat")
    await ok(a, "POST", f"rooms/{quote(room_id)}/invite", {"user_id": carol["user_id"]}, user=alice)
    await SyncWatcher(b, carol).wait_for(invite_to(room_id), "the invite")
    await ok(b, "POST", f"rooms/{quote(room_id)}/join", {}, user=carol)
    alice_sync = SyncWatcher(a, alice)
    await alice_sync.wait_for(membership_of(carol["user_id"], "join", room_id), "carol's join")

    assert await found(a, alice, name) == {carol["user_id"]: name}
    assert await found(a, dave, name) == {}

    # Once she has left, nobody finds her.
    await ok(b, "POST", f"rooms/{quote(room_id)}/leave", {}, user=carol)
    await alice_sync.wait_for(membership_of(carol["user_id"], "leave", room_id), "carol's leave")
    assert await found(a, alice, name) == {}


@pytest_twisted.ensureDeferred
async def test_members_of_a_public_room_joined_through_another_server_are_found(servers):
    """erin's public room of B, joined by alice of A: dave of A, in no room, finds erin by name."""
    a, b = servers
    name = word("Erina")
    erin = await named(b, name)
    alice, dave = await a.register(), await a.register()
    room_id = await create_room(b, erin, preset="public_chat")
    await ok(a, "POST", f"join/{quote(room_id)}", {}, user=alice, query={"via": b.server.server_name})

    assert await found(a, dave, name) == {erin["user_id"]: name}


@pytest_twisted.ensureDeferred
async def test_rename_replaces_the_old_name(servers):
    """After bob of B renames himself, alice of A finds him by his new name, not by the old one."""
    a, b = servers
    old, new = word("Oldname"), word("Newname")
    alice, bob, room_id = await shared_room(servers)
    alice_sync = SyncWatcher(a, alice)
    for name in (old, new):
        await ok(b, "PUT", f"profile/{quote(bob['user_id'])}/displayname", {"displayname": name}, user=bob)
        await alice_sync.wait_for(member_named(bob["user_id"], name, room_id), f"bob named {name}")

    assert await found(a, alice, new) == {bob["user_id"]: new}
    assert await found(a, alice, old) == {}
