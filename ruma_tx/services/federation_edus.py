"""
Local ephemeral changes, sent on as EDUs to the servers concerned: the
hooks the typing, receipt, presence, device-list, cross-signing and
to-device services are given (constructor-injected callbacks), so they
know nothing of federation.

Who hears: typing and receipts go to the servers of the room's joined
members; presence, device list and signing key updates to the servers
sharing a room with the user (as Synapse). Typing and presence are best
effort (the latest of each, in memory); the others are durable.
"""
from __future__ import annotations

from typing import Any, Collection, Coroutine, Mapping, Sequence

from twisted.internet import defer

from ruma_tx.logs import logger
from ruma_tx.matrix import federation_edus as edus
from ruma_tx.matrix.ephemeral import READ_PRIVATE, Receipt
from ruma_tx.matrix.federation_sending import server_of
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.federation_sender import FederationSender
from ruma_tx.services.ports.federation_queue import FederationQueue

log = logger(__name__)

class FederationEdus:
    """
    @param sender: the sending queue.
    @param queue: who is in which room (the servers to send to).
    @param server_name: ours: only our users' changes are sent.
    """

    def __init__(self, *, sender: FederationSender, queue: FederationQueue, server_name: str) -> None:
        self._sender = sender
        self._queue = queue
        self._server_name = server_name

    def typing_changed(self, room_id: str, user_id: str, typing: bool) -> None:
        """A local user started or stopped typing (must not wait: best effort)."""
        if self._ours(user_id):
            self._background(self._typing(room_id, user_id, typing), "typing in " + room_id)

    def presence_changed(self, user_id: str, content: JsonDict, servers: Collection[str] | None = None) -> None:
        """
        A local user's presence changed, or is news to C{servers} (by
        default: the servers sharing a room with them). C{content}: as
        C{m.presence}'s; best effort, must not wait.
        """
        if self._ours(user_id):
            self._background(self._presence(user_id, {"push": [{"user_id": user_id, **content}]}, servers),
                             "presence of " + user_id)

    async def receipt_stored(self, receipt: Receipt) -> None:
        """A local user's receipt moved (a private one stays here)."""
        if not self._ours(receipt.user_id) or receipt.receipt_type == READ_PRIVATE:
            return
        servers = await self._queue.get_servers_in_rooms([receipt.room_id])
        await self._sender.send_edu(servers, edus.RECEIPT, edus.receipt_content(
            receipt.room_id, receipt.receipt_type, receipt.user_id, receipt.event_id, receipt.ts,
            receipt.thread_id))

    async def device_list_changed(self, user_id: str, updates: Sequence[JsonDict]) -> None:
        """
        A local user's devices changed: send the C{m.device_list_update}
        contents C{updates}, in their order (see
        L{ruma_tx.services.device_list_updates}).
        """
        if self._ours(user_id) and updates:
            servers = await self._queue.get_servers_sharing_rooms(user_id)
            for content in updates:
                await self._sender.send_edu(servers, edus.DEVICE_LIST_UPDATE, content)

    async def signing_keys_changed(self, user_id: str, *, master_key: JsonDict | None = None,
                                   self_signing_key: JsonDict | None = None) -> None:
        """A local user uploaded a new master or self-signing key."""
        if self._ours(user_id):
            servers = await self._queue.get_servers_sharing_rooms(user_id)
            await self._sender.send_edu(servers, edus.SIGNING_KEY_UPDATE, edus.signing_key_update_content(
                user_id, master_key=master_key, self_signing_key=self_signing_key))

    async def to_device(self, sender: str, event_type: str, message_id: str,
                        messages: Mapping[str, Mapping[str, JsonDict]]) -> None:
        """Send on the messages a local user addressed to other servers' users."""
        if not self._ours(sender):
            return  # another server's user's messages: never relayed further
        for server, content in edus.direct_to_device_by_server(
                sender, event_type, message_id, messages, self._server_name).items():
            await self._sender.send_edu([server], edus.DIRECT_TO_DEVICE, content)

    def _ours(self, user_id: str) -> bool:
        return server_of(user_id) == self._server_name

    async def _typing(self, room_id: str, user_id: str, typing: bool) -> None:
        servers = await self._queue.get_servers_in_rooms([room_id])
        self._sender.send_ephemeral_edu(servers, edus.TYPING, f"{room_id} {user_id}",
                                        edus.typing_content(room_id, user_id, typing))

    async def _presence(self, user_id: str, content: JsonDict, servers: Collection[str] | None) -> None:
        if servers is None:
            servers = await self._queue.get_servers_sharing_rooms(user_id)
        self._sender.send_ephemeral_edu(servers, edus.PRESENCE, user_id, content)

    @staticmethod
    def _background(work: Coroutine[Any, Any, None], what: str) -> None:
        defer.ensureDeferred(work).addErrback(lambda f: log.failure("sending {what}", f, what=what))
