"""
Membership changes: join, leave, invite, kick, ban, unban, knock. Each is
one m.room.member event; the room's auth rules decide whether it is allowed.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Awaitable, Callable, Sequence

from ruma_tx.matrix.errors import (
    BadRequest,
    MatrixError,
    bad_json,
    forbidden,
    not_found,
)
from ruma_tx.matrix.identifiers import (
    InvalidIdentifier,
    parse_room_alias,
    parse_user_id,
)
from ruma_tx.matrix.membership import member_content
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.event_spec import EventSpec
from ruma_tx.services.events import EventCreator
from ruma_tx.services.ports.directory import DirectoryStorage
from ruma_tx.services.ports.events import Events
from ruma_tx.services.restricted_joins import RestrictedJoins

if TYPE_CHECKING:
    from ruma_tx.services.federation_membership import FederatedMembership

#: C{async (user_id) -> (displayname, avatar_url)}.
ProfileLookup = Callable[[str], Awaitable[tuple[str | None, str | None]]]


class MembershipChanger:
    """
    @param creator: the L{ruma_tx.services.events.EventCreator}.
    @param events: the L{ruma_tx.storage.events.EventStore}.
    @param directory: the L{ruma_tx.storage.directory.DirectoryStore}.
    @param profiles: C{async (user_id) -> (displayname, avatar_url)}.
    @param remote: joins and leaves of rooms held by other servers
        (C{None}: federation is off, such rooms are unknown).
    @param remote_alias: C{async (room_alias) -> {room_id, servers}} asking
        the alias' server (with federation on), as the directory does.
    @param blocked: C{async (room_id) -> bool}: whether a server admin
        blocked the room; this server's users may then not join it (here or
        through another server), be invited to it or knock on it.
    """

    def __init__(self, *, creator: EventCreator, events: Events, directory: DirectoryStorage,
                 profiles: ProfileLookup, server_name: str, remote: FederatedMembership | None = None,
                 remote_alias: Callable[[str], Awaitable[dict]] | None = None,
                 blocked: Callable[[str], Awaitable[bool]] | None = None) -> None:
        self._remote = remote
        self._blocked = blocked
        self._remote_alias = remote_alias
        self._restricted = RestrictedJoins(events=events, server_name=server_name)
        self._creator = creator
        self._events = events
        self._directory = directory
        self._profiles = profiles
        self._server_name = server_name

    async def resolve_room(self, room_id_or_alias: str) -> tuple[str, list[str]]:
        """
        A room id for a room id or an alias, with the servers to ask for a
        room this server is not in: for an alias, those its server names.
        """
        if room_id_or_alias.startswith("#"):
            try:
                _, alias_server = parse_room_alias(room_id_or_alias)
            except InvalidIdentifier as e:
                raise BadRequest("M_INVALID_PARAM", str(e)) from None
            if alias_server != self._server_name and self._remote_alias is not None:
                found_remote = await self._remote_alias(room_id_or_alias)
                return found_remote["room_id"], found_remote["servers"]
            found = await self._directory.get_alias(room_id_or_alias)
            if found is None:
                raise not_found("Room alias not found")
            return found[0], []
        if not room_id_or_alias.startswith("!"):
            raise BadRequest("M_INVALID_PARAM", "Expected a room id or alias")
        return room_id_or_alias, []

    async def _remote_servers(self, user_id: str, room_id: str, via: Sequence[str]) -> list[str]:
        """
        The servers to ask for a room held elsewhere: those the client named,
        the server of whoever invited the user, the servers of the senders of
        the room state a knock was answered with, the room id's own server
        (before room version 12, ids name the creator's server).
        """
        servers = list(via)
        own = (await self._events.get_state(room_id, [("m.room.member", user_id)])).get(("m.room.member", user_id))
        if own is not None and own.sender != user_id:
            servers.append(own.sender.split(":", 1)[1])
        if own is not None:
            knock_state = own.pdu.get("unsigned", {}).get("knock_room_state")
            servers.extend(e["sender"].split(":", 1)[1] for e in knock_state or ()
                           if isinstance(e, dict) and isinstance(e.get("sender"), str) and ":" in e["sender"])
        if ":" in room_id:
            servers.append(room_id.split(":", 1)[1])
        return servers

    async def join(self, user_id: str, room_id: str, *, reason: str | None = None, is_guest: bool = False,
                   custom: JsonDict | None = None, via: Sequence[str] = ()) -> str:
        """
        Join the room; one this server is not in, through other servers.

        @param custom: other keys of the request body, kept in the member
            event's content (as Synapse).
        @param via: servers to join a room held elsewhere through.
        """
        await self._check_not_blocked(room_id)
        head = await self._events.get_room_head(room_id)
        if (head is None or head.out_of_band) and self._remote is not None and not is_guest:
            content = {**(custom or {}), **({"reason": reason} if reason is not None else {})}
            return await self._remote.join(user_id, room_id, await self._remote_servers(user_id, room_id, via),
                                           content)
        if head is None:
            raise not_found("Unknown room")
        displayname, avatar_url = await self._profiles(user_id)
        extra = dict(custom or {})
        try:
            authoriser = await self._restricted.authoriser(user_id, room_id)
        except BadRequest as e:
            # This server cannot vouch (M_UNABLE_TO_*): for its own user the
            # room's rules refuse the join, as the auth rules would.
            raise forbidden(e.message) from None
        if authoriser is not None:
            extra["join_authorised_via_users_server"] = authoriser
        # The creator refuses a guest's join unless the room admits guests,
        # under the room's lock (see EventSpec.sender_is_guest).
        await self._creator.send(EventSpec(room_id, user_id, "m.room.member", member_content(
            "join", reason=reason, displayname=displayname, avatar_url=avatar_url, **extra), user_id,
            sender_is_guest=is_guest))
        return room_id

    async def leave(self, user_id: str, room_id: str, *, reason: str | None = None) -> None:
        head = await self._events.get_room_head(room_id)
        if head is not None and head.out_of_band and self._remote is not None:
            # An invite to a room this server is not in, or a knock on one:
            # rejected (rescinded) through the inviter's server or a resident.
            await self._remote.leave(user_id, room_id, await self._remote_servers(user_id, room_id, ()))
            return
        await self._change(user_id, room_id, user_id, "leave", reason)

    async def invite(self, user_id: str, room_id: str, target: str, *, reason: str | None = None) -> None:
        self._check_user_id(target)
        await self._check_not_blocked(room_id)
        members = await self._events.get_members(room_id, ("join", "ban"))
        if members.get(target) == "ban":
            raise forbidden(f"{target} is banned from the room")
        if members.get(target) == "join":
            raise forbidden(f"{target} is already in the room")
        displayname, avatar_url = await self._profiles(target)
        await self._send(user_id, room_id, target, member_content(
            "invite", reason=reason, displayname=displayname, avatar_url=avatar_url))

    async def kick(self, user_id: str, room_id: str, target: str, *, reason: str | None = None) -> None:
        self._check_user_id(target)
        members = await self._events.get_members(room_id, ("join", "invite", "knock"))
        if target not in members:
            raise forbidden(f"{target} is not in the room")
        await self._change(user_id, room_id, target, "leave", reason)

    async def ban(self, user_id: str, room_id: str, target: str, *, reason: str | None = None) -> None:
        self._check_user_id(target)
        await self._change(user_id, room_id, target, "ban", reason)

    async def unban(self, user_id: str, room_id: str, target: str, *, reason: str | None = None) -> None:
        self._check_user_id(target)
        members = await self._events.get_members(room_id, ("ban",))
        if target not in members:
            raise forbidden(f"{target} is not banned")
        await self._change(user_id, room_id, target, "leave", reason)

    async def knock(self, user_id: str, room_id: str, *, reason: str | None = None,
                    via: Sequence[str] = ()) -> str:
        """
        Knock on the room; on one this server is not in, through other servers.

        @param via: servers to knock through on a room held elsewhere.
        """
        await self._check_not_blocked(room_id)
        head = await self._events.get_room_head(room_id)
        if (head is None or head.out_of_band) and self._remote is not None:
            content = {"reason": reason} if reason is not None else {}
            await self._remote.knock(user_id, room_id, await self._remote_servers(user_id, room_id, via), content)
            return room_id
        if head is None:
            raise not_found("Unknown room")
        displayname, avatar_url = await self._profiles(user_id)
        await self._send(user_id, room_id, user_id, member_content(
            "knock", reason=reason, displayname=displayname, avatar_url=avatar_url))
        return room_id

    async def forget(self, user_id: str, room_id: str) -> None:
        """
        Forget a room the user has left: it no longer shows in their
        archived rooms. Forgetting a room one is in is refused (as Synapse).
        """
        current = (await self._events.get_rooms_for_user(user_id)).get(room_id)
        if current is None:
            return  # never in it: nothing to forget (Synapse answers 200 too)
        membership, position = current
        if membership in ("join", "invite", "knock"):
            raise BadRequest("M_UNKNOWN", "You must leave the room before forgetting it")
        await self._events.forget_room(user_id, room_id, position)

    async def leave_all(self, user_id: str) -> None:
        """Leave (or decline) every room: for a deactivated account, as Synapse."""
        for room_id, (membership, _) in (await self._events.get_rooms_for_user(user_id)).items():
            if membership in ("join", "invite", "knock"):
                try:
                    await self._change(user_id, room_id, user_id, "leave", None)
                except MatrixError:
                    pass  # a room whose rules refuse even leaving: nothing to do

    async def update_profile(self, user_id: str, displayname: str | None, avatar_url: str | None) -> None:
        """Republish the user's member event, with the new profile, in every joined room."""
        memberships = await self._events.get_rooms_for_user(user_id)
        for room_id, (membership, _) in memberships.items():
            if membership != "join":
                continue
            try:
                await self._send(user_id, room_id, user_id, member_content(
                    "join", displayname=displayname, avatar_url=avatar_url))
            except MatrixError:
                pass  # e.g. a room whose rules no longer let the user act; as Synapse

    async def _change(self, user_id: str, room_id: str, target: str, membership: str,
                      reason: str | None) -> None:
        await self._send(user_id, room_id, target, member_content(membership, reason=reason))

    async def _send(self, sender: str, room_id: str, target: str, content: dict) -> None:
        await self._creator.send(EventSpec(room_id, sender, "m.room.member", content, target))

    async def _check_not_blocked(self, room_id: str) -> None:
        if self._blocked is not None and await self._blocked(room_id):
            raise forbidden("A server admin has blocked this room")

    @staticmethod
    def _check_user_id(user_id: str) -> None:
        try:
            parse_user_id(user_id)
        except (InvalidIdentifier, TypeError):
            raise bad_json(f"Invalid user id {user_id!r}") from None
