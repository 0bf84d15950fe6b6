"""
The admin API's media endpoints, in Synapse's shapes: its media admin API
(quarantine, protection, a room's media, deletion, the remote media cache),
a user's media (from its user admin API) and the users' media statistics.
"""
from __future__ import annotations

from typing import Sequence

from ruma_tx.http.admin.paging import Page, read_page
from ruma_tx.http.parsing import query_arg, query_bool, query_int
from ruma_tx.http.routing import SYNAPSE_ADMIN, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.errors import invalid_param, missing_param
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.admin_media import AdminMedia
from ruma_tx.services.guard import Requester
from ruma_tx.services.ports.admin_media import (
    MEDIA_USAGE_ORDERS,
    USER_MEDIA_ORDERS,
    Paging,
    UsageFilter,
)

#: A C{before_ts} below this is a time in seconds by mistake (a date in
#: 1970 in milliseconds): refused, as Synapse does, before it deletes
#: nothing, or everything.
_SECONDS_BY_MISTAKE = 30_000_000_000


class MediaAdminApi:
    """@param media: the L{ruma_tx.services.admin_media.AdminMedia}."""

    def __init__(self, media: AdminMedia) -> None:
        self._media = media

    # ------------------------------------------------------------------
    # Quarantine and protection

    @endpoint("POST", "/v1/media/quarantine/<server_name>/<media_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def quarantine(self, request: MatrixRequest, requester: Requester, server_name: str,
                         media_id: str) -> JsonDict:
        await self._media.quarantine(server_name, media_id, requester.user_id)
        return {}

    @endpoint("POST", "/v1/media/unquarantine/<server_name>/<media_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def unquarantine(self, request: MatrixRequest, requester: Requester, server_name: str,
                           media_id: str) -> JsonDict:
        await self._media.unquarantine(server_name, media_id)
        return {}

    @endpoint("POST", "/v1/room/<room_id>/media/quarantine", prefixes=SYNAPSE_ADMIN, admin=True)
    @endpoint("POST", "/v1/quarantine_media/<room_id>", prefixes=SYNAPSE_ADMIN, admin=True)  # Synapse's older path
    async def quarantine_room(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        return {"num_quarantined": await self._media.quarantine_room(room_id, requester.user_id)}

    @endpoint("POST", "/v1/user/<user_id>/media/quarantine", prefixes=SYNAPSE_ADMIN, admin=True)
    async def quarantine_user(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        return {"num_quarantined": await self._media.quarantine_user(user_id, requester.user_id)}

    @endpoint("POST", "/v1/media/protect/<media_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def protect(self, request: MatrixRequest, requester: Requester, media_id: str) -> JsonDict:
        await self._media.protect(media_id, True)
        return {}

    @endpoint("POST", "/v1/media/unprotect/<media_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def unprotect(self, request: MatrixRequest, requester: Requester, media_id: str) -> JsonDict:
        await self._media.protect(media_id, False)
        return {}

    # ------------------------------------------------------------------
    # Listings

    @endpoint("GET", "/v1/room/<room_id>/media", prefixes=SYNAPSE_ADMIN, admin=True)
    async def room_media(self, request: MatrixRequest, requester: Requester, room_id: str) -> JsonDict:
        local, remote = await self._media.media_in_room(room_id)
        return {"local": local, "remote": remote}

    @endpoint("GET", "/v1/users/<user_id>/media", prefixes=SYNAPSE_ADMIN, admin=True)
    async def user_media(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        paging = _user_media_paging(request)
        listing = await self._media.media_of_user(user_id, paging)
        return _page_json(paging, "media", listing.total, [{
            "media_id": media.media_id,
            "media_type": media.media_type,
            "media_length": media.media_length,
            "upload_name": media.upload_name,
            "created_ts": media.created_ts,
            "last_access_ts": media.last_access_ts,
            "quarantined_by": media.quarantined_by,
            "safe_from_quarantine": media.safe_from_quarantine,
        } for media in listing.rows])

    @endpoint("GET", "/v1/statistics/users/media", prefixes=SYNAPSE_ADMIN, admin=True)
    async def media_statistics(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        paging = _paging(request, MEDIA_USAGE_ORDERS, default_order="user_id", default_dir="f")
        listing = await self._media.usage(_usage_filter(request), paging)
        return _page_json(paging, "users", listing.total, [{
            "user_id": usage.user_id,
            "displayname": usage.displayname,
            "media_count": usage.media_count,
            "media_length": usage.media_length,
        } for usage in listing.rows])

    # ------------------------------------------------------------------
    # Deletion

    @endpoint("DELETE", "/v1/media/<server_name>/<media_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def delete(self, request: MatrixRequest, requester: Requester, server_name: str,
                     media_id: str) -> JsonDict:
        await self._media.delete(server_name, media_id)
        return _deleted([media_id])

    @endpoint("POST", "/v1/media/delete", prefixes=SYNAPSE_ADMIN, admin=True)
    async def delete_unused(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        size_gt = query_int(request, "size_gt")
        if size_gt is not None and size_gt < 0:
            raise invalid_param("'size_gt' must be a whole number of bytes")
        return _deleted(await self._media.delete_unused(_before_ts(request), size_gt or 0,
                                                        query_bool(request, "keep_profiles", True)))

    @endpoint("POST", "/v1/media/<server_name>/delete", prefixes=SYNAPSE_ADMIN, admin=True)
    async def delete_unused_of(self, request: MatrixRequest, requester: Requester, server_name: str) -> JsonDict:
        """Synapse's older path of L{delete_unused}, naming this server."""
        if not self._media.is_local(server_name):
            raise invalid_param("Can only delete local media")
        return await self.delete_unused(request, requester)

    @endpoint("DELETE", "/v1/users/<user_id>/media", prefixes=SYNAPSE_ADMIN, admin=True)
    async def delete_user_media(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        """The page that the same query lists (no C{next_token}: what is left moved up)."""
        return _deleted(await self._media.delete_media_of_user(user_id, _user_media_paging(request)))

    @endpoint("POST", "/v1/purge_media_cache", prefixes=SYNAPSE_ADMIN, admin=True)
    async def purge_media_cache(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        return {"deleted": await self._media.purge_remote_cache(_before_ts(request))}


def _paging(request: MatrixRequest, orders: Sequence[str], *, default_order: str, default_dir: str) -> Paging:
    order_by = query_arg(request, "order_by", default_order)
    if order_by not in orders:
        raise invalid_param(f"'order_by' must be one of {', '.join(orders)}")
    page = read_page(request, default_dir=default_dir)
    return Paging(offset=page.start, limit=page.limit, order_by=order_by, backwards=page.backwards)


def _user_media_paging(request: MatrixRequest) -> Paging:
    # Newest first unless an order is asked for, as Synapse.
    default_dir = "b" if query_arg(request, "order_by") is None else "f"
    return _paging(request, USER_MEDIA_ORDERS, default_order="created_ts", default_dir=default_dir)


def _page_json(paging: Paging, name: str, total: int, rows: list[JsonDict]) -> JsonDict:
    body: JsonDict = {name: rows, "total": total}
    next_token = Page(paging.offset, paging.limit, paging.backwards).next_token(len(rows), total)
    if next_token is not None:
        body["next_token"] = next_token
    return body


def _usage_filter(request: MatrixRequest) -> UsageFilter:
    from_ts, until_ts = query_int(request, "from_ts"), query_int(request, "until_ts")
    for name, value in (("from_ts", from_ts), ("until_ts", until_ts)):
        if value is not None and value < 0:
            raise invalid_param(f"'{name}' must be a timestamp in milliseconds, not negative")
    if from_ts is not None and until_ts is not None and until_ts < from_ts:
        raise invalid_param("'until_ts' must not be before 'from_ts'")
    search_term = query_arg(request, "search_term")
    if search_term == "":
        raise invalid_param("'search_term' must not be empty")
    return UsageFilter(from_ts=from_ts, until_ts=until_ts, search_term=search_term)


def _before_ts(request: MatrixRequest) -> int:
    before_ts = query_int(request, "before_ts")
    if before_ts is None:
        raise missing_param("'before_ts' (a timestamp in milliseconds) is required")
    if before_ts < 0:
        raise invalid_param("'before_ts' must be a timestamp in milliseconds, not negative")
    if before_ts < _SECONDS_BY_MISTAKE:
        raise invalid_param("'before_ts' is in 1970 when read as milliseconds: it must be a timestamp "
                            "in milliseconds, not seconds")
    return before_ts


def _deleted(media_ids: list[str]) -> JsonDict:
    return {"deleted_media": media_ids, "total": len(media_ids)}
