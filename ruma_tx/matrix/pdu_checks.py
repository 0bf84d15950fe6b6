"""
The first checks on a PDU received over federation, as pure functions
(spec: server-server-api.md "Checks performed on receipt of a PDU", steps
1-3, and "Validating hashes and signatures on received events";
client-server-api "Size limits"; rooms/v1..v12 event formats).

  1. L{check_pdu_format}: the event has the format of its room version,
     else it is dropped;
  2. L{verify_pdu_signatures}: the servers of L{servers_to_verify} signed
     its redacted form, else it is dropped;
  3. L{checked_content}: its content hash matches, else it is redacted and
     processed further.

Room versions 1 to 12 are supported; anything else fails with
L{InvalidPdu}. Keys and time are arguments: nothing here fetches keys or
reads a clock.
"""
from __future__ import annotations

import hashlib
from typing import Mapping, NamedTuple

import msgspec
import orjson
from canonicaljson import encode_canonical_json
from unpaddedbase64 import decode_base64, encode_base64

from ruma_tx.matrix.errors import MatrixError
from ruma_tx.matrix.events import check_canonical_values, content_hash, event_id_for
from ruma_tx.matrix.federation_auth import ED25519, ServerKeys, is_json_int, signature_verifies
from ruma_tx.matrix.identifiers import (
    MAX_IDENTIFIER_BYTES,
    InvalidIdentifier,
    is_valid_event_id,
    is_valid_room_id,
    parse_user_id,
)
from ruma_tx.matrix.redaction import redact, redacted_view
from ruma_tx.matrix.room_versions import RoomVersion, as_room_version, create_event_id_of, referenced_event_ids
from ruma_tx.matrix.types import JsonDict

#: "The complete event MUST NOT be larger than 65536 bytes" (canonical JSON).
MAX_PDU_BYTES = 65536
#: pdu_v4 schema: "Must contain less than or equal to 20 events".
MAX_PREV_EVENTS = 20
#: pdu_v4 schema: "Must contain less than or equal to 10 events".
MAX_AUTH_EVENTS = 10

#: Names of the checks, as L{InvalidPdu.check}.
ROOM_VERSION_CHECK = "room_version"
FORMAT_CHECK = "format"
SIZE_CHECK = "size"
SIGNATURE_CHECK = "signatures"


class InvalidPdu(ValueError):
    """
    A received PDU fails a check that drops it.

    @ivar check: which one: L{ROOM_VERSION_CHECK}, L{FORMAT_CHECK},
        L{SIZE_CHECK} or L{SIGNATURE_CHECK}.
    """

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check} check failed: {message}")
        self.check = check
        self.message = message


class ReceivedPdu(NamedTuple):
    """
    A PDU that passed steps 1-3, ready for the auth checks.

    @ivar pdu: the PDU to store: as received, or redacted when its content
        hash did not match.
    @ivar redacted: whether it was redacted for that reason.
    @ivar pdu_json: C{pdu} in canonical JSON, as it is stored.
    """

    event_id: str
    pdu: JsonDict
    redacted: bool
    pdu_json: str


class PreparedPdu(NamedTuple):
    """
    A PDU past steps 1 and 3, its event ID known, whose signatures (step 2)
    are still to be checked with L{verify_prepared_pdu}.

    @ivar received: what L{check_received_pdu} gives if they verify.
    @ivar signed: the PDU as received (its signatures).
    @ivar signed_json: the canonical JSON of its redacted form without
        C{signatures}: what its servers signed, and what (from v3) its
        event ID is the hash of.
    @ivar servers: those whose signatures it needs (L{servers_to_verify}).
    """

    received: ReceivedPdu
    signed: JsonDict
    signed_json: bytes
    servers: frozenset[str]


def _supported(room_version: RoomVersion | str) -> RoomVersion:
    try:
        return as_room_version(room_version)
    except ValueError:
        raise InvalidPdu(ROOM_VERSION_CHECK,
                         f"room version {room_version!r} is not supported (only 1 to 12)") from None


def _check_short_string(pdu: JsonDict, key: str, *, required: bool) -> None:
    """C{key} is a string of at most 255 bytes (absent if not C{required})."""
    value = pdu.get(key)
    if value is None and not required and key not in pdu:
        return
    if not isinstance(value, str):
        raise InvalidPdu(FORMAT_CHECK, f"'{key}' must be a string")
    if len(value.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        raise InvalidPdu(SIZE_CHECK, f"'{key}' is longer than {MAX_IDENTIFIER_BYTES} bytes")


def _is_reference_pair(item: object) -> bool:
    """
    A v1-2 C{[event_id, hashes]} pair. Like Synapse, which cites events it
    does not have with C{{}}, the hashes object may lack C{sha256}.
    """
    return (isinstance(item, list) and len(item) == 2 and is_valid_event_id(item[0])
            and isinstance(item[1], dict))


def _check_event_ids(pdu: JsonDict, key: str, limit: int, version: RoomVersion) -> list[str]:
    value = pdu.get(key)
    if version.event_reference_pairs:
        if not isinstance(value, list) or not all(_is_reference_pair(item) for item in value):
            raise InvalidPdu(FORMAT_CHECK, f"'{key}' must be a list of [event ID, hashes] pairs")
    elif not isinstance(value, list) or not all(is_valid_event_id(item) for item in value):
        raise InvalidPdu(FORMAT_CHECK, f"'{key}' must be a list of event IDs")
    if len(value) > limit:
        raise InvalidPdu(FORMAT_CHECK, f"'{key}' has {len(value)} events, more than {limit}")
    return referenced_event_ids(pdu, key)


def _is_id_defining_create(pdu: JsonDict, version: RoomVersion) -> bool:
    return (version.room_id_from_create_event and pdu.get("type") == "m.room.create"
            and pdu.get("state_key") == "")


def _canonical_json(value: object, version: RoomVersion) -> bytes:
    """
    Canonical JSON of a PDU that passed L{check_pdu_format}, or of part of
    one. From v6 such a PDU holds no floats and only integers of canonical
    JSON's range: orjson with sorted keys then writes the very bytes
    canonicaljson writes (UTF-8, the same escapes; keys sorted by code
    point), several times faster. Before v6 floats may occur, which the two
    write differently.
    """
    if version.strict_canonical_json:
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # a lone surrogate: fails in canonicaljson as it always did
            pass
    return encode_canonical_json(value)


def check_pdu_format(pdu: object, room_version: RoomVersion | str) -> JsonDict:
    """
    Step 1: the event has the format of its room version.

    Required: C{sender} (a user ID), C{room_id} (a room ID; absent from a
    v12 create event, whose C{room_id} the auth rules reject),
    C{origin_server_ts} and C{depth} (integers), C{type} (string),
    C{content} (object), C{hashes.sha256} (string), C{signatures} (server
    name -> key ID -> string), C{prev_events} (at most 20) and
    C{auth_events} (at most 10), lists of event IDs (v1-2: of
    C{[event_id, hashes]} pairs); in v1-2 C{event_id}; optional
    C{state_key} (string), C{unsigned} (object), the top-level C{redacts}
    (string) before v11. From v6 the whole event must be canonical JSON (no
    floats, integers within +-(2**53 - 1)); it must be at most 65536 bytes;
    C{sender}, C{room_id}, C{type}, C{state_key} and C{event_id} (if
    present) at most 255 bytes. In v12, the create event (whose ID the room
    ID is) must not be in C{auth_events}.

    @return: C{pdu}, now known to be a JSON object.
    @raise InvalidPdu: for an unsupported room version or a malformed PDU.
    """
    _check_format(pdu, _supported(room_version))
    return pdu  # type: ignore[return-value]


def _check_format(pdu: object, version: RoomVersion) -> bytes:
    """L{check_pdu_format}, giving the PDU's canonical JSON."""
    if not isinstance(pdu, dict):
        raise InvalidPdu(FORMAT_CHECK, "a PDU must be an object")
    if version.strict_canonical_json:
        try:
            check_canonical_values(pdu)
        except MatrixError as e:
            raise InvalidPdu(FORMAT_CHECK, f"not canonical JSON: {e.message}") from None
    encoded = _canonical_json(pdu, version)
    size = len(encoded)
    if size > MAX_PDU_BYTES:
        raise InvalidPdu(SIZE_CHECK, f"the PDU is {size} bytes, more than {MAX_PDU_BYTES}")

    for key in ("sender", "type"):
        _check_short_string(pdu, key, required=True)
    for key in ("state_key", "event_id"):
        _check_short_string(pdu, key, required=False)
    try:
        parse_user_id(pdu["sender"])
    except InvalidIdentifier as e:
        raise InvalidPdu(FORMAT_CHECK, f"'sender': {e}") from None
    if version.event_id_in_pdu and not (is_valid_event_id(pdu.get("event_id"))
                                        and ":" in pdu["event_id"]):
        raise InvalidPdu(FORMAT_CHECK, "'event_id' must be an event ID $opaque:server")
    room_id = pdu.get("room_id")
    if room_id is not None or not _is_id_defining_create(pdu, version):
        _check_short_string(pdu, "room_id", required=True)
        if not is_valid_room_id(room_id):
            raise InvalidPdu(FORMAT_CHECK, f"'room_id' {room_id!r} is not a room ID")
    for key in ("origin_server_ts", "depth"):
        if not is_json_int(pdu.get(key)):
            raise InvalidPdu(FORMAT_CHECK, f"'{key}' must be an integer")
    for key in ("content", "hashes", "signatures"):
        if not isinstance(pdu.get(key), dict):
            raise InvalidPdu(FORMAT_CHECK, f"'{key}' must be an object")
    if "unsigned" in pdu and not isinstance(pdu["unsigned"], dict):
        raise InvalidPdu(FORMAT_CHECK, "'unsigned' must be an object")
    if not isinstance(pdu["hashes"].get("sha256"), str):
        raise InvalidPdu(FORMAT_CHECK, "'hashes.sha256' must be a string")
    for server, signatures in pdu["signatures"].items():
        if not isinstance(signatures, dict) or not all(isinstance(s, str) for s in signatures.values()):
            raise InvalidPdu(FORMAT_CHECK, f"'signatures.{server}' must map key IDs to strings")
    if not version.updated_redaction_rules and "redacts" in pdu and not isinstance(pdu["redacts"], str):
        raise InvalidPdu(FORMAT_CHECK, "'redacts' must be an event ID")

    _check_event_ids(pdu, "prev_events", MAX_PREV_EVENTS, version)
    auth_events = _check_event_ids(pdu, "auth_events", MAX_AUTH_EVENTS, version)
    # rooms/v12: the create event MUST NOT be in auth_events, its ID being
    # the room ID's ("!" for "$"). Checked here as the brief of this format
    # asks; the auth rules (3.2) would reject it too.
    if version.room_id_from_create_event and isinstance(room_id, str) and ":" not in room_id:
        if create_event_id_of(room_id) in auth_events:
            raise InvalidPdu(FORMAT_CHECK, "a v12 event must not list the create event in 'auth_events'")
    return encoded


def _server_of(user_id: object, what: str) -> str:
    try:
        return parse_user_id(user_id)[1]  # type: ignore[arg-type]
    except InvalidIdentifier as e:
        raise InvalidPdu(FORMAT_CHECK, f"{what}: {e}") from None


def servers_to_verify(pdu: JsonDict, room_version: RoomVersion | str) -> set[str]:
    """
    The servers whose signatures an event needs: the sender's, in v1-2
    the event ID's, and for a join with C{join_authorised_via_users_server}
    (restricted rooms, v8+) that user's server.

    Like Synapse, only joins need the authorising server's signature (auth
    rule 4.2 of v10, 5.2 of v12, reads as if any membership did; the key
    is only meaningful on joins).

    @raise InvalidPdu: for an unsupported room version or a sender or
        authorising user that is not a user ID.
    """
    version = _supported(room_version)
    servers = {_server_of(pdu.get("sender"), "'sender'")}
    event_id = pdu.get("event_id")
    if version.event_id_in_pdu and isinstance(event_id, str) and ":" in event_id:
        servers.add(event_id.split(":", 1)[1])
    content = pdu.get("content")
    if (version.restricted_joins and pdu.get("type") == "m.room.member"
            and isinstance(content, dict)
            and content.get("membership") == "join"
            and "join_authorised_via_users_server" in content):
        servers.add(_server_of(content["join_authorised_via_users_server"],
                               "'content.join_authorised_via_users_server'"))
    return servers


def verify_pdu_signatures(pdu: JsonDict, room_version: RoomVersion | str,
                          keys_by_server: Mapping[str, ServerKeys]) -> None:
    """
    Step 2: each server of L{servers_to_verify} signed the canonical JSON
    of the redacted event (without C{signatures} and C{unsigned}), so this
    passes for a full event and for a redacted copy alike.

    Only C{ed25519} signatures by keys valid at the event's
    C{origin_server_ts} (L{ServerKeys.key_valid_at}) count (before v5, which
    enforces key validity, any key we have counts, as in Synapse); others
    are skipped, as the spec says. Each one that counts must verify, and each
    server needs at least one.

    @param pdu: a PDU that passed L{check_pdu_format}.
    @param keys_by_server: the keys of (at least) those servers.
    @raise InvalidPdu: for an unsupported room version or a missing or
        bad signature.
    """
    version = _supported(room_version)
    _verify_signatures(pdu, version, _signed_json(pdu, version), servers_to_verify(pdu, version), keys_by_server)


def _signed_json(pdu: JsonDict, version: RoomVersion) -> bytes:
    """The canonical JSON of the redacted event without C{signatures}."""
    redacted = redacted_view(pdu, version)
    redacted.pop("signatures", None)
    return _canonical_json(redacted, version)


def _verify_signatures(pdu: JsonDict, version: RoomVersion, message: bytes, servers: frozenset[str] | set[str],
                       keys_by_server: Mapping[str, ServerKeys]) -> None:
    signatures = pdu.get("signatures")
    signed_at = pdu.get("origin_server_ts")
    if not isinstance(signatures, dict) or not is_json_int(signed_at):
        raise InvalidPdu(FORMAT_CHECK, "'signatures' and 'origin_server_ts' are needed to verify a PDU")
    valid_at = signed_at if version.enforce_key_validity else 0
    for server in sorted(servers):
        keys = keys_by_server.get(server)
        by_server = signatures.get(server)
        if keys is None or not isinstance(by_server, dict):
            raise InvalidPdu(SIGNATURE_CHECK, f"no signature of {server} with a key we know")
        verified = 0
        for signing_key_id, sig in by_server.items():
            if not signing_key_id.startswith(ED25519 + ":"):
                continue
            verify_key = keys.key_valid_at(signing_key_id, valid_at)
            if verify_key is None:
                continue
            if not signature_verifies(verify_key, message, sig):
                raise InvalidPdu(SIGNATURE_CHECK, f"invalid signature by {server}'s {signing_key_id}")
            verified += 1
        if not verified:
            raise InvalidPdu(SIGNATURE_CHECK,
                             f"no signature of {server} by a key valid at {signed_at}")


def _decoded(hash_base64: object) -> bytes | None:
    if not isinstance(hash_base64, str):
        return None
    try:
        return decode_base64(hash_base64)
    except ValueError:  # not base64
        return None


def checked_content(pdu: JsonDict, room_version: RoomVersion | str) -> tuple[JsonDict, bool]:
    """
    Step 3: the content hash. On a mismatch, the spec assumes we were sent
    a redacted copy and asks to keep the redacted event.

    The received C{hashes.sha256} is base64-decoded and compared with the
    computed SHA-256, so padded base64 matches too.

    @param pdu: a PDU that passed L{check_pdu_format}.
    @return: C{(pdu_to_store, redacted)}: C{pdu} itself and C{False} when
        the hash matches, else its redacted copy and C{True}.
    @raise InvalidPdu: for an unsupported room version.
    """
    version = _supported(room_version)
    if _content_hash_matches(pdu, version):
        return pdu, False
    return redact(pdu, version), True


def _content_hash_matches(pdu: JsonDict, version: RoomVersion) -> bool:
    """Whether C{hashes.sha256} is the content hash (L{content_hash}, computed with L{_canonical_json})."""
    hashes = pdu.get("hashes")
    received = _decoded(hashes.get("sha256") if isinstance(hashes, dict) else None)
    if received is None:
        return False
    if not version.strict_canonical_json:
        return received == decode_base64(content_hash(pdu))
    stripped = {k: v for k, v in pdu.items() if k not in ("unsigned", "signatures", "hashes")}
    return received == hashlib.sha256(_canonical_json(stripped, version)).digest()


def received_event_id(pdu: JsonDict, room_version: RoomVersion | str) -> str:
    """
    The event ID of a received PDU: C{$} and its reference hash, the same
    for the full event and its redacted copy (v1-2: its C{event_id}).

    @raise InvalidPdu: for an unsupported room version, or a v1-2 event
        without an C{event_id}.
    """
    try:
        return event_id_for(pdu, _supported(room_version))
    except ValueError as e:
        raise InvalidPdu(FORMAT_CHECK, str(e)) from None


def check_received_pdu(pdu: object, room_version: RoomVersion | str,
                       keys_by_server: Mapping[str, ServerKeys]) -> ReceivedPdu:
    """
    Steps 1-3; what is left (auth rules, soft failure) needs the room's
    events.

    @raise InvalidPdu: when the PDU is to be dropped.
    """
    return verify_prepared_pdu(prepare_received_pdu(pdu, room_version), room_version, keys_by_server)


#: The types of a PDU received as JSON text (the elements of a C{send_join}
#: answer's lists are left unparsed: L{msgspec.Raw}).
JSON_TEXT = (bytes, bytearray, memoryview, msgspec.Raw)


def parse_pdu(pdu: object) -> object:
    """
    A PDU as received: JSON text (see L{JSON_TEXT}) parsed, anything else
    as it is.

    @raise InvalidPdu: the text is not JSON.
    """
    if not isinstance(pdu, JSON_TEXT):
        return pdu
    try:
        return msgspec.json.decode(pdu)
    except msgspec.DecodeError as e:
        raise InvalidPdu(FORMAT_CHECK, f"not JSON: {e}") from None
    except RecursionError:
        raise InvalidPdu(FORMAT_CHECK, "nested too deeply") from None


def prepare_received_pdu(pdu: object, room_version: RoomVersion | str) -> PreparedPdu:
    """
    Steps 1 and 3 and the event ID, for L{verify_prepared_pdu} to finish
    with step 2 once the signing keys are known. The content hash is
    computed before the signatures are checked; the outcome is the spec's
    (a PDU with bad signatures is dropped whatever its hash).

    @raise InvalidPdu: for an unsupported room version or a malformed PDU.
    """
    version = _supported(room_version)
    encoded = _check_format(pdu, version)
    assert isinstance(pdu, dict)
    signed_json = _signed_json(pdu, version)
    if version.event_id_in_pdu:
        event_id = received_event_id(pdu, version)
    else:  # the reference hash (L{ruma_tx.matrix.events.reference_hash}) of the same bytes
        event_id = "$" + encode_base64(hashlib.sha256(signed_json).digest(), urlsafe=version.url_safe_event_ids)
    if _content_hash_matches(pdu, version):
        received = ReceivedPdu(event_id, pdu, False, encoded.decode("utf-8"))
    else:
        redacted = redact(pdu, version)
        received = ReceivedPdu(event_id, redacted, True, _canonical_json(redacted, version).decode("utf-8"))
    return PreparedPdu(received, pdu, signed_json, frozenset(servers_to_verify(pdu, version)))


def verify_prepared_pdu(prepared: PreparedPdu, room_version: RoomVersion | str,
                        keys_by_server: Mapping[str, ServerKeys]) -> ReceivedPdu:
    """
    Step 2 of a L{PreparedPdu} (see L{verify_pdu_signatures}).

    @raise InvalidPdu: a signature is missing or bad.
    """
    _verify_signatures(prepared.signed, _supported(room_version), prepared.signed_json, prepared.servers,
                       keys_by_server)
    return prepared.received
