"""
Rooms: creation, sending events and state, membership (spec: "Rooms",
"Room membership", "Sending events", "Getting events for a room").
"""
from __future__ import annotations

from typing import Protocol

from ruma_tx.http.parsing import get_field, read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.account_restrictions import suspended_may_send, user_suspended
from ruma_tx.matrix.events import room_event
from ruma_tx.matrix.redaction import redacts_in_content
from ruma_tx.matrix.room_creation import parse_room_request
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.event_spec import EventSpec
from ruma_tx.services.events import EventCreator
from ruma_tx.services.guard import Requester
from ruma_tx.services.membership import MembershipChanger
from ruma_tx.services.reading import RoomReader
from ruma_tx.services.rooms import RoomCreator


class _MemberChange(Protocol):
    """A membership change of another user: invite, kick, ban or unban."""

    async def __call__(self, user_id: str, room_id: str, target: str, *,
                       reason: str | None = None) -> None: ...


class RoomApi:
    """
    @param rooms: the L{ruma_tx.services.rooms.RoomCreator}.
    @param creator: the L{ruma_tx.services.events.EventCreator}.
    @param membership: the L{ruma_tx.services.membership.MembershipChanger}.
    @param reader: the L{ruma_tx.services.reading.RoomReader}.
    """

    def __init__(self, *, rooms: RoomCreator, creator: EventCreator, membership: MembershipChanger,
                 reader: RoomReader) -> None:
        self._rooms = rooms
        self._creator = creator
        self._membership = membership
        self._reader = reader

    @endpoint("POST", "/createRoom", rate_limit="message", suspended=False)
    async def create_room(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        room = parse_room_request(read_json_object(request))
        return await self._rooms.create_room(requester.user_id, room)

    @endpoint("PUT", "/rooms/<room_id>/send/<event_type>/<txn_id>", guest=True, rate_limit="message")
    async def send(self, request: MatrixRequest, requester: Requester, room_id: str, event_type: str,
                   txn_id: str) -> JsonDict:
        content = read_json_object(request)
        _check_suspended_may_send(requester, event_type, None, content)
        if event_type == "m.room.redaction":
            spec = _redaction(room_id, requester, redacts_in_content(content), content)
        else:
            spec = EventSpec(room_id, requester.user_id, event_type, content)
        # The spec scopes transaction ids to the request path: room and type.
        txn = (requester.user_id, requester.device_id, f"send/{room_id}/{event_type}", txn_id)
        return {"event_id": await self._creator.send(spec, txn=txn)}

    @endpoint("PUT", "/rooms/<room_id>/state/<event_type>/", guest=True, rate_limit="message")
    @endpoint("PUT", "/rooms/<room_id>/state/<event_type>", guest=True, rate_limit="message")
    async def put_state_empty_key(self, request: MatrixRequest, requester: Requester, room_id: str,
                                  event_type: str) -> JsonDict:
        return await self.put_state(request, requester, room_id, event_type, "")

    @endpoint("PUT", "/rooms/<room_id>/state/<event_type>/<state_key>", guest=True, rate_limit="message")
    async def put_state(self, request: MatrixRequest, requester: Requester, room_id: str, event_type: str,
                        state_key: str) -> JsonDict:
        content = read_json_object(request)
        _check_suspended_may_send(requester, event_type, state_key, content)
        # A guest's own m.room.member join here is held to the room's guest access, as POST /join.
        spec = EventSpec(room_id, requester.user_id, event_type, content, state_key,
                         sender_is_guest=requester.is_guest)
        return {"event_id": await self._creator.send(spec)}

    @endpoint("GET", "/rooms/<room_id>/state/<event_type>/", guest=True)
    @endpoint("GET", "/rooms/<room_id>/state/<event_type>", guest=True)
    async def get_state_empty_key(self, request: MatrixRequest, requester: Requester, room_id: str,
                                  event_type: str) -> JsonDict:
        return await self.get_state_event(request, requester, room_id, event_type, "")

    @endpoint("GET", "/rooms/<room_id>/state/<event_type>/<state_key>", guest=True)
    async def get_state_event(self, request: MatrixRequest, requester: Requester, room_id: str,
                              event_type: str, state_key: str) -> JsonDict:
        event = await self._reader.get_state_event(requester.user_id, room_id, event_type, state_key)
        if request.args.get(b"format") == [b"event"]:
            return room_event(event)
        return event.content

    @endpoint("GET", "/rooms/<room_id>/state", guest=True)
    async def get_state(self, request: MatrixRequest, requester: Requester, room_id: str) -> list[JsonDict]:
        return await self._reader.get_state(requester.user_id, room_id)

    @endpoint("PUT", "/rooms/<room_id>/redact/<event_id>/<txn_id>", rate_limit="message")
    async def redact(self, request: MatrixRequest, requester: Requester, room_id: str, event_id: str,
                     txn_id: str) -> JsonDict:
        reason = _reason(read_json_object(request))
        spec = _redaction(room_id, requester, event_id, {} if reason is None else {"reason": reason})
        txn = (requester.user_id, requester.device_id, f"redact/{room_id}/{event_id}", txn_id)
        return {"event_id": await self._creator.send(spec, txn=txn)}

    @endpoint("GET", "/joined_rooms")
    async def joined_rooms(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return {"joined_rooms": await self._reader.joined_rooms(requester.user_id)}

    # The spec's guest allow-list has POST /rooms/{roomId}/join only: guests
    # are refused here (as by Synapse) and told which endpoint they may use.
    @endpoint("POST", "/join/<room_id_or_alias>", suspended=False, guest_hint=(
        "guests may only join a room with POST /_matrix/client/v3/rooms/{roomId}/join"))
    async def join_by_id_or_alias(self, request: MatrixRequest, requester: Requester,
                                  room_id_or_alias: str) -> JsonDict:
        body = read_json_object(request, allow_empty=True)
        room_id, servers = await self._membership.resolve_room(room_id_or_alias)
        room_id = await self._membership.join(requester.user_id, room_id, reason=_reason(body),
                                              is_guest=requester.is_guest, custom=_custom_content(body),
                                              via=[*_via(request), *servers])
        return {"room_id": room_id}

    @endpoint("POST", "/rooms/<room_id>/join", guest=True, suspended=False)
    async def join(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        body = read_json_object(request, allow_empty=True)
        await self._membership.join(requester.user_id, room_id, reason=_reason(body),
                                    is_guest=requester.is_guest, custom=_custom_content(body))
        return {"room_id": room_id}

    @endpoint("POST", "/knock/<room_id_or_alias>", suspended=False)
    async def knock(self, request: MatrixRequest, requester: Requester, room_id_or_alias: str) -> JsonDict:
        body = read_json_object(request, allow_empty=True)
        room_id, servers = await self._membership.resolve_room(room_id_or_alias)
        await self._membership.knock(requester.user_id, room_id, reason=_reason(body),
                                     via=[*_via(request), *servers])
        return {"room_id": room_id}

    @endpoint("POST", "/rooms/<room_id>/leave", guest=True)
    async def leave(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        body = read_json_object(request, allow_empty=True)
        await self._membership.leave(requester.user_id, room_id, reason=_reason(body))
        return {}

    @endpoint("POST", "/rooms/<room_id>/forget")
    async def forget(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        await self._membership.forget(requester.user_id, room_id)
        return {}

    @endpoint("POST", "/rooms/<room_id>/invite", suspended=False)
    async def invite(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return await self._change_member(request, requester, room_id, self._membership.invite)

    @endpoint("POST", "/rooms/<room_id>/kick", suspended=False)
    async def kick(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return await self._change_member(request, requester, room_id, self._membership.kick)

    @endpoint("POST", "/rooms/<room_id>/ban", suspended=False)
    async def ban(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return await self._change_member(request, requester, room_id, self._membership.ban)

    @endpoint("POST", "/rooms/<room_id>/unban", suspended=False)
    async def unban(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return await self._change_member(request, requester, room_id, self._membership.unban)

    @staticmethod
    async def _change_member(request: MatrixRequest, requester: Requester, room_id: str,
                             change: _MemberChange) -> JsonDict:
        """Invite, kick, ban or unban the body's C{user_id}, with its C{reason}."""
        body = read_json_object(request)
        target = get_field(body, "user_id", str)
        await change(requester.user_id, room_id, target, reason=_reason(body))
        return {}


def _via(request: MatrixRequest) -> list[str]:
    """The servers to join through: C{via} (v1.12), or the older C{server_name}."""
    values = request.args.get(b"via") or request.args.get(b"server_name") or []
    return [value.decode("utf-8", "replace") for value in values]


def _reason(body: JsonDict) -> str | None:
    return get_field(body, "reason", str, None)


def _check_suspended_may_send(requester: Requester, event_type: str, state_key: str | None,
                              content: JsonDict) -> None:
    """
    Refuse a suspended sender's event unless it leaves or redacts (an own
    event: the creator checks the redacted event's sender).

    @raise Forbidden: 403 M_USER_SUSPENDED.
    """
    if requester.suspended and not suspended_may_send(event_type, state_key, requester.user_id, content):
        raise user_suspended()


def _redaction(room_id: str, sender: Requester, redacts: str, content: JsonDict) -> EventSpec:
    """
    The redaction of C{redacts}, the same whether sent with C{/redact} or
    with C{/send} (whose C{content.redacts} is taken out: build_pdu places
    C{redacts} where the room version wants it, in content from v11 on).

    @raise BadRequest: for a C{reason} that is not a string.
    """
    _reason(content)
    content = {key: value for key, value in content.items() if key != "redacts"}
    return EventSpec(room_id, sender.user_id, "m.room.redaction", content, redacts=redacts,
                     sender_suspended=sender.suspended)


#: Keys of a join's body that are not member event content.
_JOIN_PARAMETERS = {"reason", "third_party_signed", "membership", "displayname", "avatar_url"}


def _custom_content(body: JsonDict) -> JsonDict:
    """A join body's other keys, kept in the member event (as Synapse)."""
    return {key: value for key, value in body.items() if key not in _JOIN_PARAMETERS}
