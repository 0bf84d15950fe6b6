"""
Profiles: reading a user's display name and avatar, and the user changing
their own. Only the C{displayname} and C{avatar_url} fields are stored;
other keys (C{m.tz}, custom fields of spec v1.16) are not supported.
"""
from __future__ import annotations

from typing import Awaitable, Callable

from ruma_tx.matrix.errors import forbidden, not_found
from ruma_tx.matrix.identifiers import parse_user_id
from ruma_tx.matrix.profile import (
    check_avatar_url,
    check_displayname,
    check_key_name,
    checked_user_id,
)
from ruma_tx.services.guard import Requester
from ruma_tx.services.ports.accounts import Accounts

DISPLAYNAME = "displayname"
AVATAR_URL = "avatar_url"
SUPPORTED_FIELDS = (DISPLAYNAME, AVATAR_URL)


class ProfileEditor:
    """
    Reads profiles and applies a user's changes to their own.

    Each change is also propagated to the rooms the user is joined to, as
    new C{m.room.member} events.

    @param accounts: the L{ruma_tx.storage.accounts.AccountStore}.
    @param on_change: C{async (user_id, displayname, avatar_url)} called
        after a change (the membership changer republishes member events).
    @param remote: C{async (user_id) -> profile} asking another server for
        its user's profile (with federation on), and this server's name.
    """

    def __init__(self, *, accounts: Accounts,
                 on_change: Callable[[str, str | None, str | None], Awaitable[None]] | None = None,
                 remote: Callable[[str], Awaitable[dict]] | None = None, server_name: str = "") -> None:
        self._accounts = accounts
        self._on_change = on_change
        self._remote = remote
        self._server_name = server_name

    async def get_profile(self, user_id: str) -> dict:
        """
        The user's profile, without the fields that are unset.

        A deactivated user's profile was cleared and reads as C{{}} (Synapse
        also keeps the row and answers 200). A user of another server is
        asked of that server when federation is on, and unknown otherwise.

        @raise MatrixError: 400 M_INVALID_PARAM for a malformed user id,
            404 M_NOT_FOUND for an unknown user, 403 or 502 when another
            server cannot be asked.
        """
        user_id = checked_user_id(user_id)
        if self._remote is not None and parse_user_id(user_id)[1] != self._server_name:
            return await self._remote(user_id)
        return await self.get_local_profile(user_id)

    async def get_local_profile(self, user_id: str) -> dict:
        """L{get_profile} of a user of this server (others are unknown: 404)."""
        profile = await self._accounts.get_profile(checked_user_id(user_id))
        if profile is None:
            raise not_found("Profile not found")
        displayname, avatar_url = profile
        fields = {DISPLAYNAME: displayname, AVATAR_URL: avatar_url}
        return {key: value for key, value in fields.items() if value is not None}

    async def get_profile_field(self, user_id: str, key_name: str) -> dict:
        """
        C{{key_name: value}} of one profile field.

        @raise MatrixError: 400 M_INVALID_PARAM for a malformed user id or
            key, 404 M_NOT_FOUND for an unknown user or a field that is not
            set (the spec: "There is no profile field with this key for this
            user"), which includes every key other than C{displayname} and
            C{avatar_url}.
        """
        check_key_name(key_name)
        profile = await self.get_profile(user_id)
        if key_name not in profile:
            raise not_found(f"The user has no {key_name!r} profile field")
        return {key_name: profile[key_name]}

    async def set_displayname(self, requester: Requester, user_id: str, displayname: str | None) -> None:
        """
        Set (or, with C{None} or C{""}, clear) the requester's display name.

        @raise MatrixError: 400 for a malformed user id or name, 403
            M_FORBIDDEN for someone else's profile.
        """
        self._check_own(requester, user_id)
        await self.change_profile(user_id, {DISPLAYNAME: displayname})

    async def set_avatar_url(self, requester: Requester, user_id: str, avatar_url: str | None) -> None:
        """
        Set (or, with C{None} or C{""}, clear) the requester's avatar.

        @raise MatrixError: 400 for a malformed user id or URL, 403
            M_FORBIDDEN for someone else's profile.
        """
        self._check_own(requester, user_id)
        await self.change_profile(user_id, {AVATAR_URL: avatar_url})

    async def change_profile(self, user_id: str, changes: dict[str, str | None]) -> None:
        """
        Set (or, with C{None} or C{""}, clear) the display name and/or avatar
        URL of a local user, whoever asks (the user, or an admin), then
        republish the member events once.

        @raise MatrixError: 400 for a malformed name or URL.
        """
        checks = {DISPLAYNAME: check_displayname, AVATAR_URL: check_avatar_url}
        values = {field: None if value is None else checks[field](value) for field, value in changes.items()}
        for field, value in values.items():
            await self._accounts.set_profile_field(user_id, field, value)
        await self._propagate(user_id)

    async def _propagate(self, user_id: str) -> None:
        if self._on_change is not None:
            profile = await self._accounts.get_profile(user_id)
            if profile is None:
                raise not_found("Profile not found")
            displayname, avatar_url = profile
            await self._on_change(user_id, displayname, avatar_url)

    async def change_unsupported_field(self, requester: Requester, user_id: str, key_name: str, *,
                                       delete: bool) -> None:
        """
        A request to set or delete a profile key this server does not store
        (C{m.tz}, custom fields).

        Deleting one succeeds, as the field does not exist (the spec: 200
        when "it doesn't exist"). Setting one is refused with 403
        M_FORBIDDEN, the spec's answer for modifications the server is
        unwilling to make; such a key is valid input, so not a 400.

        @raise MatrixError: 400 for a malformed user id or key, 403
            M_FORBIDDEN for someone else's profile or when setting.
        """
        check_key_name(key_name)
        self._check_own(requester, user_id)
        if not delete:
            raise forbidden(f"This server does not support the {key_name!r} profile field")

    @staticmethod
    def _check_own(requester: Requester, user_id: str) -> None:
        checked_user_id(user_id)
        if requester.user_id != user_id:
            raise forbidden("You may only change your own profile")
