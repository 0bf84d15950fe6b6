"""
Ports: records and protocols shared by services and the storage that implements them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from ruma_tx.matrix.cross_signing import (
    CrossSigningKey,
    DeviceSignature,
    MasterKeySignature,
)
from ruma_tx.matrix.key_backup import BackupVersion, Keys, RoomKey

#: The cross-signing key usages.
USAGES = ("master", "self_signing", "user_signing")


@dataclass(frozen=True)
class DeviceListChange:
    """
    A change of C{user_id}'s device list; C{private} when only the viewer
    who asked may hear of it.
    """

    user_id: str
    private: bool


class UnknownDevice(Exception):
    """The device the keys are for does not exist (any more)."""


@dataclass(frozen=True)
class StoredKeys:
    """
    What an upload left on the server.

    @ivar one_time_key_counts: C{{algorithm: count}} of the device's
        unclaimed one-time keys.
    @ivar device_keys_changed: whether the device keys were stored for the
        first time or differ from the previous ones.
    @ivar counts_changed: whether one-time keys were added or a fallback
        key replaced (so the count-change position was moved).
    """

    one_time_key_counts: dict[str, int]
    device_keys_changed: bool = False
    counts_changed: bool = False


@dataclass(frozen=True)
class ClaimedKey:
    """
    A key handed out by a claim.

    @ivar fallback: whether it is the device's fallback key (left in place).
    @ivar newly_used: for a fallback key, whether this claim is the first
        to use it (its device's unused fallback key types changed).
    """

    user_id: str
    device_id: str
    algorithm: str
    key_id: str
    key: object
    fallback: bool = False
    newly_used: bool = False


@dataclass(frozen=True)
class SyncKeyCounts:
    """
    A device's key counts, for /sync.

    @ivar changed_at: the stream position of the last change of either
        (C{None} if none was recorded).
    """

    one_time_key_counts: dict[str, int] = field(default_factory=dict)
    unused_fallback_key_types: list[str] = field(default_factory=list)
    changed_at: int | None = None


@dataclass(frozen=True)
class KeysWritten:
    """
    What L{RoomKeyStore.put_keys_if_current} did.

    @ivar current: the user's current version, C{None} when they have none.
    @ivar written: whether the requested version was the current one, so
        that the keys were compared with the stored ones and the better
        ones stored.
    @ivar etag: the version's etag afterwards (when written).
    @ivar count: the version's key count afterwards (when written).
    """

    current: int | None
    written: bool
    etag: int | None = None
    count: int | None = None


class CrossSigningStorage(Protocol):
    """What the services need of crosssigning storage (implemented by C{ruma_tx.storage.cross_signing.CrossSigningStore})."""

    async def get_keys(self, user_ids: list[str], usages: Sequence[str] = USAGES
                       ) -> dict[str, dict[str, CrossSigningKey]]: ...
    async def put_keys(self, user_id: str, keys: list[CrossSigningKey], position: int) -> None: ...
    async def get_device_signatures(self, user_ids: list[str]) -> dict[tuple[str, str], dict[str, str]]: ...
    async def get_master_key_signatures(self, user_ids: list[str], viewer: str | None) -> list[MasterKeySignature]: ...
    async def put_signatures(self, device_signatures: list[DeviceSignature], master_signatures: list[MasterKeySignature], changes: list[tuple[str, str | None]], position: int) -> None: ...
    async def record_changes(self, changes: list[tuple[str, str | None]], position: int) -> None: ...
    async def get_changes(self, viewer: str, after: int, upto: int) -> list[DeviceListChange]: ...
    async def get_device_names(self, user_ids: list[str]) -> dict[tuple[str, str], str | None]: ...
    async def get_users_sharing_rooms(self, user_id: str,
                                      memberships: Sequence[str] = ('join',)) -> set[str]: ...
    async def get_joined_members(self, room_ids: list[str]) -> dict[str, set[str]]: ...
    async def get_membership_events(self, user_id: str, after: int, upto: int) -> list[tuple[str, str, str, str | None, bool]]: ...


class DeviceKeyStorage(Protocol):
    """What the services need of key storage (implemented by C{ruma_tx.storage.keys.KeyStore})."""

    async def get_device_keys(self, user_id: str, device_id: str) -> dict | None: ...
    async def get_device_keys_of_users(self, user_ids: list[str]) -> dict[str, dict[str, dict]]: ...
    async def get_one_time_keys(self, user_id: str, device_id: str, ids: list[tuple[str, str]]) -> dict[tuple[str, str], object]: ...
    async def count_one_time_keys(self, user_id: str, device_id: str) -> dict[str, int]: ...
    async def store_keys(
        self, user_id: str, device_id: str, *, now_ms: int, device_keys: str | None = None,
        one_time_keys: Sequence[tuple[str, str, str]] = (),
        fallback_keys: Sequence[tuple[str, str, str]] = (), position: int | None = None,
    ) -> StoredKeys: ...
    async def claim_keys(self, claims: list[tuple[str, str, str]], position: int) -> list[ClaimedKey]: ...
    async def get_sync_counts(self, user_id: str, device_id: str) -> SyncKeyCounts: ...


class KeyBackupStorage(Protocol):
    """What the services need of roomkey storage (implemented by C{ruma_tx.storage.room_keys.RoomKeyStore})."""

    async def create_version(self, user_id: str, algorithm: str, auth_data: dict) -> int: ...
    async def get_version(self, user_id: str, version: int | None=None) -> BackupVersion | None: ...
    async def update_auth_data(self, user_id: str, version: int, algorithm: str, auth_data: dict) -> bool: ...
    async def delete_version(self, user_id: str, version: int) -> bool: ...
    async def delete_all_for_user(self, user_id: str) -> None: ...
    async def get_keys(self, user_id: str, version: int, room_id: str | None=None, session_id: str | None=None) -> dict[str, dict[str, RoomKey]] | None: ...
    async def put_keys_if_current(self, user_id: str, version: int, keys: Keys, replaces: Callable[[RoomKey, RoomKey], bool]) -> KeysWritten: ...
    async def delete_keys(self, user_id: str, version: int, room_id: str | None=None, session_id: str | None=None) -> tuple[int, int] | None: ...
