"""
The admin API's media use cases (Synapse's media admin API, statistics
and user media endpoints): quarantine, protection, listings, deletion and
the purge of cached remote media.

Quarantined media is served as 404 M_NOT_FOUND, local and cached remote
alike; its file stays, for the admins. Only that media id is quarantined,
not others with the same bytes (Synapse before 1.128 did the same).
Protected media (local only, as in Synapse) is never quarantined, nor
deleted by date and size. Deletions go through the media repository, which
removes a file and its thumbnails with the last media id using them.
"""
from __future__ import annotations

from ruma_tx.matrix.errors import invalid_param, not_found
from ruma_tx.matrix.identifiers import is_valid_room_id, is_valid_server_name, is_valid_user_id, parse_user_id
from ruma_tx.matrix.media import CONTENT_MEDIA_PATHS, is_valid_media_id, mxc_uri, parse_mxc_uri
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.media import MediaRepository
from ruma_tx.services.ports.accounts import Accounts
from ruma_tx.services.ports.admin_media import (
    AdminMediaStore,
    Listing,
    MediaUsage,
    Paging,
    UsageFilter,
    UserMedia,
)


class AdminMedia:
    def __init__(self, *, repository: MediaRepository, store: AdminMediaStore, accounts: Accounts,
                 clock: Clock, server_name: str) -> None:
        self._repository = repository
        self._store = store
        self._accounts = accounts
        self._clock = clock
        self._server_name = server_name

    # ------------------------------------------------------------------
    # Quarantine and protection

    async def quarantine(self, server_name: str, media_id: str, admin: str) -> None:
        """
        Quarantine one media, local or cached remote. Unknown media (or
        remote media not cached here) is no error, as in Synapse.
        """
        local, remote = self._split([self._checked(server_name, media_id)])
        await self._store.quarantine(local, remote, admin, now_ms(self._clock))

    async def unquarantine(self, server_name: str, media_id: str) -> None:
        local, remote = self._split([self._checked(server_name, media_id)])
        await self._store.unquarantine(local, remote)

    async def quarantine_room(self, room_id: str, admin: str) -> int:
        """
        Quarantine the media the room's events refer to.

        @return: how many media were quarantined.
        """
        local, remote = await self._room_media(room_id)
        return await self._store.quarantine(local, remote, admin, now_ms(self._clock))

    async def quarantine_user(self, user_id: str, admin: str) -> int:
        """
        Quarantine every media a local user uploaded (none for another
        server's user).

        @return: how many media were quarantined.
        """
        if not is_valid_user_id(user_id):
            raise invalid_param(f"Invalid user ID: {user_id!r}")
        return await self._store.quarantine_media_of_user(user_id, admin, now_ms(self._clock))

    async def protect(self, media_id: str, protected: bool) -> None:
        """Protect a local media from quarantine (or not); unknown media is no error, as in Synapse."""
        if not is_valid_media_id(media_id):
            raise invalid_param(f"Invalid media ID: {media_id!r}")
        await self._store.set_protected(media_id, protected)

    # ------------------------------------------------------------------
    # Listings

    async def media_in_room(self, room_id: str) -> tuple[list[str], list[str]]:
        """
        The C{mxc://} URIs of the media the room's events refer to: this
        server's, and other servers' (whether cached here or not).
        Encrypted events' media cannot be seen.

        @raise MatrixError: 400 for a malformed room ID, 404 for an unknown room.
        """
        local, remote = await self._room_media(room_id)
        return ([mxc_uri(self._server_name, media_id) for media_id in local],
                [mxc_uri(server_name, media_id) for server_name, media_id in remote])

    async def media_of_user(self, user_id: str, paging: Paging) -> Listing[UserMedia]:
        """
        @raise MatrixError: 400 for another server's user, 404 for an unknown one.
        """
        await self._check_local_user(user_id)
        await self._repository.flush()  # the last access times, up to now
        return await self._store.media_of_user(user_id, paging)

    async def usage(self, usage: UsageFilter, paging: Paging) -> Listing[MediaUsage]:
        return await self._store.media_usage(usage, paging)

    # ------------------------------------------------------------------
    # Deletion

    async def delete(self, server_name: str, media_id: str) -> None:
        """
        Delete one local media.

        @raise MatrixError: 400 for another server's media, 404 for an unknown one.
        """
        if not self._repository.is_local(server_name):
            raise invalid_param("Can only delete local media")
        if not is_valid_media_id(media_id) or not await self._repository.delete(media_id):
            raise not_found("Unknown media")

    async def delete_unused(self, before_ts: int, size_gt: int, keep_profiles: bool) -> list[str]:
        """
        Delete local media last used before C{before_ts} and larger than
        C{size_gt} bytes; with C{keep_profiles}, not the pictures in use as
        a user's or a room's avatar. Quarantined and protected media stays.

        @return: the media ids deleted.
        """
        keep = await self._store.avatar_media_ids(mxc_uri(self._server_name, "")) if keep_profiles else set()
        return await self._repository.purge_accessed_before(before_ts, size_gt=size_gt, keep=keep)

    async def delete_media_of_user(self, user_id: str, paging: Paging) -> list[str]:
        """
        Delete one page of a user's media (as L{media_of_user} lists it).

        @return: the media ids deleted.
        """
        page = await self.media_of_user(user_id, paging)
        return [media.media_id for media in page.rows if await self._repository.delete(media.media_id)]

    async def purge_remote_cache(self, before_ts: int) -> int:
        """
        Forget other servers' media not used here since C{before_ts}
        (quarantined media stays); asked for again, it is fetched again.

        @return: how many were forgotten.
        """
        return await self._repository.purge_remote_accessed_before(before_ts)

    def is_local(self, server_name: str) -> bool:
        return self._repository.is_local(server_name)

    # ------------------------------------------------------------------

    async def _room_media(self, room_id: str) -> tuple[list[str], list[tuple[str, str]]]:
        if not is_valid_room_id(room_id):
            raise invalid_param(f"Invalid room ID: {room_id!r}")
        if not await self._store.room_exists(room_id):
            raise not_found("Room not found")
        uris = await self._store.media_uris_in_room(room_id, CONTENT_MEDIA_PATHS)
        return self._split([key for key in map(parse_mxc_uri, uris) if key is not None])

    async def _check_local_user(self, user_id: str) -> None:
        if not is_valid_user_id(user_id):
            raise invalid_param(f"Invalid user ID: {user_id!r}")
        if parse_user_id(user_id)[1] != self._server_name:
            raise invalid_param("Can only look up local users")
        if await self._accounts.get_account(user_id) is None:
            raise not_found("Unknown user")

    @staticmethod
    def _checked(server_name: str, media_id: str) -> tuple[str, str]:
        if not is_valid_server_name(server_name) or not is_valid_media_id(media_id):
            raise invalid_param(f"Invalid media: mxc://{server_name}/{media_id}")
        return server_name, media_id

    def _split(self, media: list[tuple[str, str]]) -> tuple[list[str], list[tuple[str, str]]]:
        """Local media ids, and other servers' C{(server_name, media_id)}."""
        local = [media_id for server_name, media_id in media if self._repository.is_local(server_name)]
        remote = [key for key in media if not self._repository.is_local(key[0])]
        return local, remote
