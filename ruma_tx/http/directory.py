"""
Room aliases and the published room directory (spec: "Room aliases",
"Published room directory").
"""
from __future__ import annotations

import re
from typing import Any

from ruma_tx.http.parsing import get_field, query_arg, read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import bad_json, invalid_param
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.directory import Directory
from ruma_tx.services.guard import Requester


class DirectoryApi:
    """
    @param directory: the L{ruma_tx.services.directory.Directory}.
    """

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    @endpoint("PUT", "/directory/room/<room_alias>")
    async def set_alias(self, request: MatrixRequest, requester: Requester, room_alias: str) -> JsonDict:
        room_id = get_field(read_json_object(request), "room_id", str)
        await self._directory.create_alias(requester.user_id, room_alias, room_id)
        return {}

    @endpoint("GET", "/directory/room/<room_alias>", auth="none")
    async def get_alias(self, request: MatrixRequest, requester: None, room_alias: str) -> JsonDict:
        return await self._directory.resolve_alias(room_alias)

    @endpoint("DELETE", "/directory/room/<room_alias>")
    async def delete_alias(self, request: MatrixRequest, requester: Requester, room_alias: str) -> JsonDict:
        await self._directory.delete_alias(requester.user_id, room_alias)
        return {}

    @endpoint("GET", "/rooms/<room_id>/aliases")
    async def local_aliases(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return {"aliases": await self._directory.local_aliases(requester.user_id, room_id)}

    @endpoint("GET", "/directory/list/room/<room_id>", auth="none")
    async def get_visibility(self, request: MatrixRequest, requester: None, room_id: str) -> JsonDict:
        return {"visibility": await self._directory.get_visibility(room_id)}

    @endpoint("PUT", "/directory/list/room/<room_id>")
    async def set_visibility(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        # The spec: "Defaults to public".
        visibility = get_field(read_json_object(request), "visibility", str, "public")
        await self._directory.set_visibility(requester.user_id, room_id, visibility)
        return {}

    # The spec puts no token on GET /publicRooms (Synapse asks for one
    # unless allow_public_rooms_without_auth), and one on POST.
    @endpoint("GET", "/publicRooms", auth="none")
    async def public_rooms(self, request: MatrixRequest, requester: None) -> JsonDict:
        return await self._directory.public_rooms(
            limit=_query_int(request, "limit"),
            since=query_arg(request, "since"),
            server=query_arg(request, "server"),
        )

    @endpoint("POST", "/publicRooms")
    async def search_public_rooms(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return await self._directory.public_rooms(
            server=query_arg(request, "server"), **public_rooms_search(read_json_object(request)))


def public_rooms_search(body: JsonDict) -> dict[str, Any]:
    """The arguments of L{Directory.public_rooms} a C{POST /publicRooms} body gives."""
    search_filter = get_field(body, "filter", dict, {})
    room_types = get_field(search_filter, "room_types", list, None)
    if room_types is not None and not all(t is None or isinstance(t, str) for t in room_types):
        raise bad_json("'room_types' must list strings or null")
    return {
        "limit": get_field(body, "limit", int, None),
        "since": get_field(body, "since", str, None),
        "search_term": get_field(search_filter, "generic_search_term", str, None),
        "room_types": room_types,
        "include_all_networks": get_field(body, "include_all_networks", bool, False),
        "third_party_instance_id": get_field(body, "third_party_instance_id", str, None),
    }


def _query_int(request: MatrixRequest, name: str) -> int | None:
    value = query_arg(request, name)
    if value is None:
        return None
    if not re.fullmatch(r"-?[0-9]{1,15}", value):
        raise invalid_param(f"Query parameter {name!r} must be an integer")
    return int(value)
