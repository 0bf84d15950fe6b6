"""
The authorisation rules of room versions 1 to 12 (spec: rooms/v1.md to
v12.md "Authorisation rules"; server-server API "Auth events selection").
The rule for power levels events is in L{ruma_tx.matrix.auth_power_levels};
the redaction checks of "Handling redactions" (v3+) in
L{ruma_tx.matrix.redaction}.

All functions are pure. Events are PDU dicts. A I{state map} maps
C{(type, state_key)} to the event currently holding that key; the state
given to L{check_event_auth} is the room's state I{before} the event.

Not checked here, because they need keys or storage: the signatures (that
the sender's server signed the event, and for restricted joins that the
authorising user's server did), and whether auth events were rejected.
"""
from __future__ import annotations

from ruma_tx.matrix.auth_power_levels import power_levels_violation
from ruma_tx.matrix.identifiers import (
    InvalidIdentifier,
    is_valid_user_id,
    parse_room_id,
    parse_user_id,
)
from ruma_tx.matrix.power_levels import (
    CREATE,
    POWER_LEVELS,
    event_content,
    event_power_level,
    power_level_for,
    user_power_level,
)
from ruma_tx.matrix.room_versions import (
    ROOM_VERSIONS,
    RoomVersion,
    as_room_version,
    referenced_event_ids,
)
from ruma_tx.matrix.types import JsonDict, StateMap

MEMBER = "m.room.member"
JOIN_RULES = ("m.room.join_rules", "")
THIRD_PARTY_INVITE = "m.room.third_party_invite"
REDACTION = "m.room.redaction"
ALIASES = "m.room.aliases"


class AuthError(Exception):
    """
    The event is not allowed. C{str(e)} is a human message suitable for a
    403 C{M_FORBIDDEN}.
    """


# ---------------------------------------------------------------------------
# Small readers


def _domain(user_id: object) -> str | None:
    """
    @param user_id: A user ID (or anything).
    @return: Its server name, or L{None} if it is not a valid user ID.
    """
    try:
        return parse_user_id(user_id)[1]  # type: ignore[arg-type]
    except InvalidIdentifier:
        return None


def membership_of(user_id: str, state: StateMap) -> str:
    """
    @param user_id: A user.
    @param state: A state map.
    @return: The user's current membership, C{"leave"} when the room has no
        member event for them.
    """
    membership = event_content(state.get((MEMBER, user_id))).get("membership")
    return membership if isinstance(membership, str) else "leave"


def join_rule_of(state: StateMap) -> str:
    """
    @param state: A state map.
    @return: The current join rule; C{"invite"} when the room has no
        C{m.room.join_rules} event or it has no C{join_rule} (as Synapse).
    """
    event = state.get(JOIN_RULES)
    if event is None:
        return "invite"
    rule = event_content(event).get("join_rule")
    return rule if isinstance(rule, str) else "invite"


# ---------------------------------------------------------------------------
# Auth events selection


def auth_types_for_event(
    event_type: str,
    state_key: str | None,
    sender: str,
    content: JsonDict,
    room_version: RoomVersion | str,
) -> list[tuple[str, str]]:
    """
    The state keys whose current events an event must cite in its
    C{auth_events} (server-server API "Auth events selection").

    @param event_type: The event's type.
    @param state_key: Its state key, L{None} for a message event.
    @param sender: Its sender.
    @param content: Its content.
    @param room_version: The room version.
    @return: In order, without duplicates: the create event (not in room
        version 12, where the room ID implies it), the power levels, the
        sender's member event; for C{m.room.member}: the target's member
        event, the join rules for C{join}/C{invite}/C{knock}, the
        third-party invite named by C{third_party_invite.signed.token}, and
        for joins (v8+) the member event of C{join_authorised_via_users_server}.
        Empty for C{m.room.create}. Keys the room has no event for are
        simply not cited.
    """
    version = as_room_version(room_version)
    if event_type == CREATE[0]:
        return []
    keys: list[tuple[str, str]] = []
    if not version.room_id_from_create_event:
        keys.append(CREATE)
    keys.append(POWER_LEVELS)
    keys.append((MEMBER, sender))
    if event_type == MEMBER and isinstance(state_key, str):
        content = content if isinstance(content, dict) else {}
        membership = content.get("membership")
        keys.append((MEMBER, state_key))
        if membership in ("join", "invite", "knock"):
            keys.append(JOIN_RULES)
        if membership == "invite":
            tpi = content.get("third_party_invite")
            signed = tpi.get("signed") if isinstance(tpi, dict) else None
            token = signed.get("token") if isinstance(signed, dict) else None
            if isinstance(token, str):
                keys.append((THIRD_PARTY_INVITE, token))
        if membership == "join" and version.restricted_joins:
            via = content.get("join_authorised_via_users_server")
            if isinstance(via, str):
                keys.append((MEMBER, via))
    seen: set[tuple[str, str]] = set()
    unique: list[tuple[str, str]] = []
    for key in keys:
        if key not in seen:
            seen.add(key)
            unique.append(key)
    return unique


# ---------------------------------------------------------------------------
# The rules


def check_event_auth(
    event: JsonDict,
    state: StateMap,
    room_version: RoomVersion | str,
    *,
    create_event: JsonDict | None = None,
) -> None:
    """
    Apply the authorisation rules of the room version to an event.

    @param event: The event (PDU dict). If it has C{auth_events} (a list of
        event IDs), they are checked against C{state} (rule "considering
        the event's auth_events"); if it has C{prev_events}, they are used
        by the create-event and first-join rules.
    @param state: The room state before the event; empty when C{event} is
        the create event.
    @param room_version: The room version.
    @param create_event: The room's create event, if it is not (or not
        necessarily) in C{state}; defaults to C{state[("m.room.create", "")]}.
    @raise AuthError: If the event is not allowed.
    """
    version = as_room_version(room_version)
    event_type = event.get("type")
    sender = event.get("sender")
    if not isinstance(event_type, str):
        raise AuthError("Event has no type")
    if not is_valid_user_id(sender):
        raise AuthError("Event has an invalid sender")

    if event_type == CREATE[0]:
        _check_create(event, state, version)
        return

    create = create_event if create_event is not None else state.get(CREATE)
    if create is None:
        raise AuthError("The room has no create event")
    if create_event is not None and CREATE not in state:
        state = {**state, CREATE: create_event}
    _check_room_id(event, create, version)
    _check_auth_events(event, state, version)

    # m.federate: only the create sender's server may send events.
    if event_content(create).get("m.federate", True) is False:
        if _domain(sender) != _domain(create.get("sender")):
            raise AuthError("This room does not allow users from other servers")

    if event_type == ALIASES and version.special_case_aliases:
        # v1-5 rule 4: a server manages its own aliases, member or not.
        if "state_key" not in event:
            raise AuthError("An m.room.aliases event needs a state_key")
        if event["state_key"] != _domain(sender):
            raise AuthError("The state_key of m.room.aliases must be the sender's server")
        return

    if event_type == MEMBER:
        _check_membership(event, state, create, version)
        return

    if membership_of(sender, state) != "join":
        raise AuthError(f"{sender} is not in the room")

    sender_level = user_power_level(sender, state, version)

    if event_type == THIRD_PARTY_INVITE:
        if sender_level < power_level_for("invite", state):
            raise AuthError("You don't have permission to invite users")
        return

    is_state = "state_key" in event
    required = event_power_level(event_type, is_state, state)
    if sender_level < required:
        raise AuthError(
            f"You don't have permission to send {event_type} events "
            f"(your level is {_fmt(sender_level)}, {required} is required)"
        )

    state_key = event.get("state_key")
    if isinstance(state_key, str) and state_key.startswith("@") and state_key != sender:
        raise AuthError("You are not allowed to set the state of another user")

    if event_type == POWER_LEVELS[0]:
        violation = power_levels_violation(event, state, version, sender_level)
        if violation is not None:
            raise AuthError(violation)

    if event_type == REDACTION and version.redaction_auth_rule:
        _check_redaction_v1(event, state, sender_level)


def _check_redaction_v1(event: JsonDict, state: StateMap, sender_level: int | float) -> None:
    """
    v1-2 rule 11: the sender has the redact level, or the redaction's event
    ID has the same server as the redacted event's.

    @raise AuthError: Otherwise.
    """
    if sender_level >= power_level_for("redact", state):
        return
    domain = _event_id_domain(event.get("event_id"))
    if domain is not None and domain == _event_id_domain(event.get("redacts")):
        return
    raise AuthError("You don't have permission to redact events of other servers")


def _event_id_domain(event_id: object) -> str | None:
    """@return: The server of a v1-2 C{$opaque:server} event ID, else L{None}."""
    if not isinstance(event_id, str) or ":" not in event_id:
        return None
    return event_id.split(":", 1)[1]


def _fmt(level: int | float) -> str:
    """@return: A level for a message (C{infinite} for creators)."""
    return "infinite" if level == float("inf") else str(level)


def _check_create(event: JsonDict, state: StateMap, version: RoomVersion) -> None:
    """
    Rule 1: the C{m.room.create} event.

    @raise AuthError: If it has prev events, the room already has a create
        event, its room ID is wrong for the version, C{room_version} is not
        one we know, v1-10 lacks C{creator}, or v12 C{additional_creators} is
        not a list of user IDs.
    """
    if event.get("prev_events"):
        raise AuthError("The create event must not have previous events")
    if CREATE in state:
        raise AuthError("The room already has a create event")
    if event.get("state_key") != "":
        raise AuthError("The create event must have an empty state_key")
    content = event.get("content")
    if not isinstance(content, dict):
        raise AuthError("The create event has no content")
    if version.room_id_from_create_event:
        if "room_id" in event:
            raise AuthError("The create event must not have a room_id in this room version")
    else:
        room_id = event.get("room_id")
        try:
            _opaque, room_domain = parse_room_id(room_id)  # type: ignore[arg-type]
        except InvalidIdentifier:
            raise AuthError("The create event has an invalid room_id") from None
        if room_domain is None or room_domain != _domain(event.get("sender")):
            raise AuthError("The room ID's server must be the sender's server")
    # Absent means "1"; the rule only rejects a present unknown value.
    if "room_version" in content and content["room_version"] not in ROOM_VERSIONS:
        raise AuthError(f"Unsupported room version {content['room_version']!r}")
    if not version.implicit_room_creator and "creator" not in content:
        raise AuthError("The create event must have a creator in this room version")
    if version.privileged_creators and "additional_creators" in content:
        additional = content["additional_creators"]
        if not isinstance(additional, list) or not all(
            is_valid_user_id(u) for u in additional
        ):
            raise AuthError("additional_creators must be a list of user IDs")


def _check_room_id(event: JsonDict, create: JsonDict, version: RoomVersion) -> None:
    """
    v12 rule 2 (the room ID is the create event's ID with sigil C{!}); in
    earlier versions, the room ID must be the create event's (rule 2.5 for
    the create event as an auth event).

    @raise AuthError: If the event's room is not the create event's.
    """
    room_id = event.get("room_id")
    if version.room_id_from_create_event:
        create_id = create.get("event_id")
        if isinstance(create_id, str) and room_id != "!" + create_id[1:]:
            raise AuthError("The event's room_id is not its room's create event")
    else:
        create_room = create.get("room_id")
        if create_room is not None and room_id != create_room:
            raise AuthError("The event's room_id does not match the create event's")


def _check_auth_events(event: JsonDict, state: StateMap, version: RoomVersion) -> None:
    """
    Rule "considering the event's auth_events", applied when the event
    lists them: no two for the same key, each one the current state event
    of a key the selection algorithm picks, in the same room, and (before
    v12) the create event among them.

    @raise AuthError: If the cited auth events are wrong.
    """
    if "auth_events" not in event:
        return
    if not isinstance(event["auth_events"], list):
        raise AuthError("auth_events must be a list")
    cited = referenced_event_ids(event, "auth_events")
    by_id = {
        e.get("event_id"): key for key, e in state.items() if isinstance(e, dict)
    }
    allowed = set(
        auth_types_for_event(
            event["type"], event.get("state_key"), event["sender"],
            event_content(event), version,
        )
    )
    seen: set[tuple[str, str]] = set()
    for event_id in cited:
        key = by_id.get(event_id) if isinstance(event_id, str) else None
        if key is None:
            raise AuthError(f"Auth event {event_id!r} is not in the room's state")
        if key in seen:
            raise AuthError(f"Duplicate auth events for {key}")
        seen.add(key)
        if key not in allowed:
            raise AuthError(f"Auth event {event_id} ({key}) is not one the event may cite")
        auth_room = state[key].get("room_id")
        if auth_room is not None and auth_room != event.get("room_id"):
            raise AuthError(f"Auth event {event_id} belongs to another room")
    if not version.room_id_from_create_event and CREATE not in seen:
        raise AuthError("The create event is missing from auth_events")


def _check_membership(
    event: JsonDict, state: StateMap, create: JsonDict, version: RoomVersion
) -> None:
    """
    Rule "if type is m.room.member".

    @raise AuthError: If the membership change is not allowed.
    """
    target = event.get("state_key")
    content = event_content(event)
    membership = content.get("membership")
    if not isinstance(target, str) or not isinstance(membership, str):
        raise AuthError("A member event needs a state_key and a membership")
    sender = event["sender"]

    if membership == "join":
        _check_join(event, state, create, version, target, content)
        return

    if membership == "invite":
        if "third_party_invite" in content:
            # We cannot verify third-party invite signatures: refuse them all.
            raise AuthError("Third-party invites are not supported")
        if membership_of(sender, state) != "join":
            raise AuthError(f"{sender} is not in the room")
        target_membership = membership_of(target, state)
        if target_membership == "join":
            raise AuthError(f"{target} is already in the room")
        if target_membership == "ban":
            raise AuthError(f"{target} is banned from the room")
        if user_power_level(sender, state, version) < power_level_for("invite", state):
            raise AuthError("You don't have permission to invite users")
        return

    sender_level = user_power_level(sender, state, version)

    if membership == "leave":
        if sender == target:
            if membership_of(sender, state) in ("invite", "join", "knock"):
                return
            raise AuthError("You are not in the room, not invited and have not knocked")
        if membership_of(sender, state) != "join":
            raise AuthError(f"{sender} is not in the room")
        if membership_of(target, state) == "ban" and sender_level < power_level_for("ban", state):
            raise AuthError(f"You don't have permission to unban {target}")
        if (
            sender_level >= power_level_for("kick", state)
            and user_power_level(target, state, version) < sender_level
        ):
            return
        raise AuthError(f"You don't have permission to kick {target}")

    if membership == "ban":
        if membership_of(sender, state) != "join":
            raise AuthError(f"{sender} is not in the room")
        if (
            sender_level >= power_level_for("ban", state)
            and user_power_level(target, state, version) < sender_level
        ):
            return
        raise AuthError(f"You don't have permission to ban {target}")

    if membership == "knock" and version.knocking:
        knock_rules = ("knock", "knock_restricted") if version.knock_restricted else ("knock",)
        if join_rule_of(state) not in knock_rules:
            raise AuthError("This room does not allow knocking")
        if sender != target:
            raise AuthError("You cannot knock for another user")
        current = membership_of(sender, state)
        if current == "ban":
            raise AuthError("You are banned from the room")
        if current == "invite":
            raise AuthError("You are already invited to the room")
        if current == "join":
            raise AuthError("You are already in the room")
        return

    if membership == "knock":
        raise AuthError(f"Room version {version.identifier} does not support knocking")
    raise AuthError(f"Unknown membership {membership!r}")


def _check_join(
    event: JsonDict,
    state: StateMap,
    create: JsonDict,
    version: RoomVersion,
    target: str,
    content: JsonDict,
) -> None:
    """
    Rule "if membership is join".

    @raise AuthError: If the join is not allowed.
    """
    sender = event["sender"]
    # 1. The creator's own join right after the create event.
    if version.implicit_room_creator:
        first_creator = create.get("sender")
    else:
        first_creator = event_content(create).get("creator")
    if target == first_creator and _only_previous_event_is_create(event, state, create):
        return
    if sender != target:
        raise AuthError("You cannot make another user join")
    current = membership_of(target, state)
    if current == "ban":
        raise AuthError("You are banned from the room")
    rule = join_rule_of(state)
    if rule == "invite" or rule == "knock" and version.knocking:
        if current in ("invite", "join"):
            return
        raise AuthError("You are not invited to this room")
    if (rule == "restricted" and version.restricted_joins
            or rule == "knock_restricted" and version.knock_restricted):
        if current in ("invite", "join"):
            return
        via = content.get("join_authorised_via_users_server")
        if not isinstance(via, str):
            raise AuthError("You are not invited to this room and no member authorised the join")
        if membership_of(via, state) != "join":
            raise AuthError(f"The authorising user {via} is not in the room")
        if user_power_level(via, state, version) < power_level_for("invite", state):
            raise AuthError(f"The authorising user {via} may not invite users")
        return
    if rule == "public":
        return
    raise AuthError("You are not allowed to join this room")


def _only_previous_event_is_create(event: JsonDict, state: StateMap, create: JsonDict) -> bool:
    """
    @return: Whether the event's only previous event is the create event:
        from C{prev_events} when the event has them, else whether the state
        holds nothing but the create event.
    """
    prev = event.get("prev_events")
    if prev is not None:
        prev_ids = referenced_event_ids(event, "prev_events")
        return (
            isinstance(prev, list)
            and len(prev) == 1
            and prev_ids == [create.get("event_id")]
            and create.get("event_id") is not None
        )
    return list(state.keys()) == [CREATE]
