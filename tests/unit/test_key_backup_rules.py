"""
The key backup's pure rules: which uploaded key replaces a stored one, how
version ids and uploads are parsed. No daemon, no database.
"""
from __future__ import annotations

import pytest

from ruma_tx.http.errors import status_code
from ruma_tx.matrix.errors import MatrixError
from ruma_tx.matrix.key_backup import (
    RoomKey,
    parse_key,
    parse_rooms,
    parse_version,
    replaces,
)

ROOM = "!room:test.local"


def key(verified: bool, first: int, forwarded: int) -> RoomKey:
    return RoomKey(first, forwarded, verified, {"ciphertext": f"{verified}{first}{forwarded}"})


def test_verified_key_replaces_unverified_whatever_its_indexes():
    """A verified key wins over an unverified one even with worse indexes."""
    assert replaces(key(False, 0, 0), key(True, 9, 9))


def test_unverified_key_never_replaces_verified():
    """An unverified key loses to a verified one even with better indexes."""
    assert not replaces(key(True, 9, 9), key(False, 0, 0))


@pytest.mark.parametrize("verified", [False, True])
def test_lower_first_message_index_wins_when_verification_equal(verified):
    """With equal verification the lower first_message_index wins, forwarded_count aside."""
    assert replaces(key(verified, 5, 0), key(verified, 4, 7))
    assert not replaces(key(verified, 4, 7), key(verified, 5, 0))


@pytest.mark.parametrize("verified", [False, True])
def test_lower_forwarded_count_breaks_ties(verified):
    """With equal verification and first_message_index the lower forwarded_count wins."""
    assert replaces(key(verified, 3, 2), key(verified, 3, 1))
    assert not replaces(key(verified, 3, 1), key(verified, 3, 2))


def test_equal_key_keeps_the_stored_one():
    """A key equal in all three ranks does not replace the stored one."""
    assert not replaces(key(True, 1, 1), key(True, 1, 1))


def test_rule_ignores_session_data():
    """The stored key's data need not be loaded to compare (it may be None)."""
    assert replaces(RoomKey(2, 0, False), key(False, 1, 0))


@pytest.mark.parametrize("text, number", [("1", 1), ("42", 42), ("0", None), ("01", None),
                                          ("abc", None), ("", None), ("-1", None), ("١", None),
                                          ("1" * 19, None)])
def test_parse_version(text, number):
    """Only the decimal numbers the server hands out name a version."""
    assert parse_version(text) == number


def test_parse_key_accepts_the_spec_example():
    """A complete KeyBackupData object parses into its fields."""
    parsed = parse_key({"first_message_index": 1, "forwarded_count": 0, "is_verified": True,
                        "session_data": {"ephemeral": "e", "ciphertext": "c", "mac": "m"}}, "s")
    assert parsed == RoomKey(1, 0, True, {"ephemeral": "e", "ciphertext": "c", "mac": "m"})


@pytest.mark.parametrize("change", [
    {"first_message_index": "1"}, {"first_message_index": True}, {"forwarded_count": 1.5},
    {"forwarded_count": 2**60}, {"is_verified": 1}, {"session_data": "opaque"},
    {"session_data": None},
])
def test_parse_key_refuses_wrong_types(change):
    """A missing or mistyped field is 400 M_BAD_JSON."""
    value = {"first_message_index": 1, "forwarded_count": 0, "is_verified": False,
             "session_data": {}, **change}
    with pytest.raises(MatrixError) as caught:
        parse_key(value, "s")
    assert (status_code(caught.value), caught.value.errcode) == (400, "M_BAD_JSON")


def test_parse_rooms_flattens_and_checks_ids():
    """Uploads flatten to (room, session) pairs; bad room or session ids are M_INVALID_PARAM."""
    data = {"first_message_index": 0, "forwarded_count": 0, "is_verified": False,
            "session_data": {}}
    assert parse_rooms({ROOM: {"sessions": {"a": data, "b": data}}}) == {
        (ROOM, "a"): RoomKey(0, 0, False, {}), (ROOM, "b"): RoomKey(0, 0, False, {}),
    }
    for rooms in ({"not-a-room": {"sessions": {}}}, {ROOM: {"sessions": {"bad\x00": data}}}):
        with pytest.raises(MatrixError) as caught:
            parse_rooms(rooms)
        assert caught.value.errcode == "M_INVALID_PARAM"
    with pytest.raises(MatrixError) as caught:
        parse_rooms({ROOM: {"no_sessions": {}}})
    assert caught.value.errcode == "M_BAD_JSON"
