"""
The user admin API's use cases (Synapse's C{/_synapse/admin/.../users}):
listing and showing accounts, creating and modifying them, deactivating,
resetting passwords, the admin flag, sessions, rooms, devices, shadow-bans
and rate limit overrides. Each works through the component the client API
uses for the same thing (the authenticator deactivates, the device manager
deletes devices, ...), so an admin's change has the same effects as the
user's own.
"""
from __future__ import annotations

from typing import Awaitable, Callable

from ruma_tx.matrix.admin_users import (
    UNCHANGED,
    UserEdit,
    UserListQuery,
    UserRecord,
    listed_user,
    ratelimit_override,
    user_details,
)
from ruma_tx.matrix.errors import BadRequest, invalid_param, not_found
from ruma_tx.matrix.identifiers import parse_user_id
from ruma_tx.matrix.login import check_new_password
from ruma_tx.matrix.profile import checked_user_id
from ruma_tx.matrix.pushers import pusher_json
from ruma_tx.matrix.registration import new_user_id
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.devices import DeviceManager
from ruma_tx.services.erasure import ErasedUsers
from ruma_tx.services.guard import Requester
from ruma_tx.services.login import Authenticator
from ruma_tx.services.passwords import PasswordHasher
from ruma_tx.services.ports.accounts import Accounts
from ruma_tx.services.ports.admin_users import AdminUsers
from ruma_tx.services.ports.pushers import PusherStorage
from ruma_tx.services.profile import AVATAR_URL, DISPLAYNAME, ProfileEditor
from ruma_tx.services.ratelimit_overrides import RateLimitOverrides
from ruma_tx.services.shadow_bans import ShadowBans

class UserAdmin:
    """
    @param set_locked: C{async (user_id, locked)}: locks or unlocks an
        account (the flag, and what enforcing it needs).
    @param joined_rooms: C{async (user_id) -> room ids} the user is joined to.
    @param erased: the erased accounts: a reactivation lifts the erasure.
    """

    def __init__(self, *, accounts: Accounts, users: AdminUsers, authenticator: Authenticator,
                 hasher: PasswordHasher, profiles: ProfileEditor, devices: DeviceManager,
                 joined_rooms: Callable[[str], Awaitable[list[str]]], pushers: PusherStorage,
                 shadow_bans: ShadowBans,
                 rate_overrides: RateLimitOverrides, set_locked: Callable[[str, bool], Awaitable[None]],
                 erased: ErasedUsers, clock: Clock, server_name: str) -> None:
        self._accounts = accounts
        self._users = users
        self._authenticator = authenticator
        self._hasher = hasher
        self._profiles = profiles
        self._devices = devices
        self._joined_rooms = joined_rooms
        self._pushers = pushers
        self._shadow_bans = shadow_bans
        self._rate_overrides = rate_overrides
        self._set_locked = set_locked
        self._erased = erased
        self._clock = clock
        self._server_name = server_name

    # -- accounts ---------------------------------------------------------

    async def list_users(self, query: UserListQuery) -> tuple[list[JsonDict], int]:
        """One page of the accounts the query selects, and how many it selects in all."""
        users, total = await self._users.list_users(query)
        return [listed_user(user) for user in users], total

    async def get_user(self, user_id: str) -> JsonDict:
        """@raise MatrixError: 400 for another server's user, 404 for an unknown one."""
        return user_details(await self._existing(user_id))

    async def put_user(self, admin: Requester, user_id: str, edit: UserEdit) -> tuple[int, JsonDict]:
        """
        Create the account (201), or modify it (200); answer it as L{get_user}.

        A new account gets the password, admin flag, display name (its
        localpart when not given), avatar and user type asked for; as
        Synapse, C{deactivated} and C{locked} are only applied to an
        existing account.

        @raise MatrixError: 400 for another server's user, a user id a new
            account may not have, or an admin removing their own admin flag.
        """
        user_id = self._local(user_id)
        account = await self._accounts.get_account(user_id)
        if account is None:
            await self._create(user_id, edit)
            return 201, user_details(await self._existing(user_id))
        if edit.admin is False and account.is_admin and user_id == admin.user_id:
            raise _no_self_demotion()
        changes = {field: value for field, value in ((DISPLAYNAME, edit.displayname),
                                                     (AVATAR_URL, edit.avatar_url)) if value is not UNCHANGED}
        if changes:
            await self._profiles.change_profile(user_id, changes)
        if edit.admin is not None:
            await self._users.set_admin(user_id, edit.admin)
        if edit.password is not None:
            await self._authenticator.set_password(user_id, edit.password, logout_devices=edit.logout_devices)
        if edit.deactivated is True and not account.deactivated:
            await self._authenticator.deactivate_account(user_id)
        elif edit.deactivated is False and account.deactivated:
            await self._users.reactivate(user_id)
            await self._erased.set_erased(user_id, False)  # as Synapse
        if edit.locked is not None and edit.locked != account.locked:
            await self._set_locked(user_id, edit.locked)
        if edit.user_type is not UNCHANGED:
            await self._users.set_user_type(user_id, edit.user_type)
        return 200, user_details(await self._existing(user_id))

    async def _create(self, user_id: str, edit: UserEdit) -> None:
        localpart, _ = parse_user_id(user_id)
        new_user_id(localpart, self._server_name)  # the rules of a new user id
        password_hash = None if edit.password is None else await self._hasher.hash(edit.password)
        displayname = edit.displayname if isinstance(edit.displayname, str) else localpart
        await self._accounts.create_user(user_id, password_hash, now_ms(self._clock), is_admin=bool(edit.admin),
                                         displayname=displayname)
        if isinstance(edit.avatar_url, str):
            await self._profiles.change_profile(user_id, {AVATAR_URL: edit.avatar_url})
        if isinstance(edit.user_type, str):
            await self._users.set_user_type(user_id, edit.user_type)

    async def deactivate(self, user_id: str, *, erase: bool) -> JsonDict:
        """
        Deactivate the account as the user's own deactivation does (devices
        and tokens deleted, profile cleared, rooms left; with C{erase}, its
        events served pruned to those not joined when they were sent).

        @return: Synapse's answer: there are no 3PIDs to unbind.
        """
        await self._existing(user_id)
        await self._authenticator.deactivate_account(user_id, erase=erase)
        return {"id_server_unbind_result": "success"}

    async def reset_password(self, user_id: str, new_password: str, *, logout_devices: bool) -> None:
        """Set a new password; with C{logout_devices}, every device is logged out (its tokens die)."""
        check_new_password(new_password)
        await self._existing(user_id)
        await self._authenticator.set_password(user_id, new_password, logout_devices=logout_devices)

    async def is_admin(self, user_id: str) -> JsonDict:
        return {"admin": (await self._existing(user_id)).admin}

    async def set_admin(self, admin: Requester, user_id: str, is_admin: bool) -> None:
        """@raise MatrixError: 400 when an admin would remove their own flag (as Synapse)."""
        user = await self._existing(user_id)
        if user.user_id == admin.user_id and user.admin and not is_admin:
            raise _no_self_demotion()
        await self._users.set_admin(user.user_id, is_admin)

    # -- sessions, rooms, devices -------------------------------------------

    async def whois(self, user_id: str) -> JsonDict:
        """
        The user's sessions in Synapse's shape: one connection per device
        ever seen, with its last address and time. No user agent is kept
        (C{null}).
        """
        user = await self._existing(user_id)
        connections = [{"ip": device["last_seen_ip"], "last_seen": device.get("last_seen_ts"), "user_agent": None}
                       for device in await self._devices.devices_of(user.user_id) if "last_seen_ip" in device]
        return {"user_id": user.user_id, "devices": {"": {"sessions": [{"connections": connections}]}}}

    async def joined_rooms(self, user_id: str) -> JsonDict:
        """
        The rooms the user is joined to. A local user must exist; another
        server's user is answered with the rooms this server shares with
        them (as Synapse).
        """
        user_id = checked_user_id(user_id)
        if parse_user_id(user_id)[1] == self._server_name:
            await self._existing(user_id)
        rooms = await self._joined_rooms(user_id)
        return {"joined_rooms": rooms, "total": len(rooms)}

    async def pushers(self, user_id: str) -> JsonDict:
        """The local user's pushers, each as C{GET /pushers} shows it."""
        user = await self._existing(user_id)
        pushers = [pusher_json(pusher) for pusher in await self._pushers.get_pushers(user.user_id)]
        return {"pushers": pushers, "total": len(pushers)}

    async def devices(self, user_id: str) -> JsonDict:
        user = await self._existing(user_id)
        devices = [self._device(user.user_id, device) for device in await self._devices.devices_of(user.user_id)]
        return {"devices": devices, "total": len(devices)}

    async def device(self, user_id: str, device_id: str) -> JsonDict:
        user = await self._existing(user_id)
        return self._device(user.user_id, await self._devices.device_of(user.user_id, device_id))

    async def rename_device(self, user_id: str, device_id: str, display_name: str | None) -> None:
        user = await self._existing(user_id)
        await self._devices.rename_device_of(user.user_id, device_id, display_name)

    async def delete_devices(self, user_id: str, device_ids: list[str]) -> None:
        """Delete the devices (unknown ones are ignored) and revoke their tokens, as the user's own deletion."""
        user = await self._existing(user_id)
        await self._devices.delete_devices_of(user.user_id, device_ids)

    @staticmethod
    def _device(user_id: str, device: JsonDict) -> JsonDict:
        """The client API's device as Synapse's admin API shows it (no user agent is kept)."""
        return {**device, "user_id": user_id, "last_seen_user_agent": None, "dehydrated": False}

    # -- moderation ---------------------------------------------------------

    async def set_shadow_banned(self, user_id: str, shadow_banned: bool) -> None:
        user = await self._existing(user_id)
        await self._shadow_bans.set(user.user_id, shadow_banned)

    async def ratelimit_override(self, user_id: str) -> JsonDict:
        """The override, or C{{}} without one (as Synapse)."""
        user = await self._existing(user_id)
        override = await self._rate_overrides.get(user.user_id)
        return {} if override is None else _override_body(*override)

    async def set_ratelimit_override(self, user_id: str, body: JsonDict) -> JsonDict:
        per_second, burst_count = ratelimit_override(body)
        user = await self._existing(user_id)
        await self._rate_overrides.set(user.user_id, per_second, burst_count)
        return _override_body(per_second, burst_count)

    async def delete_ratelimit_override(self, user_id: str) -> None:
        user = await self._existing(user_id)
        await self._rate_overrides.delete(user.user_id)

    # -- helpers --------------------------------------------------------------

    def _local(self, user_id: str) -> str:
        """@raise MatrixError: 400 M_INVALID_PARAM for a malformed id or another server's user."""
        checked_user_id(user_id)
        if parse_user_id(user_id)[1] != self._server_name:
            raise invalid_param(f"Only users of this server ({self._server_name}) can be managed here")
        return user_id

    async def _existing(self, user_id: str) -> UserRecord:
        """@raise MatrixError: 400 as L{_local}, 404 M_NOT_FOUND for an unknown user."""
        user = await self._users.get_user(self._local(user_id))
        if user is None:
            raise not_found("User not found")
        return user


def _override_body(per_second: int, burst_count: int) -> JsonDict:
    return {"messages_per_second": per_second, "burst_count": burst_count}


def _no_self_demotion() -> BadRequest:
    return BadRequest("M_UNKNOWN", "You may not remove your own server admin flag")
