"""
Federation queries (server-server spec: "Querying for information"
C{/query/profile} and C{/query/directory}, and C{/version}). Served by
the "federation" listener only; every request but C{/version} is signed
by its origin server (C{auth="server"}).
"""
from __future__ import annotations

from ruma_tx.http.parsing import query_arg
from ruma_tx.http.routing import FEDERATION_V1, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import BadRequest, missing_param
from ruma_tx.matrix.identifiers import InvalidIdentifier, parse_user_id
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.directory import Directory
from ruma_tx.services.profile import ProfileEditor


def _required(request: MatrixRequest, name: str) -> str:
    value = query_arg(request, name)
    if value is None:
        raise missing_param(f"Missing query parameter {name!r}")
    return value


class FederationQueryApi:
    """
    @param profiles: the L{ruma_tx.services.profile.ProfileEditor}.
    @param directory: the L{ruma_tx.services.directory.Directory}.
    @param version: this software's version, for C{/version}.
    """

    def __init__(self, *, profiles: ProfileEditor, directory: Directory, server_name: str,
                 version: str) -> None:
        self._profiles = profiles
        self._directory = directory
        self._server_name = server_name
        self._version = version

    @endpoint("GET", "/query/profile", auth="server", prefixes=FEDERATION_V1)
    async def profile(self, request: MatrixRequest, origin: str) -> JsonDict:
        user_id = _required(request, "user_id")
        try:
            hosted_here = parse_user_id(user_id)[1] == self._server_name
        except InvalidIdentifier:
            hosted_here = False
        if not hosted_here:
            # The spec is silent; Synapse's answer.
            raise BadRequest("M_INVALID_PARAM", "User is not hosted on this homeserver")
        field = query_arg(request, "field")
        if field is None:
            return await self._profiles.get_local_profile(user_id)
        return await self._profiles.get_profile_field(user_id, field)

    @endpoint("GET", "/query/directory", auth="server", prefixes=FEDERATION_V1)
    async def directory(self, request: MatrixRequest, origin: str) -> JsonDict:
        return await self._directory.resolve_local_alias(_required(request, "room_alias"))

    @endpoint("GET", "/version", auth="none", prefixes=FEDERATION_V1)
    async def version(self, request: MatrixRequest, requester: None) -> JsonDict:
        return {"server": {"name": "ruma_tx", "version": self._version}}
