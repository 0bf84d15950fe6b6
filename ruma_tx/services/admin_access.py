"""
Who may use the admin API: server admins (the C{is_admin} flag, set by
C{ruma-admin} or by the admin API itself), and an audit line per request.
"""
from __future__ import annotations

from ruma_tx.logs import logger
from ruma_tx.matrix.errors import forbidden
from ruma_tx.services.guard import Requester
from ruma_tx.services.ports.accounts import Accounts

log = logger(__name__)


class AdminAccess:
    """
    The router's admin check. The flag is read from the database on every
    admin request (no cache: revoking an admin takes effect at once, and
    admin requests are rare).
    """

    def __init__(self, accounts: Accounts) -> None:
        self._accounts = accounts

    async def __call__(self, requester: Requester, method: str, path: str) -> None:
        account = await self._accounts.get_account(requester.user_id)
        if account is None or not account.is_admin or account.deactivated:
            # Synapse's wording, which admin UIs show to the user.
            raise forbidden("You are not a server admin")
        log.info("admin {admin} (device {device_id}): {method} {path}", admin=requester.user_id,
                 device_id=requester.device_id, method=method, path=path)
