"""
Server-side key backups (spec: "Server-side key backups", key_backup.yaml):
backup versions and the keys stored in them, for the requesting user only.
"""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, query_arg, read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import missing_param
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.room_keys import KeyBackup


def _version_arg(request: MatrixRequest) -> str:
    """The required C{version} query parameter (400 M_MISSING_PARAM)."""
    version = query_arg(request, "version")
    if version is None:
        raise missing_param("Missing parameter: version")
    return version


class RoomKeysApi:
    """
    @param backup: the L{ruma_tx.services.room_keys.KeyBackup}.
    """

    def __init__(self, backup: KeyBackup) -> None:
        self._backup = backup

    # ------------------------------------------------------------ versions

    @endpoint("POST", "/room_keys/version")
    async def create_version(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        body = read_json_object(request)
        return await self._backup.create_version(
            requester.user_id, get_field(body, "algorithm", str), get_field(body, "auth_data", dict)
        )

    @endpoint("GET", "/room_keys/version")
    async def get_current_version(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return await self._backup.get_version(requester.user_id)

    @endpoint("GET", "/room_keys/version/<version>")
    async def get_version(self, request: MatrixRequest, requester: Requester, version: str) -> JsonDict:
        return await self._backup.get_version(requester.user_id, version)

    @endpoint("PUT", "/room_keys/version/<version>")
    async def update_version(self, request: MatrixRequest, requester: Requester, version: str) -> JsonDict:
        body = read_json_object(request)
        return await self._backup.update_version(
            requester.user_id, version,
            get_field(body, "algorithm", str), get_field(body, "auth_data", dict),
            body_version=get_field(body, "version", str, default=None),
        )

    @endpoint("DELETE", "/room_keys/version/<version>")
    async def delete_version(self, request: MatrixRequest, requester: Requester, version: str) -> JsonDict:
        return await self._backup.delete_version(requester.user_id, version)

    # ---------------------------------------------------------------- keys

    @endpoint("PUT", "/room_keys/keys")
    async def put_all_keys(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        body = read_json_object(request)
        rooms = get_field(body, "rooms", dict)
        return await self._backup.put_keys(requester.user_id, _version_arg(request), rooms)

    @endpoint("PUT", "/room_keys/keys/<room_id>")
    async def put_room_keys(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        body = read_json_object(request)
        return await self._backup.put_keys(
            requester.user_id, _version_arg(request), {room_id: body}
        )

    @endpoint("PUT", "/room_keys/keys/<room_id>/<session_id>")
    async def put_session_key(self, request: MatrixRequest, requester: Requester, room_id: str,
                              session_id: str) -> JsonDict:
        body = read_json_object(request)
        return await self._backup.put_keys(
            requester.user_id, _version_arg(request), {room_id: {"sessions": {session_id: body}}}
        )

    @endpoint("GET", "/room_keys/keys")
    async def get_all_keys(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return await self._backup.get_keys(requester.user_id, _version_arg(request))

    @endpoint("GET", "/room_keys/keys/<room_id>")
    async def get_room_keys(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return await self._backup.get_keys(requester.user_id, _version_arg(request), room_id)

    @endpoint("GET", "/room_keys/keys/<room_id>/<session_id>")
    async def get_session_key(self, request: MatrixRequest, requester: Requester, room_id: str,
                              session_id: str) -> JsonDict:
        return await self._backup.get_keys(
            requester.user_id, _version_arg(request), room_id, session_id
        )

    @endpoint("DELETE", "/room_keys/keys")
    async def delete_all_keys(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return await self._backup.delete_keys(requester.user_id, _version_arg(request))

    @endpoint("DELETE", "/room_keys/keys/<room_id>")
    async def delete_room_keys(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return await self._backup.delete_keys(requester.user_id, _version_arg(request), room_id)

    @endpoint("DELETE", "/room_keys/keys/<room_id>/<session_id>")
    async def delete_session_key(self, request: MatrixRequest, requester: Requester, room_id: str,
                                 session_id: str) -> JsonDict:
        return await self._backup.delete_keys(
            requester.user_id, _version_arg(request), room_id, session_id
        )
