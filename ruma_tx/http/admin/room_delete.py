"""
The admin API's room deletion (Synapse's "Delete Room" API): v2 runs in
the background and is followed by its status; v1, which Synapse still
serves, answers once done.
"""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, read_json_object
from ruma_tx.http.routing import SYNAPSE_ADMIN, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.room_admin import RoomDeletion
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.room_purge import RoomDeleter


class RoomDeleteApi:
    def __init__(self, deleter: RoomDeleter) -> None:
        self._deleter = deleter

    @endpoint("DELETE", "/v2/rooms/<room_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def start(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return await self._deleter.start(requester.user_id, room_id, _deletion(request))

    @endpoint("DELETE", "/v1/rooms/<room_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def delete_now(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return await self._deleter.delete_now(requester.user_id, room_id, _deletion(request))

    @endpoint("GET", "/v2/rooms/<room_id>/delete_status", prefixes=SYNAPSE_ADMIN, admin=True)
    async def statuses(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return await self._deleter.statuses(room_id)

    @endpoint("GET", "/v2/rooms/delete_status/<delete_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def status(self, request: MatrixRequest, requester: Requester, delete_id: str) -> JsonDict:
        return await self._deleter.status(delete_id)


def _deletion(request: MatrixRequest) -> RoomDeletion:
    """The body: a JSON object, C{{}} at least (as Synapse requires)."""
    body = read_json_object(request)
    defaults = RoomDeletion()
    return RoomDeletion(
        new_room_user_id=get_field(body, "new_room_user_id", str, None),
        room_name=get_field(body, "room_name", str, defaults.room_name),
        message=get_field(body, "message", str, defaults.message),
        block=get_field(body, "block", bool, defaults.block),
        purge=get_field(body, "purge", bool, defaults.purge),
        force_purge=get_field(body, "force_purge", bool, defaults.force_purge),
    )
