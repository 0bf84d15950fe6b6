"""
Account data and room tags (spec: "Client Config", "Room Tagging").
"""
from __future__ import annotations

from ruma_tx.http.parsing import read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.account_data import AccountDataKeeper
from ruma_tx.services.guard import Requester


class AccountDataApi:
    """
    @param account_data: the L{ruma_tx.services.account_data.AccountDataKeeper}.
    """

    def __init__(self, account_data: AccountDataKeeper) -> None:
        self._account_data = account_data

    @endpoint("GET", "/user/<user_id>/account_data/<data_type>")
    async def get_global(self, request: MatrixRequest, requester: Requester, user_id: str,
                         data_type: str) -> JsonDict:
        return await self._account_data.get(requester.user_id, user_id, data_type)

    @endpoint("PUT", "/user/<user_id>/account_data/<data_type>")
    async def put_global(self, request: MatrixRequest, requester: Requester, user_id: str,
                         data_type: str) -> JsonDict:
        content = read_json_object(request)
        await self._account_data.put(requester.user_id, user_id, data_type, content)
        return {}

    @endpoint("GET", "/user/<user_id>/rooms/<room_id>/account_data/<data_type>")
    async def get_room(self, request: MatrixRequest, requester: Requester, user_id: str, room_id: str,
                       data_type: str) -> JsonDict:
        return await self._account_data.get(requester.user_id, user_id, data_type, room_id)

    @endpoint("PUT", "/user/<user_id>/rooms/<room_id>/account_data/<data_type>")
    async def put_room(self, request: MatrixRequest, requester: Requester, user_id: str, room_id: str,
                       data_type: str) -> JsonDict:
        content = read_json_object(request)
        await self._account_data.put(requester.user_id, user_id, data_type, content, room_id)
        return {}

    @endpoint("GET", "/user/<user_id>/rooms/<room_id>/tags")
    async def get_tags(self, request: MatrixRequest, requester: Requester, user_id: str,
                       room_id: str) -> JsonDict:
        return await self._account_data.get_tags(requester.user_id, user_id, room_id)

    @endpoint("PUT", "/user/<user_id>/rooms/<room_id>/tags/<tag>")
    async def put_tag(self, request: MatrixRequest, requester: Requester, user_id: str, room_id: str,
                      tag: str) -> JsonDict:
        content = read_json_object(request)
        await self._account_data.put_tag(requester.user_id, user_id, room_id, tag, content)
        return {}

    @endpoint("DELETE", "/user/<user_id>/rooms/<room_id>/tags/<tag>")
    async def delete_tag(self, request: MatrixRequest, requester: Requester, user_id: str, room_id: str,
                         tag: str) -> JsonDict:
        await self._account_data.delete_tag(requester.user_id, user_id, room_id, tag)
        return {}
