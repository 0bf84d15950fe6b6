"""
Ports: pushers, the delivery of notifications to push gateways and the
C{/notifications} list (implemented by C{ruma_tx.storage.pushers.PusherStore}).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.pushers import Pusher, PusherSettings, RoomContext
from ruma_tx.matrix.types import JsonDict


@dataclass(frozen=True)
class PushAction:
    """
    What a user's push rules said about one event (a row of
    C{event_push_actions}).

    @ivar actions_json: the full actions when they say more than the two
        flags (see L{ruma_tx.matrix.pushers.stored_actions}).
    """

    stream_ordering: int
    room_id: str
    notify: bool
    highlight: bool
    actions_json: str | None


@dataclass(frozen=True)
class PendingNotification:
    """
    A notification a pusher has yet to deliver.

    @ivar event: the event in client format (with C{event_id}).
    """

    action: PushAction
    event: JsonDict


@dataclass(frozen=True)
class ListedNotification:
    """
    One entry of C{GET /notifications}.

    @ivar ts: when the event was sent (ms).
    @ivar read: the user's read position in the room is at or after it.
    """

    action: PushAction
    event: StoredEvent
    ts: int
    read: bool


class PusherStorage(Protocol):
    """What L{ruma_tx.services.pushers.Pushers} needs: the pushers themselves."""

    async def get_pushers(self, user_id: str) -> list[Pusher]: ...

    async def set_pusher(self, user_id: str, device_id: str, settings: PusherSettings, *,
                         now_ms: int, position: int) -> list[str]:
        """
        Create or update the user's pusher (owned by C{device_id}, delivering
        after stream position C{position} when new) and, unless
        C{settings.append}, delete other users' pushers with its app id and
        pushkey, in one transaction.

        @return: the users whose pushers were deleted.
        """
        ...

    async def delete_pusher(self, user_id: str, app_id: str, pushkey: str) -> bool: ...


class PushDeliveryStorage(Protocol):
    """What L{ruma_tx.services.push_delivery.PushDelivery} needs."""

    async def get_all_pusher_ids(self) -> list[tuple[int, str]]:
        """C{(pusher_id, user_id)} of every pusher."""
        ...

    async def get_pusher_ids(self, user_id: str) -> list[int]: ...
    async def get_pusher(self, pusher_id: int) -> Pusher | None: ...

    async def get_pending(self, user_id: str, *, after: int, upto: int,
                          limit: int) -> list[PendingNotification]:
        """
        The user's notifications (push actions that notify) in C{(after,
        upto]}, oldest first, except those in rooms the user has read past
        them meanwhile.
        """
        ...

    async def get_room_context(self, room_id: str, sender: str) -> RoomContext: ...

    async def get_unread_count(self, user_id: str, upto: int) -> int:
        """
        The user's unread count, as Synapse counts it for push gateways:
        their notifications up to C{upto} after their read positions in the
        rooms they are in, plus one per pending invite.
        """
        ...

    async def mark_delivered(self, pusher_id: int, stream_ordering: int) -> bool:
        """
        Move the pusher past C{stream_ordering} and clear its failure.

        @return: whether the pusher still exists.
        """
        ...

    async def set_failing_since(self, pusher_id: int, failing_since: int) -> None: ...
    async def remove_pusher(self, pusher_id: int) -> None: ...


class NotificationStorage(Protocol):
    """What L{ruma_tx.services.notifications.NotificationList} needs."""

    async def get_notifications(self, user_id: str, *, before: int | None, upto: int, limit: int,
                                only_highlight: bool) -> list[ListedNotification]:
        """
        The user's notifications (or highlights) before C{before} and up to
        C{upto}, newest first.
        """
        ...
