"""
The room versions we support and what differs between them
(spec: rooms/v1.md to v12.md).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ruma_tx.matrix.types import JsonDict


@dataclass(frozen=True)
class RoomVersion:
    """
    Each flag names a difference, true from the version that introduced it
    on (except those that say "before").

    @ivar identifier: the version string, e.g. C{"12"}.
    @ivar event_id_in_pdu: v1-2: the sending server chooses the event ID,
        C{$opaque:its_server_name}, and carries it in the PDU's C{event_id};
        the event also needs a signature of that server. From v3 the ID is
        derived from the reference hash and not sent.
    @ivar event_reference_pairs: v1-2: C{prev_events} and C{auth_events}
        are C{[event_id, {"sha256": reference hash}]} pairs; v3+: event IDs.
    @ivar redaction_auth_rule: v1-2: auth rule 11 for C{m.room.redaction}
        (the sender needs the redact level, or the event IDs of the
        redaction and the redacted event share a server); from v3 the
        checks of "Handling redactions" apply when the redaction is applied.
    @ivar url_safe_event_ids: v4+: the reference hash of an event ID is in
        URL-safe base64 (v3: standard alphabet).
    @ivar state_res_v2: v2+: state resolution v2 (v1: the v1 algorithm of
        L{ruma_tx.matrix.state_res_v1}).
    @ivar enforce_key_validity: v5+: a signature only counts if made with a
        key whose C{valid_until_ts} (or C{expired_ts}) is not before the
        event's C{origin_server_ts}.
    @ivar special_case_aliases: before v6: auth rule 4 for
        C{m.room.aliases} (state key is the sender's server) and the
        redaction algorithm keeps its C{aliases}.
    @ivar strict_canonical_json: v6+: events must be canonical JSON (no
        floats, integers within +-(2**53 - 1)).
    @ivar notifications_power_levels: v6+: the power levels auth rule also
        checks changes to C{notifications}.
    @ivar knocking: v7+: the C{knock} membership and join rule.
    @ivar restricted_joins: v8+: the C{restricted} join rule (joins
        authorised with C{join_authorised_via_users_server}, which that
        user's server signs), and redacted join rules keep C{allow}.
    @ivar redaction_keeps_authorising_user: v9+: redacted member events
        keep C{join_authorised_via_users_server}.
    @ivar knock_restricted: v10+: the C{knock_restricted} join rule.
    @ivar integer_power_levels: v10+: power levels must be integers; before,
        strings holding integers (and, before v6, floats) were accepted.
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
    event_id_in_pdu: bool
    event_reference_pairs: bool
    redaction_auth_rule: bool
    url_safe_event_ids: bool
    state_res_v2: bool
    enforce_key_validity: bool
    special_case_aliases: bool
    strict_canonical_json: bool
    notifications_power_levels: bool
    knocking: bool
    restricted_joins: bool
    redaction_keeps_authorising_user: bool
    knock_restricted: bool
    integer_power_levels: bool
    updated_redaction_rules: bool
    implicit_room_creator: bool
    room_id_from_create_event: bool
    privileged_creators: bool
    state_res_v2_1: bool


V1 = RoomVersion(
    "1", event_id_in_pdu=True, event_reference_pairs=True, redaction_auth_rule=True,
    url_safe_event_ids=False, state_res_v2=False, enforce_key_validity=False,
    special_case_aliases=True, strict_canonical_json=False, notifications_power_levels=False,
    knocking=False, restricted_joins=False, redaction_keeps_authorising_user=False,
    knock_restricted=False, integer_power_levels=False, updated_redaction_rules=False,
    implicit_room_creator=False, room_id_from_create_event=False, privileged_creators=False,
    state_res_v2_1=False,
)
V2 = replace(V1, identifier="2", state_res_v2=True)
V3 = replace(V2, identifier="3", event_id_in_pdu=False, event_reference_pairs=False,
             redaction_auth_rule=False)
V4 = replace(V3, identifier="4", url_safe_event_ids=True)
V5 = replace(V4, identifier="5", enforce_key_validity=True)
V6 = replace(V5, identifier="6", special_case_aliases=False, strict_canonical_json=True,
             notifications_power_levels=True)
V7 = replace(V6, identifier="7", knocking=True)
V8 = replace(V7, identifier="8", restricted_joins=True)
V9 = replace(V8, identifier="9", redaction_keeps_authorising_user=True)
V10 = replace(V9, identifier="10", knock_restricted=True, integer_power_levels=True)
V11 = replace(V10, identifier="11", updated_redaction_rules=True, implicit_room_creator=True)
V12 = replace(V11, identifier="12", room_id_from_create_event=True, privileged_creators=True,
              state_res_v2_1=True)

ROOM_VERSIONS: dict[str, RoomVersion] = {
    v.identifier: v for v in (V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12)
}
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


def referenced_event_ids(pdu: JsonDict, key: str) -> list[str]:
    """
    The event IDs an event lists under C{prev_events} or C{auth_events}, in
    either shape (L{RoomVersion.event_reference_pairs}): each entry is an
    ID or an C{[event_id, hashes]} pair. Which shape a room version allows
    is checked on receipt (L{ruma_tx.matrix.pdu_checks.check_pdu_format}).

    @param key: C{"prev_events"} or C{"auth_events"}.
    @return: The IDs in order; malformed entries are left out.
    """
    value = pdu.get(key)
    if not isinstance(value, list):
        return []
    ids = []
    for item in value:
        if isinstance(item, list) and len(item) == 2:
            item = item[0]
        if isinstance(item, str):
            ids.append(item)
    return ids


def auth_event_ids(pdu: JsonDict, room_version: RoomVersion) -> list[str]:
    """
    The events that authorise C{pdu}: its C{auth_events} and, from room
    version 12, the create event, which they no longer list (its id is the
    room id's, with the C{$} sigil).
    """
    listed = referenced_event_ids(pdu, "auth_events")
    room_id = pdu.get("room_id")
    if room_version.room_id_from_create_event and isinstance(room_id, str) and room_id.startswith("!") \
            and pdu.get("type") != "m.room.create":
        create_id = create_event_id_of(room_id)
        if create_id not in listed:
            listed.append(create_id)
    return listed


def create_event_id_of(room_id: str) -> str:
    """Room version 12: the create event's id, the room id's with the C{$} sigil."""
    return "$" + room_id[1:]
