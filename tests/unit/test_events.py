"""
Tests for L{ruma_tx.matrix.events} and L{ruma_tx.matrix.signing}.
"""

import copy
import re
import stat

import pytest
from signedjson.key import decode_signing_key_base64, get_verify_key
from signedjson.sign import SignatureVerifyException, sign_json, verify_signed_json

from ruma_tx.matrix.events import (
    build_pdu,
    client_event,
    content_hash,
    event_id_for,
    hash_and_sign,
    reference_hash,
    room_id_for_create_event,
)
from ruma_tx.matrix.redaction import redact
from ruma_tx.matrix.room_versions import V10, V11, V12
from ruma_tx.matrix.signing import key_id, verify_key_base64
from ruma_tx.runtime.config import ConfigError
from ruma_tx.runtime.secrets import load_or_create_signing_key

ALL_VERSIONS = [V10, V11, V12]
UPDATED_VERSIONS = [V11, V12]

# appendices.md "Cryptographic Test Vectors".
SPEC_KEY = decode_signing_key_base64(
    "ed25519", "1", "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")

# A real room version 5 create event (signed by jki.re's Synapse), with its
# event ID as computed by Synapse and gomatrixserverlib's
# TestEventIDForRoomVersionV4. v5 redacts like v10 (v9 rules), and event IDs
# are URL-safe reference hashes since v4.
REAL_CREATE_EVENT = {
    "auth_events": [], "prev_events": [], "type": "m.room.create",
    "room_id": "!uXDCzlYgCTHtiWCkEx:jki.re", "sender": "@erikj:jki.re",
    "content": {
        "room_version": "5",
        "predecessor": {
            "room_id": "!gdRMqOrTFdOCYHNwOo:half-shot.uk",
            "event_id": "$LP7ROBc4b+cMc1UE9haIz8q5AK2AIW4eJ90FfKLvyZI",
        },
        "creator": "@erikj:jki.re",
    },
    "depth": 1, "prev_state": [], "state_key": "", "origin": "jki.re",
    "origin_server_ts": 1560284621137,
    "hashes": {"sha256": "IX6zuNiJpJPNf70BLleL3HSCpjKeq9Uhu7uUpyDjBmc"},
    "signatures": {"jki.re": {"ed25519:auto": "O4IyFfF2PPtGp5uaDm8t57dZbdh8vc8Q64LgCwvzYRVItAMI0uisfiAFaxkVT7MRpzh6N2QNN5NMRXZKmgPYDA"}},
    "unsigned": {"age": 1321650},
}
REAL_CREATE_EVENT_ID = "$RrGxF28UrHLmoASHndYb9Jb_1SFww2ptmtur9INS438"

_URLSAFE_HASH_ID = re.compile(r"[$!][A-Za-z0-9_\-]{43}")


def _reversed(value):
    """Rebuild a JSON value with every object's keys inserted in reverse order."""
    if isinstance(value, dict):
        return {k: _reversed(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed(v) for v in value]
    return value


def _build(version, event_type="m.room.message", content=None, state_key=None,
           room_id="!room:example.org", redacts=None, key=SPEC_KEY):
    """Build a signed event from example.org with fixed fields."""
    return build_pdu(
        room_version=version, room_id=room_id, sender="@alice:example.org",
        event_type=event_type,
        content={"body": "hello", "msgtype": "m.text"} if content is None else content,
        state_key=state_key, prev_events=["$prev"], auth_events=["$auth1", "$auth2"],
        depth=5, origin_server_ts=1_700_000_000_000, redacts=redacts,
        server_name="example.org", signing_key=key)


def _event(version, event_type, content, **extra):
    """A hand-built, unsigned event with every top-level key some version keeps."""
    event = {
        "type": event_type, "content": content, "room_id": "!r:example.org",
        "sender": "@alice:example.org", "depth": 3, "prev_events": ["$p"],
        "auth_events": ["$a"], "origin_server_ts": 1000,
        "hashes": {"sha256": "abc"}, "signatures": {"example.org": {"ed25519:1": "sig"}},
    }
    event.update(extra)
    return event


# --- Signing JSON and the spec's test vectors ---------------------------------

@pytest.mark.parametrize("obj, signature", [
    ({}, "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"),
    ({"one": 1, "two": "Two"}, "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"),
])
def test_sign_json_matches_spec_vectors(obj, signature):
    """signedjson's sign_json with the spec's test key reproduces the appendix's JSON signing vectors."""
    signed = sign_json(dict(obj), "domain", SPEC_KEY)
    assert signed["signatures"] == {"domain": {"ed25519:1": signature}}


def test_build_pdu_matches_spec_event_signing_vector():
    """Building the appendix's minimal event in a v10 room yields exactly its content hash and signature."""
    _, pdu = build_pdu(
        room_version=V10, room_id="!x:domain", sender="@a:domain", event_type="X",
        content={}, state_key=None, prev_events=[], auth_events=[], depth=3,
        origin_server_ts=1000000, server_name="domain", signing_key=SPEC_KEY)
    assert pdu == {
        "auth_events": [], "content": {}, "depth": 3,
        "hashes": {"sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},
        "origin": "domain", "origin_server_ts": 1000000, "prev_events": [],
        "room_id": "!x:domain", "sender": "@a:domain",
        "signatures": {"domain": {"ed25519:1": "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"}},
        "type": "X",
    }


def test_hash_and_sign_matches_spec_redactable_event_vector():
    """The appendix's message event gets its content hash over the body and its signature over the redacted copy."""
    event = {
        "content": {"body": "Here is the message content"}, "event_id": "$0:domain",
        "origin": "domain", "origin_server_ts": 1000000, "type": "m.room.message",
        "room_id": "!r:domain", "sender": "@u:domain", "signatures": {},
        "unsigned": {"age_ts": 1000000},
    }
    before = copy.deepcopy(event)
    signed = hash_and_sign(event, V10, server_name="domain", signing_key=SPEC_KEY)
    assert event == before
    assert signed["hashes"] == {"sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"}
    assert signed["signatures"] == {"domain": {"ed25519:1": "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"}}
    assert signed["content"] == event["content"]
    assert signed["unsigned"] == event["unsigned"]


def test_real_event_content_hash_and_event_id():
    """A real federated event's content hash and event ID are reproduced with the v10 redaction rules."""
    assert content_hash(REAL_CREATE_EVENT) == REAL_CREATE_EVENT["hashes"]["sha256"]
    assert event_id_for(REAL_CREATE_EVENT, V10) == REAL_CREATE_EVENT_ID
    assert reference_hash(REAL_CREATE_EVENT, "10") == REAL_CREATE_EVENT_ID[1:]


def test_event_id_depends_on_redaction_rules():
    """The same event has another ID under v11 rules, which keep the whole create content and drop origin."""
    assert event_id_for(REAL_CREATE_EVENT, V11) != REAL_CREATE_EVENT_ID
    assert event_id_for(REAL_CREATE_EVENT, V11) == event_id_for(REAL_CREATE_EVENT, V12)


# --- Canonical JSON and content hashes ----------------------------------------

def test_key_order_does_not_change_hashes():
    """Hashes and event IDs use canonical JSON, so the insertion order of keys is irrelevant."""
    _, pdu = _build(V12, content={"body": "b", "msgtype": "m.text", "z": {"y": 1, "x": [{"b": 2, "a": 1}]}})
    shuffled = _reversed(pdu)
    assert list(shuffled) != list(pdu)
    assert content_hash(shuffled) == content_hash(pdu)
    assert event_id_for(shuffled, V12) == event_id_for(pdu, V12)


def test_content_hash_ignores_unsigned_signatures_and_hashes():
    """The content hash does not change when unsigned, signatures or hashes change."""
    _, pdu = _build(V11)
    changed = dict(pdu, unsigned={"age": 5}, signatures={"other.org": {"ed25519:x": "y"}},
                   hashes={"sha256": "nonsense"})
    assert content_hash(changed) == content_hash(pdu) == pdu["hashes"]["sha256"]


def test_content_hash_is_stable_and_standard_base64():
    """The content hash is deterministic unpadded standard base64 of a SHA-256."""
    _, pdu = _build(V12)
    value = content_hash(pdu)
    assert value == content_hash(copy.deepcopy(pdu))
    assert re.fullmatch(r"[A-Za-z0-9+/]{43}", value)


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_tampered_content_breaks_content_hash(version):
    """Changing a message body makes the content hash stop matching hashes.sha256, though the event ID is unchanged."""
    event_id, pdu = _build(version)
    tampered = copy.deepcopy(pdu)
    tampered["content"]["body"] = "evil"
    assert content_hash(tampered) != pdu["hashes"]["sha256"]
    # The body is redacted before the reference hash, so only the hash field ties it in.
    assert event_id_for(tampered, version) == event_id


# --- Signatures -----------------------------------------------------------------

@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_signature_verifies_over_redacted_event(version, tmp_path):
    """The signature verifies with the public key on the redacted event, and fails once a protected field changes."""
    key = load_or_create_signing_key(tmp_path / "signing.key")
    _, pdu = _build(version, key=key)
    verify_key = get_verify_key(key)
    assert list(pdu["signatures"]) == ["example.org"]
    assert list(pdu["signatures"]["example.org"]) == [key_id(key)]
    verify_signed_json(redact(pdu, version), "example.org", verify_key)

    with pytest.raises(SignatureVerifyException):
        # Signed over the redacted copy, not over the message body.
        verify_signed_json(pdu, "example.org", verify_key)
    tampered = redact(pdu, version)
    tampered["depth"] = 6
    with pytest.raises(SignatureVerifyException):
        verify_signed_json(tampered, "example.org", verify_key)


# --- Redaction ------------------------------------------------------------------

@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_redact_member_keeps_membership(version):
    """A member event keeps membership and join_authorised_via_users_server, and loses displayname."""
    content = {"membership": "join", "displayname": "Alice", "avatar_url": "mxc://a/b",
               "join_authorised_via_users_server": "@mod:example.org"}
    redacted = redact(_event(version, "m.room.member", content, state_key="@alice:example.org"), version)
    assert redacted["content"] == {"membership": "join",
                                   "join_authorised_via_users_server": "@mod:example.org"}
    assert redacted["state_key"] == "@alice:example.org"


def test_redact_member_third_party_invite_v10_dropped():
    """In v10 a member event's third_party_invite is removed entirely."""
    content = {"membership": "invite",
               "third_party_invite": {"display_name": "bob", "signed": {"mxid": "@b:x", "token": "t"}}}
    assert redact(_event(V10, "m.room.member", content), V10)["content"] == {"membership": "invite"}


@pytest.mark.parametrize("version", UPDATED_VERSIONS)
def test_redact_member_third_party_invite_keeps_signed(version):
    """From v11 a member event's third_party_invite survives holding only its signed key."""
    signed = {"mxid": "@b:x", "token": "t", "signatures": {"x": {"ed25519:0": "s"}}}
    content = {"membership": "invite",
               "third_party_invite": {"display_name": "bob", "signed": signed}}
    assert redact(_event(version, "m.room.member", content), version)["content"] == {
        "membership": "invite", "third_party_invite": {"signed": signed}}


def test_redact_create_v10_keeps_only_creator():
    """In v10 a create event keeps only content.creator."""
    content = {"creator": "@alice:example.org", "room_version": "10", "m.federate": False}
    assert redact(_event(V10, "m.room.create", content, state_key=""), V10)["content"] == {
        "creator": "@alice:example.org"}


@pytest.mark.parametrize("version", UPDATED_VERSIONS)
def test_redact_create_keeps_all_content(version):
    """From v11 a create event keeps its entire content."""
    content = {"room_version": version.identifier, "m.federate": False, "type": "m.space",
               "additional_creators": ["@bob:example.org"], "custom": {"x": 1}}
    assert redact(_event(version, "m.room.create", content, state_key=""), version)["content"] == content


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_redact_power_levels(version):
    """Power levels keep their auth keys; invite is kept only from v11; other keys go."""
    content = {"ban": 50, "events": {"m.room.name": 50}, "events_default": 0, "kick": 50,
               "redact": 50, "state_default": 50, "users": {"@alice:example.org": 100},
               "users_default": 0, "invite": 0, "notifications": {"room": 50}, "extra": 1}
    redacted = redact(_event(version, "m.room.power_levels", content, state_key=""), version)
    expected = {k: v for k, v in content.items() if k not in ("notifications", "extra", "invite")}
    if version.updated_redaction_rules:
        expected["invite"] = 0
    assert redacted["content"] == expected


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_redact_join_rules_keeps_allow(version):
    """Join rules keep join_rule and allow."""
    allow = [{"type": "m.room_membership", "room_id": "!space:example.org"}]
    content = {"join_rule": "restricted", "allow": allow, "other": True}
    assert redact(_event(version, "m.room.join_rules", content, state_key=""), version)["content"] == {
        "join_rule": "restricted", "allow": allow}


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_redact_history_visibility(version):
    """History visibility keeps history_visibility."""
    content = {"history_visibility": "joined", "other": 1}
    assert redact(_event(version, "m.room.history_visibility", content, state_key=""), version)[
        "content"] == {"history_visibility": "joined"}


def test_redact_redaction_v10_drops_redacts():
    """In v10 a redaction event loses its top-level redacts and all content."""
    event = _event(V10, "m.room.redaction", {"reason": "spam", "redacts": "$x"}, redacts="$x")
    redacted = redact(event, V10)
    assert "redacts" not in redacted
    assert redacted["content"] == {}


@pytest.mark.parametrize("version", UPDATED_VERSIONS)
def test_redact_redaction_keeps_content_redacts(version):
    """From v11 a redaction event keeps content.redacts but not its reason."""
    event = _event(version, "m.room.redaction", {"reason": "spam", "redacts": "$x"})
    assert redact(event, version)["content"] == {"redacts": "$x"}


@pytest.mark.parametrize("version", ALL_VERSIONS)
@pytest.mark.parametrize("event_type", ["m.room.message", "m.room.name", "m.room.topic",
                                         "com.example.custom", "m.room.encrypted"])
def test_redact_other_types_drop_all_content(version, event_type):
    """Event types without a rule lose all of their content."""
    content = {"body": "x", "name": "n", "topic": "t", "ciphertext": "c"}
    assert redact(_event(version, event_type, content), version)["content"] == {}


def test_redact_top_level_keys_v10():
    """In v10 origin, membership and prev_state are kept; unsigned and unknown keys are dropped."""
    event = _event(V10, "m.room.message", {}, origin="example.org", membership="join",
                   prev_state=[], unsigned={"age": 1}, event_id="$e", state_key="s",
                   redacts="$r", custom="x")
    assert set(redact(event, V10)) == {
        "type", "content", "room_id", "sender", "depth", "prev_events", "auth_events",
        "origin_server_ts", "hashes", "signatures", "origin", "membership", "prev_state",
        "event_id", "state_key"}


@pytest.mark.parametrize("version", UPDATED_VERSIONS)
def test_redact_top_level_keys_v11(version):
    """From v11 origin, membership and prev_state are dropped too, along with unsigned."""
    event = _event(version, "m.room.message", {}, origin="example.org", membership="join",
                   prev_state=[], unsigned={"age": 1}, event_id="$e", state_key="s", custom="x")
    assert set(redact(event, version)) == {
        "type", "content", "room_id", "sender", "depth", "prev_events", "auth_events",
        "origin_server_ts", "hashes", "signatures", "event_id", "state_key"}


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_redact_does_not_mutate_or_share(version):
    """Redaction leaves its input untouched and returns a copy independent of it."""
    event = _event(version, "m.room.power_levels", {"users": {"@a:b": 100}, "x": 1},
                   unsigned={"age": 1}, origin="example.org")
    before = copy.deepcopy(event)
    redacted = redact(event, version)
    assert event == before
    redacted["content"]["users"]["@c:d"] = 1
    redacted["signatures"]["other"] = {}
    assert event == before


# --- Building events --------------------------------------------------------------

def test_build_pdu_v10_format():
    """A v10 event has origin and a top-level redacts, no event_id and no unsigned."""
    event_id, pdu = _build(V10, event_type="m.room.redaction", content={"reason": "r"},
                           redacts="$target")
    assert pdu["origin"] == "example.org"
    assert pdu["redacts"] == "$target"
    assert pdu["content"] == {"reason": "r"}
    assert "event_id" not in pdu and "unsigned" not in pdu and "state_key" not in pdu
    assert event_id == event_id_for(pdu, V10)
    assert _URLSAFE_HASH_ID.fullmatch(event_id)


@pytest.mark.parametrize("version", UPDATED_VERSIONS)
def test_build_pdu_v11_format(version):
    """From v11 redacts moves into content and origin is gone."""
    content = {"reason": "r"}
    event_id, pdu = _build(version, event_type="m.room.redaction", content=content,
                           redacts="$target")
    assert "origin" not in pdu and "redacts" not in pdu
    assert pdu["content"] == {"reason": "r", "redacts": "$target"}
    assert content == {"reason": "r"}
    assert set(pdu) == {"auth_events", "prev_events", "type", "room_id", "sender", "content",
                        "depth", "origin_server_ts", "hashes", "signatures"}
    assert pdu["auth_events"] == ["$auth1", "$auth2"] and pdu["prev_events"] == ["$prev"]
    assert event_id == event_id_for(pdu, version)


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_build_pdu_state_event(version):
    """A state event carries its state_key, even an empty one."""
    _, pdu = _build(version, event_type="m.room.topic", content={"topic": "t"}, state_key="")
    assert pdu["state_key"] == ""


def test_v12_create_event_defines_room_id():
    """A v12 create event has no room_id and the room ID is its event ID with '!' for '$'."""
    event_id, pdu = _build(V12, event_type="m.room.create", content={"room_version": "12"},
                           state_key="", room_id=None)
    assert "room_id" not in pdu
    room_id = room_id_for_create_event(event_id)
    assert room_id == "!" + event_id[1:]
    assert _URLSAFE_HASH_ID.fullmatch(room_id)
    assert event_id == event_id_for(pdu, V12)
    # Later events of the room carry that room ID.
    _, member = _build(V12, event_type="m.room.member", content={"membership": "join"},
                       state_key="@alice:example.org", room_id=room_id)
    assert member["room_id"] == room_id


def test_v12_create_event_rejects_room_id():
    """A v12 create event cannot be given a room_id, since the room ID derives from it."""
    with pytest.raises(ValueError):
        _build(V12, event_type="m.room.create", content={}, state_key="", room_id="!r:example.org")


@pytest.mark.parametrize("version, event_type", [
    (V10, "m.room.create"), (V11, "m.room.create"), (V12, "m.room.message")])
def test_room_id_required_otherwise(version, event_type):
    """Every event other than a v12 create event needs a room_id."""
    with pytest.raises(ValueError):
        _build(version, event_type=event_type, content={}, state_key="", room_id=None)


def test_room_id_for_create_event_rejects_non_event_ids():
    """Only an event ID can become a room ID."""
    with pytest.raises(ValueError):
        room_id_for_create_event("!abc")


# --- Client format -------------------------------------------------------------

def test_client_event_shape():
    """A client event has exactly content, event_id, origin_server_ts, room_id, sender, type (and unsigned if given)."""
    event_id, pdu = _build(V10)
    event = client_event(pdu, event_id, "!room:example.org")
    assert event == {"content": {"body": "hello", "msgtype": "m.text"}, "event_id": event_id,
                     "origin_server_ts": 1_700_000_000_000, "room_id": "!room:example.org",
                     "sender": "@alice:example.org", "type": "m.room.message"}
    with_unsigned = client_event(pdu, event_id, "!room:example.org", unsigned={"age": 3})
    assert with_unsigned["unsigned"] == {"age": 3}
    assert "unsigned" not in client_event(pdu, event_id, "!room:example.org", unsigned={})


def test_client_event_without_room_id_and_state_key():
    """Sync's format leaves out room_id; state events keep their state_key."""
    event_id, pdu = _build(V12, event_type="m.room.name", content={"name": "n"}, state_key="")
    event = client_event(pdu, event_id, "!room:example.org", include_room_id=False)
    assert "room_id" not in event
    assert event["state_key"] == ""
    for key in ("auth_events", "prev_events", "hashes", "signatures", "depth", "origin"):
        assert key not in event


def test_client_event_for_v12_create_event_has_room_id():
    """A v12 create event is served with the room ID derived from it."""
    event_id, pdu = _build(V12, event_type="m.room.create", content={}, state_key="", room_id=None)
    room_id = room_id_for_create_event(event_id)
    assert client_event(pdu, event_id, room_id)["room_id"] == room_id


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_client_event_redaction_has_redacts_in_both_places(version):
    """A redaction is served with redacts at the top level and in content, whatever the room version."""
    event_id, pdu = _build(version, event_type="m.room.redaction", content={"reason": "spam"},
                           redacts="$target")
    before = copy.deepcopy(pdu)
    event = client_event(pdu, event_id, "!room:example.org")
    assert event["redacts"] == "$target"
    assert event["content"] == {"reason": "spam", "redacts": "$target"}
    assert pdu == before


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_client_event_of_redacted_event(version):
    """A redacted message is served with empty content and the caller's redacted_because."""
    event_id, pdu = _build(version)
    because = {"type": "m.room.redaction", "event_id": "$r"}
    event = client_event(redact(pdu, version), event_id, "!room:example.org",
                         unsigned={"redacted_because": because})
    assert event["content"] == {}
    assert event["unsigned"] == {"redacted_because": because}
    assert set(event) == {"content", "event_id", "origin_server_ts", "room_id", "sender",
                          "type", "unsigned"}


# --- The signing key file ---------------------------------------------------------

def test_load_or_create_signing_key(tmp_path):
    """The key file is created with mode 0600 in signedjson's format and reloads as the same key."""
    path = tmp_path / "keys" / "signing.key"
    key = load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert re.fullmatch(r"a_[A-Za-z0-9]{4}", key.version)
    assert key_id(key) == "ed25519:" + key.version
    line = path.read_text()
    assert re.fullmatch(r"ed25519 a_[A-Za-z0-9]{4} [A-Za-z0-9+/]{43}\n", line)
    assert line.split()[1] == key.version
    assert [p.name for p in path.parent.iterdir()] == ["signing.key"]

    again = load_or_create_signing_key(path)
    assert again.version == key.version
    assert again.encode() == key.encode()
    assert verify_key_base64(again) == verify_key_base64(key)


def test_load_signing_key_rejects_empty_file(tmp_path):
    """An existing key file without a key is an error naming the file, not silently replaced."""
    path = tmp_path / "signing.key"
    path.write_text("")
    with pytest.raises(ConfigError, match="signing.key"):
        load_or_create_signing_key(path)
    assert path.read_text() == ""
