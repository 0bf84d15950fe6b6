"""
Relations and threads (spec: "Relationships API", "Querying threads in a
room"): C{GET /relations/{eventId}[/{relType}[/{eventType}]]} and
C{GET /threads}. HTTP only; the rules are in
L{ruma_tx.services.relations.RelationsReader}.
"""
from __future__ import annotations

from ruma_tx.http.history import _token
from ruma_tx.http.parsing import query_arg, query_bool, query_int
from ruma_tx.http.routing import CLIENT_V1, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import invalid_param
from ruma_tx.matrix.filters import MAX_LIMIT
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.relations import RelationsReader

#: The page size when the client gives none (Synapse's, for both endpoints).
DEFAULT_LIMIT = 5


class RelationsApi:
    """
    @param reader: the L{ruma_tx.services.relations.RelationsReader}.
    """

    def __init__(self, reader: RelationsReader) -> None:
        self._reader = reader

    @endpoint("GET", "/rooms/<room_id>/relations/<event_id>", prefixes=CLIENT_V1)
    @endpoint("GET", "/rooms/<room_id>/relations/<event_id>/<rel_type>", prefixes=CLIENT_V1)
    @endpoint("GET", "/rooms/<room_id>/relations/<event_id>/<rel_type>/<event_type>", prefixes=CLIENT_V1)
    async def relations(self, request: MatrixRequest, requester: Requester, room_id: str, event_id: str,
                        rel_type: str | None = None, event_type: str | None = None) -> JsonDict:
        direction = query_arg(request, "dir", "b")
        if direction not in ("b", "f"):
            raise invalid_param("Query parameter 'dir' must be 'b' or 'f'")
        recurse = query_bool(request, "recurse") if query_arg(request, "recurse") is not None else None
        return await self._reader.relations(
            requester.user_id, room_id, event_id, rel_type=rel_type, event_type=event_type,
            from_token=_token(query_arg(request, "from"), "from"),
            to_token=_token(query_arg(request, "to"), "to"), limit=_limit(request),
            backwards=direction == "b", recurse=recurse,
        )

    @endpoint("GET", "/rooms/<room_id>/threads", prefixes=CLIENT_V1)
    async def threads(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        include = query_arg(request, "include", "all")
        if include not in ("all", "participated"):
            raise invalid_param("Query parameter 'include' must be 'all' or 'participated'")
        return await self._reader.threads(
            requester.user_id, room_id, participated=include == "participated",
            from_token=_token(query_arg(request, "from"), "from"), limit=_limit(request),
        )


def _limit(request: MatrixRequest) -> int:
    """C{limit}: a positive integer, L{DEFAULT_LIMIT} when absent, capped at 1000."""
    limit = query_int(request, "limit")
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1:
        raise invalid_param("Query parameter 'limit' must be a positive integer")
    return min(limit, MAX_LIMIT)
