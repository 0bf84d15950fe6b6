"""
Room discovery over federation: another server's published room directory asked for our
clients (L{ruma_tx.services.remote_queries.RemotePublicRooms}), and the space hierarchy other
servers may ask of us (L{ruma_tx.services.spaces.RoomSummaries.hierarchy_for_server}), on fakes.
"""
from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet.task import Clock

from ruma_tx.http.errors import status_code
from ruma_tx.matrix.directory import checked_public_rooms
from ruma_tx.matrix.errors import MatrixError
from ruma_tx.matrix.spaces import RoomSummaryState, SpaceChild
from ruma_tx.services.directory import Directory
from ruma_tx.services.ports.federation import FederationDenied, FederationError
from ruma_tx.services.remote_queries import RemotePublicRooms
from ruma_tx.services.spaces import RoomSummaries

ROOM = {"room_id": "!r:b.example", "num_joined_members": 3, "world_readable": False, "guest_can_join": False,
        "name": "Remote"}


class FakeFederation:
    def __init__(self, answer) -> None:
        self.answer = answer
        self.requests: list[tuple] = []

    async def _answer(self, *request):
        self.requests.append(request)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    async def get_json(self, destination, path, *, query=None, timeout_s=None):
        return await self._answer("GET", destination, path, query)

    async def post_json(self, destination, path, body, *, query=None, timeout_s=None):
        return await self._answer("POST", destination, path, body)


def directory(federation) -> Directory:
    return Directory(directory=None, events=None, creator=None, accounts=None, server_name="a.example",
                     remote_rooms=RemotePublicRooms(federation=federation))


def test_remote_pages_keep_only_well_formed_rooms():
    """Entries missing a required field or with the wrong types are dropped; tokens pass when strings."""
    page = checked_public_rooms({"chunk": [ROOM, {"room_id": "!x:b"}, {**ROOM, "num_joined_members": "3"}, 7],
                                 "next_batch": "n", "prev_batch": 4, "total_room_count_estimate": 9})
    assert page == {"chunk": [ROOM], "next_batch": "n", "total_room_count_estimate": 9}
    assert checked_public_rooms({"chunk": "nope"}) == {"chunk": []}


@pytest_twisted.ensureDeferred
async def test_another_servers_directory_is_asked_with_get_or_post():
    """Without a filter the other server gets a GET with limit and since; with one, a POST with it."""
    federation = FakeFederation({"chunk": [ROOM], "next_batch": "tok"})
    page = await directory(federation).public_rooms(server="b.example", limit=5, since="s")
    assert page == {"chunk": [ROOM], "next_batch": "tok"}
    assert federation.requests[0] == ("GET", "b.example", "/_matrix/federation/v1/publicRooms",
                                      {"limit": "5", "since": "s"})
    await directory(federation).public_rooms(server="b.example", search_term="chat", room_types=[None])
    assert federation.requests[1] == ("POST", "b.example", "/_matrix/federation/v1/publicRooms",
                                      {"filter": {"generic_search_term": "chat", "room_types": [None]},
                                       "include_all_networks": False})


@pytest_twisted.ensureDeferred
async def test_an_unreachable_or_denied_directory_is_an_error():
    """A server that cannot be reached gives 502; one federation may not contact gives 403."""
    for error, code in ((FederationError("b.example", "refused"), 502),
                        (FederationDenied("b.example", "not allowed"), 403)):
        with pytest.raises(MatrixError) as caught:
            await directory(FakeFederation(error)).public_rooms(server="b.example")
        assert status_code(caught.value) == code


def _room(room_id: str, join_rule: str, *, space: bool = False, allow: list[str] = ()) -> RoomSummaryState:
    rules: dict = {"join_rule": join_rule}
    if allow:
        rules["allow"] = [{"type": "m.room_membership", "room_id": r} for r in allow]
    return RoomSummaryState(room_id, "12", 2, {"m.room.create": {"type": "m.space"} if space else {},
                                              "m.room.join_rules": rules})


class FakeSummaries:
    """Rooms, a space's children, and the rooms each server has members in."""

    def __init__(self, rooms, children, members) -> None:
        self.rooms = {room.room_id: room for room in rooms}
        self.children = children
        self.members = members

    async def get_room_summaries(self, room_ids):
        return {room_id: self.rooms[room_id] for room_id in room_ids if room_id in self.rooms}

    async def get_space_children(self, room_id):
        return [SpaceChild(child, {"via": ["a.example"]}, "@admin:a.example", 1) for child in self.children]

    async def get_rooms_with_server(self, server_name, room_ids):
        return {room_id for room_id in room_ids if server_name in self.members.get(room_id, ())}


def summaries(root_rule: str = "public") -> RoomSummaries:
    store = FakeSummaries(
        rooms=[_room("!space:a", root_rule, space=True), _room("!open:a", "public"), _room("!closed:a", "invite"),
               _room("!restricted:a", "restricted", allow=["!club:a"]), _room("!theirs:a", "invite")],
        children=["!open:a", "!closed:a", "!restricted:a", "!theirs:a", "!unknown:a"],
        members={"!club:a": {"b.example"}, "!theirs:a": {"b.example"}})
    return RoomSummaries(summaries=store, events=None, directory=None, clock=Clock())


@pytest_twisted.ensureDeferred
async def test_a_server_sees_the_children_it_could_join_and_is_told_of_the_others():
    """Children open to anyone, restricted to a room the server is in, or with its members are shown;
    an invite-only one is listed as inaccessible; one this server does not have is left out."""
    answer = await summaries().hierarchy_for_server("b.example", "!space:a")
    assert answer["room"]["room_id"] == "!space:a"
    assert [state["state_key"] for state in answer["room"]["children_state"]] == [
        "!closed:a", "!open:a", "!restricted:a", "!theirs:a", "!unknown:a"]
    assert [room["room_id"] for room in answer["children"]] == ["!open:a", "!restricted:a", "!theirs:a"]
    assert answer["inaccessible_children"] == ["!closed:a"]
    other = await summaries().hierarchy_for_server("c.example", "!space:a")
    assert [room["room_id"] for room in other["children"]] == ["!open:a"]


@pytest_twisted.ensureDeferred
async def test_a_space_the_server_could_not_join_is_not_found():
    """An invite-only space the asking server has no member in is a 404, as is an unknown room."""
    for room_id in ("!space:a", "!nowhere:a"):
        with pytest.raises(MatrixError) as caught:
            await summaries("invite").hierarchy_for_server("c.example", room_id)
        assert (status_code(caught.value), caught.value.errcode) == (404, "M_NOT_FOUND")
