"""
The room event format as pure functions: content hashes, redaction, reference
hashes and event IDs, building and signing new PDUs, and the client format.

Spec:
  - appendices.md "Signing JSON" and "Canonical JSON";
  - server-server-api.md "Signing Events": "Adding hashes and signatures to
    outgoing events", "Calculating the reference hash for an event",
    "Calculating the content hash for an event";
  - rooms/v1.md (event IDs chosen by the sender, C{[event_id, hashes]}
    references), v3.md and v4.md (event IDs from reference hashes, in
    standard then URL-safe base64);
  - rooms/v10.md (v9 redactions, v4 event IDs, v6 event format), rooms/v11.md
    (updated redactions, C{redacts} in content, no C{origin}) and rooms/v12.md
    (room ID is the create event's ID with C{!}; the create event has no
    C{room_id});
  - client-server-api/_index.md "Room event format" (C{ClientEvent}) and
    "Redactions".

Events are plain JSON dicts. No function here mutates its arguments. Canonical
JSON comes from C{canonicaljson} and signatures from C{signedjson}.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

import orjson
from canonicaljson import encode_canonical_json
from signedjson.sign import sign_json
from signedjson.types import SigningKey
from unpaddedbase64 import encode_base64

from ruma_tx.matrix.errors import BadRequest
from ruma_tx.matrix.identifiers import random_string
from ruma_tx.matrix.redaction import redact
from ruma_tx.matrix.room_versions import RoomVersion, as_room_version
from ruma_tx.matrix.types import JsonDict

#: Canonical JSON's integer range (spec appendix).
_MAX_INT = 2**53 - 1

#: Length of the random part of a v1-2 event ID (as Synapse's 18).
_EVENT_ID_LENGTH = 18


def _sha256_base64(obj: JsonDict, *, urlsafe: bool) -> str:
    """
    SHA-256 of the canonical JSON of C{obj}, in unpadded base64.
    """
    digest = hashlib.sha256(encode_canonical_json(obj)).digest()
    return encode_base64(digest, urlsafe=urlsafe)


def content_hash(pdu: JsonDict) -> str:
    """
    The content hash of an event: SHA-256 of its canonical JSON without
    C{unsigned}, C{signatures} and C{hashes}, in unpadded standard base64.

    It covers the unredacted event, so any change to a non-essential field
    (e.g. a message body) no longer matches C{hashes.sha256}.

    @param pdu: The event in federation format.
    @return: The value for C{hashes.sha256}.
    """
    stripped = {k: v for k, v in pdu.items()
                if k not in ("unsigned", "signatures", "hashes")}
    return _sha256_base64(stripped, urlsafe=False)


def reference_hash(pdu: JsonDict, room_version: RoomVersion | str) -> str:
    """
    The reference hash of an event: SHA-256 of the canonical JSON of the
    redacted event without C{signatures} and C{unsigned}, in unpadded
    base64: URL-safe from room version 4, standard before (v1-2 cite it in
    C{prev_events}/C{auth_events}, v3 event IDs are made of it).

    @param pdu: The event in federation format, with its C{hashes}.
    @param room_version: A L{RoomVersion} or its identifier.
    """
    version = as_room_version(room_version)
    redacted = redact(pdu, version)
    redacted.pop("signatures", None)
    redacted.pop("unsigned", None)
    return _sha256_base64(redacted, urlsafe=version.url_safe_event_ids)


def event_id_for(pdu: JsonDict, room_version: RoomVersion | str) -> str:
    """
    The event ID of an event: in room versions 1 and 2 its C{event_id}
    field, chosen by its server; from v3 C{$} and its reference hash.

    @param pdu: The event in federation format, with its C{hashes}.
    @param room_version: A L{RoomVersion} or its identifier.
    @raise ValueError: A v1-2 event without a string C{event_id}.
    """
    version = as_room_version(room_version)
    if version.event_id_in_pdu:
        event_id = pdu.get("event_id")
        if not isinstance(event_id, str):
            raise ValueError(f"a v{version.identifier} event carries its event_id")
        return event_id
    return "$" + reference_hash(pdu, version)


def room_id_for_create_event(create_event_id: str) -> str:
    """
    The room ID of a v12+ room: the create event's ID with C{!} for C{$}.

    @param create_event_id: The C{m.room.create} event's ID.
    @raise ValueError: If it is not an event ID.
    """
    if not create_event_id.startswith("$") or len(create_event_id) < 2:
        raise ValueError(f"not an event ID: {create_event_id!r}")
    return "!" + create_event_id[1:]


def hash_and_sign(pdu: JsonDict, room_version: RoomVersion | str, *,
                  server_name: str, signing_key: SigningKey) -> JsonDict:
    """
    Add the content hash and this server's signature to an event.

    Follows "Adding hashes and signatures to outgoing events": set
    C{hashes.sha256} to the content hash, redact, sign the redacted copy with
    C{signedjson}, then copy its C{signatures} into the full event (keeping
    any other servers' signatures already present).

    @param pdu: The event in federation format (not modified).
    @param room_version: A L{RoomVersion} or its identifier.
    @param server_name: The signing entity, e.g. C{"example.org"}.
    @param signing_key: A signedjson C{SigningKey}.
    @return: A new dict: C{pdu} with C{hashes} and C{signatures}.
    """
    signed_pdu = dict(pdu)
    signed_pdu["hashes"] = {"sha256": content_hash(pdu)}
    redacted = redact(signed_pdu, room_version)
    sign_json(redacted, server_name, signing_key)
    signed_pdu["signatures"] = redacted["signatures"]
    return signed_pdu


def build_pdu(*, room_version: RoomVersion | str, room_id: str | None,
              sender: str, event_type: str, content: JsonDict,
              state_key: str | None, prev_events: list[str],
              auth_events: list[str], depth: int, origin_server_ts: int,
              redacts: str | None = None, server_name: str,
              signing_key: SigningKey,
              reference_hashes: Mapping[str, str] | None = None) -> tuple[str, JsonDict]:
    """
    Build, hash and sign a new event in the format of a room version.

    The PDU holds C{auth_events}, C{prev_events}, C{type}, C{room_id} (absent
    for a v12 create event), C{sender}, C{content}, C{depth},
    C{origin_server_ts}, C{state_key} for state events, C{hashes} and
    C{signatures}; in v10 also C{origin} (the server name, as Synapse sets it;
    v11 stopped protecting it) and a top-level C{redacts}, which v11+ puts in
    C{content} instead. From v3 it has no C{event_id} (derived from the
    reference hash); in v1-2 it carries a new C{$random:server_name} one,
    and C{prev_events}/C{auth_events} are C{[event_id, {"sha256": hash}]}
    pairs. It has no C{unsigned}.

    @param room_version: A L{RoomVersion} or its identifier.
    @param room_id: The room, or C{None} for the create event of a room
        version whose room ID derives from it (then use
        L{room_id_for_create_event} on the returned event ID).
    @param content: Event content (copied, not modified).
    @param state_key: The state key for a state event, else C{None}.
    @param redacts: For C{m.room.redaction}, the redacted event's ID.
    @param server_name: This server's name, the signing entity.
    @param signing_key: A signedjson C{SigningKey}.
    @param reference_hashes: v1-2: the L{reference_hash} of the cited
        events, by event ID; an event without one is cited with an empty
        hash object, as Synapse does for events it does not have.
    @return: C{(event_id, pdu)}.
    @raise ValueError: If C{room_id} is C{None} where a room ID is needed, or
        given for a create event that must not have one.
    """
    version = as_room_version(room_version)
    content = dict(content)
    is_id_defining_create = (version.room_id_from_create_event
                             and event_type == "m.room.create"
                             and state_key == "")
    if is_id_defining_create and room_id is not None:
        raise ValueError(f"a v{version.identifier} create event has no room_id")
    if not is_id_defining_create and room_id is None:
        raise ValueError("room_id is required")

    pdu: JsonDict = {
        "auth_events": _references(auth_events, version, reference_hashes),
        "prev_events": _references(prev_events, version, reference_hashes),
        "type": event_type,
        "sender": sender,
        "depth": depth,
        "origin_server_ts": origin_server_ts,
    }
    if version.event_id_in_pdu:
        pdu["event_id"] = f"${random_string(_EVENT_ID_LENGTH)}:{server_name}"
    if room_id is not None:
        pdu["room_id"] = room_id
    if state_key is not None:
        pdu["state_key"] = state_key
    if not version.updated_redaction_rules:
        pdu["origin"] = server_name
    if redacts is not None:
        if version.updated_redaction_rules:
            content["redacts"] = redacts
        else:
            pdu["redacts"] = redacts
    pdu["content"] = content

    signed_pdu = hash_and_sign(pdu, version, server_name=server_name,
                               signing_key=signing_key)
    return event_id_for(signed_pdu, version), signed_pdu


def _references(event_ids: list[str], version: RoomVersion,
                reference_hashes: Mapping[str, str] | None) -> list[Any]:
    """C{prev_events} or C{auth_events} in the shape of the room version."""
    if not version.event_reference_pairs:
        return list(event_ids)
    hashes = reference_hashes or {}
    return [[event_id, {"sha256": hashes[event_id]} if event_id in hashes else {}]
            for event_id in event_ids]


def client_event(pdu: JsonDict, event_id: str, room_id: str, *,
                 unsigned: JsonDict | None = None,
                 include_room_id: bool = True) -> JsonDict:
    """
    An event in the Client-Server API's C{ClientEvent} format.

    Keeps C{content}, C{event_id}, C{origin_server_ts}, C{room_id} (unless
    C{include_room_id} is false: C{ClientEventWithoutRoomID}, as in /sync),
    C{sender}, C{state_key} (state events only), C{type} and C{unsigned} (if
    given and non-empty). Federation fields (C{auth_events}, C{prev_events},
    C{hashes}, C{signatures}, C{depth}, C{origin}, ...) are left out.

    For C{m.room.redaction}, the redacted event ID appears both at the top
    level and in C{content}, whichever one the room version uses: rooms/v11.md
    asks servers to add the top-level copy for older clients and the
    C{content} copy in older room versions for newer clients, as Synapse does.

    To serve a redacted event, pass C{redact(pdu, version)} and
    C{unsigned={"redacted_because": <the redaction's client event>}}.

    @param pdu: The event in federation format (not modified).
    @param event_id: Its event ID.
    @param room_id: Its room ID (needed: a v12 create event has none).
    @param unsigned: The C{unsigned} object to serve (age, prev_content,
        redacted_because, transaction_id, ...), built by the caller.
    @param include_room_id: Whether to include C{room_id}.
    """
    content = pdu.get("content")
    event: JsonDict = {
        "content": dict(content) if isinstance(content, dict) else {},
        "event_id": event_id,
        "origin_server_ts": pdu["origin_server_ts"],
        "sender": pdu["sender"],
        "type": pdu["type"],
    }
    if include_room_id:
        event["room_id"] = room_id
    if "state_key" in pdu:
        event["state_key"] = pdu["state_key"]
    if pdu["type"] == "m.room.redaction":
        redacts = pdu.get("redacts")
        if not isinstance(redacts, str):
            redacts = event["content"].get("redacts")
        if isinstance(redacts, str):
            event["redacts"] = redacts
            event["content"]["redacts"] = redacts
    if unsigned:
        event["unsigned"] = unsigned
    return event


class StoredEvent:
    """
    An event as stored, at its stream position.

    Its PDU is parsed only when read: the columns stored beside it (type,
    state key, sender, membership) answer what most readers ask, and
    C{client_json}, the event as clients see it in /sync (no C{room_id}),
    lets /sync show it without parsing it (decoding PDUs was most of a big
    initial sync's cost).
    """

    __slots__ = ("stream_ordering", "event_id", "room_id", "redacted_by", "client_json",
                 "_pdu", "_pdu_json", "_columns")

    def __init__(self, stream_ordering: int, event_id: str, room_id: str, pdu: JsonDict | None = None,
                 redacted_by: str | None = None, *, pdu_json: str | bytes | None = None,
                 columns: tuple[str, str | None, str, str | None] | None = None,
                 client_json: str | None = None) -> None:
        """
        @param pdu: the PDU, or C{None} with C{pdu_json} (parsed when read).
        @param columns: C{(type, state_key, sender, membership)} as stored,
            when known without the PDU.
        @param client_json: the event in /sync's client format, if stored.
        """
        if pdu is None and pdu_json is None and client_json is None:
            raise ValueError("a stored event needs its PDU or its client JSON")
        self.stream_ordering = stream_ordering
        self.event_id = event_id
        self.room_id = room_id
        self.redacted_by = redacted_by
        self.client_json = client_json
        self._pdu = pdu
        self._pdu_json = pdu_json
        self._columns = columns

    @property
    def pdu(self) -> JsonDict:
        """
        @raise LookupError: the event was read without its PDU (a reader
            that only shows it as stored).
        """
        if self._pdu is None:
            if self._pdu_json is None:
                raise LookupError(f"{self.event_id} was read without its PDU")
            self._pdu = orjson.loads(self._pdu_json)
        return self._pdu

    @property
    def type(self) -> str:
        if self._columns is not None:
            return self._columns[0]
        event_type: str = self.pdu["type"]
        return event_type

    @property
    def state_key(self) -> str | None:
        if self._columns is not None:
            return self._columns[1]
        state_key: str | None = self.pdu.get("state_key")
        return state_key

    @property
    def sender(self) -> str:
        if self._columns is not None:
            return self._columns[2]
        sender: str = self.pdu["sender"]
        return sender

    @property
    def membership(self) -> str | None:
        """The C{membership} of a member event (C{None} for other events)."""
        if self._columns is not None:
            return self._columns[3]
        if self.type != "m.room.member":
            return None
        membership = self.content.get("membership")
        return membership if isinstance(membership, str) else None

    @property
    def content(self) -> JsonDict:
        """
        Its content; from its client JSON when it was read without its PDU
        (the content is the same in both).
        """
        if self._pdu is None and self._pdu_json is None and self.client_json is not None:
            from_client: JsonDict = orjson.loads(self.client_json).get("content", {})
            return from_client
        content: JsonDict = self.pdu.get("content", {})
        return content

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StoredEvent):
            return NotImplemented
        return (self.stream_ordering, self.event_id, self.room_id, self.redacted_by) == (
            other.stream_ordering, other.event_id, other.room_id, other.redacted_by) and (
            self._pdu_json is None and self._pdu is None or other._pdu_json is None and other._pdu is None
            or self.pdu == other.pdu)

    def __hash__(self) -> int:
        return hash((self.stream_ordering, self.event_id))

    def __repr__(self) -> str:
        return f"StoredEvent({self.stream_ordering}, {self.event_id!r}, {self.room_id!r})"


def pdu_with_id(event: StoredEvent) -> JsonDict:
    """The PDU as the auth rules read it: with its event id."""
    return {**event.pdu, "event_id": event.event_id}


def check_canonical_values(value: object, depth: int = 0) -> None:
    """
    Refuse what canonical JSON cannot carry: floats, and integers outside
    +-(2**53 - 1).

    @raise MatrixError: 400 M_BAD_JSON.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not -_MAX_INT <= value <= _MAX_INT:
            raise BadRequest("M_BAD_JSON", "Integer out of range in event content")
    elif isinstance(value, float):
        raise BadRequest("M_BAD_JSON", "Event content may not contain floats")
    elif isinstance(value, dict):
        for item in value.values():
            check_canonical_values(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_canonical_values(item, depth + 1)


def room_event(event: StoredEvent, *, include_room_id: bool = True) -> JsonDict:
    """
    A stored event in client format, with its stored C{unsigned} (e.g. the
    C{redacted_because} of a redacted event). /sync leaves out C{room_id}
    inside a room's section.
    """
    return client_event(event.pdu, event.event_id, event.room_id,
                        include_room_id=include_room_id, unsigned=event.pdu.get("unsigned"))


def redacted_pdu(target: JsonDict, redaction: JsonDict, room_id: str,
                 room_version: RoomVersion | str) -> JsonDict:
    """
    The PDU that replaces a redacted event's: pruned, with
    C{unsigned.redacted_because} the redaction (C{redaction}: its PDU with
    its C{event_id}) as clients see it.
    """
    pruned = redact(target, room_version)
    pruned["unsigned"] = {"redacted_because": client_event(redaction, redaction["event_id"], room_id)}
    return pruned
