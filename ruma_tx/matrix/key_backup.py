"""
Server-side key backups (spec: "Server-side key backups"): parsing uploads
and deciding which stored key an upload replaces.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RoomKey:
    """
    One backed-up session key (spec: C{KeyBackupData}).

    @ivar session_data: the encrypted key, opaque to the server; C{None}
        when it was not loaded (only the metadata is needed to compare keys).
    """

    first_message_index: int
    forwarded_count: int
    is_verified: bool
    session_data: dict | None = None

    def to_json(self) -> dict:
        return {
            "first_message_index": self.first_message_index,
            "forwarded_count": self.forwarded_count,
            "is_verified": self.is_verified,
            "session_data": self.session_data,
        }


@dataclass(frozen=True)
class BackupVersion:
    """
    One backup version of a user.

    @ivar etag: bumped whenever the version's keys change.
    @ivar count: the number of keys in the version.
    """

    version: int
    algorithm: str
    auth_data: dict
    etag: int
    count: int


#: Backed-up keys by (room id, session id).
Keys = dict[tuple[str, str], RoomKey]
