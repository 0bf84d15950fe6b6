"""
The federation endpoints that change rooms: transactions of PDUs and EDUs
(C{/send}), and the membership handshakes (make/send join, leave, knock;
invite). Served by the "federation" listener only; every request is
signed by its origin server (C{auth="server"}).
"""
from __future__ import annotations

from typing import Protocol

from ruma_tx.http.parsing import get_field, read_json_object
from ruma_tx.http.routing import FEDERATION_V1, FEDERATION_V2, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.federation_inbound import TransactionReceiver


class ResidentMembership(Protocol):
    """What a resident server answers to the membership handshakes."""

    async def make_membership(self, origin: str, room_id: str, user_id: str, membership: str,
                              versions: list[str] | None) -> JsonDict: ...

    async def send_join(self, origin: str, room_id: str, event_id: str, pdu: JsonDict,
                        omit_members: bool) -> JsonDict: ...

    async def send_leave(self, origin: str, room_id: str, event_id: str, pdu: JsonDict) -> None: ...

    async def send_knock(self, origin: str, room_id: str, event_id: str, pdu: JsonDict) -> JsonDict: ...

    async def receive_invite(self, origin: str, room_id: str, event_id: str, body: JsonDict) -> JsonDict: ...


def _versions(request: MatrixRequest) -> list[str] | None:
    values = request.args.get(b"ver")
    return None if values is None else [v.decode("utf-8", "replace") for v in values]


class FederationRoomsApi:
    def __init__(self, transactions: TransactionReceiver, membership: ResidentMembership) -> None:
        self._transactions = transactions
        self._membership = membership

    @endpoint("PUT", "/send/<txn_id>", auth="server", prefixes=FEDERATION_V1)
    async def send_transaction(self, request: MatrixRequest, origin: str, txn_id: str) -> JsonDict:
        return await self._transactions.receive(origin, txn_id, read_json_object(request))

    @endpoint("GET", "/make_join/<room_id>/<user_id>", auth="server", prefixes=FEDERATION_V1)
    async def make_join(self, request: MatrixRequest, origin: str, room_id: str, user_id: str) -> JsonDict:
        return await self._membership.make_membership(origin, room_id, user_id, "join", _versions(request))

    @endpoint("GET", "/make_leave/<room_id>/<user_id>", auth="server", prefixes=FEDERATION_V1)
    async def make_leave(self, request: MatrixRequest, origin: str, room_id: str, user_id: str) -> JsonDict:
        return await self._membership.make_membership(origin, room_id, user_id, "leave", None)

    @endpoint("GET", "/make_knock/<room_id>/<user_id>", auth="server", prefixes=FEDERATION_V1)
    async def make_knock(self, request: MatrixRequest, origin: str, room_id: str, user_id: str) -> JsonDict:
        return await self._membership.make_membership(origin, room_id, user_id, "knock", _versions(request))

    @endpoint("PUT", "/send_join/<room_id>/<event_id>", auth="server", prefixes=FEDERATION_V2)
    async def send_join(self, request: MatrixRequest, origin: str, room_id: str, event_id: str) -> JsonDict:
        omit = request.args.get(b"omit_members", [b"false"])[0] == b"true"
        return await self._membership.send_join(origin, room_id, event_id, read_json_object(request), omit)

    @endpoint("PUT", "/send_leave/<room_id>/<event_id>", auth="server", prefixes=FEDERATION_V2)
    async def send_leave(self, request: MatrixRequest, origin: str, room_id: str, event_id: str) -> JsonDict:
        await self._membership.send_leave(origin, room_id, event_id, read_json_object(request))
        return {}

    @endpoint("PUT", "/send_knock/<room_id>/<event_id>", auth="server", prefixes=FEDERATION_V1)
    async def send_knock(self, request: MatrixRequest, origin: str, room_id: str, event_id: str) -> JsonDict:
        return await self._membership.send_knock(origin, room_id, event_id, read_json_object(request))

    @endpoint("PUT", "/invite/<room_id>/<event_id>", auth="server", prefixes=FEDERATION_V2)
    async def invite(self, request: MatrixRequest, origin: str, room_id: str, event_id: str) -> JsonDict:
        body = read_json_object(request)
        get_field(body, "event", dict)
        return await self._membership.receive_invite(origin, room_id, event_id, body)
