"""
The admin API's rooms (Synapse's "Rooms" admin API, in its shapes): the
room list and details, members, state and history as a server admin sees
them, blocking, making a user a room admin, forcing a user into a room,
and the forward extremities of rooms shared with other servers. Deleting
rooms is L{ruma_tx.services.room_purge}.
"""
from __future__ import annotations

from dataclasses import asdict

from ruma_tx.matrix.errors import BadRequest, MatrixError, forbidden, not_found
from ruma_tx.matrix.events import room_event
from ruma_tx.matrix.filters import RoomEventFilter
from ruma_tx.matrix.room_admin import check_local_user, check_room_id, room_admin_grant
from ruma_tx.matrix.room_versions import ROOM_VERSIONS
from ruma_tx.matrix.stream_token import StreamToken
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.event_spec import EventSpec
from ruma_tx.services.events import EventCreator
from ruma_tx.services.history import HistoryReader
from ruma_tx.services.membership import MembershipChanger
from ruma_tx.services.ports.accounts import Accounts
from ruma_tx.services.ports.admin_rooms import AdminRoom, AdminRoomStorage, RoomBlocks, RoomListQuery
from ruma_tx.services.ports.events import Events, RoomHead

#: The fields of Synapse's room list (the details add more).
_LISTED_FIELDS = ("room_id", "name", "canonical_alias", "joined_members", "joined_local_members", "version",
                  "creator", "encryption", "federatable", "public", "join_rules", "guest_access",
                  "history_visibility", "state_events", "room_type")


def room_json(room: AdminRoom) -> JsonDict:
    """A room as the admin room list shows it."""
    facts = asdict(room)
    return {name: facts[name] for name in _LISTED_FIELDS}


class AdminRooms:
    """
    @param store: the room tables as the admin API reads them.
    @param history: room history, read as an admin who sees all of it.
    @param membership: joins and invites, for make_room_admin and join.
    @param creator: sends the power levels make_room_admin changes.
    """

    def __init__(self, *, store: AdminRoomStorage, blocks: RoomBlocks, events: Events, history: HistoryReader,
                 membership: MembershipChanger, creator: EventCreator, accounts: Accounts, clock: Clock,
                 server_name: str) -> None:
        self._store = store
        self._blocks = blocks
        self._events = events
        self._history = history
        self._membership = membership
        self._creator = creator
        self._accounts = accounts
        self._clock = clock
        self._server_name = server_name

    async def list_rooms(self, query: RoomListQuery) -> JsonDict:
        """A page of the room list; C{next_batch} and C{prev_batch} are offsets (as Synapse)."""
        rooms, total = await self._store.list_rooms(query)
        response: JsonDict = {"rooms": [room_json(room) for room in rooms], "offset": query.offset,
                              "total_rooms": total}
        if query.offset + query.limit < total:
            response["next_batch"] = query.offset + query.limit
        if query.offset > 0:
            response["prev_batch"] = max(0, query.offset - query.limit)
        return response

    async def details(self, room_id: str) -> JsonDict:
        room = await self._store.get_room(room_id)
        if room is None:
            raise not_found("Room not found")
        usage = await self._store.get_usage(room_id)
        return {**asdict(room), **asdict(usage)}

    async def members(self, room_id: str) -> JsonDict:
        await self._known_room(room_id)
        members = await self._store.get_joined_members(room_id)
        return {"members": members, "total": len(members)}

    async def state(self, room_id: str, event_type: str | None) -> JsonDict:
        """The room's current state in client format, oldest first; of one type, if given."""
        await self._known_room(room_id)
        state = await self._events.get_state(room_id, types=[event_type] if event_type is not None else None)
        return {"state": [room_event(event) for event in sorted(state.values(), key=lambda e: e.stream_ordering)]}

    async def messages(self, admin_id: str, room_id: str, *, backwards: bool, from_token: StreamToken | None,
                       to_token: StreamToken | None, limit: int, event_filter: RoomEventFilter | None) -> JsonDict:
        """A page of the room's events, as C{/messages} pages them, whoever may see them."""
        await self._known_room(room_id)
        return await self._history.messages(admin_id, room_id, backwards=backwards, from_token=from_token,
                                            to_token=to_token, limit=limit, event_filter=event_filter,
                                            as_admin=True)

    # -- blocking ----------------------------------------------------------

    async def block_status(self, room_id: str) -> JsonDict:
        check_room_id(room_id)
        blocked_by = await self._blocks.blocked_by(room_id)
        return {"block": False} if blocked_by is None else {"block": True, "user_id": blocked_by}

    async def set_block(self, admin_id: str, room_id: str, block: bool) -> JsonDict:
        """Block or unblock a room, known here or not."""
        check_room_id(room_id)
        if block:
            await self._blocks.block(room_id, admin_id, now_ms(self._clock))
        else:
            await self._blocks.unblock(room_id)
        return {"block": block}

    # -- changing who is in the room ---------------------------------------

    async def make_room_admin(self, admin_id: str, room_id_or_alias: str, user_id: str | None) -> JsonDict:
        """
        Give a local user (the admin by default) the most power a local
        member has (L{room_admin_grant}); then, as Synapse, invite them
        unless they are in or invited, or the room is public (they can join).
        """
        room_id, _ = await self._membership.resolve_room(room_id_or_alias)
        head = await self._known_room(room_id)
        target = user_id if user_id is not None else admin_id
        check_local_user(target, self._server_name)
        state = await self._events.get_state(room_id)
        joined_local = [key for (event_type, key), event in state.items()
                        if event_type == "m.room.member" and event.membership == "join" and self._is_local(key)]
        grant = room_admin_grant({key: event.pdu for key, event in state.items()},
                                 ROOM_VERSIONS[head.room_version], joined_local, target)
        if grant.content is not None:
            try:
                await self._creator.send(EventSpec(room_id, grant.sender, "m.room.power_levels", grant.content, ""))
            except MatrixError as e:
                if e.errcode != "M_FORBIDDEN":
                    raise
                raise BadRequest("M_UNKNOWN", f"No local admin user in room may grant that power: {e.message}"
                                 ) from None
        own = state.get(("m.room.member", target))
        if own is not None and own.membership in ("join", "invite"):
            return {}
        join_rules = state.get(("m.room.join_rules", ""))
        if join_rules is not None and join_rules.content.get("join_rule") == "public":
            return {}
        await self._membership.invite(grant.sender, room_id, target)
        return {}

    async def join(self, admin_id: str, room_id_or_alias: str, user_id: str) -> JsonDict:
        """
        Join a local user to a room (Synapse's "Edit Room Membership"): a
        public one, or one the admin is in, who invites them first. A room
        this server is not in is joined through other servers, which decide.
        """
        check_local_user(user_id, self._server_name)
        if await self._accounts.get_account(user_id) is None:
            raise not_found("User not found")
        room_id, servers = await self._membership.resolve_room(room_id_or_alias)
        head = await self._events.get_room_head(room_id)
        if head is not None and not head.out_of_band:
            state = await self._events.get_state(room_id, [("m.room.join_rules", ""), ("m.room.member", admin_id),
                                                           ("m.room.member", user_id)])
            join_rules = state.get(("m.room.join_rules", ""))
            public = join_rules is not None and join_rules.content.get("join_rule") == "public"
            own = state.get(("m.room.member", user_id))
            if not public and (own is None or own.membership not in ("join", "invite")):
                admin = state.get(("m.room.member", admin_id))
                if admin is None or admin.membership != "join":
                    raise forbidden(f"{admin_id} is not in room {room_id}, so cannot join {user_id} to it")
                await self._membership.invite(admin_id, room_id, user_id)
        await self._membership.join(user_id, room_id, via=servers)
        return {"room_id": room_id}

    # -- forward extremities -----------------------------------------------

    async def forward_extremities(self, room_id_or_alias: str) -> JsonDict:
        room_id, _ = await self._membership.resolve_room(room_id_or_alias)
        await self._known_room(room_id)
        extremities = await self._store.get_forward_extremities(room_id)
        return {"count": len(extremities), "results": [asdict(extremity) for extremity in extremities]}

    async def delete_forward_extremities(self, room_id_or_alias: str) -> JsonDict:
        """Forget all but the latest forward extremity, under the room's lock (new events build on them)."""
        room_id, _ = await self._membership.resolve_room(room_id_or_alias)
        await self._known_room(room_id)
        deleted = []

        async def delete() -> None:
            deleted.append(await self._store.delete_forward_extremities(room_id))

        await self._creator.rewrite_room(room_id, delete)
        return {"deleted": deleted[0]}

    # -- helpers -----------------------------------------------------------

    async def _known_room(self, room_id: str) -> RoomHead:
        """@raise MatrixError: 404 for a room this server is not in."""
        head = await self._events.get_room_head(room_id)
        if head is None or head.out_of_band:
            raise not_found("Room not found")
        return head

    def _is_local(self, user_id: str) -> bool:
        return user_id.endswith(":" + self._server_name)
