"""
Locking and suspending accounts (spec: "Account locking", "Account
suspension", and the Server Administration module's C{/admin/lock} and
C{/admin/suspend}).

The auth guard enforces both: it reads the flags with each access token
and keeps them in its cache, so every change here makes each process
forget the account's verified tokens (L{AccountFlags} announces them).
Tokens are never revoked by a lock (the spec: the user keeps the
sessions for when the account is unlocked).
"""
from __future__ import annotations

from typing import Callable, Iterable

from ruma_tx.matrix.errors import forbidden, invalid_param, not_found
from ruma_tx.matrix.identifiers import InvalidIdentifier, parse_user_id
from ruma_tx.services.ports.account_restrictions import AccountFlags
from ruma_tx.services.ports.accounts import Account, Accounts


class AccountRestrictions:
    """
    @param forget_tokens: told the ids of the tokens whose verified copies
        this process must forget (the guard's cache).
    """

    def __init__(self, *, accounts: Accounts, flags: AccountFlags,
                 forget_tokens: Callable[[Iterable[str]], None], server_name: str) -> None:
        self._accounts = accounts
        self._flags = flags
        self._forget_tokens = forget_tokens
        self._server_name = server_name

    async def set_locked(self, user_id: str, locked: bool) -> None:
        """
        Lock or unlock a local account: while locked, its every request but
        logging out gets 401 M_USER_LOCKED, from the next request on.

        @raise NotFound: 404 M_NOT_FOUND for an unknown account.
        """
        self._forget(user_id, await self._flags.set_locked(user_id, locked))

    async def set_suspended(self, user_id: str, suspended: bool) -> None:
        """
        Suspend or reinstate a local account: while suspended, it reads but
        gets 403 M_USER_SUSPENDED for what would change rooms or its profile.

        @raise NotFound: 404 M_NOT_FOUND for an unknown account.
        """
        self._forget(user_id, await self._flags.set_suspended(user_id, suspended))

    async def may_moderate(self, user_id: str) -> bool:
        """Whether C{user_id} may lock and suspend accounts: a server admin."""
        account = await self._accounts.get_account(user_id)
        return account is not None and account.is_admin and not account.deactivated

    async def moderated_account(self, admin: str, user_id: str, *, changing: bool) -> Account:
        """
        The account an admin asks about (C{changing}: locks, suspends or
        frees) through the spec's C{/admin/lock} or C{/admin/suspend}.

        @param admin: the requesting admin (the router checked the role).
        @raise MatrixError: 400 M_INVALID_PARAM for a user id that is not
            this server's; 404 M_NOT_FOUND for an unknown or deactivated
            account; 403 M_FORBIDDEN for another admin's account, or the
            admin's own when C{changing} (the spec's answers).
        """
        try:
            _, server_name = parse_user_id(user_id)
        except InvalidIdentifier:
            raise invalid_param(f"Not a valid user ID: {user_id}") from None
        if server_name != self._server_name:
            raise invalid_param("User does not belong to the local server.")
        account = await self._accounts.get_account(user_id)
        if account is None or account.deactivated:
            raise not_found("User not found.")
        if user_id == admin and changing:
            raise forbidden("You cannot lock or suspend your own account.")
        if account.is_admin and user_id != admin:
            raise forbidden("The target user is another server administrator.")
        return account

    def _forget(self, user_id: str, token_ids: list[str] | None) -> None:
        if token_ids is None:
            raise not_found(f"User not found: {user_id}")
        # The other processes hear of them on the token channel.
        self._forget_tokens(token_ids)
