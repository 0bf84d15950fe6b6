"""
Deleting rooms (Synapse's "Delete Room" admin API): every local member
leaves (and, with C{new_room_user_id}, is moved into a new room that says
why), the room's local aliases go (or move to the new room), it leaves the
directory, it may be blocked, then its rows are purged.

A deletion runs to its end whatever the admin's client does. Each step can
run again: a deletion cut short by a restart is reported failed, and asking
again finishes it (the members already out are not in it any more; the
purge is one transaction, see L{ruma_tx.storage.room_purge}).
"""
from __future__ import annotations

from twisted.internet import defer
from twisted.python.failure import Failure

from ruma_tx.logs import logger
from ruma_tx.matrix.errors import BadRequest, MatrixError, invalid_param, not_found
from ruma_tx.matrix.identifiers import random_string
from ruma_tx.matrix.room_admin import RoomDeletion, check_local_user, check_room_id
from ruma_tx.matrix.room_creation import RoomRequest
from ruma_tx.matrix.room_versions import DEFAULT_ROOM_VERSION
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.event_spec import EventSpec
from ruma_tx.services.events import EventCreator
from ruma_tx.services.membership import MembershipChanger
from ruma_tx.services.ports.admin_rooms import (
    ACTIVE,
    COMPLETE,
    FAILED,
    SCHEDULED,
    DeleteJob,
    DeleteJobs,
    RoomBlocks,
    RoomPurge,
    ShutdownResult,
)
from ruma_tx.services.ports.directory import DirectoryStorage
from ruma_tx.services.rooms import RoomCreator

log = logger(__name__)

#: What a deletion cut short by a restart says.
_INTERRUPTED = "The server stopped before this deletion finished: delete the room again to finish it"

#: The memberships of the local users a deletion takes out of the room.
_PRESENT = ("join", "invite", "knock")


class RoomDeleter:
    """
    @param jobs: the deletions asked for, and how far each got.
    @param purge: the room's rows, and who of this server is in it.
    @param rooms: creates the room members are moved to.
    @param creator: sends its message; purges under the room's lock.
    """

    def __init__(self, *, jobs: DeleteJobs, purge: RoomPurge, blocks: RoomBlocks, directory: DirectoryStorage,
                 membership: MembershipChanger, rooms: RoomCreator, creator: EventCreator, clock: Clock,
                 server_name: str) -> None:
        self._jobs = jobs
        self._purge = purge
        self._blocks = blocks
        self._directory = directory
        self._membership = membership
        self._rooms = rooms
        self._creator = creator
        self._clock = clock
        self._server_name = server_name
        # room id -> the deletion of it running in this process
        self._running: dict[str, str] = {}

    async def start(self, admin_id: str, room_id: str, deletion: RoomDeletion) -> JsonDict:
        """Start deleting the room in the background (v2): its C{delete_id}."""
        delete_id = await self._schedule(admin_id, room_id, deletion)

        def failed(failure: Failure) -> None:
            if failure.check(MatrixError):   # a refusal, told in the status
                log.warn("deleting room {room_id} failed: {error}", room_id=room_id, error=failure.value)
            else:
                log.failure("deleting room {room_id} failed", failure, room_id=room_id)

        defer.ensureDeferred(self._run(delete_id, admin_id, room_id, deletion)).addErrback(failed)
        return {"delete_id": delete_id}

    async def delete_now(self, admin_id: str, room_id: str, deletion: RoomDeletion) -> JsonDict:
        """
        Delete the room and answer when done (v1). A room this server does
        not know can be blocked ahead of time.
        """
        check_room_id(room_id)
        if deletion.block and not await self._purge.room_exists(room_id):
            await self._blocks.block(room_id, admin_id, now_ms(self._clock))
            return ShutdownResult().to_json()
        delete_id = await self._schedule(admin_id, room_id, deletion)
        return (await self._run(delete_id, admin_id, room_id, deletion)).to_json()

    async def status(self, delete_id: str) -> JsonDict:
        job = await self._jobs.get_job(delete_id)
        if job is None:
            raise not_found(f"Delete id {delete_id} not found")
        return self._status_json(job)

    async def statuses(self, room_id: str) -> JsonDict:
        check_room_id(room_id)
        jobs = await self._jobs.get_jobs_of_room(room_id)
        if not jobs:
            raise not_found(f"No deletion of room {room_id} found")
        return {"results": [self._status_json(job) for job in jobs]}

    # -- running a deletion -------------------------------------------------

    async def _schedule(self, admin_id: str, room_id: str, deletion: RoomDeletion) -> str:
        """Record a deletion of a known room that is not being deleted already: its id."""
        check_room_id(room_id)
        if deletion.new_room_user_id is not None:
            check_local_user(deletion.new_room_user_id, self._server_name)
        if room_id in self._running:
            raise BadRequest("M_UNKNOWN", f"Room {room_id} is being deleted already")
        delete_id = random_string(16)
        self._running[room_id] = delete_id   # before any wait: a second request sees it
        try:
            if not await self._purge.room_exists(room_id):
                raise invalid_param(f"Unknown room {room_id}")
            await self._jobs.add_job(delete_id, room_id, admin_id, now_ms(self._clock))
        except BaseException:
            del self._running[room_id]
            raise
        return delete_id

    async def _run(self, delete_id: str, admin_id: str, room_id: str, deletion: RoomDeletion) -> ShutdownResult:
        try:
            await self._jobs.update_job(delete_id, ACTIVE, now_ms(self._clock))
            result = await self._shut_down(admin_id, room_id, deletion)
            await self._jobs.update_job(delete_id, ACTIVE, now_ms(self._clock), shutdown=result)
            if deletion.purge:
                await self._creator.rewrite_room(
                    room_id, lambda: self._purge_room(room_id, delete_id, deletion.force_purge))
            else:
                await self._jobs.update_job(delete_id, COMPLETE, now_ms(self._clock))
            log.info("room {room_id} deleted by {admin}", room_id=room_id, admin=admin_id)
            return result
        except Exception as e:
            error = e.message if isinstance(e, MatrixError) else f"Internal error: {type(e).__name__}"
            try:
                await self._jobs.update_job(delete_id, FAILED, now_ms(self._clock), error=error)
            except Exception:
                # The database is gone (a shutdown): the status will say it was cut short.
                log.failure("recording that deleting {room_id} failed", room_id=room_id)
            raise
        finally:
            del self._running[room_id]

    async def _shut_down(self, admin_id: str, room_id: str, deletion: RoomDeletion) -> ShutdownResult:
        """Block the room if asked, take the local users out, and its aliases and listing away."""
        if deletion.block:
            await self._blocks.block(room_id, admin_id, now_ms(self._clock))
        owner = deletion.new_room_user_id
        new_room_id = await self._new_room(owner, deletion) if owner is not None else None
        kicked, failed = [], []
        for user_id in await self._purge.local_members(room_id, _PRESENT):
            # As Synapse: each user leaves by themselves (no power needed),
            # then joins the new room (its users can read, not speak).
            try:
                await self._membership.leave(user_id, room_id)
                if new_room_id is not None and user_id != owner:
                    await self._membership.join(user_id, new_room_id)
            except Exception as e:
                log.warn("could not take {user_id} out of {room_id}: {error}", user_id=user_id, room_id=room_id,
                         error=e)
                failed.append(user_id)
            else:
                kicked.append(user_id)
        aliases = await self._directory.get_aliases_for_room(room_id)
        for alias in aliases:
            await self._directory.delete_alias(alias)
            if new_room_id is not None and owner is not None:
                await self._directory.create_alias(alias, new_room_id, owner)
        await self._directory.set_published(room_id, False)
        return ShutdownResult(kicked, failed, aliases, new_room_id)

    async def _new_room(self, owner: str, deletion: RoomDeletion) -> str:
        """A public room where the members are moved, with the admin's message, where only its owner may speak."""
        created = await self._rooms.create_room(owner, RoomRequest(
            room_version=DEFAULT_ROOM_VERSION.identifier, preset="public_chat", name=deletion.room_name,
            power_level_content_override={"users_default": -10}))
        room_id: str = created["room_id"]
        await self._creator.send(EventSpec(room_id, owner, "m.room.message",
                                           {"msgtype": "m.text", "body": deletion.message}))
        return room_id

    async def _purge_room(self, room_id: str, delete_id: str, force: bool) -> None:
        """Under the room's lock: purge, unless local users are in it again (without C{force})."""
        if not force and await self._purge.local_members(room_id, ("join",)):
            raise BadRequest("M_UNKNOWN", "Local users are still in the room: delete it again to take them out, "
                                          "or with force_purge")
        await self._purge.purge_room(room_id, delete_id, now_ms(self._clock))

    def _status_json(self, job: DeleteJob) -> JsonDict:
        status, error = job.status, job.error
        if status in (SCHEDULED, ACTIVE) and self._running.get(job.room_id) != job.delete_id:
            status, error = FAILED, _INTERRUPTED
        body: JsonDict = {"delete_id": job.delete_id, "room_id": job.room_id, "status": status,
                          "shutdown_room": job.shutdown.to_json()}
        if status == FAILED:
            body["error"] = error or _INTERRUPTED
        return body
