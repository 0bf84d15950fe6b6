"""
Synapse's user admin API (C{/_synapse/admin/.../users}): what its requests
may ask and the shapes of its answers, as Synapse documents them
(C{docs/admin_api/user_admin_api.md}), for the admin UIs that speak it.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Mapping

from ruma_tx.matrix.errors import bad_json, invalid_param
from ruma_tx.matrix.login import MAX_PASSWORD_LENGTH, check_password_text
from ruma_tx.matrix.profile import check_avatar_url, check_displayname
from ruma_tx.matrix.types import JsonDict

#: The C{order_by} values of the user list (Synapse's), C{name} first: the default.
USER_ORDERS = ("name", "is_guest", "admin", "user_type", "deactivated", "shadow_banned", "displayname",
               "avatar_url", "creation_ts", "last_seen_ts", "locked")

#: The user types Synapse knows without configuration (C{user_types} extends
#: them there; this server has no such setting).
USER_TYPES = ("bot", "support")

#: The largest override the C{ratelimit_overrides} table holds (a PostgreSQL INTEGER).
_MAX_OVERRIDE = 2 ** 31 - 1


class Unchanged(Enum):
    """A field a modification leaves as it is (absent from the request)."""

    UNCHANGED = "unchanged"


UNCHANGED = Unchanged.UNCHANGED


@dataclass(frozen=True)
class UserRecord:
    """
    A local account as the admin API shows it.

    @ivar created_ts: when it was registered, in milliseconds.
    @ivar last_seen_ts: the latest activity of any of its devices (ms), or C{None}.
    """

    user_id: str
    is_guest: bool
    admin: bool
    deactivated: bool
    erased: bool
    shadow_banned: bool
    locked: bool
    suspended: bool
    user_type: str | None
    displayname: str | None
    avatar_url: str | None
    created_ts: int
    last_seen_ts: int | None


@dataclass(frozen=True)
class UserListQuery:
    """
    Which accounts the list shows, and in what order.

    @ivar user_id: only ids containing it (ignored when C{name} is given).
    @ivar name: only accounts whose localpart or display name contains it
        (case-insensitively).
    @ivar guests: whether guests are listed.
    @ivar admins: only admins (C{True}), only others (C{False}), or both.
    @ivar deactivated: only deactivated accounts (C{True}), only others
        (C{False}), or both (C{None}).
    @ivar locked: whether locked accounts are listed.
    @ivar not_user_types: user types left out; C{""} stands for no type.
    @ivar order_by: one of L{USER_ORDERS}; ties are ordered by user id.
    """

    start: int
    limit: int
    backwards: bool = False
    user_id: str | None = None
    name: str | None = None
    guests: bool = True
    admins: bool | None = None
    deactivated: bool | None = False
    locked: bool = False
    not_user_types: tuple[str, ...] = ()
    order_by: str = "name"

    def __post_init__(self) -> None:
        if self.order_by not in USER_ORDERS:
            raise invalid_param(f"'order_by' must be one of {', '.join(USER_ORDERS)}")


@dataclass(frozen=True)
class UserEdit:
    """
    What C{PUT /v2/users/<user_id>} asks: each field L{UNCHANGED} (or
    C{None} for the flags and password) when absent. A display name,
    avatar URL or user type of C{None} is to be cleared.
    """

    password: str | None = None
    logout_devices: bool = True
    displayname: str | None | Unchanged = UNCHANGED
    avatar_url: str | None | Unchanged = UNCHANGED
    admin: bool | None = None
    deactivated: bool | None = None
    locked: bool | None = None
    user_type: str | None | Unchanged = UNCHANGED


def user_edit(body: Mapping[str, Any]) -> UserEdit:
    """
    Read the body of C{PUT /v2/users/<user_id>}. Keys it does not know are
    ignored (the admin UIs send back the whole record they showed).

    A display name or avatar URL of C{""} clears it (as Synapse); C{null}
    is taken as absent (Synapse's creation reads it so). C{threepids} and
    C{external_ids} are accepted only empty: this server keeps neither.

    @raise MatrixError: 400 M_BAD_JSON for a field of the wrong type,
        M_INVALID_PARAM for a bad password, avatar URL or user type,
        third-party or external ids, or an account both deactivated and
        locked; M_TOO_LARGE for a name or URL too long.
    """
    flags = {name: _flag(body, name) for name in ("admin", "deactivated", "locked", "logout_devices")}
    if flags["deactivated"] and flags["locked"]:
        raise invalid_param("An account cannot be both deactivated and locked")
    for name in ("threepids", "external_ids"):
        value = body.get(name)
        if value is not None and not isinstance(value, list):
            raise bad_json(f"'{name}' must be a list")
        if value:
            raise invalid_param(f"This server keeps no {name}: only an empty list is accepted")
    password = body.get("password")
    if password is not None:
        if not isinstance(password, str):
            raise bad_json("'password' must be a string")
        check_password_text(password, "password")
        if not password or len(password) > MAX_PASSWORD_LENGTH:
            raise invalid_param(f"'password' must have 1 to {MAX_PASSWORD_LENGTH} characters")
    user_type: str | None | Unchanged = UNCHANGED
    if "user_type" in body:
        user_type = body["user_type"]
        if user_type is not None and user_type not in USER_TYPES:
            raise invalid_param(f"Invalid user type: it must be null or one of {', '.join(USER_TYPES)}")
    logout_devices = flags.pop("logout_devices")
    return UserEdit(password=password, logout_devices=True if logout_devices is None else logout_devices,
                    displayname=_profile_field(body, "displayname", check_displayname),
                    avatar_url=_profile_field(body, "avatar_url", check_avatar_url),
                    user_type=user_type, **flags)


def _flag(body: Mapping[str, Any], name: str) -> bool | None:
    if name not in body:
        return None
    value = body[name]
    if not isinstance(value, bool):
        raise bad_json(f"'{name}' must be true or false")
    return value


def _profile_field(body: Mapping[str, Any], name: str,
                   check: Callable[[str], str | None]) -> str | None | Unchanged:
    value = body.get(name)
    if value is None:
        return UNCHANGED
    if not isinstance(value, str):
        raise bad_json(f"'{name}' must be a string")
    return check(value)


def ratelimit_override(body: Mapping[str, Any]) -> tuple[int, int]:
    """
    The C{(messages_per_second, burst_count)} of an override: whole numbers,
    0 when absent; a rate of 0 lifts the user's limits.

    Synapse also stores a positive rate with no burst at all, which then
    refuses every message: that is refused here instead, as a mistake.

    @raise MatrixError: 400 M_INVALID_PARAM for a value that is not a whole
        number from 0 to 2**31 - 1, or a positive rate with no burst.
    """
    values = []
    for name in ("messages_per_second", "burst_count"):
        value = body.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_OVERRIDE:
            raise invalid_param(f"'{name}' must be a whole number from 0 to {_MAX_OVERRIDE}")
        values.append(value)
    per_second, burst_count = values
    if per_second and not burst_count:
        raise invalid_param("'burst_count' must be at least 1 unless 'messages_per_second' is 0")
    return per_second, burst_count


def _common_fields(user: UserRecord) -> JsonDict:
    return {
        "name": user.user_id,
        "is_guest": user.is_guest,
        "admin": user.admin,
        "user_type": user.user_type,
        "deactivated": user.deactivated,
        "erased": user.erased,
        "shadow_banned": user.shadow_banned,
        "displayname": user.displayname,
        "avatar_url": user.avatar_url,
        "last_seen_ts": user.last_seen_ts,
        "locked": user.locked,
        # Every account is approved: there is no registration approval here.
        "approved": True,
    }


def listed_user(user: UserRecord) -> JsonDict:
    """A user of the C{GET /v2/users} list: C{creation_ts} in milliseconds."""
    return {**_common_fields(user), "creation_ts": user.created_ts}


def user_details(user: UserRecord) -> JsonDict:
    """
    The answer of C{GET /v2/users/<user_id>}. Its C{creation_ts} is in
    seconds, unlike the list's: Synapse answers so, and the admin UIs
    multiply it by 1000.
    """
    return {
        **_common_fields(user),
        "creation_ts": user.created_ts // 1000,
        "suspended": user.suspended,
        "threepids": [],
        "external_ids": [],
        "appservice_id": None,
        "consent_server_notice_sent": None,
        "consent_version": None,
        "consent_ts": None,
    }
