"""
Creating rooms (POST /createRoom): the initial events, in the order the
spec gives.
"""
from __future__ import annotations

from dataclasses import replace

from ruma_tx.matrix.errors import BadRequest
from ruma_tx.matrix.identifiers import random_string
from ruma_tx.matrix.room_creation import RoomRequest, create_content, initial_state
from ruma_tx.matrix.room_versions import ROOM_VERSIONS
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.event_spec import EventSpec, Withheld
from ruma_tx.services.events import EventCreator
from ruma_tx.services.membership import ProfileLookup
from ruma_tx.services.ports.directory import AliasExists, DirectoryStorage


class RoomCreator:
    """
    @param creator: the L{ruma_tx.services.events.EventCreator}.
    @param directory: the L{ruma_tx.storage.directory.DirectoryStore}.
    @param profiles: C{async (user_id) -> (displayname, avatar_url)}.
    @param withheld: the L{EventCreator}'s: which events of the sender seem
        sent but are not (a shadow-banned creator's invites are left out,
        as Synapse: the room is made without them).
    """

    def __init__(self, *, creator: EventCreator, directory: DirectoryStorage, profiles: ProfileLookup,
                 server_name: str, withheld: Withheld | None = None) -> None:
        self._creator = creator
        self._withheld = withheld
        self._directory = directory
        self._profiles = profiles
        self._server_name = server_name

    async def create_room(self, user_id: str, request: RoomRequest) -> JsonDict:
        """
        Create the room with its initial events in the order the spec gives,
        all stored together or none at all. Invites of other servers' users
        need their server's signature (spec: "Inviting to a room"): they are
        sent once the room exists, as Synapse sends every invite (and, as
        Synapse, one that fails fails the request, the room made).

        @raise BadRequest: M_ROOM_IN_USE when the alias is taken.
        """
        room_version = ROOM_VERSIONS[request.room_version]
        alias = None
        if request.room_alias_name is not None:
            alias = f"#{request.room_alias_name}:{self._server_name}"
            if await self._directory.get_alias(alias) is not None:
                raise _alias_taken()
        room_id = None
        if not room_version.room_id_from_create_event:
            room_id = f"!{random_string(18)}:{self._server_name}"
        create = EventSpec(room_id, user_id, "m.room.create",
                           create_content(user_id, room_version, request), state_key="")
        displayname, avatar_url = await self._profiles(user_id)
        initial: list[EventSpec] = []
        remote_invites: list[EventSpec] = []
        for event_type, state_key, content in initial_state(user_id, room_version, request, alias, displayname,
                                                            avatar_url):
            spec = EventSpec(room_id, user_id, event_type, content, state_key)
            remote = event_type == "m.room.member" and content.get("membership") == "invite" \
                and not state_key.endswith(":" + self._server_name)
            if self._withheld is not None and event_type == "m.room.member" \
                    and await self._withheld(spec) is not None:
                continue
            (remote_invites if remote else initial).append(spec)
        try:
            room_id = await self._creator.create_room(
                room_version=room_version, create=create, initial=initial, alias=alias,
                published=request.visibility == "public")
        except AliasExists:
            raise _alias_taken() from None
        for invite in remote_invites:
            await self._creator.send(replace(invite, room_id=room_id))
        return {"room_id": room_id}


def _alias_taken() -> BadRequest:
    return BadRequest("M_ROOM_IN_USE", "Room alias already taken")
