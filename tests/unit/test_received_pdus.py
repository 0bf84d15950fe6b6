"""
L{ruma_tx.services.received_pdus.PduChecker}: the PDUs of a send_join answer
checked in threads, with their signing keys asked of the key ring by server.
"""
from __future__ import annotations

import json

import pytest_twisted
from nacl.signing import VerifyKey
from signedjson.key import generate_signing_key, get_verify_key
from twisted.internet import reactor

from ruma_tx.matrix.events import build_pdu
from ruma_tx.matrix.pdu_checks import SIGNATURE_CHECK, InvalidPdu, ReceivedPdu
from ruma_tx.matrix.room_versions import ROOM_VERSIONS
from ruma_tx.services.received_pdus import CHECK_CHUNK, PduChecker

REMOTE = "remote.example"
KEY = generate_signing_key("r1")
KEY_ID = f"ed25519:{KEY.version}"
ROOM = "!" + "A" * 43
VERSION = ROOM_VERSIONS["12"]
#: Until when the remote's key is valid: events signed later find no key.
VALID_UNTIL = 1_700_000_000_000


class FakeKeyRing:
    """The remote's one key, valid until VALID_UNTIL; every call recorded."""

    def __init__(self):
        self.calls = []

    async def verify_keys(self, server_name, key_ids, at_ms):
        self.calls.append((server_name, tuple(key_ids), at_ms))
        if server_name != REMOTE or KEY_ID not in key_ids or at_ms > VALID_UNTIL:
            return {}
        return {KEY_ID: VerifyKey(bytes(get_verify_key(KEY)))}


def _message(n, ts):
    event_id, pdu = build_pdu(
        room_version=VERSION, room_id=ROOM, sender=f"@alice:{REMOTE}", event_type="m.room.message",
        content={"body": f"m{n}"}, state_key=None, prev_events=["$" + "B" * 43], auth_events=["$" + "B" * 43],
        depth=n + 2, origin_server_ts=ts, server_name=REMOTE, signing_key=KEY)
    return event_id, pdu


@pytest_twisted.ensureDeferred
async def test_many_pdus_are_checked_in_chunks_with_keys_asked_once_per_server():
    """Every PDU gets its outcome at its index, across chunks; the key ring is asked once per chunk
    when the key is valid for all of it."""
    events = [_message(n, VALID_UNTIL - 1000 + n) for n in range(CHECK_CHUNK + 5)]
    keys = FakeKeyRing()
    checker = PduChecker(key_ring=keys, reactor=reactor)
    outcomes = {}
    texts = [json.dumps(pdu).encode() for _, pdu in events]
    await checker.check_many(texts, VERSION, outcomes.__setitem__)
    assert sorted(outcomes) == list(range(len(events)))
    assert all(isinstance(o, ReceivedPdu) and o.event_id == events[i][0] for i, o in outcomes.items())
    assert len(keys.calls) == 2  # two chunks


@pytest_twisted.ensureDeferred
async def test_a_key_expired_for_later_events_still_verifies_the_earlier_ones():
    """A chunk's key lookup at its latest timestamp failing falls back to each PDU's own time: the
    events signed while the key was valid pass, the one signed after is dropped."""
    early, late = _message(1, VALID_UNTIL - 5), _message(2, VALID_UNTIL + 5)
    checker = PduChecker(key_ring=FakeKeyRing(), reactor=reactor)
    outcomes = {}
    await checker.check_many([early[1], late[1]], VERSION, outcomes.__setitem__)
    assert isinstance(outcomes[0], ReceivedPdu) and outcomes[0].event_id == early[0]
    assert isinstance(outcomes[1], InvalidPdu) and outcomes[1].check == SIGNATURE_CHECK


@pytest_twisted.ensureDeferred
async def test_repeated_json_text_is_checked_once_and_bad_text_dropped():
    """distinct() drops repeats of the same JSON text (the auth chain repeating the state), never
    parsed objects; text that is not JSON is dropped by the format check."""
    _, pdu = _message(1, VALID_UNTIL - 5)
    text = json.dumps(pdu).encode()
    checker = PduChecker(key_ring=FakeKeyRing(), reactor=reactor)
    assert await checker.distinct([text, pdu, bytes(text), pdu, b"{"]) == [0, 1, 3, 4]
    outcomes = {}
    await checker.check_many([b"{"], VERSION, outcomes.__setitem__)
    assert isinstance(outcomes[0], InvalidPdu)
