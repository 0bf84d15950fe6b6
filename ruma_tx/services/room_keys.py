"""
Server-side key backups (spec: "Server-side key backups"): per-user backup
versions holding encrypted room keys the server never reads.

The rules: keys may only be written to the current version (the most
recently created one not deleted), while any existing version may be read,
updated or have its keys deleted; an uploaded key replaces the stored key
of its session only when L{replaces} says it is better.
"""
from __future__ import annotations

import re

from ruma_tx.matrix.errors import (
    Forbidden,
    MatrixError,
    bad_json,
    invalid_param,
    not_found,
)
from ruma_tx.matrix.identifiers import is_valid_room_id
from ruma_tx.services.ports.keys import KeyBackupStorage
from ruma_tx.matrix.key_backup import BackupVersion, Keys, RoomKey

#: Version ids are the decimal numbers the server hands out; anything else
#: names no version.
_VERSION_RE = re.compile(r"[1-9][0-9]{0,17}")

#: JSON integers any client can represent (canonical JSON's range), which
#: also fit the database's BIGINT.
_MAX_INT = 2**53 - 1

#: What PostgreSQL text cannot hold: NUL and lone surrogates.
_UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")


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


def version_info(backup: BackupVersion) -> dict:
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
    counters = []
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


def _unknown_version() -> MatrixError:
    return not_found("Unknown backup version")


class KeyBackup:
    """
    The key backup use cases, for one user at a time.

    @param store: the L{ruma_tx.storage.room_keys.RoomKeyStore}.
    """

    def __init__(self, store: KeyBackupStorage) -> None:
        self._store = store

    # ------------------------------------------------------------ versions

    async def create_version(self, user_id: str, algorithm: str, auth_data: dict) -> dict:
        """
        Create a new backup version, which becomes the current one.

        Any algorithm name is accepted, as Synapse does: the server never
        interprets the backup, and clients try out new algorithms under
        unstable names.
        """
        version = await self._store.create_version(user_id, algorithm, auth_data)
        return {"version": str(version)}

    async def get_version(self, user_id: str, version: str | None = None) -> dict:
        """
        The current version's information, or the given version's.

        @raise MatrixError: 404 M_NOT_FOUND when there is no such version
            (or, without C{version}, no backup at all).
        """
        number = None
        if version is not None:
            number = parse_version(version)
            if number is None:
                raise _unknown_version()
        backup = await self._store.get_version(user_id, number)
        if backup is None:
            raise _unknown_version() if version is not None else not_found("No current backup version")
        return version_info(backup)

    async def update_version(
        self, user_id: str, version: str, algorithm: str, auth_data: dict,
        body_version: str | None = None,
    ) -> dict:
        """
        Replace the C{auth_data} of an existing version (the only thing
        that may change).

        @param body_version: the C{version} of the request body, if any.
        @raise MatrixError: 400 M_INVALID_PARAM if C{body_version} differs
            from C{version} or C{algorithm} from the version's; 404
            M_NOT_FOUND for a version that does not exist or was deleted.
        """
        if body_version is not None and body_version != version:
            raise invalid_param("Version in body does not match that in the URL")
        number = parse_version(version)
        if number is None:
            raise _unknown_version()
        if await self._store.update_auth_data(user_id, number, algorithm, auth_data):
            return {}
        if await self._store.get_version(user_id, number) is None:
            raise _unknown_version()
        raise invalid_param("Algorithm does not match")

    async def delete_version(self, user_id: str, version: str) -> dict:
        """
        Delete a version and its keys; deleting it again succeeds.

        @raise MatrixError: 404 M_NOT_FOUND for a version never created.
        """
        number = parse_version(version)
        if number is None or not await self._store.delete_version(user_id, number):
            raise _unknown_version()
        return {}

    # ---------------------------------------------------------------- keys

    async def put_keys(self, user_id: str, version: str, rooms: object) -> dict:
        """
        Store the keys of an upload in the current version, each replacing
        the stored key of its session only when better (L{replaces}).

        @param rooms: the upload as C{{room_id: {"sessions": {session_id:
            KeyBackupData}}}}, not yet checked.
        @return: the version's new C{etag} and C{count}.
        @raise MatrixError: 400 for a malformed upload; 404 M_NOT_FOUND when
            the user has no backup or C{version} does not exist; 403
            M_WRONG_ROOM_KEYS_VERSION with C{current_version} when it
            exists but is not the current version.
        """
        keys = parse_rooms(rooms)
        number = parse_version(version)
        if number is None:
            raise _unknown_version()
        written = await self._store.put_keys_if_current(user_id, number, keys, replaces)
        if written.written:
            return {"etag": str(written.etag), "count": written.count}
        if written.current is None or await self._store.get_version(user_id, number) is None:
            raise _unknown_version()
        raise Forbidden("M_WRONG_ROOM_KEYS_VERSION", "Wrong backup version.",
                          current_version=str(written.current))

    async def get_keys(
        self, user_id: str, version: str, room_id: str | None = None, session_id: str | None = None
    ) -> dict:
        """
        The keys of any existing version: all (C{{"rooms": ...}}), one
        room's (C{{"sessions": ...}}, empty if none) or one session's.

        @raise MatrixError: 404 M_NOT_FOUND for an unknown version, or a
            session without a key.
        """
        check_ids(room_id, session_id)
        number = parse_version(version)
        keys = None if number is None else await self._store.get_keys(
            user_id, number, room_id, session_id
        )
        if keys is None:
            raise _unknown_version()
        if session_id is not None:
            key = keys.get(room_id, {}).get(session_id)
            if key is None:
                raise not_found("Key not found")
            return key.to_json()
        sessions = {
            room: {"sessions": {session: key.to_json() for session, key in by_session.items()}}
            for room, by_session in keys.items()
        }
        if room_id is not None:
            return sessions.get(room_id, {"sessions": {}})
        return {"rooms": sessions}

    async def delete_keys(
        self, user_id: str, version: str, room_id: str | None = None, session_id: str | None = None
    ) -> dict:
        """
        Delete keys of any existing version: all, one room's or one
        session's.

        @return: the version's C{etag} and C{count} afterwards.
        @raise MatrixError: 404 M_NOT_FOUND for an unknown version.
        """
        check_ids(room_id, session_id)
        number = parse_version(version)
        result = None if number is None else await self._store.delete_keys(
            user_id, number, room_id, session_id
        )
        if result is None:
            raise _unknown_version()
        etag, count = result
        return {"etag": str(etag), "count": count}
