"""
The room directory's pure rules: pagination tokens, directory entries, and
which aliases an m.room.canonical_alias event adds (spec: "Room aliases",
"Published room directory").
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Mapping

from ruma_tx.matrix.errors import invalid_param
from ruma_tx.matrix.identifiers import InvalidIdentifier, parse_room_alias
from ruma_tx.matrix.types import JsonDict


def encode_token(forwards: bool, joined: int, room_id: str) -> str:
    """
    An opaque /publicRooms token: the room a page starts after (forwards)
    or ends before (backwards), in directory order.
    """
    raw = json.dumps([1 if forwards else 0, joined, room_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_token(token: str) -> tuple[bool, int, str]:
    """
    @return: C{(forwards, joined, room_id)}.
    @raise MatrixError: 400 M_INVALID_PARAM for anything we did not issue.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        forwards, joined, room_id = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeError, ValueError, TypeError):
        raise invalid_param("Invalid pagination token") from None
    if forwards not in (0, 1) or type(joined) is not int or not isinstance(room_id, str):
        raise invalid_param("Invalid pagination token")
    return bool(forwards), joined, room_id


def _string(content: Mapping[str, Any] | None, key: str) -> str | None:
    value = (content or {}).get(key)
    return value if isinstance(value, str) and value else None


def plain_text_topic(content: Mapping[str, Any] | None) -> str | None:
    """
    The plain text of a topic: the C{text/plain} representation in
    C{m.topic} (a representation without mimetype is plain text), else the
    C{topic} property (as Synapse).
    """
    content = content or {}
    block = content.get("m.topic")
    texts = block.get("m.text") if isinstance(block, dict) else None
    if isinstance(texts, list):
        for text in texts:
            if isinstance(text, dict) and text.get("mimetype", "text/plain") == "text/plain" \
                    and isinstance(text.get("body"), str):
                return text["body"] or None
    return _string(content, "topic")


def directory_entry(room: ListedRoom) -> JsonDict:
    """A C{PublishedRoomsChunk}, with the optional fields the room has."""
    state = room.state
    entry: JsonDict = {
        "room_id": room.room_id,
        "num_joined_members": room.joined,
        "world_readable":
            _string(state.get("m.room.history_visibility"), "history_visibility") == "world_readable",
        "guest_can_join": _string(state.get("m.room.guest_access"), "guest_access") == "can_join",
    }
    optional = {
        "name": _string(state.get("m.room.name"), "name"),
        "topic": plain_text_topic(state.get("m.room.topic")),
        "avatar_url": _string(state.get("m.room.avatar"), "url"),
        "join_rule": _string(state.get("m.room.join_rules"), "join_rule"),
        "room_type": _string(state.get("m.room.create"), "type"),
    }
    alias = _string(state.get("m.room.canonical_alias"), "alias")
    if alias is not None and _is_alias(alias):
        optional["canonical_alias"] = alias
    entry.update({key: value for key, value in optional.items() if value is not None})
    return entry


def _is_alias(value: object) -> bool:
    try:
        parse_room_alias(value)  # type: ignore[arg-type]
    except (InvalidIdentifier, TypeError, AttributeError):
        return False
    return True


@dataclass(frozen=True)
class ListedRoom:
    """
    A published room as the directory sees it.

    @ivar joined: its number of joined members.
    @ivar state: C{type -> content} of its L{DIRECTORY_STATE_TYPES} events.
    """

    room_id: str
    joined: int
    state: Mapping[str, JsonDict]


@dataclass(frozen=True)
class DirectoryPage:
    """
    @ivar total: how many published rooms match the filter, on every page.
    @ivar rooms: the page, in directory order (most joined members first,
        then by room id).
    """

    total: int
    rooms: list[ListedRoom]


def added_aliases(content: JsonDict, previous: JsonDict | None) -> list[str]:
    """
    The aliases a new C{m.room.canonical_alias} event adds over the room's
    current one: those to check (spec: PUT /rooms/{roomId}/state: aliases
    being removed or already in the event are not validated).

    @param previous: the current event's content, if any.
    @raise BadRequest: M_INVALID_PARAM when an added alias is malformed or
        C{alt_aliases} is not a list.
    """
    previous = previous if isinstance(previous, dict) else {}
    added: list[object] = []
    alias = content.get("alias")
    if alias is not None and alias != "" and alias != previous.get("alias"):
        added.append(alias)
    alt_aliases = content.get("alt_aliases", [])
    if not isinstance(alt_aliases, list):
        raise invalid_param("'alt_aliases' must be a list")
    old_alt = previous.get("alt_aliases")
    old_alt = [a for a in old_alt if isinstance(a, str)] if isinstance(old_alt, list) else []
    added += [a for a in alt_aliases if not (isinstance(a, str) and a in old_alt)]
    checked: list[str] = []
    for candidate in added:
        if not isinstance(candidate, str) or not _is_alias(candidate):
            raise invalid_param(f"Invalid room alias: {candidate!r}")
        checked.append(candidate)
    return list(dict.fromkeys(checked))


def checked_public_rooms(answer: Mapping[str, Any]) -> JsonDict:
    """
    Another server's C{/publicRooms} page as our clients may be given it:
    the entries with the fields the spec requires (C{room_id},
    C{num_joined_members}, C{world_readable}, C{guest_can_join}) of the
    right types, and the tokens and estimate when well-formed.
    """
    chunk = answer.get("chunk")
    page: JsonDict = {"chunk": [
        room for room in (chunk if isinstance(chunk, list) else [])
        if isinstance(room, dict) and isinstance(room.get("room_id"), str)
        and type(room.get("num_joined_members")) is int
        and isinstance(room.get("world_readable"), bool) and isinstance(room.get("guest_can_join"), bool)
    ]}
    for token in ("next_batch", "prev_batch"):
        if isinstance(answer.get(token), str):
            page[token] = answer[token]
    if type(answer.get("total_room_count_estimate")) is int:
        page["total_room_count_estimate"] = answer["total_room_count_estimate"]
    return page
