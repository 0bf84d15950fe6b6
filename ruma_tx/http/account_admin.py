"""
The spec's account moderation endpoints (Server Administration module):
C{/_matrix/client/v1/admin/lock/{userId}} and C{.../suspend/{userId}},
for server admins, on local accounts. The router checks the admin before
any account is looked up, as the spec asks (no user enumeration).
"""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, read_json_object
from ruma_tx.http.routing import CLIENT_V1, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.account_restrictions import AccountRestrictions
from ruma_tx.services.guard import Requester


class AccountModerationApi:
    """
    @param restrictions: the L{AccountRestrictions}.
    """

    def __init__(self, restrictions: AccountRestrictions) -> None:
        self._restrictions = restrictions

    @endpoint("GET", "/admin/lock/<user_id>", prefixes=CLIENT_V1, admin=True)
    async def get_locked(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        account = await self._restrictions.moderated_account(requester.user_id, user_id, changing=False)
        return {"locked": account.locked}

    @endpoint("PUT", "/admin/lock/<user_id>", prefixes=CLIENT_V1, admin=True)
    async def set_locked(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        locked = get_field(read_json_object(request), "locked", bool)
        await self._restrictions.moderated_account(requester.user_id, user_id, changing=True)
        await self._restrictions.set_locked(user_id, locked)
        return {"locked": locked}

    @endpoint("GET", "/admin/suspend/<user_id>", prefixes=CLIENT_V1, admin=True)
    async def get_suspended(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        account = await self._restrictions.moderated_account(requester.user_id, user_id, changing=False)
        return {"suspended": account.suspended}

    @endpoint("PUT", "/admin/suspend/<user_id>", prefixes=CLIENT_V1, admin=True)
    async def set_suspended(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        suspended = get_field(read_json_object(request), "suspended", bool)
        await self._restrictions.moderated_account(requester.user_id, user_id, changing=True)
        await self._restrictions.set_suspended(user_id, suspended)
        return {"suspended": suspended}
