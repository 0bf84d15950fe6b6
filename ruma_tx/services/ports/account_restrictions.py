"""Ports: the locks and suspensions admins put on accounts."""
from __future__ import annotations

from typing import Protocol


class AccountFlags(Protocol):
    """
    What the services need to lock and suspend accounts (implemented by
    C{ruma_tx.storage.account_restrictions.AccountFlagStore}). Each setter
    returns the ids of the account's access tokens (whose verified copies
    every process then forgets), or C{None} for an unknown account.
    """

    async def set_locked(self, user_id: str, locked: bool) -> list[str] | None: ...
    async def set_suspended(self, user_id: str, suspended: bool) -> list[str] | None: ...
