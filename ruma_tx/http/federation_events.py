"""
The federation endpoints that read rooms: one event, the state at an
event, an event's auth chain, backfill, missing events and the event
closest to a time. Served by the "federation" listener only, to servers
in the room (C{ruma_tx.services.federation_reads}).
"""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, query_arg, query_int, read_json_object
from ruma_tx.http.routing import FEDERATION_V1, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import bad_json, invalid_param, missing_param
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.federation_reads import FederationReads

#: C{get_missing_events}: the spec's default C{limit}.
DEFAULT_MISSING_EVENTS = 10


class FederationEventsApi:
    def __init__(self, reads: FederationReads) -> None:
        self._reads = reads

    @endpoint("GET", "/event/<event_id>", auth="server", prefixes=FEDERATION_V1)
    async def event(self, request: MatrixRequest, origin: str, event_id: str) -> JsonDict:
        return await self._reads.event(origin, event_id)

    @endpoint("GET", "/state/<room_id>", auth="server", prefixes=FEDERATION_V1)
    async def state(self, request: MatrixRequest, origin: str, room_id: str) -> JsonDict:
        return await self._reads.state(origin, room_id, _required(request, "event_id"))

    @endpoint("GET", "/state_ids/<room_id>", auth="server", prefixes=FEDERATION_V1)
    async def state_ids(self, request: MatrixRequest, origin: str, room_id: str) -> JsonDict:
        return await self._reads.state_ids(origin, room_id, _required(request, "event_id"))

    @endpoint("GET", "/event_auth/<room_id>/<event_id>", auth="server", prefixes=FEDERATION_V1)
    async def event_auth(self, request: MatrixRequest, origin: str, room_id: str, event_id: str) -> JsonDict:
        return await self._reads.event_auth(origin, room_id, event_id)

    @endpoint("GET", "/backfill/<room_id>", auth="server", prefixes=FEDERATION_V1)
    async def backfill(self, request: MatrixRequest, origin: str, room_id: str) -> JsonDict:
        event_ids = [v.decode("utf-8", "replace") for v in request.args.get(b"v", [])]
        if not event_ids:
            raise missing_param("Missing query parameter: v")
        limit = query_int(request, "limit")
        if limit is None:
            raise missing_param("Missing query parameter: limit")
        return await self._reads.backfill(origin, room_id, event_ids, limit)

    @endpoint("POST", "/get_missing_events/<room_id>", auth="server", prefixes=FEDERATION_V1)
    async def get_missing_events(self, request: MatrixRequest, origin: str, room_id: str) -> JsonDict:
        body = read_json_object(request)
        return await self._reads.missing_events(
            origin, room_id, earliest=_event_ids(body, "earliest_events"), latest=_event_ids(body, "latest_events"),
            limit=get_field(body, "limit", int, DEFAULT_MISSING_EVENTS), min_depth=get_field(body, "min_depth", int, 0))

    @endpoint("GET", "/timestamp_to_event/<room_id>", auth="server", prefixes=FEDERATION_V1)
    async def timestamp_to_event(self, request: MatrixRequest, origin: str, room_id: str) -> JsonDict:
        ts = query_int(request, "ts")
        if ts is None:
            raise missing_param("Missing query parameter: ts")
        direction = _required(request, "dir")
        if direction not in ("f", "b"):
            raise invalid_param("Query parameter 'dir' must be 'f' or 'b'")
        return await self._reads.timestamp_to_event(origin, room_id, ts, forwards=direction == "f")


def _required(request: MatrixRequest, name: str) -> str:
    value = query_arg(request, name)
    if value is None:
        raise missing_param(f"Missing query parameter: {name}")
    return value


def _event_ids(body: JsonDict, name: str) -> list[str]:
    event_ids = get_field(body, name, list)
    if not all(isinstance(event_id, str) for event_id in event_ids):
        raise bad_json(f"{name!r} must be a list of event ids")
    return event_ids
