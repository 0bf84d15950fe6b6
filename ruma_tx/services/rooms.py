"""
Creating rooms (POST /createRoom): the initial events, in the order the
spec gives.
"""
from __future__ import annotations

from ruma_tx.matrix.errors import BadRequest
from ruma_tx.matrix.identifiers import random_string
from ruma_tx.matrix.membership import member_content
from ruma_tx.matrix.power_levels import default_power_levels_content
from ruma_tx.matrix.room_creation import PRESET_STATE, RoomRequest
from ruma_tx.matrix.room_versions import ROOM_VERSIONS
from ruma_tx.services.events import EventCreator, EventSpec
from ruma_tx.services.membership import ProfileLookup
from ruma_tx.services.ports.directory import AliasExists, DirectoryStorage


class RoomCreator:
    """
    @param creator: the L{ruma_tx.services.events.EventCreator}.
    @param directory: the L{ruma_tx.storage.directory.DirectoryStore}.
    @param profiles: C{async (user_id) -> (displayname, avatar_url)}.
    """

    def __init__(self, *, creator: EventCreator, directory: DirectoryStorage, profiles: ProfileLookup,
                 server_name: str) -> None:
        self._creator = creator
        self._directory = directory
        self._profiles = profiles
        self._server_name = server_name

    async def create_room(self, user_id: str, request: RoomRequest) -> dict:
        room_version = ROOM_VERSIONS[request.room_version]
        alias = None
        if request.room_alias_name is not None:
            alias = f"#{request.room_alias_name}:{self._server_name}"
            if await self._directory.get_alias(alias) is not None:
                raise BadRequest("M_ROOM_IN_USE", "Room alias already taken")
        create_content = dict(request.creation_content)
        create_content["room_version"] = room_version.identifier
        if not room_version.implicit_room_creator:
            create_content["creator"] = user_id
        else:
            create_content.pop("creator", None)
        if room_version.privileged_creators and request.preset == "trusted_private_chat":
            # v12: trusted invitees become creators (spec: createRoom presets).
            extra = [u for u in create_content.get("additional_creators", []) + list(request.invite)
                     if u != user_id]
            if extra:
                create_content["additional_creators"] = list(dict.fromkeys(extra))
        room_id = None
        if not room_version.room_id_from_create_event:
            room_id = f"!{random_string(18)}:{self._server_name}"
        created = await self._creator.create_room_event(
            EventSpec(room_id, user_id, "m.room.create", create_content, state_key=""), room_version
        )
        room_id = created.room_id

        async def state(event_type, content, state_key=""):
            await self._creator.send(EventSpec(room_id, user_id, event_type, content, state_key))

        displayname, avatar_url = await self._profiles(user_id)
        await state("m.room.member", member_content("join", displayname=displayname, avatar_url=avatar_url), user_id)
        trusted = request.invite if request.preset == "trusted_private_chat" else ()
        power_levels = default_power_levels_content(
            user_id, room_version, request.preset, invitees=trusted)
        if request.power_level_content_override:
            power_levels.update(request.power_level_content_override)
        await state("m.room.power_levels", power_levels)
        if alias is not None:
            try:
                await self._directory.create_alias(alias, room_id, user_id)
            except AliasExists:
                raise BadRequest("M_ROOM_IN_USE", "Room alias already taken") from None
            await state("m.room.canonical_alias", {"alias": alias})
        preset_state = PRESET_STATE[request.preset]
        explicit = {(t, k) for t, k, _ in request.initial_state}
        for event_type, key, content in (
            ("m.room.join_rules", "join_rule", {"join_rule": preset_state["join_rule"]}),
            ("m.room.history_visibility", "history_visibility",
             {"history_visibility": preset_state["history_visibility"]}),
            ("m.room.guest_access", "guest_access", {"guest_access": preset_state["guest_access"]}),
        ):
            if (event_type, "") not in explicit:
                await state(event_type, content)
        for event_type, state_key, content in request.initial_state:
            await state(event_type, content, state_key)
        if request.name is not None:
            await state("m.room.name", {"name": request.name})
        if request.topic is not None:
            await state("m.room.topic", {
                "topic": request.topic,
                "m.topic": {"m.text": [{"body": request.topic, "mimetype": "text/plain"}]},
            })
        for invitee in request.invite:
            content = {"membership": "invite"}
            if request.is_direct:
                content["is_direct"] = True
            await state("m.room.member", content, invitee)
        if request.visibility == "public":
            await self._directory.set_published(room_id, True)
        return {"room_id": room_id}
