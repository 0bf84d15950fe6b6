"""
Account registration: full accounts through user-interactive auth, guest
accounts without it, and the upgrade of a guest to a full account.
"""
from __future__ import annotations

import json
from dataclasses import replace

from ruma_tx.matrix.errors import (
    BadRequest,
    Forbidden,
    MatrixError,
    forbidden,
    missing_param,
)
from ruma_tx.matrix.identifiers import (
    parse_user_id,
    user_id_for,
)
from ruma_tx.matrix.login import user_deactivated
from ruma_tx.matrix.registration import (
    RegistrationForm,
    new_user_id,
    registration_form,
    user_in_use,
)
from ruma_tx.matrix.registration_tokens import REGISTRATION_TOKEN
from ruma_tx.matrix.uia import NO_PARAMS, UiaRequest, auth_dict, operation_changed
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.guard import Guard
from ruma_tx.services.passwords import PasswordHasher
from ruma_tx.services.ports.accounts import Accounts, UiaSession, UserExists
from ruma_tx.services.registration_tokens import RegistrationTokenKeeper
from ruma_tx.services.sessions import SessionIssuer
from ruma_tx.services.uia import DUMMY, UserInteractiveAuth

#: The flows that complete registration's user-interactive auth.
REGISTRATION_FLOWS = [[DUMMY]]

#: Those when registration requires a token (the spec's
#: "Token-authenticated registration"; Synapse's registration_requires_token).
TOKEN_REGISTRATION_FLOWS = [[REGISTRATION_TOKEN]]


#: How many server-picked localparts to try before giving up (Synapse: 10).
_GENERATED_ID_ATTEMPTS = 10


class Registrar:
    """
    Creates accounts and logs them in.

    @param hasher: a L{PasswordHasher}; a password is hashed once, after
        user-interactive auth completes.
    @param guard: verifies an upgrading guest's C{guest_access_token}.
    @param tokens: the registration tokens, which registration requires
        when C{requires_token} (and only while it is enabled, as Synapse:
        a token does not open a closed registration).
    """

    def __init__(self, *, accounts: Accounts, sessions: SessionIssuer, hasher: PasswordHasher,
                 uia: UserInteractiveAuth, clock: Clock, server_name: str,
                 registration_enabled: bool, guests_enabled: bool, guard: Guard,
                 tokens: RegistrationTokenKeeper, requires_token: bool = False) -> None:
        self._accounts = accounts
        self._sessions = sessions
        self._hasher = hasher
        self._uia = uia
        self._clock = clock
        self._server_name = server_name
        self._registration_enabled = registration_enabled
        self._guests_enabled = guests_enabled
        self._guard = guard
        self._tokens = tokens
        self._flows = TOKEN_REGISTRATION_FLOWS if requires_token else REGISTRATION_FLOWS

    async def check_available(self, username: str) -> None:
        """
        Return if C{username} could be registered now.

        As Synapse: refused with 403 while registration is disabled, and the
        username is checked as sent (not lower-cased, unlike L{register}).

        @raise MatrixError: 403 M_FORBIDDEN, 400 M_INVALID_USERNAME or
            M_USER_IN_USE.
        """
        if not self._registration_enabled:
            raise forbidden("Registration has been disabled")
        user_id = new_user_id(username, self._server_name)
        if await self._accounts.user_exists(user_id):
            raise user_in_use()

    async def registration_token_valid(self, token: str) -> bool:
        """
        Whether C{token} would let a registration pass its token stage now.

        @raise MatrixError: 403 M_FORBIDDEN while registration is disabled
            (the spec: every token is then invalid; Synapse's answer).
        """
        if not self._registration_enabled:
            raise forbidden("Registration has been disabled")
        return await self._tokens.is_valid(token)

    async def register_guest(self, *, initial_device_display_name: str | None) -> dict:
        """
        Create a guest account with the next numeric localpart and log it in.

        The spec says every other body parameter MUST be ignored and the
        server MUST pick the device id, so no C{device_id} or
        C{refresh_token} is taken.

        @raise MatrixError: 403 M_GUEST_ACCESS_FORBIDDEN when guests are off.
        """
        if not self._guests_enabled:
            raise Forbidden("M_GUEST_ACCESS_FORBIDDEN", "Guest access is disabled")
        user_id = await self._create_with_generated_id(None, is_guest=True)
        return await self._sessions.log_in(
            user_id, device_id=None, display_name=initial_device_display_name, is_guest=True,
        )

    async def register(self, form: RegistrationForm, request: UiaRequest) -> dict:
        """
        Register a full account (or upgrade a guest), answering with the
        UIA 401 until the dummy stage is done (or the registration token
        stage, when required: the session then holds one use of the
        token, which the database completes once the account is recorded
        in the session).

        The UIA session remembers the request: its parameters (a request
        with only C{auth} uses them), the hash of its password (a later
        different password is another request) and, once done, the
        account it created. A repeat of the request in the session then
        answers that same account, logged in again (as Synapse does).

        The username (and any guest token) is checked before the UIA, so a
        client learns early that a name is taken, and again at creation in
        case it was taken meanwhile.

        @param request: the request, to bind the UIA session to.
        @return: the login response, or only C{user_id} with C{inhibit_login}.
        @raise MatrixError: 403 M_FORBIDDEN when registration is disabled
            or the guest token does not fit; 400 M_INVALID_USERNAME,
            M_USER_IN_USE, M_MISSING_PARAM; the UIA's 401, 400 and 403.
        """
        if not self._registration_enabled:
            raise forbidden("Registration has been disabled")
        auth = auth_dict({"auth": form.auth})
        session = await self._uia.begin(auth, action="register", user_id=None, request=request)
        form = _remembered(form, session, request)
        if session.registered_user_id is not None:
            return await self._registered_again(session, form)
        guest_user_id = None
        user_id = None
        if form.guest_access_token is not None:
            guest_user_id = await self._upgradable_guest(form)
            user_id = guest_user_id
        elif form.username is not None:
            # Synapse lower-cases the desired username; the spec lets a
            # server map a username onto a valid localpart "in a logical manner".
            user_id = new_user_id(form.username.lower(), self._server_name)
            if await self._accounts.user_exists(user_id):
                raise user_in_use()
        password_hash = await self._bind_password(session, form.password)
        if password_hash is None and auth is not None:
            # Checked before the stage so a failed attempt does not use up
            # the session. Without "auth" the client may only be asking for the flows.
            raise missing_param("Missing parameter: password")
        await self._uia.advance(session, auth, flows=self._flows, server_name=self._server_name)
        claimed = await self._uia.claim(session)
        if claimed is None:
            return await self._claimed_elsewhere(session, form)
        password_hash = claimed.password_hash or password_hash
        assert password_hash is not None
        try:
            user_id = await self._create(user_id, guest_user_id, password_hash)
        except BaseException:
            await self._uia.release(session)
            raise
        await self._uia.remember_registered_user(session, user_id)
        return await self._logged_in(user_id, form)

    async def _bind_password(self, session: UiaSession, password: str | None) -> str | None:
        """
        The hash of the registration's password: the one the session keeps,
        else that of C{password}, which the session then keeps.

        @raise MatrixError: 403 M_UNKNOWN when C{password} is not the one
            the session keeps: the request has changed.
        """
        if password is None:
            return session.password_hash
        if session.password_hash is None:
            password_hash = await self._hasher.hash(password)
            await self._uia.remember_password_hash(session, password_hash)
            return password_hash
        if not await self._hasher.check(password, session.password_hash):
            raise operation_changed()
        return session.password_hash

    async def _create(self, user_id: str | None, guest_user_id: str | None,
                      password_hash: str) -> str:
        """Create the account (or upgrade the guest); return its user id."""
        if guest_user_id is not None:
            localpart, _ = parse_user_id(guest_user_id)
            revoked = await self._accounts.upgrade_guest(guest_user_id, password_hash, localpart)
            if revoked is None:
                # Upgraded (or deactivated) by another request meanwhile.
                raise user_in_use()
            # As Synapse: the old guest tokens stop working for the full account.
            self._sessions.revoked(revoked)
            return guest_user_id
        if user_id is not None:
            localpart, _ = parse_user_id(user_id)
            try:
                await self._accounts.create_user(
                    user_id, password_hash, now_ms(self._clock), displayname=localpart
                )
            except UserExists:
                raise user_in_use() from None
            return user_id
        return await self._create_with_generated_id(password_hash, is_guest=False)

    async def _registered_again(self, session: UiaSession, form: RegistrationForm) -> dict:
        """
        Answer a repeat of a registration its session already completed:
        the same account (the spec: a retry once all stages are complete
        gets "the result of the API call"), logged in anew unless
        C{inhibit_login}.

        @raise MatrixError: 403 M_UNKNOWN for another password than the
            first; 403 M_USER_DEACTIVATED if the account is gone since.
        """
        user_id = session.registered_user_id
        assert user_id is not None
        if form.password is not None and not await self._hasher.check(
            form.password, session.password_hash
        ):
            raise operation_changed()
        account = await self._accounts.get_account(user_id)
        if account is None or account.deactivated:
            raise user_deactivated()
        return await self._logged_in(user_id, form)

    async def _claimed_elsewhere(self, session: UiaSession, form: RegistrationForm) -> dict:
        """
        Answer a request that completed the session while another was
        creating its account: that account once created.
        """
        now = await self._uia.session(session.session_id)
        if now is not None and now.registered_user_id is not None:
            return await self._registered_again(now, form)
        raise BadRequest("M_UNKNOWN", "Another request is completing this registration; retry it")

    async def _logged_in(self, user_id: str, form: RegistrationForm) -> dict:
        """The response: only C{user_id} with C{inhibit_login}, else a new login."""
        if form.inhibit_login:
            # The spec: no access_token or device_id (nor refresh token), no device.
            return {"user_id": user_id}
        return await self._sessions.log_in(
            user_id, device_id=form.device_id, display_name=form.initial_device_display_name,
            refresh=form.refresh_token,
        )

    async def _upgradable_guest(self, form: RegistrationForm) -> str:
        """
        The user id of the guest that C{form.guest_access_token} belongs to,
        which must be the one C{form.username} names.

        Synapse answers 403 M_FORBIDDEN ("Cannot register taken user ID
        without valid guest credentials for that user") when the token is
        not a guest's or names another user; we do the same, and also for an
        invalid token (Synapse's 401 M_UNKNOWN_TOKEN would read, on
        /register, as a UIA response without flows, which the spec forbids).
        """
        if form.username is None:
            # The spec: an upgrading guest is "required to specify the username".
            raise missing_param("Missing parameter: username (required with guest_access_token)")
        user_id = new_user_id(form.username.lower(), self._server_name, numeric_allowed=True)
        if form.guest_access_token is None:
            raise forbidden("Invalid guest access token")
        try:
            requester = await self._guard.verify(form.guest_access_token)
        except MatrixError:
            raise forbidden("Invalid guest access token") from None
        if (
            not requester.is_guest
            or not requester.restrictions.unrestricted
            or requester.user_id != user_id
        ):
            raise forbidden(
                "Cannot register taken user ID without valid guest credentials for that user."
            )
        return user_id

    async def _create_with_generated_id(self, password_hash: str | None, *, is_guest: bool) -> str:
        """
        Create a user whose localpart the server picks: the next number of
        the sequence guests use (as Synapse numbers both), retried a few
        times should a number be taken.
        """
        for _ in range(_GENERATED_ID_ATTEMPTS):
            localpart = str(await self._accounts.next_guest_number())
            user_id = user_id_for(localpart, self._server_name)
            try:
                await self._accounts.create_user(
                    user_id, password_hash, now_ms(self._clock), is_guest=is_guest, displayname=localpart
                )
            except UserExists:
                continue
            return user_id
        raise RuntimeError("Unable to find a free user ID")


def _remembered(form: RegistrationForm, session: UiaSession, request: UiaRequest) -> RegistrationForm:
    """
    The registration to perform: C{form}, or, when the request carries no
    parameters but C{auth} (and secrets), those its session was started
    with (as Synapse: a client need not send them again).
    """
    if request.params != NO_PARAMS or session.params in (None, NO_PARAMS):
        return form
    assert session.params is not None
    remembered = registration_form(json.loads(session.params))
    return replace(remembered, password=form.password, auth=form.auth,
                   guest_access_token=form.guest_access_token)
