"""
Wiring of the admin API (C{/_synapse/admin}): the composition root hands
the components it built to L{admin_apis} in one L{AdminParts}.
"""
from __future__ import annotations

from dataclasses import dataclass

from ruma_tx.http.admin.server import ServerAdminApi
from ruma_tx.runtime.federation import software_version
from ruma_tx.services.ports.accounts import Accounts


@dataclass(frozen=True)
class AdminParts:
    """The components the admin endpoints work through."""

    accounts: Accounts


def admin_apis(parts: AdminParts) -> list[object]:
    """The admin API objects for the client router."""
    return [
        ServerAdminApi(software_version()),
    ]
