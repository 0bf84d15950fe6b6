"""
Wiring of what admins control about accounts beyond the admin API's own
endpoints: registration tokens (which registration's UIA checks) and the
locks and suspensions of accounts (which the auth guard enforces).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ruma_tx.matrix.registration_tokens import REGISTRATION_TOKEN
from ruma_tx.services.account_restrictions import AccountRestrictions
from ruma_tx.services.clock import Clock
from ruma_tx.services.guard import Guard
from ruma_tx.services.ports.accounts import Accounts
from ruma_tx.services.registration_tokens import RegistrationTokenKeeper
from ruma_tx.services.uia import StageCheck
from ruma_tx.storage.account_restrictions import AccountFlagStore
from ruma_tx.storage.database import Database
from ruma_tx.storage.registration_tokens import RegistrationTokenStore


@dataclass(frozen=True)
class AccountControls:
    registration_tokens: RegistrationTokenKeeper
    restrictions: AccountRestrictions

    @property
    def uia_stages(self) -> Mapping[str, StageCheck]:
        """The UIA stages these check (see L{ruma_tx.services.uia.UserInteractiveAuth})."""
        return {REGISTRATION_TOKEN: self.registration_tokens.check_stage}


def build_account_controls(database: Database, *, accounts: Accounts, guard: Guard, clock: Clock,
                           server_name: str) -> AccountControls:
    return AccountControls(
        registration_tokens=RegistrationTokenKeeper(store=RegistrationTokenStore(database), clock=clock),
        restrictions=AccountRestrictions(accounts=accounts, flags=AccountFlagStore(database),
                                         forget_tokens=guard.forget_tokens, server_name=server_name),
    )
