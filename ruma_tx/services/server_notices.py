"""
Server notices (Synapse's feature of that name, driven by its admin API
C{send_server_notice}): messages from the server's admins to one user,
sent by a system account into a room of that user's that only the system
account may write in.

Each user has one notices room at a time: the room they are invited to or
joined with the system account in it. It is created on the first notice
(inviting the user, or joining them with C{auto_join}) and tagged
C{m.server_notice} in their account data, so clients show it apart. A user
who leaves it gets a new one with the next notice (as Synapse).
"""
from __future__ import annotations

from dataclasses import dataclass

from ruma_tx.logs import logger
from ruma_tx.matrix.errors import BadRequest, invalid_param, not_found
from ruma_tx.matrix.identifiers import is_valid_user_id
from ruma_tx.matrix.room_creation import RoomRequest
from ruma_tx.matrix.room_versions import DEFAULT_ROOM_VERSION
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.account_data import AccountDataKeeper
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.concurrency import KeyedLocks
from ruma_tx.services.event_spec import EventSpec
from ruma_tx.services.events import EventCreator
from ruma_tx.services.membership import MembershipChanger
from ruma_tx.services.ports.accounts import Accounts, UserExists
from ruma_tx.services.ports.events import Events
from ruma_tx.services.rooms import RoomCreator

log = logger(__name__)

#: The tag clients know a notices room by (Synapse's).
SERVER_NOTICE_TAG = "m.server_notice"

#: The notices room's C{users_default}: below C{events_default} (0), so
#: only the system account (100, as the room's creator) writes in it, as Synapse.
_MEMBER_POWER_LEVEL = -10


@dataclass(frozen=True)
class NoticeSettings:
    """
    @ivar user_id: the system account notices come from.
    @ivar auto_join: join the user to a new notices room instead of
        inviting them.
    """

    user_id: str
    display_name: str | None
    avatar_url: str | None
    room_name: str
    room_topic: str | None
    room_avatar_url: str | None
    auto_join: bool


class ServerNotices:
    """
    @param settings: C{None} when server notices are off (the config has no
        system account).
    @param rooms: creates the notices rooms.
    @param membership: joins a user to their new notices room (C{auto_join}).
    @param creator: sends the notices.
    @param account_data: tags the notices rooms.
    """

    def __init__(self, *, settings: NoticeSettings | None, accounts: Accounts, events: Events,
                 rooms: RoomCreator, membership: MembershipChanger, creator: EventCreator,
                 account_data: AccountDataKeeper, clock: Clock, server_name: str) -> None:
        self._settings = settings
        self._accounts = accounts
        self._events = events
        self._rooms = rooms
        self._membership = membership
        self._creator = creator
        self._account_data = account_data
        self._clock = clock
        self._server_name = server_name
        # One notices room per user, even when two notices to them race.
        self._locks = KeyedLocks()

    async def send_notice(self, user_id: str, event_type: str, content: JsonDict, state_key: str | None,
                          txn: tuple[str, str, str, str] | None = None) -> str:
        """
        Send the event into the user's notices room (made first if they
        have none); its id.

        @param txn: C{(admin, device, scope, txn_id)}: a retry answers the
            first notice's event id and sends nothing.
        @raise BadRequest: notices are off (M_UNKNOWN, as Synapse), the user
            id is malformed, another server's or the system account's.
        @raise NotFound: no such local user.
        """
        settings = self._settings
        if settings is None:
            raise BadRequest("M_UNKNOWN", "Server notices are not enabled on this server")
        if not is_valid_user_id(user_id):
            raise invalid_param(f"Invalid user id: {user_id!r}")
        if not user_id.endswith(":" + self._server_name):
            raise BadRequest("M_UNKNOWN", "Server notices go to this server's users only")
        if user_id == settings.user_id:
            raise invalid_param("The server notices account cannot be sent notices")
        if await self._accounts.get_account(user_id) is None:
            raise not_found("User not found")
        if txn is not None:
            # Checked before the room: a retry after the user left the
            # room must not make them a new, empty one.
            sent = await self._events.get_txn_event(*txn)
            if sent is not None:
                return sent
        room_id = await self._locks.run(user_id, self._notices_room, settings, user_id)
        log.info("sending a server notice to {user_id}", user_id=user_id)
        return await self._creator.send(EventSpec(room_id, settings.user_id, event_type, content, state_key),
                                        txn=txn)

    async def _notices_room(self, settings: NoticeSettings, user_id: str) -> str:
        """The user's notices room, created (and the user invited or joined) if they have none."""
        theirs = await self._events.get_rooms_for_user(user_id)
        ours = await self._events.get_rooms_for_user(settings.user_id)
        for room_id, (membership, _) in sorted(theirs.items()):
            # The system account must be joined: an invite of it to some
            # other room does not make that room the notices room.
            if membership in ("invite", "join") and ours.get(room_id, ("",))[0] == "join":
                await self._tag(user_id, room_id)   # if a crash came between creating and tagging
                return room_id
        await self._system_account(settings)
        initial_state: tuple[tuple[str, str, JsonDict], ...] = ()
        if settings.room_avatar_url is not None:
            initial_state = (("m.room.avatar", "", {"url": settings.room_avatar_url}),)
        created = await self._rooms.create_room(settings.user_id, RoomRequest(
            room_version=DEFAULT_ROOM_VERSION.identifier, preset="private_chat", name=settings.room_name,
            topic=settings.room_topic, invite=(user_id,), initial_state=initial_state,
            power_level_content_override={"users_default": _MEMBER_POWER_LEVEL}))
        room_id = created["room_id"]
        log.info("created the server notices room {room_id} of {user_id}", room_id=room_id, user_id=user_id)
        await self._tag(user_id, room_id)
        if settings.auto_join:
            await self._membership.join(user_id, room_id)
        return room_id

    async def _tag(self, user_id: str, room_id: str) -> None:
        tags = await self._account_data.get_tags(user_id, user_id, room_id)
        if SERVER_NOTICE_TAG not in tags["tags"]:
            await self._account_data.put_tag(user_id, user_id, room_id, SERVER_NOTICE_TAG, {})

    async def _system_account(self, settings: NoticeSettings) -> None:
        """Create the system account unless it exists: no password, so nobody logs in as it."""
        try:
            await self._accounts.create_user(settings.user_id, None, now_ms(self._clock),
                                             displayname=settings.display_name)
        except UserExists:
            return
        if settings.avatar_url is not None:
            await self._accounts.set_profile_field(settings.user_id, "avatar_url", settings.avatar_url)
