"""
Redaction (spec: "Redactions", and each room version's redaction
algorithm): what is left of an event once redacted, which event a
redaction names, and who may redact what.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

from ruma_tx.matrix.auth_rules import AuthError, _domain
from ruma_tx.matrix.errors import bad_json, missing_param
from ruma_tx.matrix.power_levels import (
    CREATE,
    event_content,
    power_level_for,
    user_power_level,
)
from ruma_tx.matrix.room_versions import RoomVersion, as_room_version
from ruma_tx.matrix.types import JsonDict, StateMap

# Top-level keys the redaction algorithm keeps, v1 to v10.
_KEPT_KEYS_V1 = frozenset({
    "event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
    "signatures", "depth", "prev_events", "prev_state", "auth_events", "origin",
    "origin_server_ts", "membership",
})


# v11 (and v12): C{origin}, C{membership} and C{prev_state} are no longer kept.
_KEPT_KEYS_V11 = _KEPT_KEYS_V1 - {"origin", "membership", "prev_state"}


_POWER_LEVELS_KEYS_V1 = ("ban", "events", "events_default", "kick", "redact",
                         "state_default", "users", "users_default")


def _kept_content_keys(event_type: object, version: RoomVersion) -> tuple[str, ...]:
    """The content keys the redaction algorithm of C{version} keeps for C{event_type}."""
    updated = version.updated_redaction_rules
    if event_type == "m.room.member":
        return ("membership",) + (
            ("join_authorised_via_users_server",) if version.redaction_keeps_authorising_user else ())
    if event_type == "m.room.create":
        return ("creator",)
    if event_type == "m.room.join_rules":
        return ("join_rule",) + (("allow",) if version.restricted_joins else ())
    if event_type == "m.room.power_levels":
        return _POWER_LEVELS_KEYS_V1 + (("invite",) if updated else ())
    if event_type == "m.room.history_visibility":
        return ("history_visibility",)
    if event_type == "m.room.aliases" and version.special_case_aliases:
        return ("aliases",)
    if event_type == "m.room.redaction" and updated:
        return ("redacts",)
    return ()


def _redacted_content(event_type: object, content: JsonDict,
                      version: RoomVersion, clone: Callable[[Any], Any]) -> JsonDict:
    """
    The part of C{content} the redaction algorithm keeps for C{event_type}.
    """
    updated = version.updated_redaction_rules
    if event_type == "m.room.create" and updated:
        return clone(content)  # type: ignore[no-any-return]
    kept: JsonDict = {k: clone(content[k])
                      for k in _kept_content_keys(event_type, version) if k in content}
    if event_type == "m.room.member" and updated:
        # v11: "allows the signed key of the third_party_invite key". Like
        # Synapse, an object-valued third_party_invite survives (possibly
        # empty) holding only its signed key; this shapes the reference hash,
        # so it must match other implementations exactly.
        third_party_invite = content.get("third_party_invite")
        if isinstance(third_party_invite, dict):
            kept["third_party_invite"] = {}
            if "signed" in third_party_invite:
                kept["third_party_invite"]["signed"] = clone(third_party_invite["signed"])
    return kept


def redact(pdu: JsonDict, room_version: RoomVersion | str) -> JsonDict:
    """
    Apply the redaction algorithm of a room version to an event.

    Top-level keys outside the version's list are dropped: up to v10 the
    list still has C{origin}, C{membership} and C{prev_state}; v11 and v12
    drop them. C{unsigned} is not in either list, so it is dropped too.
    Content keeps only the keys allowed for the event type: member
    C{membership}, create C{creator}, join_rules C{join_rule},
    power_levels without C{invite}, history_visibility, and before v6
    aliases C{aliases}; v8 adds join_rules C{allow}, v9 member
    C{join_authorised_via_users_server}; v11 adds power_levels C{invite},
    the whole create content, redaction C{redacts} and member
    C{third_party_invite.signed}. v12 redacts exactly like v11.

    @param pdu: The event in federation format (not modified).
    @param room_version: A L{RoomVersion} or its identifier.
    @return: A new, independent dict.
    """
    return _redact(pdu, as_room_version(room_version), copy.deepcopy)


def redacted_view(pdu: JsonDict, room_version: RoomVersion | str) -> JsonDict:
    """
    L{redact}'s result sharing its values with C{pdu} (no deep copy): only
    to be encoded (hashed, signature checked), never changed.
    """
    return _redact(pdu, as_room_version(room_version), _shared)


def _shared(value: object) -> object:
    return value


def _redact(pdu: JsonDict, version: RoomVersion, clone: Callable[[Any], Any]) -> JsonDict:
    kept_keys = _KEPT_KEYS_V11 if version.updated_redaction_rules else _KEPT_KEYS_V1
    redacted = {k: clone(v) for k, v in pdu.items()
                if k in kept_keys and k != "content"}
    content = pdu.get("content")
    redacted["content"] = _redacted_content(
        pdu.get("type"), content if isinstance(content, dict) else {}, version, clone)
    return redacted


def redacted_event_id(event: JsonDict, room_version: RoomVersion | str) -> str | None:
    """
    The event an C{m.room.redaction} event redacts.

    @param event: The redaction event.
    @param room_version: The room version.
    @return: C{content.redacts} from room version 11 on, the top-level
        C{redacts} before; L{None} if it is missing or not a string.
    """
    version = as_room_version(room_version)
    if version.updated_redaction_rules:
        redacts = event_content(event).get("redacts")
    else:
        redacts = event.get("redacts")
    return redacts if isinstance(redacts, str) else None


def redacts_in_content(content: JsonDict) -> str:
    """
    The event a redaction sent with C{PUT /send/m.room.redaction} names:
    its content's C{redacts} (spec, since v1.18: for every room version;
    before v11 the server moves it to the top level).

    @raise BadRequest: M_MISSING_PARAM when absent, M_BAD_JSON when not a
        string.
    """
    redacts = content.get("redacts")
    if redacts is None:
        raise missing_param("A redaction needs content.redacts: the event to redact")
    if not isinstance(redacts, str):
        raise bad_json("content.redacts must be an event id")
    return redacts


def check_redaction(
    redaction: JsonDict,
    original: JsonDict,
    state: StateMap,
    room_version: RoomVersion | str,
    *,
    same_sender_only: bool = True,
) -> None:
    """
    Whether a redaction may be applied to the event it redacts (spec "Handling
    redactions"; the auth rules themselves treat C{m.room.redaction} like any
    other event, so call L{check_event_auth} too).

    The spec applies a redaction if the redacter's level is at least the
    I{redact level}, or if the redacter's server is the original sender's.
    That second condition trusts the sending server to have checked its own
    user; for a local client, Synapse requires the redacter to be the
    original sender, which is what C{same_sender_only} (the default) does.
    Like Synapse, the create event can never be redacted.

    @param redaction: The C{m.room.redaction} event.
    @param original: The event it redacts.
    @param state: The room state before the redaction.
    @param room_version: The room version.
    @param same_sender_only: Require the same sender (local clients) rather
        than the same server (events received over federation).
    @raise AuthError: If the redaction may not be applied.
    """
    version = as_room_version(room_version)
    if original.get("type") == CREATE[0]:
        raise AuthError("The create event cannot be redacted")
    sender = redaction.get("sender")
    if user_power_level(sender, state, version) >= power_level_for("redact", state):  # type: ignore[arg-type]
        return
    if same_sender_only:
        if sender == original.get("sender"):
            return
    elif _domain(sender) is not None and _domain(sender) == _domain(original.get("sender")):
        return
    raise AuthError("You don't have permission to redact other users' events")
