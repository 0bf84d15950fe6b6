"""
Logging in and out, refreshing tokens, and the account's own management:
who am I, changing the password, deactivating.

The Matrix rules (which login types and identifiers we accept, what a
client may ask for as a device id) are plain functions here; the
L{Authenticator} applies them with storage, the password hasher, UIA and the
L{ruma_tx.services.sessions.SessionIssuer}.
"""
from __future__ import annotations

import secrets
from typing import Awaitable, Callable, Sequence

from ruma_tx.matrix.account_restrictions import user_locked
from ruma_tx.matrix.devices import check_device_display_name
from ruma_tx.matrix.errors import (
    BadRequest,
    forbidden,
    missing_param,
)
from ruma_tx.matrix.login import (
    check_new_password,
    check_password_text,
    login_user_id,
    user_deactivated,
)
from ruma_tx.matrix.uia import INVALID_CREDENTIALS, UiaRequest
from ruma_tx.services.guard import Requester
from ruma_tx.services.passwords import PasswordHasher
from ruma_tx.services.ports.accounts import Accounts
from ruma_tx.services.sessions import SessionIssuer
from ruma_tx.services.uia import PASSWORD, UserInteractiveAuth

#: The only login type we offer: no SSO, no login tokens, no appservices.
LOGIN_FLOWS = ({"type": PASSWORD},)


class Authenticator:
    """
    The session and account use cases of the legacy auth API.

    @param accounts: the L{ruma_tx.storage.accounts.AccountStore}.
    @param sessions: the L{ruma_tx.services.sessions.SessionIssuer}.
    @param hasher: the L{ruma_tx.services.passwords.PasswordHasher}.
    @param uia: the L{ruma_tx.services.uia.UserInteractiveAuth} guarding password
        changes and deactivation.
    @param server_name: this server's name.
    """

    def __init__(self, *, accounts: Accounts, sessions: SessionIssuer, hasher: PasswordHasher,
                 uia: UserInteractiveAuth, server_name: str,
                 on_deactivated: Sequence[Callable[[str], Awaitable[None]]] = (),
                 erase: Callable[[str, bool], Awaitable[None]]) -> None:
        self._accounts = accounts
        self._sessions = sessions
        self._hasher = hasher
        self._uia = uia
        self._server_name = server_name
        #: C{async (user_id)} callables run after a deactivation (leave the
        #: rooms, drop key backups), as Synapse does.
        self._on_deactivated = list(on_deactivated)
        #: C{async (user_id, True)}: marks an account erased (L{ruma_tx.services.erasure}).
        self._erase = erase
        self._decoy_hash: str | None = None

    def login_flows(self) -> list[dict]:
        """The body of C{GET /login}'s C{flows}."""
        return [dict(flow) for flow in LOGIN_FLOWS]

    async def log_in(
        self, login_type: str, body: dict, *, password: str | None, device_id: str | None,
        display_name: str | None, refresh: bool,
    ) -> dict:
        """
        Check a password login and open a session for it.

        A known C{device_id} of the user is reused: its previous tokens are
        revoked and the device (its name, its keys later) is kept.

        @param body: the request body, for its identifier fields.
        @return: the login response: C{user_id}, C{access_token},
            C{device_id}, C{home_server}, and C{refresh_token} with
            C{expires_in_ms} when C{refresh} is asked for.
        @raise MatrixError: 400 M_UNKNOWN for another login type (Synapse's
            code); 400 for a missing or non-Unicode password, a bad
            identifier, device id or device name; 403 M_FORBIDDEN for wrong
            credentials, 403 M_USER_DEACTIVATED for a deactivated account;
            401 M_USER_LOCKED for a locked one.
        """
        if login_type != PASSWORD:
            raise BadRequest("M_UNKNOWN", f"Unknown login type {login_type}")
        if password is None:
            raise missing_param("Missing parameter: password")
        check_password_text(password, "password")
        # As Synapse, the name of a new device is checked at login too.
        check_device_display_name(display_name)
        user_id = login_user_id(body, self._server_name)
        account = await self._accounts.get_account(user_id)
        if account is not None and account.deactivated:
            # As Synapse: deactivation wiped the password, so this is said
            # whatever the password (the spec allows M_FORBIDDEN instead).
            raise user_deactivated()
        if account is None or account.password_hash is None:
            # Spend the same bcrypt time as a wrong password would, so the
            # answer's delay does not tell whether the user exists.
            await self._hasher.check(password, await self._decoy())
            raise forbidden(INVALID_CREDENTIALS)
        if not await self._hasher.check(password, account.password_hash):
            raise forbidden(INVALID_CREDENTIALS)
        if account.locked:
            # The spec: no new access token while locked. Said only to
            # whoever knows the password.
            raise user_locked()
        response = await self._sessions.log_in(
            user_id, device_id=device_id, display_name=display_name, is_guest=account.is_guest,
            refresh=refresh,
        )
        response["home_server"] = self._server_name
        return response

    async def _decoy(self) -> str:
        """A hash (at the configured cost) no password matches."""
        if self._decoy_hash is None:
            self._decoy_hash = await self._hasher.hash(secrets.token_urlsafe(32))
        return self._decoy_hash

    async def refresh(self, refresh_token: str) -> dict:
        """
        Trade a refresh token for new tokens; the old pair stops working.

        @raise MatrixError: 401 M_UNKNOWN_TOKEN for an unknown or used token.
        """
        return await self._sessions.refresh(refresh_token)

    async def log_out(self, requester: Requester) -> None:
        """Revoke the requester's token and delete its device."""
        await self._sessions.log_out(requester.token_id)

    async def log_out_all(self, requester: Requester) -> None:
        """Delete every device of the requester, this one included."""
        await self._sessions.log_out_all(requester.user_id)

    def whoami(self, requester: Requester) -> dict:
        """
        The owner of the token. C{is_guest} is always given, as Synapse
        does (the spec lets it be left out when false).
        """
        return {
            "user_id": requester.user_id,
            "device_id": requester.device_id,
            "is_guest": requester.is_guest,
        }

    async def change_password(
        self, requester: Requester, body: dict, *, new_password: str, logout_devices: bool,
        request: UiaRequest,
    ) -> None:
        """
        Set a new password once UIA has checked the current one.

        The new password is checked before UIA (Synapse checks its type and
        length first too), so a bad request does not spend a UIA round.
        With C{logout_devices}, every other device is logged out; the
        requester's stays (the spec: SHOULD NOT revoke the request's token).

        @param body: the request body, for its C{auth} dict.
        @param request: the request, to bind the UIA session to.
        @raise MatrixError: 400 for a bad password, 401 with the UIA flows
            until the current password is given, 403 for a UIA session of
            another request or a password stage naming another user.
        """
        check_new_password(new_password)
        await self._uia.authenticate(
            body, action="password", user_id=requester.user_id, flows=[[PASSWORD]],
            server_name=self._server_name, request=request,
        )
        await self.set_password(requester.user_id, new_password, logout_devices=logout_devices,
                                except_device=requester.device_id)

    async def set_password(self, user_id: str, new_password: str, *, logout_devices: bool,
                           except_device: str | None = None) -> None:
        """
        Store a (checked) new password; with C{logout_devices}, delete every
        device of the user but C{except_device}, revoking their tokens.
        """
        await self._accounts.set_password_hash(user_id, await self._hasher.hash(new_password))
        if logout_devices:
            await self._sessions.log_out_all(user_id, except_device=except_device)

    async def deactivate(self, requester: Requester, body: dict, *, erase: bool,
                         request: UiaRequest) -> dict:
        """
        Deactivate the requester's account once UIA has checked the
        password: no login any more, every device and token gone, profile
        cleared.

        With C{erase}, the account is also marked erased (see
        L{deactivate_account}).

        @param body: the request body, for its C{auth} dict.
        @param request: the request, to bind the UIA session to.
        @return: the response body. We hold no 3PIDs, so there is nothing to
            unbind: the spec says the result "must be C{success} if the
            homeserver has no identifiers to unbind", as Synapse answers.
        @raise MatrixError: 401 with the UIA flows until authenticated (with
            M_FORBIDDEN after a wrong password), 403 for a UIA session of
            another request or a password stage naming another user.
        """
        await self._uia.authenticate(
            body, action="deactivate", user_id=requester.user_id, flows=[[PASSWORD]],
            server_name=self._server_name, request=request,
        )
        await self.deactivate_account(requester.user_id, erase=erase)
        return {"id_server_unbind_result": "success"}

    async def deactivate_account(self, user_id: str, *, erase: bool = False) -> None:
        """
        Deactivate the account, whoever asks (the user, or an admin): its
        devices and tokens deleted, profile cleared, rooms left. With
        C{erase}, also mark it erased: its events are then served pruned
        to those who were not joined when they were sent (as Synapse, which
        on erasure also clears the profile: deactivation does it here).
        """
        self._sessions.revoked(await self._accounts.deactivate(user_id))
        if erase:
            await self._erase(user_id, True)
        for hook in self._on_deactivated:
            await hook(user_id)
