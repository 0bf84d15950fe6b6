"""
Reading room history (spec: "Getting events for a room", "Event Context"):
/messages, /context, /event, /members, /joined_members and
/timestamp_to_event. HTTP only; the rules are in
L{ruma_tx.services.history.HistoryReader}.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ruma_tx.http.parsing import query_arg
from ruma_tx.http.routing import CLIENT_V1, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import invalid_param, missing_param
from ruma_tx.matrix.filters import (
    MAX_LIMIT,
    FilterError,
    RoomEventFilter,
    parse_room_event_filter_text,
)
from ruma_tx.matrix.stream_token import InvalidToken, StreamToken
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.history import HistoryReader

#: The default page size of /messages and /context (spec: 10).
DEFAULT_LIMIT = 10

_INTEGER = re.compile(r"-?[0-9]{1,18}")

MEMBERSHIPS = ("join", "invite", "knock", "leave", "ban")


class HistoryApi:
    """
    @param reader: the L{ruma_tx.services.history.HistoryReader}.
    """

    def __init__(self, reader: HistoryReader) -> None:
        self._reader = reader

    @endpoint("GET", "/rooms/<room_id>/messages", guest=True)
    async def messages(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        query = messages_query(request)
        response = await self._reader.messages(
            requester.user_id, room_id, backwards=query.backwards, from_token=query.from_token,
            to_token=query.to_token, limit=query.limit, event_filter=query.event_filter,
        )
        return query.with_start(response)

    @endpoint("GET", "/rooms/<room_id>/context/<event_id>", guest=True)
    async def context(self, request: MatrixRequest, requester: Requester, room_id: str,
                      event_id: str) -> JsonDict:
        return await self._reader.context(
            requester.user_id, room_id, event_id, limit=_limit(request), event_filter=_filter(request),
        )

    @endpoint("GET", "/rooms/<room_id>/event/<event_id>", guest=True)
    async def event(self, request: MatrixRequest, requester: Requester, room_id: str,
                    event_id: str) -> JsonDict:
        return await self._reader.event(requester.user_id, room_id, event_id)

    @endpoint("GET", "/rooms/<room_id>/members", guest=True)
    async def members(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        chunk = await self._reader.members(
            requester.user_id, room_id,
            at=_token(query_arg(request, "at"), "at"),
            membership=_membership(request, "membership"),
            not_membership=_membership(request, "not_membership"),
        )
        return {"chunk": chunk}

    @endpoint("GET", "/rooms/<room_id>/joined_members")
    async def joined_members(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return {"joined": await self._reader.joined_members(requester.user_id, room_id)}

    @endpoint("GET", "/rooms/<room_id>/timestamp_to_event", prefixes=CLIENT_V1)
    async def timestamp_to_event(self, request: MatrixRequest, requester: Requester,
                                 room_id: str) -> JsonDict:
        text = query_arg(request, "ts")
        if text is None:
            raise missing_param("Missing query parameter: ts")
        ts = _integer(text, "ts")
        backwards = _direction(request)
        return await self._reader.timestamp_to_event(requester.user_id, room_id, ts, forwards=not backwards)


@dataclass(frozen=True)
class MessagesQuery:
    """The query of C{/messages}."""

    backwards: bool
    from_text: str | None
    from_token: StreamToken | None
    to_token: StreamToken | None
    limit: int
    event_filter: RoomEventFilter | None

    def with_start(self, response: JsonDict) -> JsonDict:
        if self.from_text is not None:
            response["start"] = self.from_text  # spec: "the same as the value given in from"
        return response


def messages_query(request: MatrixRequest, default_dir: str | None = None) -> MessagesQuery:
    """The query of C{/messages}, or of the admin API's, whose C{dir} defaults to C{f}."""
    from_text = query_arg(request, "from")
    return MessagesQuery(_direction(request, default_dir), from_text, _token(from_text, "from"),
                         _token(query_arg(request, "to"), "to"), _limit(request), _filter(request))


def _direction(request: MatrixRequest, default: str | None = None) -> bool:
    """@return: whether C{dir} is C{b} (backwards); C{f} is forwards."""
    value = query_arg(request, "dir")
    value = default if value is None else value
    if value is None:
        raise missing_param("Missing query parameter: dir")
    if value not in ("b", "f"):
        raise invalid_param("Query parameter 'dir' must be 'b' or 'f'")
    return value == "b"


def _token(text: str | None, name: str) -> StreamToken | None:
    if text is None:
        return None
    try:
        return StreamToken.parse(text, backfilled=True)
    except InvalidToken:
        raise invalid_param(f"Query parameter {name!r} is not a valid token") from None


def _integer(text: str, name: str) -> int:
    if _INTEGER.fullmatch(text) is None:
        raise invalid_param(f"Query parameter {name!r} must be an integer")
    return int(text)


def _limit(request: MatrixRequest) -> int:
    """C{limit}: default 10, capped at 1000 (as Synapse); negative is refused."""
    text = query_arg(request, "limit")
    if text is None:
        return DEFAULT_LIMIT
    limit = _integer(text, "limit")
    if limit < 0:
        raise invalid_param("Query parameter 'limit' must not be negative")
    return min(limit, MAX_LIMIT)


def _filter(request: MatrixRequest) -> RoomEventFilter | None:
    text = query_arg(request, "filter")
    if text is None or text == "":
        return None
    try:
        return parse_room_event_filter_text(text)
    except FilterError as e:
        raise invalid_param(str(e)) from None


def _membership(request: MatrixRequest, name: str) -> str | None:
    value = query_arg(request, name)
    if value is not None and value not in MEMBERSHIPS:
        raise invalid_param(f"Query parameter {name!r} must be one of {', '.join(MEMBERSHIPS)}")
    return value
