"""
The membership handshakes between servers (spec: server-server-api.md
"Joining Rooms", "Knocking upon a room", "Inviting to a room", "Leaving
Rooms (Rejections)"): what a resident server checks of the events a
joining, leaving or knocking server sends it, and how the joining server
turns the resident's template into its event.

The handshake is two steps: C{make_*} returns an unsigned template built
on the room's current state; the remote server fills in its user's
details, signs it and C{send_*}s it back, and the resident server checks
it is exactly the membership asked for before accepting it like any PDU.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from ruma_tx.matrix.errors import BadRequest, bad_json, forbidden
from ruma_tx.matrix.identifiers import InvalidIdentifier, parse_user_id
from ruma_tx.matrix.room_versions import ROOM_VERSIONS, RoomVersion
from ruma_tx.matrix.types import JsonDict

#: The keys of a template the joining server keeps as they are.
_TEMPLATE_KEYS = ("auth_events", "prev_events", "room_id", "sender", "state_key", "type", "depth",
                  "content", "origin")


def server_of(user_id: str) -> str:
    """
    @raise BadRequest: 400 M_INVALID_PARAM for a malformed user id.
    """
    try:
        return parse_user_id(user_id)[1]
    except (InvalidIdentifier, TypeError):
        raise BadRequest("M_INVALID_PARAM", f"Invalid user id {user_id!r}") from None


def check_make_membership(origin: str, user_id: str, room_version: str, supported: Iterable[str] | None) -> None:
    """
    Whether C{origin} may ask for a template for C{user_id} in a room of
    C{room_version}.

    @param supported: the C{ver} query parameters (C{None}: the server sent
        none, meaning version 1 only, as the spec says of make_join).
    @raise Forbidden: the user is not of the requesting server.
    @raise BadRequest: 400 M_INCOMPATIBLE_ROOM_VERSION (with the room's
        C{room_version}) when the requesting server cannot take part.
    """
    if server_of(user_id) != origin:
        raise forbidden("A server may only ask for its own users' memberships")
    versions = ["1"] if supported is None else list(supported)
    if room_version not in versions:
        raise BadRequest("M_INCOMPATIBLE_ROOM_VERSION",
                         f"Your server does not support room version {room_version}",
                         room_version=room_version)


def check_sent_membership(pdu: JsonDict, *, origin: str, room_id: str, event_id: str,
                          computed_event_id: str, membership: str) -> str:
    """
    What a resident server checks of an event sent to C{send_join},
    C{send_leave} or C{send_knock} before treating it as a PDU: a member
    event of the room, by a user of the sending server about themselves,
    with the membership this endpoint is for, at the id in the URL.

    @return: the user id.
    @raise BadRequest: 400 M_BAD_JSON naming what does not match.
    @raise Forbidden: the user is not of the sending server.
    """
    if pdu.get("type") != "m.room.member":
        raise bad_json("The event must be an m.room.member event")
    sender = pdu.get("sender")
    if not isinstance(sender, str) or pdu.get("state_key") != sender:
        raise bad_json("The event's state_key must be its sender")
    if server_of(sender) != origin:
        raise forbidden("A server may only send its own users' memberships")
    content = pdu.get("content")
    if not isinstance(content, dict) or content.get("membership") != membership:
        raise bad_json(f"The event's membership must be {membership!r}")
    if pdu.get("room_id") != room_id:
        raise bad_json("The event is for another room")
    if computed_event_id != event_id:
        raise bad_json("The event id in the path is not the event's")
    return sender


def check_invite(pdu: JsonDict, *, room_id: str, event_id: str, computed_event_id: str,
                 origin: str, server_name: str) -> str:
    """
    What the invitee's server checks of an invite it is asked to sign:
    an invite of one of its users into the room at the URL, sent by a user
    of the server asking.

    @return: the invited user.
    """
    if pdu.get("type") != "m.room.member" or not isinstance(pdu.get("content"), dict) \
            or pdu["content"].get("membership") != "invite":
        raise bad_json("The event must be an invite")
    invitee = pdu.get("state_key")
    if not isinstance(invitee, str) or server_of(invitee) != server_name:
        raise bad_json("The invited user is not on this server")
    sender = pdu.get("sender")
    if not isinstance(sender, str) or server_of(sender) != origin:
        raise forbidden("A server may only send its own users' invites")
    if pdu.get("room_id") != room_id:
        raise bad_json("The event is for another room")
    if computed_event_id != event_id:
        raise bad_json("The event id in the path is not the event's")
    return invitee


def room_version_of(answer: JsonDict, asked: Sequence[str]) -> RoomVersion:
    """
    The room version of a C{make_*} answer (absent: version 1).

    @raise ValueError: one we do not support or did not offer.
    """
    identifier = answer.get("room_version", "1")
    if not isinstance(identifier, str) or identifier not in asked or identifier not in ROOM_VERSIONS:
        raise ValueError(f"the resident server offered room version {identifier!r}")
    return ROOM_VERSIONS[identifier]


def event_from_template(template: object, *, room_version: RoomVersion, user_id: str, membership: str,
                        room_id: str, server_name: str, origin_server_ts: int, content: JsonDict) -> JsonDict:
    """
    The unsigned event a joining (leaving, knocking) server makes of the
    resident's template: its keys, our user and content, our clock.

    @raise ValueError: a template that is not for this user, room and
        membership.
    """
    if not isinstance(template, dict):
        raise ValueError("the template is not an object")
    if template.get("type") != "m.room.member" or template.get("state_key") != user_id \
            or template.get("sender") != user_id or template.get("room_id") != room_id:
        raise ValueError("the template is not this user's membership in this room")
    template_content = template.get("content")
    if not isinstance(template_content, dict) or template_content.get("membership") != membership:
        raise ValueError(f"the template's membership is not {membership!r}")
    for key in ("auth_events", "prev_events"):
        if not isinstance(template.get(key), list):
            raise ValueError(f"the template has no {key}")
    event = {key: template[key] for key in _TEMPLATE_KEYS if key in template}
    # The resident may add keys to the content (join_authorised_via_users_server
    # for a restricted join); ours come on top, membership last.
    event["content"] = {**template_content, **content, "membership": membership}
    event.pop("origin", None)
    if not room_version.updated_redaction_rules:
        event["origin"] = server_name  # v11 dropped the top-level origin (as build_pdu does)
    event["origin_server_ts"] = origin_server_ts
    return event
