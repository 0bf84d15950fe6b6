"""
Server-side key backups (spec: "Server-side key backups"): parsing uploads
and deciding which stored key an upload replaces.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias

from ruma_tx.matrix.errors import MatrixError, bad_json, invalid_param, not_found
from ruma_tx.matrix.identifiers import is_valid_room_id
from ruma_tx.matrix.types import JsonDict

#: Version ids are the decimal numbers the server hands out; anything else
#: names no version.
_VERSION_RE = re.compile(r"[1-9][0-9]{0,17}")

#: JSON integers any client can represent (canonical JSON's range), which
#: also fit the database's BIGINT.
_MAX_INT = 2**53 - 1

#: What PostgreSQL text cannot hold: NUL and lone surrogates.
_UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")


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
    session_data: JsonDict | None = None

    def to_json(self) -> JsonDict:
        return {
            "first_message_index": self.first_message_index,
            "forwarded_count": self.forwarded_count,
            "is_verified": self.is_verified,
            "session_data": self.session_data,
        }


#: Backed-up keys by (room id, session id).
Keys: TypeAlias = dict[tuple[str, str], RoomKey]


@dataclass(frozen=True)
class BackupVersion:
    """
    One backup version of a user.

    @ivar etag: bumped whenever the version's keys change.
    @ivar count: the number of keys in the version.
    """

    version: int
    algorithm: str
    auth_data: JsonDict
    etag: int
    count: int


def replaces(stored: RoomKey, uploaded: RoomKey) -> bool:
    """
    Whether an uploaded key replaces the stored key of the same session.

    The spec: if the keys differ in C{is_verified}, keep the verified one;
    else keep the one with the lower C{first_message_index}; and if that is
    equal too, the one with the lower C{forwarded_count}. When all three are
    equal the stored key is kept (as Synapse does), so re-uploading a key
    changes nothing.
    """
    if uploaded.is_verified != stored.is_verified:
        return uploaded.is_verified
    if uploaded.first_message_index != stored.first_message_index:
        return uploaded.first_message_index < stored.first_message_index
    return uploaded.forwarded_count < stored.forwarded_count


def parse_version(version: str) -> int | None:
    """The number a version id names, or C{None} if it names none."""
    return int(version) if _VERSION_RE.fullmatch(version) else None


def version_info(backup: BackupVersion) -> JsonDict:
    """The body of C{GET /room_keys/version[/{version}]}."""
    return {
        "algorithm": backup.algorithm,
        "auth_data": backup.auth_data,
        "count": backup.count,
        "etag": str(backup.etag),
        "version": str(backup.version),
    }


def parse_key(value: object, where: str) -> RoomKey:
    """
    Check one uploaded C{KeyBackupData} object.

    @param where: names the key in error messages.
    @raise MatrixError: 400 M_BAD_JSON if it is not an object, or if a
        required field is missing or of the wrong type.
    """
    if not isinstance(value, dict):
        raise bad_json(f"Key data of {where} must be an object")
    counters: list[int] = []
    for name in ("first_message_index", "forwarded_count"):
        number = value.get(name)
        if isinstance(number, bool) or not isinstance(number, int) or abs(number) > _MAX_INT:
            raise bad_json(f"'{name}' of {where} must be an integer")
        counters.append(number)
    if not isinstance(value.get("is_verified"), bool):
        raise bad_json(f"'is_verified' of {where} must be a boolean")
    if not isinstance(value.get("session_data"), dict):
        raise bad_json(f"'session_data' of {where} must be an object")
    return RoomKey(counters[0], counters[1], value["is_verified"], value["session_data"])


def check_ids(room_id: str | None, session_id: str | None = None) -> None:
    """
    @raise MatrixError: 400 M_INVALID_PARAM for a room id that is not one,
        or an empty session id or one PostgreSQL cannot store.
    """
    if room_id is not None and not is_valid_room_id(room_id):
        raise invalid_param(f"Invalid room ID: {room_id!r}")
    if session_id is not None and (not session_id or _UNSTORABLE_RE.search(session_id)):
        raise invalid_param(f"Invalid session ID: {session_id!r}")


def parse_rooms(rooms: object) -> Keys:
    """
    Check the C{rooms} of an upload (C{{room_id: {"sessions": {session_id:
    KeyBackupData}}}}) and flatten it to C{(room_id, session_id) -> RoomKey}.

    @raise MatrixError: 400 M_BAD_JSON for a malformed structure or key,
        M_INVALID_PARAM for an invalid room or session id.
    """
    if not isinstance(rooms, dict):
        raise bad_json("'rooms' must be an object")
    keys: Keys = {}
    for room_id, room in rooms.items():
        check_ids(room_id)
        if not isinstance(room, dict) or not isinstance(room.get("sessions"), dict):
            raise bad_json(f"Room {room_id} must have a 'sessions' object")
        for session_id, value in room["sessions"].items():
            check_ids(None, session_id)
            keys[(room_id, session_id)] = parse_key(value, f"session {session_id} in {room_id}")
    return keys


def unknown_version() -> MatrixError:
    return not_found("Unknown backup version")


