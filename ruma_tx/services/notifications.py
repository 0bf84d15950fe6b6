"""
C{GET /notifications} (spec: "Listing Notifications"): the events a user
was notified of, newest first, from the push actions stored with each
event: the same rows, and the same read positions, as the unread counts
of /sync.
"""
from __future__ import annotations

import re
from typing import Callable

from ruma_tx.matrix.errors import invalid_param
from ruma_tx.matrix.pushers import stored_actions
from ruma_tx.matrix.sync import shown_as_stored
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.ports.pushers import NotificationStorage

#: C{limit} when none is given, and the most one page holds (as Synapse).
DEFAULT_LIMIT = 50
MAX_LIMIT = 500

#: C{only}: the one filter the spec defines.
HIGHLIGHT = "highlight"

#: A C{next_token}: a stream position.
_TOKEN = re.compile(r"[0-9]{1,18}")


class NotificationList:
    """
    @param store: the stored push actions.
    @param current_position: the visible stream position (a page never
        shows what /sync cannot show yet).
    """

    def __init__(self, *, store: NotificationStorage, current_position: Callable[[], int]) -> None:
        self._store = store
        self._current_position = current_position

    async def get(self, user_id: str, *, from_token: str | None, limit: int | None,
                  only: str | None) -> JsonDict:
        """
        One page of the user's notifications, newest first.

        C{from} is a C{next_token} (a stream position: the page starts
        below it); C{next_token} is given only when more follow.
        C{only=highlight} keeps the notifications that highlight; the spec
        defines no other value, and others are ignored, as in Synapse.
        Notifications are listed with the actions their push rule gave,
        the event as /sync shows it, when it was sent, and whether the
        user's read position in the room (their latest read receipt or own
        event) is at or after it. C{profile_tag} is left out: the spec's
        device-specific rule sets are gone, so nothing sets it.

        @raise BadRequest: C{M_INVALID_PARAM} for a bad C{from} or a
            negative C{limit}.
        """
        before = _position(from_token)
        if limit is None:
            limit = DEFAULT_LIMIT
        if limit < 0:
            raise invalid_param("Query parameter 'limit' must not be negative")
        limit = min(limit, MAX_LIMIT)
        if limit == 0:
            return {"notifications": []}
        rows = await self._store.get_notifications(
            user_id, before=before, upto=self._current_position(), limit=limit + 1,
            only_highlight=only == HIGHLIGHT)
        page = rows[:limit]
        notifications = [
            {
                "actions": stored_actions(row.action.notify, row.action.highlight, row.action.actions_json),
                "event": shown_as_stored(row.event),
                "read": row.read,
                "room_id": row.action.room_id,
                "ts": row.ts,
            }
            for row in page
        ]
        body: JsonDict = {"notifications": notifications}
        if len(rows) > limit:
            body["next_token"] = str(page[-1].action.stream_ordering)
        return body


def _position(token: str | None) -> int | None:
    if token is None:
        return None
    if _TOKEN.fullmatch(token) is None:
        raise invalid_param("Query parameter 'from' is not a token this server gave")
    return int(token)
