"""
The admin API's user accounts (Synapse's "User Admin API"): the list and
the record, creating and modifying, deactivation, password reset, the
admin flag, sessions, joined rooms, pushers, shadow-bans and rate limit
overrides.
"""
from __future__ import annotations

from ruma_tx.http.admin.paging import Page, read_page
from ruma_tx.http.parsing import get_field, query_arg, query_bool, read_json_object
from ruma_tx.http.routing import SYNAPSE_ADMIN, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.admin_users import UserListQuery, user_edit
from ruma_tx.matrix.errors import invalid_param
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.admin_users import UserAdmin
from ruma_tx.services.guard import Requester


def _list_query(request: MatrixRequest, page: Page, *, v3: bool) -> UserListQuery:
    """
    The list's query parameters, as Synapse's v2 reads them: C{deactivated}
    and C{locked} (default C{false}) include such accounts, C{guests}
    (default C{true}) includes guests, C{admins} keeps only admins or only
    others, and C{not_user_type} (repeatable) leaves out a user type. In
    C{v3}, C{deactivated} keeps only such accounts or only others, and its
    absence lists both.

    @raise BadRequest: M_INVALID_PARAM for a bad value.
    """
    admins = _optional_bool(request, "admins")
    if v3:
        deactivated = _optional_bool(request, "deactivated")
    else:
        deactivated = None if query_bool(request, "deactivated") else False
    try:
        not_user_types = tuple(value.decode("utf-8") for value in request.args.get(b"not_user_type", []))
    except UnicodeDecodeError:
        raise invalid_param("Query parameter 'not_user_type' is not UTF-8") from None
    return UserListQuery(
        start=page.start, limit=page.limit, backwards=page.backwards,
        user_id=query_arg(request, "user_id") or None, name=query_arg(request, "name") or None,
        guests=query_bool(request, "guests", True), admins=admins,
        deactivated=deactivated, locked=query_bool(request, "locked"),
        not_user_types=not_user_types, order_by=query_arg(request, "order_by", "name"))


def _optional_bool(request: MatrixRequest, name: str) -> bool | None:
    """A C{true}/C{false} query parameter, None when absent."""
    return None if query_arg(request, name) is None else query_bool(request, name)


class UserAdminApi:
    """@param users: the L{ruma_tx.services.admin_users.UserAdmin}."""

    def __init__(self, users: UserAdmin) -> None:
        self._users = users

    @endpoint("GET", "/v2/users", prefixes=SYNAPSE_ADMIN, admin=True)
    async def list_users(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        """Ordered by user id unless C{order_by} says otherwise; C{next_token} while more remain."""
        return await self._list(request, v3=False)

    @endpoint("GET", "/v3/users", prefixes=SYNAPSE_ADMIN, admin=True)
    async def list_users_v3(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        """As v2 but for C{deactivated} (see L{_list_query}); Ketesa's user list."""
        return await self._list(request, v3=True)

    async def _list(self, request: MatrixRequest, *, v3: bool) -> JsonDict:
        page = read_page(request, default_dir="f")
        users, total = await self._users.list_users(_list_query(request, page, v3=v3))
        body: JsonDict = {"users": users, "total": total}
        next_token = page.next_token(len(users), total)
        if next_token is not None:
            body["next_token"] = str(next_token)  # a string here, as Synapse answers it
        return body

    @endpoint("GET", "/v2/users/<user_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def get_user(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        return await self._users.get_user(user_id)

    @endpoint("PUT", "/v2/users/<user_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def put_user(self, request: MatrixRequest, requester: Requester,
                       user_id: str) -> tuple[int, JsonDict]:
        """201 with the new account, or 200 with the modified one."""
        return await self._users.put_user(requester, user_id, user_edit(read_json_object(request)))

    @endpoint("POST", "/v1/deactivate/<user_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def deactivate(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        # As Synapse, an empty body is accepted (it was the older form).
        body = read_json_object(request, allow_empty=True)
        return await self._users.deactivate(user_id, erase=get_field(body, "erase", bool, False))

    @endpoint("POST", "/v1/reset_password/<user_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def reset_password(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        body = read_json_object(request)
        await self._users.reset_password(user_id, get_field(body, "new_password", str),
                                         logout_devices=get_field(body, "logout_devices", bool, True))
        return {}

    @endpoint("GET", "/v1/users/<user_id>/admin", prefixes=SYNAPSE_ADMIN, admin=True)
    async def get_admin(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        return await self._users.is_admin(user_id)

    @endpoint("PUT", "/v1/users/<user_id>/admin", prefixes=SYNAPSE_ADMIN, admin=True)
    async def set_admin(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        await self._users.set_admin(requester, user_id, get_field(read_json_object(request), "admin", bool))
        return {}

    @endpoint("GET", "/v1/whois/<user_id>", prefixes=SYNAPSE_ADMIN, admin=True)
    async def whois(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        return await self._users.whois(user_id)

    @endpoint("GET", "/v1/users/<user_id>/joined_rooms", prefixes=SYNAPSE_ADMIN, admin=True)
    async def joined_rooms(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        return await self._users.joined_rooms(user_id)

    @endpoint("GET", "/v1/users/<user_id>/pushers", prefixes=SYNAPSE_ADMIN, admin=True)
    async def pushers(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        return await self._users.pushers(user_id)

    @endpoint("POST", "/v1/users/<user_id>/shadow_ban", prefixes=SYNAPSE_ADMIN, admin=True)
    async def shadow_ban(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        await self._users.set_shadow_banned(user_id, True)
        return {}

    @endpoint("DELETE", "/v1/users/<user_id>/shadow_ban", prefixes=SYNAPSE_ADMIN, admin=True)
    async def lift_shadow_ban(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        await self._users.set_shadow_banned(user_id, False)
        return {}

    @endpoint("GET", "/v1/users/<user_id>/override_ratelimit", prefixes=SYNAPSE_ADMIN, admin=True)
    async def get_ratelimit(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        return await self._users.ratelimit_override(user_id)

    @endpoint("POST", "/v1/users/<user_id>/override_ratelimit", prefixes=SYNAPSE_ADMIN, admin=True)
    async def set_ratelimit(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        return await self._users.set_ratelimit_override(user_id, read_json_object(request, allow_empty=True))

    @endpoint("DELETE", "/v1/users/<user_id>/override_ratelimit", prefixes=SYNAPSE_ADMIN, admin=True)
    async def delete_ratelimit(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        await self._users.delete_ratelimit_override(user_id)
        return {}
