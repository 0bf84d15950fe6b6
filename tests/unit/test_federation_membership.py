"""
The membership handshakes' rules (L{ruma_tx.matrix.federation_membership}):
a server may only ask for, and send, its own users' memberships, in a
room version it supports; a joining server's event is the template with
its own details.
"""
from __future__ import annotations

import pytest

from ruma_tx.matrix.errors import BadRequest, Forbidden
from ruma_tx.matrix.federation_membership import (
    check_invite,
    check_make_membership,
    check_sent_membership,
    event_from_template,
    room_version_of,
)
from ruma_tx.matrix.room_versions import V10, V12

ROOM = "!room:resident.example"


def join(**changes):
    pdu = {"type": "m.room.member", "sender": "@a:joiner.example", "state_key": "@a:joiner.example",
           "room_id": ROOM, "content": {"membership": "join"}}
    pdu.update(changes)
    return pdu


def test_make_join_for_another_servers_user_is_forbidden():
    with pytest.raises(Forbidden):
        check_make_membership("evil.example", "@a:joiner.example", "12", ["12"])


def test_make_join_needs_a_shared_room_version():
    check_make_membership("joiner.example", "@a:joiner.example", "12", ["11", "12"])
    with pytest.raises(BadRequest) as raised:
        check_make_membership("joiner.example", "@a:joiner.example", "12", ["10", "11"])
    assert raised.value.errcode == "M_INCOMPATIBLE_ROOM_VERSION"
    assert raised.value.to_json()["room_version"] == "12"
    with pytest.raises(BadRequest):   # no ver at all: version 1 only
        check_make_membership("joiner.example", "@a:joiner.example", "12", None)


def test_sent_join_must_be_the_senders_own_membership():
    args = dict(origin="joiner.example", room_id=ROOM, event_id="$e", computed_event_id="$e", membership="join")
    assert check_sent_membership(join(), **args) == "@a:joiner.example"
    for bad in (join(type="m.room.message"), join(state_key="@b:joiner.example"),
                join(content={"membership": "leave"}), join(room_id="!other:x")):
        with pytest.raises(BadRequest):
            check_sent_membership(bad, **args)
    with pytest.raises(BadRequest):
        check_sent_membership(join(), **{**args, "computed_event_id": "$other"})
    with pytest.raises(Forbidden):
        check_sent_membership(join(), **{**args, "origin": "evil.example"})


def test_invite_must_be_for_our_user_from_the_asking_server():
    invite = {"type": "m.room.member", "sender": "@inviter:resident.example", "state_key": "@b:here.example",
              "room_id": ROOM, "content": {"membership": "invite"}}
    args = dict(room_id=ROOM, event_id="$e", computed_event_id="$e", origin="resident.example",
                server_name="here.example")
    assert check_invite(invite, **args) == "@b:here.example"
    with pytest.raises(BadRequest):
        check_invite({**invite, "state_key": "@b:elsewhere.example"}, **args)
    with pytest.raises(Forbidden):
        check_invite(invite, **{**args, "origin": "evil.example"})
    with pytest.raises(BadRequest):
        check_invite({**invite, "content": {"membership": "join"}}, **args)


def test_room_version_of_a_template():
    assert room_version_of({"room_version": "12"}, ["11", "12"]) is V12
    with pytest.raises(ValueError):
        room_version_of({"room_version": "12"}, ["11"])   # not what we offered
    with pytest.raises(ValueError):
        room_version_of({}, ["11", "12"])                 # absent means 1


def test_event_from_template_keeps_the_residents_keys_and_adds_ours():
    template = {**join(), "auth_events": ["$c"], "prev_events": ["$p"], "depth": 7, "origin": "resident.example",
                "origin_server_ts": 1, "content": {"membership": "join",
                                                   "join_authorised_via_users_server": "@admin:resident.example"},
                "unexpected": True}
    event = event_from_template(template, room_version=V12, user_id="@a:joiner.example", membership="join",
                                room_id=ROOM, server_name="joiner.example", origin_server_ts=99,
                                content={"displayname": "A"})
    assert event["content"] == {"membership": "join", "displayname": "A",
                                "join_authorised_via_users_server": "@admin:resident.example"}
    assert (event["origin_server_ts"], event["depth"], event["prev_events"]) == (99, 7, ["$p"])
    assert "origin" not in event and "unexpected" not in event
    assert event_from_template(template, room_version=V10, user_id="@a:joiner.example", membership="join",
                               room_id=ROOM, server_name="joiner.example", origin_server_ts=99,
                               content={})["origin"] == "joiner.example"
    with pytest.raises(ValueError):
        event_from_template({**template, "state_key": "@other:joiner.example"}, room_version=V12,
                            user_id="@a:joiner.example", membership="join", room_id=ROOM,
                            server_name="joiner.example", origin_server_ts=99, content={})
