"""
Tests for L{ruma_tx.matrix.identifiers}.
"""

import string

import pytest

from ruma_tx.matrix.identifiers import (
    InvalidIdentifier,
    is_valid_event_id,
    is_valid_room_id,
    is_valid_server_name,
    is_valid_user_id,
    parse_room_alias,
    parse_room_id,
    parse_user_id,
    random_string,
    user_id_for,
    validate_localpart,
    validate_user_id,
)


@pytest.mark.parametrize(
    "localpart", ["alice", "a", "bob.smith", "x_y=z-1/2+3", "0123456789"]
)
def test_valid_localparts(localpart):
    """Localparts made only of a-z, 0-9 and . _ = - / + are accepted."""
    validate_localpart(localpart)


@pytest.mark.parametrize(
    "localpart",
    ["", "Alice", "ALICE", "al ice", " alice", "alicé", "ålice", "日本", "al@ice",
     "@alice", "al:ice", "alice\x00", "alice\n", "al*ce", "al#ice"],
)
def test_invalid_localparts(localpart):
    """Uppercase, whitespace, empty, non-ASCII, '@', ':' and other punctuation are refused."""
    with pytest.raises(InvalidIdentifier):
        validate_localpart(localpart)


def test_invalid_localpart_message_is_human():
    """The refusal explains which characters are allowed."""
    with pytest.raises(InvalidIdentifier, match="a-z, 0-9"):
        validate_localpart("Alice")


def test_invalid_identifier_is_value_error():
    """InvalidIdentifier can be caught as a ValueError."""
    assert issubclass(InvalidIdentifier, ValueError)


@pytest.mark.parametrize(
    "name",
    ["matrix.org", "matrix.org:8888", "localhost", "1.2.3.4", "1.2.3.4:1234",
     "[1234:5678::abcd]", "[1234:5678::abcd]:5678", "[::1]", "[::ffff:1.2.3.4]:8448",
     "MATRIX.ORG", "my-server.example", "a" * 255, "x.y:0", "x.y:65535"],
)
def test_valid_server_names(name):
    """DNS names, IPv4 and bracketed IPv6 literals, with or without a port, are valid."""
    assert is_valid_server_name(name)


@pytest.mark.parametrize(
    "name",
    ["", "matrix.org:", "matrix.org:port", "matrix.org:123456", "matrix.org:65536",
     "matrix.org:80:80", "matr_ix.org", "matrix org", "matrix.org/", "mätrix.org",
     "matrix..org", ".matrix.org", "matrix.org.", "256.1.1.1", "1.2.3.999",
     "1234:5678::abcd", "[1234:5678::abcd", "[1234:5678::abcd]5678", "[::g]",
     "[1:2:3:4:5:6:7:8:9]", "[]", "[fe80::1%eth0]", "a" * 256, "@matrix.org"],
)
def test_invalid_server_names(name):
    """Bad characters, bad ports, bad IP literals and empty labels are invalid."""
    assert not is_valid_server_name(name)


def test_server_name_not_a_string():
    """Non-strings are not server names."""
    assert not is_valid_server_name(None)


def test_parse_user_id():
    """A user ID splits into localpart and server name at the first ':'."""
    assert parse_user_id("@alice:example.org:8448") == ("alice", "example.org:8448")
    assert parse_user_id("@bob:[::1]:8448") == ("bob", "[::1]:8448")


@pytest.mark.parametrize("user_id", ["@Alice:example.org", "@al ice:example.org",
                                     "@日本:example.org", "@:example.org", "@a@b:example.org"])
def test_parse_user_id_accepts_historical(user_id):
    """Historical localparts (uppercase, spaces, non-ASCII, empty) are accepted when parsing."""
    localpart, server = parse_user_id(user_id)
    assert server == "example.org"
    assert "@" + localpart + ":" + server == user_id


@pytest.mark.parametrize(
    "user_id",
    ["", "alice:example.org", "#alice:example.org", "@alice", "@alice:",
     "@alice:bad_server", "@ali\x00ce:example.org", "@ali\ud800ce:example.org", None, 42],
)
def test_parse_user_id_errors(user_id):
    """Missing sigil or ':', a bad server name, NUL or surrogates raise InvalidIdentifier."""
    with pytest.raises(InvalidIdentifier):
        parse_user_id(user_id)


def test_user_id_length_limit():
    """A user ID of 255 bytes is valid; one of 256 bytes is not."""
    server = "example.org"
    longest = "a" * (255 - len("@:") - len(server))
    assert len(user_id_for(longest, server)) == 255
    validate_user_id(f"@{longest}:{server}")
    with pytest.raises(InvalidIdentifier, match="255"):
        user_id_for(longest + "a", server)
    with pytest.raises(InvalidIdentifier):
        validate_user_id(f"@{longest}a:{server}")


def test_user_id_length_counts_bytes():
    """The 255 limit counts UTF-8 bytes, not characters."""
    server = "example.org"
    localpart = "é" * 125  # 250 bytes, 125 characters
    with pytest.raises(InvalidIdentifier):
        parse_user_id(f"@{localpart}:{server}")


def test_validate_user_id_strict():
    """validate_user_id refuses historical localparts that parse_user_id accepts."""
    parse_user_id("@Alice:example.org")
    with pytest.raises(InvalidIdentifier):
        validate_user_id("@Alice:example.org")
    validate_user_id("@alice:example.org")


def test_is_valid_user_id():
    """is_valid_user_id is the boolean form of parse_user_id."""
    assert is_valid_user_id("@alice:example.org")
    assert not is_valid_user_id("@alice")
    assert not is_valid_user_id(None)


def test_user_id_for():
    """user_id_for joins a localpart and a server name."""
    assert user_id_for("alice", "example.org") == "@alice:example.org"


@pytest.mark.parametrize("localpart, server", [("al:ice", "example.org"),
                                               ("alice", "bad server")])
def test_user_id_for_errors(localpart, server):
    """user_id_for refuses a ':' in the localpart and a bad server name."""
    with pytest.raises(InvalidIdentifier):
        user_id_for(localpart, server)


def test_parse_room_id_with_domain():
    """A room ID with a server part splits into opaque part and server name."""
    assert parse_room_id("!abcDEF123:example.org") == ("abcDEF123", "example.org")
    assert parse_room_id("!a:[::1]:8448") == ("a", "[::1]:8448")


def test_parse_room_id_without_domain():
    """A room version 12 room ID (a hash, no server part) has server None."""
    opaque = "31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM"
    assert parse_room_id("!" + opaque) == (opaque, None)


@pytest.mark.parametrize(
    "room_id",
    ["", "abc:example.org", "#abc:example.org", "!", "!:example.org", "!abc:",
     "!abc:bad_server", "!has space", "!a\x00b:example.org", "!" + "a" * 255, None],
)
def test_parse_room_id_errors(room_id):
    """Missing sigil, empty opaque part, bad server, bad hash or overlong room IDs are refused."""
    with pytest.raises(InvalidIdentifier):
        parse_room_id(room_id)
    assert not is_valid_room_id(room_id)


def test_parse_room_alias():
    """A room alias splits into localpart and server name, allowing any non-':' characters."""
    assert parse_room_alias("#Room Name é:example.org:8448") == ("Room Name é", "example.org:8448")


@pytest.mark.parametrize(
    "alias",
    ["", "room:example.org", "!room:example.org", "#room", "#:example.org", "#room:",
     "#room:bad_server", "#ro\x00om:example.org", "#" + "a" * 250 + ":example.org", None],
)
def test_parse_room_alias_errors(alias):
    """Missing sigil or ':', an empty localpart, a bad server, NUL or overlong aliases are refused."""
    with pytest.raises(InvalidIdentifier):
        parse_room_alias(alias)


@pytest.mark.parametrize(
    "event_id",
    ["$abc:example.org", "$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk",
     "$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg", "$" + "a" * 254],
)
def test_valid_event_ids(event_id):
    """Domain-ful (v1/v2) and hash (v3, v4+) event IDs are valid."""
    assert is_valid_event_id(event_id)


@pytest.mark.parametrize(
    "event_id",
    ["", "$", "abc:example.org", "!abc:example.org", "$:example.org", "$abc:",
     "$abc:bad_server", "$has space", "$" + "a" * 255, None, 42],
)
def test_invalid_event_ids(event_id):
    """Missing sigil, empty opaque part, bad server or overlong event IDs are invalid."""
    assert not is_valid_event_id(event_id)


def test_random_string():
    """random_string gives the requested number of ASCII letters, differing between calls."""
    values = {random_string(24) for _ in range(20)}
    assert len(values) == 20
    for value in values:
        assert len(value) == 24
        assert set(value) <= set(string.ascii_letters)
    assert random_string(0) == ""
