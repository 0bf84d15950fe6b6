"""
Room aliases and the published room directory (spec: "Room aliases",
"Published room directory"), and the check of new aliases in
C{m.room.canonical_alias} events.

An alias of another server is asked of that server when federation is
on; otherwise it is answered as Synapse answers when the other server
cannot be reached (502); so is another server's published room directory.
"""
from __future__ import annotations

from typing import Awaitable, Callable

from ruma_tx.matrix.directory import (
    decode_token,
    directory_entry,
    encode_token,
)
from ruma_tx.matrix.errors import (
    Conflict,
    Forbidden,
    MatrixError,
    RemoteUnavailable,
    forbidden,
    invalid_param,
    not_found,
)
from ruma_tx.matrix.identifiers import (
    InvalidIdentifier,
    is_valid_room_id,
    is_valid_server_name,
    parse_room_alias,
    parse_user_id,
)
from ruma_tx.matrix.power_levels import event_power_level, user_power_level
from ruma_tx.services.event_spec import EventSpec
from ruma_tx.services.events import EventCreator
from ruma_tx.services.ports.accounts import Accounts
from ruma_tx.services.ports.directory import AliasExists, DirectoryStorage
from ruma_tx.services.ports.events import Events
from ruma_tx.services.remote_queries import RemotePublicRooms

CANONICAL_ALIAS = ("m.room.canonical_alias", "")
CREATE = ("m.room.create", "")
POWER_LEVELS = ("m.room.power_levels", "")
HISTORY_VISIBILITY = ("m.room.history_visibility", "")

#: The largest page /publicRooms returns, also when no limit is asked for
#: (Synapse then returns every room; we page, and give a next_batch).
MAX_PAGE = 1000



def unreachable_server() -> MatrixError:
    """What Synapse answers when another server cannot be reached."""
    return RemoteUnavailable("M_UNKNOWN", "This server cannot query other servers")


# -- pagination tokens -----------------------------------------------------


# -- directory entries -----------------------------------------------------


class Directory:
    """
    Room aliases, the room directory, and the canonical alias check.

    @param directory: the L{ruma_tx.storage.directory.DirectoryStore}.
    @param events: the L{ruma_tx.storage.events.EventStore}.
    @param creator: the L{ruma_tx.services.events.EventCreator}, to drop a
        deleted alias from the room's C{m.room.canonical_alias}.
    @param accounts: the L{ruma_tx.storage.accounts.AccountStore}: server
        admins may manage any alias and publish any room (as Synapse).
    @param remote_alias: C{async (room_alias) -> {room_id, servers}} asking
        the alias' server (with federation on).
    @param remote_rooms: other servers' directories (with federation on).
    """

    def __init__(self, *, directory: DirectoryStorage, events: Events, creator: EventCreator,
                 accounts: Accounts, server_name: str,
                 remote_alias: Callable[[str], Awaitable[dict]] | None = None,
                 remote_rooms: RemotePublicRooms | None = None) -> None:
        self._remote_alias = remote_alias
        self._remote_rooms = remote_rooms
        self._directory = directory
        self._events = events
        self._creator = creator
        self._accounts = accounts
        self._server_name = server_name

    # -- aliases -----------------------------------------------------------

    def _parse_alias(self, room_alias: str) -> str:
        """@return: the alias' server name. @raise MatrixError: 400 M_INVALID_PARAM."""
        try:
            return parse_room_alias(room_alias)[1]
        except InvalidIdentifier as e:
            raise invalid_param(f"Room alias invalid: {e}") from None

    async def create_alias(self, user_id: str, room_alias: str, room_id: str) -> None:
        """
        Map a local alias to a room.

        As Synapse (with its default C{require_membership_for_aliases}),
        only a joined member of the room (or a server admin) may; an unknown
        room gets the same 403, as one cannot be in it.

        @raise MatrixError: 400 M_INVALID_PARAM for a bad or foreign alias or
            a bad room id, 403 when not in the room, 409 M_ROOM_IN_USE when
            the alias is taken.
        """
        if self._parse_alias(room_alias) != self._server_name:
            raise invalid_param("Room alias must be on this server")
        if not is_valid_room_id(room_id):
            raise invalid_param("Invalid room id")
        state = await self._events.get_state(room_id, [("m.room.member", user_id)])
        member = state.get(("m.room.member", user_id))
        joined = member is not None and member.content.get("membership") == "join"
        if not joined:
            if not await self._is_admin(user_id) or await self._events.get_room_head(room_id) is None:
                raise forbidden("You must be in the room to create an alias for it")
        try:
            await self._directory.create_alias(room_alias, room_id, user_id)
        except AliasExists:
            raise Conflict("M_ROOM_IN_USE", f"Room alias {room_alias} already exists") from None

    async def resolve_alias(self, room_alias: str) -> dict:
        """
        @return: C{{room_id, servers}}.
        @raise MatrixError: 400 for a bad alias, 404 when unknown, 502 for
            another server's alias that cannot be asked (403 when that
            server may not be asked).
        """
        if self._parse_alias(room_alias) != self._server_name:
            if self._remote_alias is None:
                raise unreachable_server()
            return await self._remote_alias(room_alias)
        return await self.resolve_local_alias(room_alias)

    async def resolve_local_alias(self, room_alias: str) -> dict:
        """
        L{resolve_alias} for an alias of this server: C{servers} lists this
        server, then the other servers of joined members.

        @raise MatrixError: 404 when unknown or of another server.
        """
        found = await self._directory.get_alias(room_alias)
        if found is None:
            raise not_found(f"Room alias {room_alias} not found")
        room_id = found[0]
        joined = await self._events.get_members(room_id, ("join",))
        others = {parse_user_id(user_id)[1] for user_id in joined}
        others.discard(self._server_name)
        return {"room_id": room_id, "servers": [self._server_name, *sorted(others)]}

    async def delete_alias(self, user_id: str, room_alias: str) -> None:
        """
        Remove an alias. As Synapse: its creator, a server admin, or a
        joined member who may send C{m.room.canonical_alias} may; then the
        alias is dropped from the room's canonical alias event if the user
        may change it (if not, the alias is still deleted, as the spec
        recommends).

        @raise MatrixError: 400 for a bad alias, 404 when unknown, 403 when
            not allowed.
        """
        self._parse_alias(room_alias)
        found = await self._directory.get_alias(room_alias)
        if found is None:
            raise not_found(f"Room alias {room_alias} not found")
        room_id, alias_creator = found
        if alias_creator != user_id and not await self._may_edit_directory(user_id, room_id):
            raise forbidden("You don't have permission to delete the alias")
        if await self._directory.delete_alias(room_alias) is None:
            raise not_found(f"Room alias {room_alias} not found")
        await self._remove_from_canonical_alias(user_id, room_id, room_alias)

    async def _remove_from_canonical_alias(self, user_id: str, room_id: str, room_alias: str) -> None:
        state = await self._events.get_state(room_id, [CANONICAL_ALIAS])
        event = state.get(CANONICAL_ALIAS)
        if event is None:
            return
        content = dict(event.content)
        changed = False
        if content.get("alias") == room_alias:
            del content["alias"]
            changed = True
        alt_aliases = content.get("alt_aliases")
        if isinstance(alt_aliases, list) and room_alias in alt_aliases:
            remaining = [alias for alias in alt_aliases if alias != room_alias]
            if remaining:
                content["alt_aliases"] = remaining
            else:
                del content["alt_aliases"]
            changed = True
        if not changed:
            return
        try:
            await self._creator.send(EventSpec(room_id, user_id, "m.room.canonical_alias", content, ""))
        except Forbidden:
            pass  # Not allowed to change the event: the alias is deleted anyway.

    async def local_aliases(self, user_id: str, room_id: str) -> list[str]:
        """
        The room's aliases on this server, for a joined member or anyone
        when the room is world-readable (as Synapse: the same 403 for an
        unknown room).
        """
        member_key = ("m.room.member", user_id)
        state = await self._events.get_state(room_id, [member_key, HISTORY_VISIBILITY])
        member = state.get(member_key)
        visibility = state.get(HISTORY_VISIBILITY)
        if not (member is not None and member.content.get("membership") == "join") and not (
            visibility is not None and visibility.content.get("history_visibility") == "world_readable"
        ):
            raise forbidden("You are not a member of the room")
        return await self._directory.get_aliases_for_room(room_id)

    # -- the published room directory -------------------------------------

    async def get_visibility(self, room_id: str) -> str:
        published = await self._directory.is_published(room_id)
        if published is None:
            raise not_found("Room not found")
        return "public" if published else "private"

    async def set_visibility(self, user_id: str, room_id: str, visibility: str) -> None:
        """
        Publish or unpublish a room. The spec leaves who may to the server;
        as Synapse: a joined member who may send C{m.room.canonical_alias}
        (a moderator, by default), or a server admin.

        @raise MatrixError: 400 for a bad visibility, 404 for an unknown
            room (spec; Synapse says 400), 403 when not allowed.
        """
        if visibility not in ("public", "private"):
            raise invalid_param("'visibility' must be 'public' or 'private'")
        if await self._events.get_room_head(room_id) is None:
            raise not_found("Room not found")
        if not await self._may_edit_directory(user_id, room_id):
            raise forbidden("You need to be a moderator in the room to change its directory visibility")
        await self._directory.set_published(room_id, visibility == "public")

    async def public_rooms(
        self, *, limit: int | None = None, since: str | None = None, server: str | None = None,
        search_term: str | None = None, room_types: list | None = None,
        third_party_instance_id: str | None = None, include_all_networks: bool = False,
    ) -> dict:
        """
        A page of the published room directory: most joined members first,
        then by room id, with keyset tokens (stable as rooms come and go).

        @param limit: the page size; C{None} or 0 for as many as we give
            at once (L{MAX_PAGE}).
        @param server: another server whose directory to page through
            instead (502 when it gives no usable answer, or when
            federation is off).
        @param third_party_instance_id: a network of an application
            service; we have none, so no room is published in one (the
            list is empty, as Synapse's would be).
        """
        if limit is not None and limit < 0:
            raise invalid_param("'limit' must not be negative")
        if include_all_networks and third_party_instance_id is not None:
            raise invalid_param("Can't use include_all_networks with an explicit network")
        if server is not None and server != self._server_name:
            if not is_valid_server_name(server):
                raise invalid_param(f"Invalid server name: {server}")
            if self._remote_rooms is None:
                raise unreachable_server()
            search = None
            if search_term or room_types is not None or include_all_networks \
                    or third_party_instance_id is not None:
                search_filter = {name: value for name, value in (
                    ("generic_search_term", search_term or None), ("room_types", room_types)) if value is not None}
                search = {"filter": search_filter, "include_all_networks": include_all_networks}
                if third_party_instance_id is not None:
                    search["third_party_instance_id"] = third_party_instance_id
            return await self._remote_rooms.public_rooms(server, limit=limit, since=since, search=search)
        page_size = min(limit or MAX_PAGE, MAX_PAGE)
        forwards, bound = True, None
        if since is not None:
            forwards, joined, room_id = decode_token(since)
            bound = (joined, room_id)
        if third_party_instance_id is not None:
            return {"chunk": [], "total_room_count_estimate": 0}
        page = await self._directory.get_public_rooms(
            limit=page_size + 1, bound=bound, forwards=forwards,
            search_term=search_term or None, room_types=room_types,
        )
        rooms = page.rooms
        more = len(rooms) > page_size
        rooms = rooms[:page_size] if forwards else rooms[-page_size:]
        response: dict = {
            "chunk": [directory_entry(room) for room in rooms],
            "total_room_count_estimate": page.total,
        }
        if rooms:
            first, last = rooms[0], rooms[-1]
            # As Synapse: a page reached with a token has rooms on the side
            # it came from; the side it goes on to has more when the one
            # extra room we asked for came back.
            more_after = more if forwards else since is not None
            more_before = since is not None if forwards else more
            if more_after:
                response["next_batch"] = encode_token(True, last.joined, last.room_id)
            if more_before:
                response["prev_batch"] = encode_token(False, first.joined, first.room_id)
        return response

    # -- permissions -------------------------------------------------------

    async def _may_edit_directory(self, user_id: str, room_id: str) -> bool:
        """
        Synapse's C{check_can_change_room_list}: joined, with the power to
        send C{m.room.canonical_alias}; or a server admin.
        """
        head = await self._events.get_room_head(room_id)
        if head is not None:
            member_key = ("m.room.member", user_id)
            state = await self._events.get_state(room_id, [member_key, CREATE, POWER_LEVELS])
            member = state.get(member_key)
            if member is not None and member.content.get("membership") == "join":
                pdus = {key: event.pdu for key, event in state.items()}
                needed = event_power_level(CANONICAL_ALIAS[0], True, pdus)
                if user_power_level(user_id, pdus, head.room_version) >= needed:
                    return True
        return await self._is_admin(user_id)

    async def _is_admin(self, user_id: str) -> bool:
        account = await self._accounts.get_account(user_id)
        return account is not None and account.is_admin
