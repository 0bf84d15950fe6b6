"""
Server-side key backups (spec: "Server-side key backups"): per-user backup
versions holding encrypted room keys the server never reads.

The rules: keys may only be written to the current version (the most
recently created one not deleted), while any existing version may be read,
updated or have its keys deleted; an uploaded key replaces the stored key
of its session only when L{replaces} says it is better.
"""
from __future__ import annotations

from ruma_tx.matrix.errors import (
    Forbidden,
    invalid_param,
    not_found,
)
from ruma_tx.matrix.key_backup import (
    check_ids,
    parse_rooms,
    parse_version,
    replaces,
    unknown_version,
    version_info,
)
from ruma_tx.services.ports.keys import KeyBackupStorage


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
                raise unknown_version()
        backup = await self._store.get_version(user_id, number)
        if backup is None:
            raise unknown_version() if version is not None else not_found("No current backup version")
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
            raise unknown_version()
        if await self._store.update_auth_data(user_id, number, algorithm, auth_data):
            return {}
        if await self._store.get_version(user_id, number) is None:
            raise unknown_version()
        raise invalid_param("Algorithm does not match")

    async def delete_version(self, user_id: str, version: str) -> dict:
        """
        Delete a version and its keys; deleting it again succeeds.

        @raise MatrixError: 404 M_NOT_FOUND for a version never created.
        """
        number = parse_version(version)
        if number is None or not await self._store.delete_version(user_id, number):
            raise unknown_version()
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
            raise unknown_version()
        written = await self._store.put_keys_if_current(user_id, number, keys, replaces)
        if written.written:
            return {"etag": str(written.etag), "count": written.count}
        if written.current is None or await self._store.get_version(user_id, number) is None:
            raise unknown_version()
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
            raise unknown_version()
        if session_id is not None:
            key = keys.get(room_id, {}).get(session_id) if room_id is not None else None
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
            raise unknown_version()
        etag, count = result
        return {"etag": str(etag), "count": count}
