"""
Import steps for accounts: users (with their password hashes, flags and
creation times), profiles, devices, registration tokens and rate limit
overrides.

Synapse's bcrypt hashes (C{$2b$...}) are kept as they are: ruma_tx checks
passwords with bcrypt too, on the same NFKC-normalised UTF-8 bytes.
Synapse keeps flags as SMALLINT or BOOLEAN (integers on SQLite): they are
read with C{bool()}. Access tokens are not imported (see
docs/import-synapse.md): users log in again.
"""
from __future__ import annotations

from typing import AsyncIterator

from ruma_tx.storage.database import Transaction
from ruma_tx.storage.synapse_import import CopyStep

#: Devices a user has: Synapse also lists each cross-signing key as a hidden device.
VISIBLE_DEVICE = "NOT COALESCE(hidden, FALSE)"


class UsersStep(CopyStep):
    """
    Synapse's C{users}: the admin, guest, deactivated, shadow-banned,
    locked and suspended flags, the user type and erasure (C{erased_users}).
    Synapse counts creation times in seconds, ruma_tx in milliseconds.
    """

    name = "users"
    select = ("name, password_hash, creation_ts, admin, is_guest, deactivated, user_type, shadow_banned, locked,"
              " suspended, EXISTS (SELECT 1 FROM erased_users e WHERE e.user_id = users.name) FROM users")
    key = ("name",)
    imported = "SELECT COUNT(*) FROM users"

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        users = [
            (name, password_hash or None, bool(is_guest), bool(admin), bool(deactivated), (created or 0) * 1000,
             bool(locked), bool(suspended), bool(shadow_banned), user_type, bool(erased))
            for (name, password_hash, created, admin, is_guest, deactivated, user_type, shadow_banned,
                 locked, suspended, erased) in rows
        ]
        await txn.insert_many(
            "users", ("user_id", "password_hash", "is_guest", "is_admin", "deactivated", "created_ts",
                      "locked", "suspended", "shadow_banned", "user_type", "erased"),
            users, "ON CONFLICT (user_id) DO NOTHING")
        # Guests get numeric localparts from a sequence (Synapse's are
        # numbered too): new ones must not take an imported user's.
        numeric = [int(localpart) for localpart in (row[0][1:].split(":", 1)[0] for row in rows)
                   if localpart.isdigit() and len(localpart) < 18]
        if numeric:
            await txn.execute(
                "SELECT setval('guest_localparts', GREATEST(%s, (SELECT last_value FROM guest_localparts)))",
                (max(numeric),))


class ProfilesStep(CopyStep):
    """
    Display names and avatar URLs. Custom profile fields (Synapse's
    C{fields} column) are not moved: ruma_tx has none.
    """

    name = "profiles"
    # Keyed by full user id since Synapse's schema 76.
    select = "full_user_id, displayname, avatar_url FROM profiles"
    where = "EXISTS (SELECT 1 FROM users WHERE users.name = profiles.full_user_id)"
    key = ("full_user_id",)
    imported = "SELECT COUNT(*) FROM profiles"

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        await txn.insert_many(
            "profiles", ("user_id", "displayname", "avatar_url"), rows,
            "ON CONFLICT (user_id) DO UPDATE SET displayname = EXCLUDED.displayname,"
            " avatar_url = EXCLUDED.avatar_url")


class DevicesStep(CopyStep):
    """
    Device ids, display names and when and where they were last seen.
    Synapse does not record when a device was created: its last sighting
    (or the import's time) stands for it.
    """

    name = "devices"
    select = "user_id, device_id, display_name, last_seen, ip FROM devices"
    where = VISIBLE_DEVICE
    key = ("user_id", "device_id")
    imported = "SELECT COUNT(*) FROM devices"

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        now = self.context.now_ms
        await txn.insert_many(
            "devices", ("user_id", "device_id", "display_name", "last_seen_ts", "last_seen_ip", "created_ts"),
            [(user_id, device_id, name, last_seen, ip, last_seen or now)
             for user_id, device_id, name, last_seen, ip in rows],
            "ON CONFLICT (user_id, device_id) DO NOTHING")


class RegistrationTokensStep(CopyStep):
    """
    Registration tokens, when Synapse has them. Uses in progress (Synapse's
    C{pending}) are not kept: their registration sessions do not move.
    """

    name = "registration_tokens"
    select = "token, uses_allowed, completed, expiry_time FROM registration_tokens"
    key = ("token",)
    imported = "SELECT COUNT(*) FROM registration_tokens"

    async def source_count(self) -> int:
        if not await self.context.source.table_exists("registration_tokens"):
            return 0
        return await super().source_count()

    async def batches(self, checkpoint: str | None) -> AsyncIterator[tuple[int, str]]:
        if await self.context.source.table_exists("registration_tokens"):
            async for batch in super().batches(checkpoint):
                yield batch

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        await txn.insert_many("registration_tokens", ("token", "uses_allowed", "completed", "expiry_time"), rows,
                              "ON CONFLICT (token) DO NOTHING")


class RateLimitOverridesStep(CopyStep):
    """Per-user message rate limits; Synapse reads a missing value as 0 (0 and 0: not limited)."""

    name = "ratelimit_overrides"
    select = "user_id, messages_per_second, burst_count FROM ratelimit_override"
    where = "EXISTS (SELECT 1 FROM users WHERE users.name = ratelimit_override.user_id)"
    key = ("user_id",)
    imported = "SELECT COUNT(*) FROM ratelimit_overrides"

    async def write(self, txn: Transaction, rows: list[tuple]) -> None:
        await txn.insert_many(
            "ratelimit_overrides", ("user_id", "messages_per_second", "burst_count"),
            [(user_id, per_second or 0, burst or 0) for user_id, per_second, burst in rows],
            "ON CONFLICT (user_id) DO NOTHING")
