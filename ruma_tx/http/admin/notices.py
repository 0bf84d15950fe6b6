"""The admin API's server notices (Synapse's "Server Notices")."""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, read_json_object
from ruma_tx.http.routing import SYNAPSE_ADMIN, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import invalid_param
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.server_notices import ServerNotices


class ServerNoticesApi:
    """@param notices: the L{ruma_tx.services.server_notices.ServerNotices}."""

    def __init__(self, notices: ServerNotices) -> None:
        self._notices = notices

    @endpoint("POST", "/v1/send_server_notice", prefixes=SYNAPSE_ADMIN, admin=True)
    async def send(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return await self._send(request, None)

    @endpoint("PUT", "/v1/send_server_notice/<txn_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def send_once(self, request: MatrixRequest, requester: Requester, txn_id: str) -> JsonDict:
        """A retry with the same transaction id (of the same admin's device) sends nothing more."""
        return await self._send(request, (requester.user_id, requester.device_id, "send_server_notice", txn_id))

    async def _send(self, request: MatrixRequest, txn: tuple[str, str, str, str] | None) -> JsonDict:
        body = read_json_object(request)
        user_id = get_field(body, "user_id", str)
        content = get_field(body, "content", dict)
        event_type = get_field(body, "type", str, "m.room.message")
        state_key = get_field(body, "state_key", str, None)
        if event_type in ("m.room.member", "m.room.redaction"):
            # The notices room's memberships are the server's to manage; a
            # redaction needs the event it redacts, which this body cannot name.
            raise invalid_param(f"A server notice cannot be an {event_type} event")
        return {"event_id": await self._notices.send_notice(user_id, event_type, content, state_key, txn)}
