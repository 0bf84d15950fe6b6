"""
Upgrading a room to another room version (spec: client-server-api "Room
Upgrades", C{POST /rooms/{roomId}/upgrade}).

The replacement room is created whole, with its copied state and bans, in
one transaction (L{EventCreator.create_room}); the steps that follow touch
the old room, the directory and each user's settings, and each is done
so that doing it again changes nothing. The old room's tombstone is the
last step: until it is sent, a retry of the same upgrade (same user, same
version) finds the replacement room by its C{predecessor} and finishes
it, and once it is sent a retry answers that room. So a retry never makes
a second room, even after a crash half-way; concurrent requests of one
user share one upgrade (as Synapse), another user's is refused meanwhile.
"""
from __future__ import annotations

from ruma_tx.logs import logger
from ruma_tx.matrix.errors import BadRequest, MatrixError, forbidden, not_found
from ruma_tx.matrix.events import StoredEvent, pdu_with_id
from ruma_tx.matrix.identifiers import random_string
from ruma_tx.matrix.membership import member_content
from ruma_tx.matrix.power_levels import CREATE, POWER_LEVELS, creators, user_power_level
from ruma_tx.matrix.room_upgrade import (
    COPIED_STATE_TYPES,
    SPACE,
    SPACE_CHILD,
    TOMBSTONE,
    UpgradedPowerLevels,
    UpgradeRequest,
    aliases_in,
    carried_direct,
    carried_push_rules,
    copied_bans,
    copied_state,
    may_replace,
    moved_canonical_alias,
    only_aliases,
    restored_power_levels,
    restricted_power_levels,
    tombstone_content,
    upgraded_create_content,
    upgraded_power_levels,
)
from ruma_tx.matrix.room_versions import ROOM_VERSIONS
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.account_data import DIRECT, AccountDataKeeper
from ruma_tx.services.concurrency import SingleFlight
from ruma_tx.services.event_spec import EventSpec
from ruma_tx.services.events import EventCreator
from ruma_tx.services.membership import ProfileLookup
from ruma_tx.services.ports.directory import DirectoryStorage
from ruma_tx.services.ports.events import Events
from ruma_tx.services.ports.room_upgrade import RoomUpgradeStorage
from ruma_tx.services.ports.spaces import RoomSummaryStorage
from ruma_tx.services.push import PushRules

log = logger(__name__)

CANONICAL_ALIAS = ("m.room.canonical_alias", "")

#: The old room's state an upgrade reads (besides bans, space children
#: and the upgrader's membership).
_READ_STATE = [CREATE, POWER_LEVELS, CANONICAL_ALIAS, (TOMBSTONE, ""),
               *((event_type, "") for event_type in COPIED_STATE_TYPES)]


class RoomUpgrader:
    """
    @param creator: the L{ruma_tx.services.events.EventCreator}.
    @param events: the L{ruma_tx.storage.events.EventStore}.
    @param directory: the L{ruma_tx.storage.directory.DirectoryStore}.
    @param upgrades: the L{ruma_tx.storage.room_upgrade.RoomUpgradeStore}.
    @param summaries: the L{ruma_tx.storage.room_summaries.RoomSummaryStore}
        (a space's children).
    @param account_data: carries users' tags and C{m.direct}.
    @param push_rules: carries users' push rules.
    @param profiles: C{async (user_id) -> (displayname, avatar_url)}.
    """

    def __init__(self, *, creator: EventCreator, events: Events, directory: DirectoryStorage,
                 upgrades: RoomUpgradeStorage, summaries: RoomSummaryStorage,
                 account_data: AccountDataKeeper, push_rules: PushRules, profiles: ProfileLookup,
                 server_name: str) -> None:
        self._creator = creator
        self._events = events
        self._directory = directory
        self._upgrades = upgrades
        self._summaries = summaries
        self._account_data = account_data
        self._push_rules = push_rules
        self._profiles = profiles
        self._server_name = server_name
        self._in_flight = SingleFlight()
        # The rooms being upgraded right now, and by whom.
        self._upgrading: dict[str, str] = {}

    async def upgrade(self, user_id: str, room_id: str, request: UpgradeRequest) -> str:
        """
        Replace the room by a new one of C{request.new_version}.

        @return: the new room's id.
        @raise NotFound: for an unknown room.
        @raise Forbidden: when the user may not send the room's tombstone.
        @raise BadRequest: while another user upgrades the room (as Synapse).
        """
        upgrading = self._upgrading.get(room_id)
        if upgrading is not None and upgrading != user_id:
            raise BadRequest("M_UNKNOWN", "An upgrade for this room is currently in progress")
        return await self._in_flight.run((room_id, user_id), lambda: self._upgrade_once(user_id, room_id, request))

    async def _upgrade_once(self, user_id: str, room_id: str, request: UpgradeRequest) -> str:
        self._upgrading[room_id] = user_id
        try:
            return await self._upgrade(user_id, room_id, request)
        finally:
            del self._upgrading[room_id]

    async def _upgrade(self, user_id: str, room_id: str, request: UpgradeRequest) -> str:
        head = await self._events.get_room_head(room_id)
        if head is None:
            raise not_found(f"Unknown room {room_id}")
        old_version = ROOM_VERSIONS[head.room_version]
        state = await self._events.get_state(room_id, [*_READ_STATE, ("m.room.member", user_id)])
        pdus = {key: pdu_with_id(event) for key, event in state.items()}
        if not may_replace(user_id, pdus, old_version):
            raise forbidden("You cannot upgrade this room")
        old_level = user_power_level(user_id, pdus, old_version)
        power_levels = state.get(POWER_LEVELS)
        levels = upgraded_power_levels(
            power_levels.content if power_levels is not None else None, upgrader=user_id, old_level=old_level,
            unlimited_old_creators=creators(pdus, old_version) if old_version.privileged_creators
            else frozenset(), request=request)
        new_room_id = await self._upgrades.find_replacement(room_id, user_id, request.new_version.identifier)
        tombstone = state.get((TOMBSTONE, ""))
        if new_room_id is not None and tombstone is not None:
            if tombstone.content.get("replacement_room") == new_room_id:
                return new_room_id  # a retry of an upgrade that is done
            new_room_id = None  # replaced since by another upgrade: this is a new one
        if new_room_id is None:
            new_room_id = await self._create_replacement(user_id, room_id, head.last_event_id, state,
                                                         levels, request)
        await self._finish(user_id, room_id, new_room_id, state, levels)
        return new_room_id

    async def _create_replacement(self, user_id: str, room_id: str, last_event_id: str | None,
                                  state: dict[tuple[str, str], StoredEvent], levels: UpgradedPowerLevels,
                                  request: UpgradeRequest) -> str:
        """Create the new room with its copied state and bans, all at once."""
        version = request.new_version
        old_create = state[CREATE].content
        create_content = upgraded_create_content(old_create, upgrader=user_id, old_room_id=room_id,
                                                 last_event_id=last_event_id, request=request)
        contents = {key: event.content for key, event in state.items()}
        if old_create.get("type") == SPACE:
            contents.update({(SPACE_CHILD, child.room_id): child.content
                             for child in await self._summaries.get_space_children(room_id)})
        banned = list(await self._events.get_members(room_id, ("ban",)))
        bans = {key[1]: event.content for key, event in
                (await self._events.get_state(room_id, [("m.room.member", u) for u in banned])).items()}
        displayname, avatar_url = await self._profiles(user_id)
        new_room_id = None if version.room_id_from_create_event else f"!{random_string(18)}:{self._server_name}"

        def spec(event_type: str, state_key: str, content: JsonDict) -> EventSpec:
            return EventSpec(new_room_id, user_id, event_type, content, state_key)

        initial = [
            spec("m.room.member", user_id,
                 member_content("join", displayname=displayname, avatar_url=avatar_url)),
            spec(POWER_LEVELS[0], "", levels.initial),
            *(spec(event_type, state_key, content) for event_type, state_key, content
              in copied_state(contents, is_space=old_create.get("type") == SPACE)),
            *(spec("m.room.member", target, content) for target, content in copied_bans(
                bans, upgrader=user_id, create_content=create_content, power_levels=levels.initial,
                room_version=version)),
        ]
        log.info("upgrading {room_id} to version {version}", room_id=room_id, version=version.identifier)
        return await self._creator.create_room(room_version=version, create=spec(CREATE[0], "", create_content),
                                               initial=initial)

    async def _finish(self, user_id: str, room_id: str, new_room_id: str,
                      state: dict[tuple[str, str], StoredEvent], levels: UpgradedPowerLevels) -> None:
        """
        What follows the new room's creation, in an order that a retry can
        run again: aliases and directory, canonical aliases, users'
        settings, the old room's power levels, the upgrader's level in the
        new room, and last the tombstone.
        """
        await self._upgrades.move_directory(room_id, new_room_id)
        canonical_alias = state.get(CANONICAL_ALIAS)
        if canonical_alias is not None:
            await self._move_canonical_alias(user_id, room_id, new_room_id, canonical_alias.content)
        for member in await self._events.get_members(room_id, ("join",)):
            if member.endswith(":" + self._server_name):
                await self._carry_settings(member, room_id, new_room_id)
        power_levels = state.get(POWER_LEVELS)
        restricted = restricted_power_levels(power_levels.content) if power_levels is not None else None
        if restricted is not None:
            await self._send_or_log(EventSpec(room_id, user_id, POWER_LEVELS[0], restricted, ""))
        new_levels = (await self._events.get_state(new_room_id, [POWER_LEVELS])).get(POWER_LEVELS)
        restored = restored_power_levels(new_levels.content if new_levels is not None else {}, user_id, levels)
        if restored is not None:
            await self._creator.send(EventSpec(new_room_id, user_id, POWER_LEVELS[0], restored, ""))
        await self._creator.send(EventSpec(room_id, user_id, TOMBSTONE, tombstone_content(new_room_id), ""))

    async def _move_canonical_alias(self, user_id: str, room_id: str, new_room_id: str, content: JsonDict) -> None:
        """
        Name the new room by the aliases that moved to it, then drop them
        from the old room's canonical alias event (as Synapse: a failure
        is logged, the upgrade goes on).
        """
        moved, kept = moved_canonical_alias(content, self._server_name)
        current = await self._events.get_state(new_room_id, [CANONICAL_ALIAS])
        if moved and CANONICAL_ALIAS not in current:
            # Only aliases that name the new room now (a stale one would be refused).
            named = await self._directory.get_alias_rooms(aliases_in(moved))
            moved = only_aliases(moved, {alias for alias, room in named.items() if room == new_room_id})
            if moved:
                await self._send_or_log(EventSpec(new_room_id, user_id, CANONICAL_ALIAS[0], moved, ""))
        if kept != content:
            await self._send_or_log(EventSpec(room_id, user_id, CANONICAL_ALIAS[0], kept, ""))

    async def _carry_settings(self, user_id: str, room_id: str, new_room_id: str) -> None:
        """
        Give a member of the old room their tags, C{m.direct} entry and push
        rules in the new one (spec: "the server should automatically
        transfer ... notifications, tags"; as Synapse, at the upgrade, for
        every local member). A failure is logged and the upgrade goes on.
        """
        try:
            tags = (await self._account_data.get_tags(user_id, user_id, room_id))["tags"]
            for tag, tag_content in tags.items():
                await self._account_data.put_tag(user_id, user_id, new_room_id, tag, tag_content)
            try:
                direct = await self._account_data.get(user_id, user_id, DIRECT)
            except MatrixError:
                direct = {}  # no m.direct
            carried = carried_direct(direct, room_id, new_room_id)
            if carried is not None:
                await self._account_data.put(user_id, user_id, DIRECT, carried)
            ruleset = await self._push_rules.get_all(user_id)
            for kind, rule_id, body in carried_push_rules(ruleset, room_id, new_room_id):
                await self._push_rules.put_rule(user_id, kind, rule_id, body)
        except MatrixError as e:
            log.warn("could not carry {user_id}'s settings from {room_id} to {new_room_id}: {why}",
                     user_id=user_id, room_id=room_id, new_room_id=new_room_id, why=e)

    async def _send_or_log(self, spec: EventSpec) -> None:
        """Send an event the upgrade can do without (as Synapse: a refusal is logged)."""
        try:
            await self._creator.send(spec)
        except MatrixError as e:
            log.warn("room upgrade: could not send {type} in {room_id}: {why}", type=spec.event_type,
                     room_id=spec.room_id, why=e)
