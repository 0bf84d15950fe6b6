"""
Ports: records and protocols shared by services and the storage that implements them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

from ruma_tx.matrix.ephemeral import Receipt
from ruma_tx.matrix.push_rules import UserRule
from ruma_tx.matrix.to_device import Outgoing


@dataclass(frozen=True)
class AccountData:
    """
    One account data entry.

    @ivar room_id: C{None} for global account data.
    """

    room_id: str | None
    type: str
    content: dict


@dataclass(frozen=True)
class StoredPresence:
    user_id: str
    state: str
    status_msg: str | None
    last_active_ts: int
    stream_position: int


@dataclass(frozen=True)
class QueuedMessage:
    """One message as C{/sync} shows it, with where it was queued."""

    stream_position: int
    sender: str
    type: str
    content: dict

    def as_event(self) -> dict:
        return {"sender": self.sender, "type": self.type, "content": self.content}


class Receipts(Protocol):
    """What the services need of receipt storage (implemented by C{ruma_tx.storage.ephemeral.ReceiptStore})."""

    async def put_receipt(self, receipt: Receipt, event_stream_ordering: int, position: int) -> bool: ...
    async def get_changed_receipts(self, room_ids: list[str], after: int, upto: int, viewer: str) -> list[Receipt]: ...
    async def get_read_up_to(self, user_id: str, room_id: str) -> int | None: ...
    async def get_thread_read_up_to(self, user_id: str, room_id: str) -> dict[str | None, int]: ...


class AccountDataStorage(Protocol):
    """What the services need of accountdata storage (implemented by C{ruma_tx.storage.ephemeral.AccountDataStore})."""

    async def put(self, user_id: str, room_id: str | None, data_type: str, content: dict, position: int) -> None: ...
    async def get(self, user_id: str, room_id: str | None, data_type: str) -> dict | None: ...
    async def get_changed(self, user_id: str, after: int, upto: int) -> list[AccountData]: ...
    async def put_tag(self, user_id: str, room_id: str, tag: str, content: dict, position: int) -> None: ...
    async def remove_tag(self, user_id: str, room_id: str, tag: str, position: int) -> bool: ...


class PresenceStorage(Protocol):
    """What the services need of presence storage (implemented by C{ruma_tx.storage.ephemeral.PresenceStore})."""

    async def put(self, presence: StoredPresence) -> None: ...
    async def get(self, user_id: str) -> StoredPresence | None: ...
    async def get_changed_for(self, viewer: str, room_ids: list[str], after: int, upto: int, include_offline: bool) -> list[StoredPresence]: ...
    async def get_for_new_room_mates(
        self, viewer: str, new_rooms: list[str], joined_rooms: list[str], after: int, upto: int
    ) -> list[StoredPresence]: ...
    async def share_a_room(self, user_a: str, user_b: str) -> bool: ...
    async def get_room_mates(self, user_id: str) -> list[str]: ...
    async def get_joined_presence(self, room_id: str) -> list[StoredPresence]: ...


#: Unread counts asked for a sync: C{(user_id, room ids, up to stream position)}.
UnreadCountsAsked = tuple[str, tuple[str, ...], int]


class PushStorage(Protocol):
    """What the services need of push storage (implemented by C{ruma_tx.storage.push.PushStore})."""

    async def get_user_rules(self, user_ids: Iterable[str]) -> dict[str, tuple[list[UserRule], int]]: ...
    async def put_user_rule(self, user_id: str, kind: str, rule_id: str, rule: dict, order: Callable[[list[str]], list[str]], position: int) -> None: ...
    async def delete_user_rule(self, user_id: str, kind: str, rule_id: str, position: int) -> bool: ...
    async def set_rule_enabled(self, user_id: str, kind: str, rule_id: str, enabled: bool, position: int, *, server_default: bool) -> bool: ...
    async def set_rule_actions(self, user_id: str, kind: str, rule_id: str, actions: list, position: int, *, server_default: bool) -> bool: ...
    async def get_room_push_state(self, room_id: str) -> tuple[str | None, dict[tuple[str, str], dict]]: ...
    async def get_thread_unread_counts(
        self, asked: list[UnreadCountsAsked]) -> dict[UnreadCountsAsked, dict[str, dict[str, tuple[int, int]]]]: ...


class ToDeviceQueue(Protocol):
    """What the services need of todevice storage (implemented by C{ruma_tx.storage.to_device.ToDeviceStore})."""

    async def queue(self, txn: tuple[str, str, str, str], sender: str, event_type: str, messages: list[Outgoing], position: int, now_ms: int) -> list[str] | None: ...
    async def queue_received(self, sender: str, message_id: str, event_type: str, messages: list[Outgoing],
                             position: int, now_ms: int, kept_ms: int) -> list[str] | None: ...
    async def take_batch(self, user_id: str, device_id: str, *, acknowledged: int | None, upto: int, limit: int) -> list[QueuedMessage]: ...
