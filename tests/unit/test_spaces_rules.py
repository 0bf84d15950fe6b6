"""
Spaces, room summaries, mutual rooms and reports: the pure rules, and the
hierarchy walk on a fake store (no daemon, no database, a fake clock).
"""
from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet.task import Clock

from ruma_tx.matrix.errors import MatrixError
from ruma_tx.matrix.reports import MAX_REASON_LENGTH, ReportRequest, parse_report
from ruma_tx.matrix.spaces import (
    RoomSummaryState,
    SpaceChild,
    decode_mutual_rooms_token,
    encode_mutual_rooms_token,
    may_preview,
    ordered_children,
    parse_positive,
    summary_entry,
)
from ruma_tx.services.spaces import HIERARCHY_TOKEN_LIFETIME_MS, MutualRooms, RoomSummaries


def _child(room_id: str, ts: int, **content) -> SpaceChild:
    return SpaceChild(room_id, {"via": ["example.org"], **content}, "@admin:example.org", ts)


def _room(room_id: str, *, join_rule: str | None = "invite", world_readable: bool = False,
          space: bool = False, allow: list | None = None, **state) -> RoomSummaryState:
    contents = {"m.room.create": {"type": "m.space"} if space else {}, **state}
    if join_rule is not None:
        contents["m.room.join_rules"] = {"join_rule": join_rule, **({"allow": allow} if allow else {})}
    if world_readable:
        contents["m.room.history_visibility"] = {"history_visibility": "world_readable"}
    return RoomSummaryState(room_id, "12", 1, contents)


def _errcode(fn, *args, **kwargs) -> str:
    with pytest.raises(MatrixError) as caught:
        fn(*args, **kwargs)
    return caught.value.errcode


def test_children_in_the_spec_example_order():
    """The spec's own example: valid orders by code point, then by timestamp."""
    children = [
        _child("!b:example.org", 1640341000000, order=" "),
        _child("!a:example.org", 1640141000000, order="aaaa"),
        _child("!c:example.org", 1640841000000, order="first"),
        _child("!e:example.org", 1640641000000),
        _child("!d:example.org", 1640741000000),
    ]
    assert [c.room_id for c in ordered_children(children)] == [
        "!b:example.org", "!a:example.org", "!c:example.org", "!e:example.org", "!d:example.org"]


def test_invalid_orders_and_ties():
    """An order too long or outside space..tilde counts as none; ties go by timestamp, then room id."""
    children = [_child("!z:hs", 5, order="x" * 51), _child("!y:hs", 5, order="é"), _child("!x:hs", 5),
                _child("!w:hs", 9, order="m"), _child("!v:hs", 1, order="m")]
    assert [c.room_id for c in ordered_children(children)] == ["!v:hs", "!w:hs", "!x:hs", "!y:hs", "!z:hs"]


def test_unlinked_and_unsuggested_children_are_left_out():
    """A child without a valid via is no child; suggested_only keeps suggested ones."""
    children = [SpaceChild("!gone:hs", {}, "@a:hs", 1), SpaceChild("!bad:hs", {"via": [1]}, "@a:hs", 2),
                _child("!plain:hs", 3), _child("!tip:hs", 4, suggested=True)]
    assert [c.room_id for c in ordered_children(children)] == ["!plain:hs", "!tip:hs"]
    assert [c.room_id for c in ordered_children(children, suggested_only=True)] == ["!tip:hs"]
    assert _child("!tip:hs", 4).stripped() == {
        "type": "m.space.child", "state_key": "!tip:hs", "content": {"via": ["example.org"]},
        "sender": "@admin:example.org", "origin_server_ts": 4}


def test_summary_entry_fields():
    """A summary has the directory's fields, the version, Megolm encryption and a restricted room's allow list."""
    room = _room("!r:hs", join_rule="restricted", allow=[
        {"type": "m.room_membership", "room_id": "!space:hs"}, {"type": "other"}],
        **{"m.room.name": {"name": "R"}, "m.room.encryption": {"algorithm": "m.megolm.v1.aes-sha2"}})
    assert summary_entry(room) == {
        "room_id": "!r:hs", "num_joined_members": 1, "world_readable": False, "guest_can_join": False,
        "name": "R", "join_rule": "restricted", "room_version": "12",
        "encryption": "m.megolm.v1.aes-sha2", "allowed_room_ids": ["!space:hs"]}
    other = _room("!o:hs", space=True, **{"m.room.encryption": {"algorithm": "x"}})
    assert "encryption" not in summary_entry(other)
    assert summary_entry(other)["room_type"] == "m.space"


@pytest.mark.parametrize("room, membership, joined, visible", [
    (_room("!r:hs"), "join", set(), True),
    (_room("!r:hs"), "invite", set(), True),
    (_room("!r:hs"), None, set(), False),
    (_room("!r:hs"), "leave", set(), False),
    (_room("!r:hs", join_rule="public"), None, set(), True),
    (_room("!r:hs", join_rule="knock"), None, set(), True),
    (_room("!r:hs", join_rule="knock_restricted"), None, set(), True),
    (_room("!r:hs", join_rule=None), None, set(), False),
    (_room("!r:hs", world_readable=True), None, set(), True),
    (_room("!r:hs", join_rule="public"), "ban", set(), False),
    (_room("!r:hs", world_readable=True), "ban", set(), True),
    (_room("!r:hs", join_rule="restricted", allow=[{"type": "m.room_membership", "room_id": "!s:hs"}]),
     None, {"!s:hs"}, True),
    (_room("!r:hs", join_rule="restricted", allow=[{"type": "m.room_membership", "room_id": "!s:hs"}]),
     None, {"!t:hs"}, False),
], ids=["joined", "invited", "stranger", "left", "public", "knock", "knock_restricted", "no-rule",
        "world-readable", "banned-public", "banned-world-readable", "restricted-member", "restricted-other"])
def test_who_may_preview(room, membership, joined, visible):
    """The spec's hierarchy visibility: members, invitees, open rooms and restricted rooms' allowed members."""
    assert may_preview(room, membership, joined) is visible


def test_integer_parameters():
    """limit must be at least 1, max_depth at least 0; anything else is M_INVALID_PARAM."""
    assert parse_positive(None, "limit", minimum=1) is None
    assert parse_positive("0", "max_depth", minimum=0) == 0
    for bad in ("0", "-1", "1.5", "x", ""):
        assert _errcode(parse_positive, bad, "limit", minimum=1) == "M_INVALID_PARAM"


def test_mutual_rooms_token():
    """A token carries the last room id; one we did not issue is M_INVALID_PARAM."""
    assert decode_mutual_rooms_token(encode_mutual_rooms_token("!abc:hs")) == "!abc:hs"
    assert _errcode(decode_mutual_rooms_token, "!!!") == "M_INVALID_PARAM"
    assert _errcode(decode_mutual_rooms_token, encode_mutual_rooms_token("@user:hs")) == "M_INVALID_PARAM"


def test_report_bodies():
    """Room and user reports need a reason; an event report's score must be an integer; reasons are bounded."""
    assert parse_report({}, reason_required=False, with_score=True) == ReportRequest(None)
    assert parse_report({"reason": "", "score": -100}, reason_required=False, with_score=True) \
        == ReportRequest("", -100)
    assert parse_report({"reason": "x", "score": "bad"}, reason_required=True) == ReportRequest("x")
    assert _errcode(parse_report, {}, reason_required=True) == "M_MISSING_PARAM"
    assert _errcode(parse_report, {"reason": 5}, reason_required=True) == "M_BAD_JSON"
    assert _errcode(parse_report, {"score": 1.5}, reason_required=False, with_score=True) == "M_BAD_JSON"
    assert _errcode(parse_report, {"reason": "x" * (MAX_REASON_LENGTH + 1)}, reason_required=True) \
        == "M_BAD_JSON"


# -- the hierarchy walk ----------------------------------------------------------


class FakeSummaries:
    """Rooms and their children, as the room summary store gives them."""

    def __init__(self, rooms: list[RoomSummaryState], children: dict[str, list[SpaceChild]]):
        self.rooms = {room.room_id: room for room in rooms}
        self.children = children

    async def get_room_summaries(self, room_ids):
        return {room_id: self.rooms[room_id] for room_id in room_ids if room_id in self.rooms}

    async def get_space_children(self, room_id):
        return self.children.get(room_id, [])


class FakeEvents:
    def __init__(self, memberships: dict[str, str]):
        self.memberships = memberships

    async def get_rooms_for_user(self, user_id):
        return {room_id: (membership, 1) for room_id, membership in self.memberships.items()}


def _tree() -> tuple[FakeSummaries, FakeEvents]:
    """
    !root (space) -> !a, !sub (space), !private, !remote; !sub -> !b, !root (a loop).
    """
    rooms = [_room("!root:hs", space=True, join_rule="public"), _room("!a:hs", join_rule="public"),
             _room("!sub:hs", space=True, join_rule="public"), _room("!b:hs", join_rule="public"),
             _room("!private:hs")]
    children = {"!root:hs": [_child("!a:hs", 1), _child("!sub:hs", 2), _child("!private:hs", 3),
                             _child("!remote:elsewhere", 4)],
                "!sub:hs": [_child("!b:hs", 1), _child("!root:hs", 2)]}
    return FakeSummaries(rooms, children), FakeEvents({"!root:hs": "join"})


def _hierarchy(clock: Clock | None = None) -> RoomSummaries:
    summaries, events = _tree()
    return RoomSummaries(summaries=summaries, events=events, directory=None, clock=clock or Clock())


@pytest_twisted.ensureDeferred
async def test_hierarchy_is_depth_first_and_breaks_loops():
    """Each room once, a child space's rooms before the next child; private and unknown rooms left out."""
    page = await _hierarchy().hierarchy("@u:hs", "!root:hs")
    assert [room["room_id"] for room in page["rooms"]] == ["!root:hs", "!a:hs", "!sub:hs", "!b:hs"]
    assert "next_batch" not in page
    assert [c["state_key"] for c in page["rooms"][0]["children_state"]] == [
        "!a:hs", "!sub:hs", "!private:hs", "!remote:elsewhere"]
    assert page["rooms"][1]["children_state"] == []


@pytest_twisted.ensureDeferred
async def test_hierarchy_pages_and_depth():
    """Pages continue where the last stopped; max_depth 1 stops below the root's children."""
    hierarchy = _hierarchy()
    first = await hierarchy.hierarchy("@u:hs", "!root:hs", limit=2)
    second = await hierarchy.hierarchy("@u:hs", "!root:hs", limit=2, from_token=first["next_batch"])
    assert [r["room_id"] for r in first["rooms"] + second["rooms"]] == [
        "!root:hs", "!a:hs", "!sub:hs", "!b:hs"]
    assert "next_batch" not in second
    shallow = await hierarchy.hierarchy("@u:hs", "!root:hs", max_depth=1)
    assert [r["room_id"] for r in shallow["rooms"]] == ["!root:hs", "!a:hs", "!sub:hs"]


@pytest_twisted.ensureDeferred
async def test_hierarchy_token_is_bound_to_its_query_and_expires():
    """A token fails for another query or user, and after five minutes."""
    clock = Clock()
    hierarchy = _hierarchy(clock)
    token = (await hierarchy.hierarchy("@u:hs", "!root:hs", limit=1))["next_batch"]
    for kwargs in ({"max_depth": 3}, {"suggested_only": True}):
        with pytest.raises(MatrixError) as caught:
            await hierarchy.hierarchy("@u:hs", "!root:hs", limit=1, from_token=token, **kwargs)
        assert caught.value.errcode == "M_INVALID_PARAM"
    with pytest.raises(MatrixError):
        await hierarchy.hierarchy("@other:hs", "!root:hs", limit=1, from_token=token)
    assert (await hierarchy.hierarchy("@u:hs", "!root:hs", limit=1, from_token=token))["rooms"]
    clock.advance(HIERARCHY_TOKEN_LIFETIME_MS / 1000 + 1)
    with pytest.raises(MatrixError):
        await hierarchy.hierarchy("@u:hs", "!root:hs", limit=1, from_token=token)


@pytest_twisted.ensureDeferred
async def test_hierarchy_root_must_be_visible():
    """A root the requester may not preview, or one this server lacks, is 403."""
    hierarchy = _hierarchy()
    for room_id in ("!private:hs", "!unknown:hs"):
        with pytest.raises(MatrixError) as caught:
            await hierarchy.hierarchy("@u:hs", room_id)
        assert caught.value.errcode == "M_FORBIDDEN"


class FakeMutual:
    def __init__(self, rooms):
        self.rooms = rooms

    async def get_mutual_rooms(self, user_id, other_user_id):
        return list(self.rooms)


@pytest_twisted.ensureDeferred
async def test_mutual_rooms_pages():
    """Rooms come sorted by id, a hundred a page, with the total count on every page."""
    rooms = [f"!{n:03d}:hs" for n in range(150)]
    mutual = MutualRooms(summaries=FakeMutual(rooms[::-1]))
    first = await mutual.mutual_rooms("@a:hs", "@b:hs")
    assert (first["joined"], first["count"]) == (rooms[:100], 150)
    second = await mutual.mutual_rooms("@a:hs", "@b:hs", first["next_batch"])
    assert (second["joined"], second["count"]) == (rooms[100:], 150)
    assert "next_batch" not in second
