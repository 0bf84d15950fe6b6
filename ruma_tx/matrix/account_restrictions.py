"""
Locked and suspended accounts (spec: "Account locking", "Account
suspension"): the refusals their owners get, and what a suspended
account may still send.
"""
from __future__ import annotations

from typing import Any, Mapping

from ruma_tx.matrix.errors import Forbidden, Unauthorized


def user_locked() -> Unauthorized:
    """
    The spec's answer to every request of a locked account but logging out:
    401 with C{soft_logout}, so that clients keep their session and keys
    for when the account is unlocked.
    """
    return Unauthorized("M_USER_LOCKED", "This account has been locked", soft_logout=True)


def user_suspended() -> Forbidden:
    """The spec's answer to an action a suspended account may not take."""
    return Forbidden("M_USER_SUSPENDED", "You cannot perform this action while suspended.")


def suspended_may_send(event_type: str, state_key: str | None, sender: str,
                       content: Mapping[str, Any]) -> bool:
    """
    Whether a suspended account may send this event: among the actions
    the spec says servers SHOULD still permit, only leaving a room (or
    rejecting an invite) and redacting (its own events: checked against
    the redacted event) are events. Everything else it could send is a
    message or state, which the spec recommends forbidding.
    """
    if event_type == "m.room.redaction":
        return True
    return (event_type == "m.room.member" and state_key == sender
            and content.get("membership") == "leave")
