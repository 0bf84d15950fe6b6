"""
C{GET /notifications} (spec: "Listing Notifications"). Guests may not
call it (it is not on the spec's guest allow-list).
"""
from __future__ import annotations

from ruma_tx.http.parsing import query_arg, query_int
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.notifications import NotificationList


class NotificationsApi:
    """
    @param notifications: the L{ruma_tx.services.notifications.NotificationList}.
    """

    def __init__(self, notifications: NotificationList) -> None:
        self._notifications = notifications

    @endpoint("GET", "/notifications")
    async def get_notifications(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return await self._notifications.get(
            requester.user_id, from_token=query_arg(request, "from"),
            limit=query_int(request, "limit"), only=query_arg(request, "only"))
