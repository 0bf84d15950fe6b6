"""
Tests for room versions 1 to 9 in the pure core: the flags of each
version, event IDs, the shape of C{prev_events}/C{auth_events}, the
redaction algorithm of each version and the checks of a received PDU.
"""
import copy
import hashlib
import re

import pytest
from canonicaljson import encode_canonical_json
from nacl.signing import VerifyKey
from signedjson.key import generate_signing_key, get_verify_key
from unpaddedbase64 import encode_base64

from ruma_tx.matrix.events import build_pdu, event_id_for, hash_and_sign, reference_hash
from ruma_tx.matrix.federation_auth import ServerKeys
from ruma_tx.matrix.pdu_checks import (
    FORMAT_CHECK,
    SIGNATURE_CHECK,
    InvalidPdu,
    check_pdu_format,
    check_received_pdu,
    servers_to_verify,
)
from ruma_tx.matrix.redaction import redact, redacted_view
from ruma_tx.matrix.room_versions import (
    DEFAULT_ROOM_VERSION,
    ROOM_VERSIONS,
    V1,
    V2,
    V3,
    V4,
    V12,
    referenced_event_ids,
)

SERVER = "remote.example"
KEY = generate_signing_key("k1")
TS = 1_700_000_000_000
ROOM = "!room:remote.example"
OLD_ID = "$prev:remote.example"
HASH_ID = "$" + "B" * 43
LEGACY = [ROOM_VERSIONS[str(n)] for n in range(1, 10)]


def keys(valid_until_ts=TS + 1, signing_key=KEY):
    """The keys of SERVER, valid until C{valid_until_ts}."""
    return ServerKeys({f"ed25519:{signing_key.version}": VerifyKey(bytes(get_verify_key(signing_key)))},
                      {}, valid_until_ts)


def message(version, content=None, server=SERVER, signing_key=KEY, **kwargs):
    """A message built and signed by C{server} in a room of C{version}."""
    prev = OLD_ID if version.event_id_in_pdu else HASH_ID
    return build_pdu(
        room_version=version, room_id=ROOM, sender=f"@alice:{server}", event_type="m.room.message",
        content=content or {"msgtype": "m.text", "body": "hi"}, state_key=None,
        prev_events=[prev], auth_events=[prev], depth=5, origin_server_ts=TS,
        server_name=server, signing_key=signing_key, **kwargs)


# --- versions and flags ---------------------------------------------------------


def test_every_stable_version_is_known_and_12_is_the_default():
    """Versions 1 to 12 are supported, in order, and new rooms still default to 12."""
    assert list(ROOM_VERSIONS) == [str(n) for n in range(1, 13)]
    assert DEFAULT_ROOM_VERSION is V12


@pytest.mark.parametrize("flag,first", [
    ("state_res_v2", 2), ("url_safe_event_ids", 4), ("enforce_key_validity", 5),
    ("strict_canonical_json", 6), ("notifications_power_levels", 6), ("knocking", 7),
    ("restricted_joins", 8), ("redaction_keeps_authorising_user", 9), ("knock_restricted", 10),
    ("integer_power_levels", 10), ("updated_redaction_rules", 11), ("implicit_room_creator", 11),
    ("room_id_from_create_event", 12), ("privileged_creators", 12), ("state_res_v2_1", 12),
])
def test_feature_flags_hold_from_the_version_that_introduced_them(flag, first):
    """Each new behaviour is on from its version on and off before."""
    assert [getattr(v, flag) for v in ROOM_VERSIONS.values()] == [n >= first for n in range(1, 13)]


@pytest.mark.parametrize("flag,last", [
    ("event_id_in_pdu", 2), ("event_reference_pairs", 2), ("redaction_auth_rule", 2),
    ("special_case_aliases", 5),
])
def test_legacy_flags_hold_until_the_version_that_dropped_them(flag, last):
    """Each dropped behaviour is on up to its last version and off after."""
    assert [getattr(v, flag) for v in ROOM_VERSIONS.values()] == [n <= last for n in range(1, 13)]


# --- event IDs and references ------------------------------------------------------


@pytest.mark.parametrize("version", [V1, V2])
def test_v1_v2_event_ids_are_chosen_by_the_sender_and_carried(version):
    """A v1/v2 event gets a fresh $opaque:server ID, carried (and signed) in its event_id."""
    event_id, pdu = message(version)
    other_id, _ = message(version)
    assert re.fullmatch(r"\$[A-Za-z]{18}:remote\.example", event_id)
    assert event_id != other_id
    assert pdu["event_id"] == event_id
    assert event_id_for(pdu, version) == event_id
    assert redact(pdu, version)["event_id"] == event_id


@pytest.mark.parametrize("version", [V1, V2])
def test_v1_v2_reference_other_events_with_their_hashes(version):
    """prev_events and auth_events are [id, {sha256}] pairs, with {} for an event whose hash is unknown."""
    _, pdu = message(version, reference_hashes={OLD_ID: "abc"})
    assert pdu["prev_events"] == [[OLD_ID, {"sha256": "abc"}]]
    _, pdu = message(version)
    assert pdu["auth_events"] == [[OLD_ID, {}]]
    assert referenced_event_ids(pdu, "prev_events") == [OLD_ID]


def test_v3_event_id_is_the_reference_hash_in_standard_base64():
    """v3 IDs use the standard alphabet, v4 the URL-safe one, over the same SHA-256."""
    event_id, pdu = message(V3)
    assert "event_id" not in pdu and pdu["prev_events"] == [HASH_ID]
    stripped = {k: v for k, v in redact(pdu, V3).items() if k not in ("signatures", "unsigned")}
    digest = hashlib.sha256(encode_canonical_json(stripped)).digest()
    assert event_id == "$" + encode_base64(digest)
    assert event_id_for(pdu, V4) == "$" + encode_base64(digest, urlsafe=True)


def test_v3_and_v4_ids_differ_where_the_alphabets_do():
    """Some event has + or / in its v3 ID: exactly those become - and _ in v4."""
    for n in range(200):
        _, pdu = message(V3, content={"body": str(n)})
        v3 = reference_hash(pdu, V3)
        if "+" in v3 or "/" in v3:
            assert reference_hash(pdu, V4) == v3.replace("+", "-").replace("/", "_")
            return
    pytest.fail("no hash with + or / in 200 events")


def test_a_v1_event_without_event_id_has_no_id():
    """Deriving the ID of a v1 event that lacks event_id is refused, not guessed."""
    _, pdu = message(V1)
    del pdu["event_id"]
    with pytest.raises(ValueError):
        event_id_for(pdu, V1)


# --- redaction -----------------------------------------------------------------------


def _redacted_content(version, event_type, content, state_key=""):
    event = {"type": event_type, "state_key": state_key, "content": content}
    redacted = redact(event, version)
    assert redacted_view(event, version) == redacted  # the form signatures are checked on, alike
    return redacted["content"]


@pytest.mark.parametrize("version", ROOM_VERSIONS.values(), ids=lambda v: "v" + v.identifier)
def test_aliases_survive_redaction_only_before_v6(version):
    """m.room.aliases keeps its aliases in v1-5; v6 removed that special case."""
    kept = _redacted_content(version, "m.room.aliases", {"aliases": ["#a:x"], "other": 1}, "x")
    assert kept == ({"aliases": ["#a:x"]} if int(version.identifier) <= 5 else {})


@pytest.mark.parametrize("version", ROOM_VERSIONS.values(), ids=lambda v: "v" + v.identifier)
def test_join_rules_allow_survives_redaction_from_v8(version):
    """Redacted join rules keep allow from v8 on (restricted rooms)."""
    allow = [{"type": "m.room_membership", "room_id": "!s:x"}]
    kept = _redacted_content(version, "m.room.join_rules", {"join_rule": "restricted", "allow": allow})
    expected = {"join_rule": "restricted"}
    if int(version.identifier) >= 8:
        expected["allow"] = allow
    assert kept == expected


@pytest.mark.parametrize("version", ROOM_VERSIONS.values(), ids=lambda v: "v" + v.identifier)
def test_join_authoriser_survives_redaction_from_v9(version):
    """Redacted joins keep join_authorised_via_users_server from v9 on, not in v8."""
    content = {"membership": "join", "join_authorised_via_users_server": "@mod:x", "displayname": "B"}
    kept = _redacted_content(version, "m.room.member", content, "@b:x")
    expected = {"membership": "join"}
    if int(version.identifier) >= 9:
        expected["join_authorised_via_users_server"] = "@mod:x"
    assert kept == expected


@pytest.mark.parametrize("version", LEGACY, ids=lambda v: "v" + v.identifier)
def test_legacy_redaction_keeps_the_v1_top_level_keys(version):
    """Up to v10 origin, membership and prev_state survive; unsigned and unknown keys do not."""
    pdu = {"type": "m.room.message", "content": {"body": "x"}, "origin": "x", "membership": "join",
           "prev_state": [], "unsigned": {"age": 1}, "foo": 1, "event_id": "$e:x"}
    assert redact(pdu, version) == {"type": "m.room.message", "content": {}, "origin": "x",
                                    "membership": "join", "prev_state": [], "event_id": "$e:x"}


# --- received PDUs ------------------------------------------------------------------


@pytest.mark.parametrize("version", LEGACY, ids=lambda v: "v" + v.identifier)
def test_an_event_of_each_version_passes_the_receipt_checks(version):
    """A well-formed, signed event of every version 1-9 passes, under the ID its sender built."""
    event_id, pdu = message(version)
    received = check_received_pdu(copy.deepcopy(pdu), version.identifier, {SERVER: keys()})
    assert received.event_id == event_id
    assert not received.redacted


def test_v1_event_ids_must_carry_a_server():
    """A v1 PDU needs an event_id of the form $opaque:server."""
    _, pdu = message(V1)
    for bad in (None, "$nodomain", 5):
        broken = {**pdu, "event_id": bad}
        with pytest.raises(InvalidPdu) as e:
            check_pdu_format(broken, V1)
        assert e.value.check == FORMAT_CHECK


def test_reference_shapes_are_checked_per_version():
    """v1/v2 need [id, hashes] pairs, v3+ plain IDs; the other shape is malformed."""
    _, v1 = message(V1)
    _, v3 = message(V3)
    with pytest.raises(InvalidPdu, match="pairs"):
        check_pdu_format({**v1, "prev_events": [OLD_ID]}, V1)
    with pytest.raises(InvalidPdu, match="list of event IDs"):
        check_pdu_format({**v3, "prev_events": [[HASH_ID, {}]]}, V3)


def test_v1_event_needs_the_signature_of_its_event_id_server():
    """A v1 event whose ID names another server needs that server's signature too."""
    other_key = generate_signing_key("o1")
    _, pdu = message(V1)
    pdu = {**pdu, "event_id": "$x:origin.example"}
    pdu = hash_and_sign(pdu, V1, server_name=SERVER, signing_key=KEY)
    assert servers_to_verify(pdu, V1) == {SERVER, "origin.example"}
    with pytest.raises(InvalidPdu) as e:
        check_received_pdu(pdu, V1, {SERVER: keys()})
    assert e.value.check == SIGNATURE_CHECK
    pdu = hash_and_sign(pdu, V1, server_name="origin.example", signing_key=other_key)
    assert check_received_pdu(pdu, V1, {SERVER: keys(), "origin.example": keys(signing_key=other_key)})


@pytest.mark.parametrize("version,needs_authoriser", [("7", False), ("8", True)])
def test_join_authoriser_signature_is_needed_from_v8(version, needs_authoriser):
    """Only restricted-room versions ask the authorising user's server to sign a join."""
    pdu = {"type": "m.room.member", "sender": "@b:x.example", "state_key": "@b:x.example",
           "content": {"membership": "join", "join_authorised_via_users_server": "@mod:y.example"}}
    expected = {"x.example", "y.example"} if needs_authoriser else {"x.example"}
    assert servers_to_verify(pdu, version) == expected


@pytest.mark.parametrize("version,accepted", [("5", True), ("6", False)])
def test_floats_are_accepted_until_v6(version, accepted):
    """Before v6 events need not be canonical JSON; from v6 a float drops the event."""
    _, pdu = message(ROOM_VERSIONS[version])
    pdu = {**pdu, "content": {"body": "x", "weight": 1.5}}
    if accepted:
        assert check_pdu_format(pdu, version) is pdu
    else:
        with pytest.raises(InvalidPdu, match="canonical"):
            check_pdu_format(pdu, version)


@pytest.mark.parametrize("version,accepted", [("4", True), ("5", False)])
def test_expired_keys_count_until_v5(version, accepted):
    """From v5 a key whose valid_until_ts is before the event does not verify it."""
    _, pdu = message(ROOM_VERSIONS[version])
    expired = {SERVER: keys(valid_until_ts=TS - 1)}
    if accepted:
        assert check_received_pdu(pdu, version, expired)
    else:
        with pytest.raises(InvalidPdu) as e:
            check_received_pdu(pdu, version, expired)
        assert e.value.check == SIGNATURE_CHECK
