"""
Support discovery (spec: "Server Discovery", C{GET
/.well-known/matrix/support}, added in v1.10): who administers the server
and where its users find help.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from ruma_tx.matrix.identifiers import is_valid_user_id
from ruma_tx.matrix.types import JsonDict

#: The roles the spec defines; others must be namespaced identifiers.
KNOWN_ROLES = ("m.role.admin", "m.role.security")

#: The Common Namespaced Identifier Grammar (appendices).
_NAMESPACED = re.compile(r"[a-z][a-z0-9._-]{0,254}")


@dataclass(frozen=True)
class SupportContact:
    """
    A way to reach the server's administrators.

    @ivar role: C{m.role.admin}, C{m.role.security} or a namespaced role.
    @ivar matrix_id: a user id (possibly on another server, to be reachable
        while this one is down); this or C{email_address} is required.
    """

    role: str
    matrix_id: str | None = None
    email_address: str | None = None


def contact_problem(contact: SupportContact) -> str | None:
    """What is wrong with a contact (spec's rules), or C{None}."""
    if contact.matrix_id is None and contact.email_address is None:
        return "needs a matrix_id or an email_address"
    if contact.matrix_id is not None and not is_valid_user_id(contact.matrix_id):
        return f"matrix_id {contact.matrix_id!r} is not a user id"
    if contact.email_address is not None and "@" not in contact.email_address.strip("@"):
        return f"email_address {contact.email_address!r} is not an email address"
    role = contact.role
    if role.startswith("m.") and role not in KNOWN_ROLES:
        return f"role {role!r}: the m. namespace has only {', '.join(KNOWN_ROLES)}"
    if _NAMESPACED.fullmatch(role) is None:
        return f"role {role!r} is not a namespaced identifier (e.g. org.example.role)"
    return None


def support_body(support_page: str | None, contacts: Sequence[SupportContact]) -> JsonDict | None:
    """
    The body of C{/.well-known/matrix/support}, or C{None} when there is
    nothing to tell (the spec then wants a 404).
    """
    if support_page is None and not contacts:
        return None
    body: JsonDict = {}
    if contacts:
        body["contacts"] = [
            {key: value for key, value in (("matrix_id", c.matrix_id), ("email_address", c.email_address),
                                           ("role", c.role)) if value is not None}
            for c in contacts
        ]
    if support_page is not None:
        body["support_page"] = support_page
    return body
