"""Tests for L{ruma_tx.matrix.synapse_events} (Synapse's stored events as ruma_tx stores them)."""
import json

import pytest
from signedjson.key import generate_signing_key, get_verify_key
from signedjson.sign import verify_signed_json

from ruma_tx.matrix.events import build_pdu, event_id_for, redacted_pdu
from ruma_tx.matrix.redaction import redact
from ruma_tx.matrix.synapse_events import (
    canonical_pdu_json,
    imported_pdu,
    internal_flags,
    is_soft_failed,
    redaction_applies,
)


def synapse_json(pdu: dict, unsigned: dict) -> str:
    """An event as Synapse keeps it in C{event_json.json}: not canonical, with its bookkeeping."""
    return json.dumps({**pdu, "unsigned": unsigned}, indent=1)


def signed_event() -> tuple[str, dict, object]:
    key = generate_signing_key("a1")
    event_id, pdu = build_pdu(
        room_version="10", room_id="!room:example.org", sender="@alice:example.org", event_type="m.room.message",
        content={"msgtype": "m.text", "body": "hello"}, state_key=None, prev_events=["$prev"],
        auth_events=["$create"], depth=7, origin_server_ts=1_700_000_000_000, redacts=None,
        server_name="example.org", signing_key=key)
    return event_id, pdu, get_verify_key(key)


def test_imported_pdu_keeps_the_event_verifiable():
    """Synapse's age_ts goes; the event id and the signatures stay valid."""
    event_id, pdu, verify_key = signed_event()
    imported = imported_pdu(synapse_json(pdu, {"age_ts": 1_700_000_000_001}))
    assert "unsigned" not in imported
    assert imported == pdu
    assert event_id_for(imported, "10") == event_id
    # Events are signed in their redacted form (with their content hash).
    verify_signed_json(redact(json.loads(canonical_pdu_json(imported)), "10"), "example.org", verify_key)


def test_imported_pdu_keeps_the_stripped_state_of_an_invite():
    """An invite's stripped state is served to the invitee: it stays in unsigned."""
    stripped = [{"type": "m.room.name", "state_key": "", "content": {"name": "Lobby"}, "sender": "@a:b"}]
    imported = imported_pdu(synapse_json({"type": "m.room.member", "content": {"membership": "invite"}},
                                         {"age_ts": 5, "invite_room_state": stripped, "replaces_state": "$x"}))
    assert imported["unsigned"] == {"invite_room_state": stripped}


def test_imported_pdu_refuses_what_is_not_an_event():
    with pytest.raises(ValueError):
        imported_pdu("[1, 2]")


def test_canonical_json_keeps_old_rooms_numbers():
    """Events of old room versions may hold floats and integers past 64 bits: kept as they are."""
    assert canonical_pdu_json({"b": 10 ** 20, "a": 1.5}) == '{"a":1.5,"b":100000000000000000000}'


def test_internal_flags_and_soft_failure():
    assert internal_flags(None) == {} and internal_flags("") == {} and internal_flags("[]") == {}
    assert is_soft_failed(internal_flags('{"soft_failed": true, "txn_id": "t1"}'))
    assert not is_soft_failed(internal_flags('{"txn_id": "t1"}'))


def test_redaction_applies_as_synapse_decides():
    """
    A redaction accepted outright applies; one accepted provisionally (its
    sender lacked the power) only to an event of its own server's users.
    """
    assert redaction_applies({}, "@mod:a.org", "@spammer:b.org")
    recheck = {"recheck_redaction": True}
    assert redaction_applies(recheck, "@admin:b.org", "@spammer:b.org")
    assert not redaction_applies(recheck, "@mod:a.org", "@spammer:b.org")
    assert redaction_applies(recheck, "@a:host:8448", "@b:host:8448")
    assert not redaction_applies(recheck, "@a:host:8448", "@b:host:8449")


def test_redacted_pdu_says_what_redacted_it():
    event_id, pdu, _ = signed_event()
    redaction = {"type": "m.room.redaction", "sender": "@alice:example.org", "origin_server_ts": 5,
                 "content": {"reason": "oops"}, "redacts": event_id, "event_id": "$redaction"}
    pruned = redacted_pdu(pdu, redaction, "!room:example.org", "10")
    assert pruned["content"] == {} and pruned["signatures"] == pdu["signatures"]
    because = pruned["unsigned"]["redacted_because"]
    assert because["event_id"] == "$redaction" and because["redacts"] == event_id
    assert because["room_id"] == "!room:example.org"
