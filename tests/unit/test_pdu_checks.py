"""
Tests for L{ruma_tx.matrix.pdu_checks}: what a server does with a PDU it
receives over federation, before the auth rules (format, signatures,
content hash).
"""

import copy
import json

import pytest
from canonicaljson import encode_canonical_json
from nacl.signing import VerifyKey
from signedjson.key import generate_signing_key, get_verify_key

from ruma_tx.matrix.events import build_pdu, event_id_for, hash_and_sign
from ruma_tx.matrix.federation_auth import OldVerifyKey, ServerKeys
from ruma_tx.matrix.pdu_checks import (
    FORMAT_CHECK,
    ROOM_VERSION_CHECK,
    SIGNATURE_CHECK,
    SIZE_CHECK,
    InvalidPdu,
    check_pdu_format,
    check_received_pdu,
    checked_content,
    parse_pdu,
    prepare_received_pdu,
    servers_to_verify,
    verify_pdu_signatures,
    verify_prepared_pdu,
)
from ruma_tx.matrix.redaction import redact

REMOTE = "remote.example"
AUTHORISER = "resident.example"
REMOTE_KEY = generate_signing_key("r1")
AUTHORISER_KEY = generate_signing_key("a1")
TS = 1_700_000_000_000
ROOM_V12 = "!" + "A" * 43
ROOM_V11 = "!room:remote.example"
EVENT = "$" + "B" * 43


def _keys(signing_key, valid_until_ts=TS + 1) -> ServerKeys:
    return ServerKeys({f"ed25519:{signing_key.version}": VerifyKey(bytes(get_verify_key(signing_key)))},
                      {}, valid_until_ts)


KEYS = {REMOTE: _keys(REMOTE_KEY), AUTHORISER: _keys(AUTHORISER_KEY)}


def _message(version="12", **overrides):
    _event_id, pdu = build_pdu(
        room_version=version, room_id=ROOM_V12 if version == "12" else ROOM_V11,
        sender=f"@alice:{REMOTE}", event_type="m.room.message",
        content={"msgtype": "m.text", "body": "hello"}, state_key=None,
        prev_events=[EVENT], auth_events=[EVENT], depth=5, origin_server_ts=TS,
        server_name=REMOTE, signing_key=REMOTE_KEY)
    pdu.update(overrides)
    return pdu


def _restricted_join(*signers):
    pdu = {
        "auth_events": [EVENT], "prev_events": [EVENT], "type": "m.room.member",
        "room_id": ROOM_V12, "sender": f"@bob:{REMOTE}", "state_key": f"@bob:{REMOTE}",
        "depth": 7, "origin_server_ts": TS,
        "content": {"membership": "join", "join_authorised_via_users_server": f"@mod:{AUTHORISER}"},
    }
    for server, key in signers:
        pdu = hash_and_sign(pdu, "12", server_name=server, signing_key=key)
    return pdu


@pytest.mark.parametrize("version", ["10", "11", "12"])
def test_event_signed_by_its_sender_server_passes(version):
    """A well-formed event signed by its sender's server is kept as is, under its reference-hash ID."""
    pdu = _message(version)
    received = check_received_pdu(copy.deepcopy(pdu), version, KEYS)
    assert received.pdu == pdu
    assert not received.redacted
    assert received.event_id == event_id_for(pdu, version)


def test_edited_content_is_redacted_not_dropped():
    """A body changed in transit breaks the content hash only: the event is kept, redacted, same ID."""
    pdu = _message()
    pdu["content"] = {"msgtype": "m.text", "body": "tampered"}
    received = check_received_pdu(pdu, "12", KEYS)
    assert received.redacted
    assert received.pdu == redact(pdu, "12")
    assert received.pdu["content"] == {}
    assert received.event_id == event_id_for(_message(), "12")


def test_redacted_copy_passes_signatures_and_is_kept_redacted():
    """A redacted copy still verifies (signatures cover the redacted form) and is stored redacted."""
    pdu = redact(_message(), "12")
    verify_pdu_signatures(pdu, "12", KEYS)
    assert checked_content(pdu, "12") == (redact(pdu, "12"), True)


def test_padded_content_hash_matches():
    """The hash is compared decoded, so a padded base64 encoding of the right hash matches."""
    pdu = _message()
    pdu = {**pdu, "hashes": {"sha256": pdu["hashes"]["sha256"] + "="}}
    assert checked_content(pdu, "12") == (pdu, False)


def test_signature_by_another_key_is_refused():
    """A signature under the sender server's key ID but made by another key does not verify."""
    forged = generate_signing_key("r1")
    _eid, pdu = build_pdu(
        room_version="12", room_id=ROOM_V12, sender=f"@alice:{REMOTE}", event_type="m.room.message",
        content={"body": "x"}, state_key=None, prev_events=[EVENT], auth_events=[EVENT], depth=5,
        origin_server_ts=TS, server_name=REMOTE, signing_key=forged)
    with pytest.raises(InvalidPdu, match="invalid signature by remote.example's ed25519:r1") as e:
        verify_pdu_signatures(pdu, "12", KEYS)
    assert e.value.check == SIGNATURE_CHECK


def test_key_not_valid_at_origin_server_ts_is_refused():
    """A key whose validity ended before the event was sent cannot vouch for it."""
    keys = {REMOTE: _keys(REMOTE_KEY, valid_until_ts=TS - 1)}
    with pytest.raises(InvalidPdu, match="no signature of remote.example by a key valid at"):
        verify_pdu_signatures(_message(), "12", keys)


def test_retired_key_valid_at_origin_server_ts_passes():
    """An old key still verifies events sent before it expired."""
    vk = VerifyKey(bytes(get_verify_key(REMOTE_KEY)))
    keys = {REMOTE: ServerKeys({}, {"ed25519:r1": OldVerifyKey(vk, TS + 10)}, TS - 100)}
    verify_pdu_signatures(_message(), "12", keys)


def test_missing_sender_server_signature_is_refused():
    """An event signed only by some other server is not the sender's server's event."""
    pdu = _message()
    pdu["signatures"] = {AUTHORISER: hash_and_sign(
        {k: v for k, v in pdu.items() if k not in ("signatures", "hashes")}, "12",
        server_name=AUTHORISER, signing_key=AUTHORISER_KEY)["signatures"][AUTHORISER]}
    with pytest.raises(InvalidPdu, match="no signature of remote.example") as e:
        verify_pdu_signatures(pdu, "12", KEYS)
    assert e.value.check == SIGNATURE_CHECK


def test_restricted_join_needs_the_authorising_server_signature():
    """A restricted join is checked for the sender's and the authorising user's servers."""
    assert servers_to_verify(_restricted_join(), "12") == {REMOTE, AUTHORISER}
    verify_pdu_signatures(_restricted_join((REMOTE, REMOTE_KEY), (AUTHORISER, AUTHORISER_KEY)), "12", KEYS)
    with pytest.raises(InvalidPdu, match="no signature of resident.example"):
        verify_pdu_signatures(_restricted_join((REMOTE, REMOTE_KEY)), "12", KEYS)


def test_plain_message_needs_only_the_sender_server():
    assert servers_to_verify(_message(), "12") == {REMOTE}


@pytest.mark.parametrize("mutate, check, match", [
    (lambda p: p.pop("sender"), FORMAT_CHECK, "'sender' must be a string"),
    (lambda p: p.pop("room_id"), FORMAT_CHECK, "'room_id' must be a string"),
    (lambda p: p.pop("hashes"), FORMAT_CHECK, "'hashes' must be an object"),
    (lambda p: p.pop("prev_events"), FORMAT_CHECK, "'prev_events' must be a list"),
    (lambda p: p.update(depth="5"), FORMAT_CHECK, "'depth' must be an integer"),
    (lambda p: p.update(origin_server_ts=True), FORMAT_CHECK, "'origin_server_ts' must be an integer"),
    (lambda p: p.update(content=[]), FORMAT_CHECK, "'content' must be an object"),
    (lambda p: p.update(sender="alice"), FORMAT_CHECK, "'sender'"),
    (lambda p: p.update(auth_events=["not-an-id"]), FORMAT_CHECK, "'auth_events' must be a list of event IDs"),
    (lambda p: p.update(prev_events=[EVENT] * 21), FORMAT_CHECK, "more than 20"),
    (lambda p: p.update(auth_events=[EVENT] * 11), FORMAT_CHECK, "more than 10"),
    (lambda p: p["content"].update(score=1.5), FORMAT_CHECK, "floats"),
    (lambda p: p.update(depth=2**53), FORMAT_CHECK, "out of range"),
    (lambda p: p.update(type="t" * 256), SIZE_CHECK, "'type' is longer than 255"),
    (lambda p: p.update(state_key="k" * 256), SIZE_CHECK, "'state_key' is longer than 255"),
    (lambda p: p["content"].update(body="x" * 65536), SIZE_CHECK, "more than 65536"),
    (lambda p: p.update(auth_events=["$" + ROOM_V12[1:]]), FORMAT_CHECK, "create event"),
])
def test_malformed_pdu_is_dropped(mutate, check, match):
    """Each format violation drops the PDU with the failed check named."""
    pdu = _message()
    mutate(pdu)
    with pytest.raises(InvalidPdu, match=match) as e:
        check_received_pdu(pdu, "12", KEYS)
    assert e.value.check == check


def test_v12_create_event_has_no_room_id():
    """The v12 create event is accepted without room_id, which other events need."""
    event_id, create = build_pdu(
        room_version="12", room_id=None, sender=f"@alice:{REMOTE}", event_type="m.room.create",
        content={"room_version": "12"}, state_key="", prev_events=[], auth_events=[], depth=1,
        origin_server_ts=TS, server_name=REMOTE, signing_key=REMOTE_KEY)
    assert check_received_pdu(create, "12", KEYS).event_id == event_id


@pytest.mark.parametrize("version", ["0", "13", "1.1", None])
def test_unsupported_room_version_is_refused(version):
    for check in (lambda: check_pdu_format(_message(), version),
                  lambda: verify_pdu_signatures(_message(), version, KEYS),
                  lambda: checked_content(_message(), version)):
        with pytest.raises(InvalidPdu, match="is not supported") as e:
            check()
        assert e.value.check == ROOM_VERSION_CHECK


#: Every kind of character canonical JSON treats apart: controls (escaped), quote and backslash,
#: DEL, Latin-1, the line separators JSON allows raw, BMP and astral characters.
_AWKWARD = "".join(map(chr, range(0x20))) + '"\\/\x7f\xe9\u2028\u2029\u4e2d\ufffd\U0001f600'


@pytest.mark.parametrize("version", ["5", "10", "12"])
def test_stored_json_and_event_id_are_canonical_whatever_the_characters(version):
    """The PDU is stored as canonicaljson writes it and keeps its ID, awkward characters in values and
    keys (sorted by code point) included: the same bytes its sender hashed and signed."""
    pdu = _message(version)
    pdu["content"] = {"body": _AWKWARD, _AWKWARD: [_AWKWARD, -(2**53 - 1), 2**53 - 1, True, None],
                      "\U0001f600": {}, "\ufffd": 1, "é": 2, "z": 3}
    pdu = hash_and_sign(pdu, version, server_name=REMOTE, signing_key=REMOTE_KEY)
    received = check_received_pdu(pdu, version, KEYS)
    assert not received.redacted
    assert received.pdu_json == encode_canonical_json(pdu).decode("utf-8")
    assert received.event_id == event_id_for(pdu, version)


def test_prepared_pdu_is_dropped_only_once_its_signatures_fail():
    """Steps 1 and 3 first, the signatures after: a forged PDU prepares, and is dropped by its check."""
    forged = hash_and_sign(_message(), "12", server_name=REMOTE, signing_key=generate_signing_key("r1"))
    prepared = prepare_received_pdu(forged, "12")
    assert prepared.received.event_id == event_id_for(forged, "12")
    with pytest.raises(InvalidPdu) as e:
        verify_prepared_pdu(prepared, "12", KEYS)
    assert e.value.check == SIGNATURE_CHECK
    assert verify_prepared_pdu(prepare_received_pdu(_message(), "12"), "12", KEYS).pdu == _message()


def test_pdu_as_json_text_is_parsed_and_text_that_is_not_json_dropped():
    """A PDU received as JSON text is checked like its object; broken text fails the format check."""
    pdu = _message()
    assert parse_pdu(json.dumps(pdu).encode()) == pdu
    assert parse_pdu(pdu) is pdu
    with pytest.raises(InvalidPdu) as e:
        parse_pdu(b'{"type": ')
    assert e.value.check == FORMAT_CHECK
