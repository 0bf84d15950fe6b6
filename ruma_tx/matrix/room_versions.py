"""
The room versions we support and what differs between them
(spec: rooms/v10.md, v11.md, v12.md).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RoomVersion:
    """
    @ivar identifier: the version string, e.g. C{"12"}.
    @ivar updated_redaction_rules: v11+: the redaction algorithm keeps
        C{redacts} in content, C{invite} power level, C{signed} in
        third-party invites, and the whole C{m.room.create} content; the
        top-level C{origin}, C{membership} and C{prev_state} are gone.
    @ivar implicit_room_creator: v11+: the creator is the create event's
        C{sender}; C{content.creator} is no longer used.
    @ivar room_id_from_create_event: v12: the room id is C{!} plus the
        create event's reference hash; the create event has no C{room_id}
        and is not listed in C{auth_events}.
    @ivar privileged_creators: v12: the create event's sender and
        C{additional_creators} have infinite power and cannot be given a
        power level.
    @ivar state_res_v2_1: v12: state resolution v2.1 (MSC4297): the first
        iterative auth checks start from an empty state and the full
        conflicted set includes the conflicted state subgraph.
    """

    identifier: str
    updated_redaction_rules: bool
    implicit_room_creator: bool
    room_id_from_create_event: bool
    privileged_creators: bool
    state_res_v2_1: bool


V10 = RoomVersion("10", updated_redaction_rules=False, implicit_room_creator=False,
                  room_id_from_create_event=False, privileged_creators=False,
                  state_res_v2_1=False)
V11 = RoomVersion("11", updated_redaction_rules=True, implicit_room_creator=True,
                  room_id_from_create_event=False, privileged_creators=False,
                  state_res_v2_1=False)
V12 = RoomVersion("12", updated_redaction_rules=True, implicit_room_creator=True,
                  room_id_from_create_event=True, privileged_creators=True,
                  state_res_v2_1=True)

ROOM_VERSIONS: dict[str, RoomVersion] = {v.identifier: v for v in (V10, V11, V12)}
DEFAULT_ROOM_VERSION = V12


def as_room_version(room_version: RoomVersion | str) -> RoomVersion:
    """
    @param room_version: A L{RoomVersion} or a supported version identifier.
    @return: The L{RoomVersion}.
    @raise ValueError: If the identifier is not a supported version.
    """
    if isinstance(room_version, RoomVersion):
        return room_version
    try:
        return ROOM_VERSIONS[room_version]
    except (KeyError, TypeError):
        raise ValueError(f"Unsupported room version {room_version!r}") from None
