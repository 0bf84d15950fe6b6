"""
Tests for L{ruma_tx.matrix.room_admin}: the room list's orders and who
makes a user a room admin with which power level.
"""

import pytest

from ruma_tx.matrix.errors import BadRequest
from ruma_tx.matrix.room_admin import check_local_user, room_admin_grant, room_order
from ruma_tx.matrix.room_versions import V10, V12

ALICE, BOB, CAROL = "@alice:here", "@bob:here", "@carol:here"


def state(version, *, sender=ALICE, levels=None):
    create = {"type": "m.room.create", "state_key": "", "sender": sender,
              "content": {"room_version": version.identifier, **({"creator": sender} if version is V10 else {})}}
    result = {("m.room.create", ""): create}
    if levels is not None:
        result[("m.room.power_levels", "")] = {"type": "m.room.power_levels", "state_key": "", "sender": sender,
                                               "content": levels}
    return result


def test_orders_run_as_synapse_lists_them():
    assert room_order("name", backwards=False) == ("name", True)
    assert room_order("joined_members", backwards=False) == ("joined_members", False)
    assert room_order("size", backwards=True) == ("joined_members", True)
    assert room_order("alphabetical", backwards=True) == ("name", False)
    with pytest.raises(BadRequest) as refused:
        room_order("room_id; DROP TABLE rooms", backwards=False)
    assert refused.value.errcode == "M_INVALID_PARAM"


def test_local_user_check():
    check_local_user(ALICE, "here")
    for user_id in ("@alice:elsewhere", "alice", ""):
        with pytest.raises(BadRequest):
            check_local_user(user_id, "here")


def test_the_most_powerful_local_member_grants_its_own_level():
    room = state(V10, levels={"users": {ALICE: 100, BOB: 60}, "state_default": 50})
    grant = room_admin_grant(room, V10, [ALICE, BOB], CAROL)
    assert grant.sender == ALICE
    assert grant.content == {"users": {ALICE: 100, BOB: 60, CAROL: 100}, "state_default": 50}


def test_a_member_who_may_not_change_power_levels_cannot_grant():
    room = state(V10, levels={"users": {ALICE: 100, BOB: 40}, "events": {"m.room.power_levels": 100}})
    with pytest.raises(BadRequest) as refused:
        room_admin_grant(room, V10, [BOB], CAROL)   # the room's admin is not joined here
    assert "No local admin user in room" in refused.value.message
    assert room_admin_grant(room, V10, [ALICE, BOB], BOB).content["users"][BOB] == 100


def test_without_power_levels_the_creator_keeps_its_level():
    grant = room_admin_grant(state(V10), V10, [ALICE], BOB)
    assert grant == type(grant)(ALICE, {"users": {ALICE: 100, BOB: 100}})


def test_a_user_with_that_power_already_needs_no_change():
    room = state(V10, levels={"users": {ALICE: 100, BOB: 100}})
    assert room_admin_grant(room, V10, [ALICE], BOB).content is None


def test_a_v12_creator_grants_the_highest_level_in_the_room():
    room = state(V12, levels={"users": {BOB: 150}})
    grant = room_admin_grant(room, V12, [ALICE, BOB], CAROL)
    assert grant.sender == ALICE   # a creator: more power than any level
    assert grant.content["users"] == {BOB: 150, CAROL: 150}
    assert room_admin_grant(state(V12, levels={}), V12, [ALICE], CAROL).content["users"] == {CAROL: 100}
    assert room_admin_grant(room, V12, [ALICE], ALICE).content is None   # a creator already
