"""
Simple queries between servers (spec: server-server-api.md "Querying for
information"): profiles and room aliases, asked of the server that holds
them, for our clients.
"""
from __future__ import annotations

from typing import Any

from cachetools import TTLCache

from ruma_tx.matrix.errors import BadRequest, Forbidden, MatrixError, NotFound, RemoteUnavailable
from ruma_tx.matrix.identifiers import InvalidIdentifier, parse_room_alias, parse_user_id
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock
from ruma_tx.services.ports.federation import (
    FederationClient,
    FederationDenied,
    FederationError,
    RemoteMatrixError,
)

QUERY_PROFILE = "/_matrix/federation/v1/query/profile"
QUERY_DIRECTORY = "/_matrix/federation/v1/query/directory"

#: How long another server's answer about a profile is reused.
PROFILE_CACHE_SECONDS = 60.0
PROFILE_CACHE_SIZE = 10_000


def remote_failure(error: FederationError) -> MatrixError:
    """
    What a client is told when another server could not answer, as Synapse
    tells it: 403 when we may not ask, the other server's own 4xx (a 404
    stays a 404; a 400 or 403 likewise), else 502.
    """
    if isinstance(error, FederationDenied):
        return Forbidden("M_FORBIDDEN", f"Federation with {error.destination} is not allowed")
    if isinstance(error, RemoteMatrixError):
        passed_on = {400: BadRequest, 403: Forbidden, 404: NotFound}.get(error.code)
        if passed_on is not None:
            return passed_on(error.errcode, error.error or f"{error.destination} refused the request")
    return RemoteUnavailable("M_UNKNOWN", f"Failed to query {error.destination}")


def _string_or_none(body: JsonDict, key: str) -> Any:
    value = body.get(key)
    return value if isinstance(value, str) else None


class RemoteQueries:
    """
    Profiles and aliases of other servers.

    @param client: the federation client.
    """

    def __init__(self, *, client: FederationClient, clock: Clock) -> None:
        self._client = client
        # Entries expire after PROFILE_CACHE_SECONDS: a remote change shows within a minute.
        self._profiles: TTLCache[str, JsonDict] = TTLCache(PROFILE_CACHE_SIZE, PROFILE_CACHE_SECONDS,
                                                          timer=clock.seconds)

    async def profile(self, user_id: str) -> JsonDict:
        """
        The profile of a user of another server: its C{displayname} and
        C{avatar_url} when set (other fields are dropped, as we store none).

        @raise MatrixError: 404 when that server knows no such user, 403
            or 502 when it cannot be asked.
        """
        cached = self._profiles.get(user_id)
        if cached is not None:
            return dict(cached)
        server_name = parse_user_id(user_id)[1]
        try:
            answer = await self._client.get_json(server_name, QUERY_PROFILE, query={"user_id": user_id})
        except FederationError as e:
            raise remote_failure(e) from None
        profile = {key: value for key in ("displayname", "avatar_url")
                   if (value := _string_or_none(answer, key)) is not None}
        self._profiles[user_id] = profile
        return dict(profile)

    async def alias(self, room_alias: str) -> JsonDict:
        """
        C{{room_id, servers}} for an alias of another server.

        @raise MatrixError: 404 for an unknown alias, 403 or 502 when that
            server cannot be asked or answers nonsense.
        """
        try:
            server_name = parse_room_alias(room_alias)[1]
            answer = await self._client.get_json(server_name, QUERY_DIRECTORY,
                                                 query={"room_alias": room_alias})
        except InvalidIdentifier as e:
            raise NotFound("M_NOT_FOUND", f"Room alias invalid: {e}") from None
        except FederationError as e:
            raise remote_failure(e) from None
        room_id, servers = answer.get("room_id"), answer.get("servers")
        if not isinstance(room_id, str) or not isinstance(servers, list) \
                or not all(isinstance(server, str) for server in servers):
            raise RemoteUnavailable("M_UNKNOWN", f"{server_name} answered an invalid alias query")
        return {"room_id": room_id, "servers": servers}

