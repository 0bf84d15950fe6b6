"""
The admin API's rooms (Synapse's "Rooms" admin API): the room list and
details, members, state, messages, blocking, make_room_admin, forcing a
user in (C{/v1/join}) and forward extremities. Deleting rooms is
L{ruma_tx.http.admin.room_delete}.
"""
from __future__ import annotations

from ruma_tx.http.history import messages_query
from ruma_tx.http.parsing import get_field, query_arg, query_int, read_json_object
from ruma_tx.http.routing import SYNAPSE_ADMIN, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import invalid_param
from ruma_tx.matrix.room_admin import room_order
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.admin_rooms import AdminRooms
from ruma_tx.services.guard import Requester
from ruma_tx.services.ports.admin_rooms import RoomListQuery

#: The room list's page size when the request names none (as Synapse).
DEFAULT_ROOMS_LIMIT = 100


class RoomAdminApi:
    def __init__(self, rooms: AdminRooms) -> None:
        self._rooms = rooms

    @endpoint("GET", "/v1/rooms", prefixes=SYNAPSE_ADMIN, admin=True)
    async def list_rooms(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        backwards = _direction(request)
        order, ascending = room_order(query_arg(request, "order_by", "name"), backwards)
        search_term = query_arg(request, "search_term")
        if search_term == "":
            raise invalid_param("Query parameter 'search_term' must not be empty")
        return await self._rooms.list_rooms(RoomListQuery(
            offset=_count(request, "from", 0), limit=_count(request, "limit", DEFAULT_ROOMS_LIMIT), order=order,
            ascending=ascending, search_term=search_term, public_rooms=_optional_bool(request, "public_rooms"),
            empty_rooms=_optional_bool(request, "empty_rooms")))

    @endpoint("GET", "/v1/rooms/<room_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def details(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return await self._rooms.details(room_id)

    @endpoint("GET", "/v1/rooms/<room_id>/members", prefixes=SYNAPSE_ADMIN, admin=True)
    async def members(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return await self._rooms.members(room_id)

    @endpoint("GET", "/v1/rooms/<room_id>/state", prefixes=SYNAPSE_ADMIN, admin=True)
    async def state(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return await self._rooms.state(room_id, query_arg(request, "type"))

    @endpoint("GET", "/v1/rooms/<room_id>/messages", prefixes=SYNAPSE_ADMIN, admin=True)
    async def messages(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        query = messages_query(request, default_dir="f")
        return query.with_start(await self._rooms.messages(
            requester.user_id, room_id, backwards=query.backwards, from_token=query.from_token,
            to_token=query.to_token, limit=query.limit, event_filter=query.event_filter))

    @endpoint("GET", "/v1/rooms/<room_id>/block", prefixes=SYNAPSE_ADMIN, admin=True)
    async def block_status(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return await self._rooms.block_status(room_id)

    @endpoint("PUT", "/v1/rooms/<room_id>/block", prefixes=SYNAPSE_ADMIN, admin=True)
    async def set_block(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        block = get_field(read_json_object(request), "block", bool)
        return await self._rooms.set_block(requester.user_id, room_id, block)

    @endpoint("POST", "/v1/rooms/<room_id_or_alias>/make_room_admin", prefixes=SYNAPSE_ADMIN, admin=True)
    async def make_room_admin(self, request: MatrixRequest, requester: Requester,
                              room_id_or_alias: str) -> JsonDict:
        user_id = get_field(read_json_object(request, allow_empty=True), "user_id", str, None)
        return await self._rooms.make_room_admin(requester.user_id, room_id_or_alias, user_id)

    @endpoint("POST", "/v1/join/<room_id_or_alias>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def join(self, request: MatrixRequest, requester: Requester, room_id_or_alias: str) -> JsonDict:
        user_id = get_field(read_json_object(request), "user_id", str)
        return await self._rooms.join(requester.user_id, room_id_or_alias, user_id)

    @endpoint("GET", "/v1/rooms/<room_id_or_alias>/forward_extremities", prefixes=SYNAPSE_ADMIN, admin=True)
    async def forward_extremities(self, request: MatrixRequest, requester: Requester,
                                  room_id_or_alias: str) -> JsonDict:
        return await self._rooms.forward_extremities(room_id_or_alias)

    @endpoint("DELETE", "/v1/rooms/<room_id_or_alias>/forward_extremities", prefixes=SYNAPSE_ADMIN, admin=True)
    async def delete_forward_extremities(self, request: MatrixRequest, requester: Requester,
                                         room_id_or_alias: str) -> JsonDict:
        return await self._rooms.delete_forward_extremities(room_id_or_alias)


def _direction(request: MatrixRequest) -> bool:
    """C{dir}: C{f} (the default) or C{b}; whether it is C{b}."""
    value = query_arg(request, "dir", "f")
    if value not in ("f", "b"):
        raise invalid_param("Query parameter 'dir' must be 'f' or 'b'")
    return value == "b"


def _count(request: MatrixRequest, name: str, default: int) -> int:
    value = query_int(request, name)
    if value is None:
        return default
    if value < 0:
        raise invalid_param(f"Query parameter {name!r} must not be negative")
    return value


def _optional_bool(request: MatrixRequest, name: str) -> bool | None:
    """A C{true}/C{false} query parameter; C{None} when absent."""
    value = query_arg(request, name)
    if value not in (None, "true", "false"):
        raise invalid_param(f"Query parameter {name!r} must be true or false")
    return None if value is None else value == "true"
