"""
Tests for L{ruma_tx.matrix.access_tokens}.
"""

import base64

import pytest
from pymacaroons import Macaroon
from pymacaroons.macaroon import MACAROON_V1, MACAROON_V2

from ruma_tx.matrix.access_tokens import (
    InvalidToken,
    Restrictions,
    TokenClaims,
    mint_token,
    verify_token,
)

KEY = b"server-secret-key-0123456789abcdef"
OTHER_KEY = b"another-secret-key-0123456789abcd"
NOW = 1_700_000_000_000
HOUR = 3_600_000
ROOM = "!room:example.org"
OTHER_ROOM = "!other:example.org"
SEND_PATH = "/_matrix/client/v3/rooms/!room:example.org/send/m.room.message/1"


def _mint(**kwargs):
    """
    Mint an access token for alice with sensible defaults.
    """
    args = dict(token_id="tok1", user_id="@alice:example.org", device_id="DEV")
    args.update(kwargs)
    return mint_token(KEY, **args)


def _append(token, predicate):
    """
    Append a first-party caveat, as any holder of the token can.
    """
    m = Macaroon.deserialize(token)
    m.add_first_party_caveat(predicate)
    return m.serialize()


def _raw(predicates, key=KEY, identifier="tok1", version=MACAROON_V2):
    """
    Mint a token by hand with exactly these caveats, signed with C{key}.
    """
    m = Macaroon(location="", identifier=identifier, key=key, version=version)
    for predicate in predicates:
        m.add_first_party_caveat(predicate)
    return m.serialize()


def _invalid(token, **kwargs):
    """
    Verify C{token}, expecting L{InvalidToken}, and return the exception.
    """
    kwargs.setdefault("now_ms", NOW)
    with pytest.raises(InvalidToken) as info:
        verify_token(KEY, token, **kwargs)
    return info.value


GOOD = ["user_id = @alice:example.org", "type = access", "gen = 2"]


def test_access_round_trip():
    """
    A minted access token verifies to the claims it was minted with.
    """
    token = _mint(expires_at_ms=NOW + HOUR)
    claims = verify_token(KEY, token, now_ms=NOW)
    assert claims == TokenClaims(
        token_id="tok1",
        user_id="@alice:example.org",
        device_id="DEV",
        guest=False,
        token_type="access",
        expires_at_ms=NOW + HOUR,
        restrictions=Restrictions(),
    )
    assert claims.restrictions.unrestricted


def test_refresh_round_trip():
    """
    A minted refresh token verifies when a refresh token is expected.
    """
    token = _mint(token_type="refresh", token_id="r9")
    claims = verify_token(KEY, token, now_ms=NOW, expected_type="refresh")
    assert (claims.token_type, claims.token_id) == ("refresh", "r9")
    assert claims.expires_at_ms is None


def test_guest_round_trip():
    """
    A guest token without a device verifies as a guest with no device.
    """
    token = _mint(guest=True, device_id=None, user_id="@123:example.org")
    claims = verify_token(KEY, token, now_ms=NOW)
    assert claims.guest is True
    assert claims.device_id is None
    assert claims.user_id == "@123:example.org"


def test_raw_helper_control():
    """
    A hand-minted token with well-formed caveats verifies, so the
    hand-minted rejections below are due to their bad caveats alone.
    """
    claims = verify_token(KEY, _raw(GOOD), now_ms=NOW)
    assert claims.user_id == "@alice:example.org"


def test_wrong_key():
    """
    A token signed with another key is rejected.
    """
    token = mint_token(
        OTHER_KEY, token_id="tok1", user_id="@alice:example.org",
        device_id=None,
    )
    assert not _invalid(token).soft_logout


def test_tampered_signature():
    """
    Flipping a bit of the signature makes the token invalid.
    """
    raw = bytearray(base64.urlsafe_b64decode(_mint() + "=="))
    raw[-1] ^= 1
    token = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    _invalid(token)


def test_tampered_caveat():
    """
    Rewriting the user in the serialized token breaks the signature.
    """
    raw = base64.urlsafe_b64decode(_mint() + "==")
    assert b"@alice:example.org" in raw
    raw = raw.replace(b"@alice:example.org", b"@admin:example.org")
    token = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    _invalid(token)


def test_other_type_rejected():
    """
    A refresh token is not an access token, and vice versa.
    """
    _invalid(_mint(token_type="refresh"))
    _invalid(_mint(), expected_type="refresh")


def test_expired_is_soft_logout():
    """
    A valid token at or after its expiry is rejected with soft_logout.
    """
    token = _mint(expires_at_ms=NOW)
    assert _invalid(token, now_ms=NOW).soft_logout is True
    assert _invalid(token, now_ms=NOW + 1).soft_logout is True


def test_not_yet_expired():
    """
    A token is valid until the millisecond before its expiry.
    """
    token = _mint(expires_at_ms=NOW)
    assert verify_token(KEY, token, now_ms=NOW - 1).expires_at_ms == NOW


def test_expired_and_invalid_is_not_soft():
    """
    An expired token that is also invalid otherwise is not a soft logout.
    """
    token = _mint(expires_at_ms=NOW - 1)
    assert _invalid(token, expected_type="refresh").soft_logout is False
    assert _invalid(_append(token, "admin = true")).soft_logout is False
    wrong_key = mint_token(
        OTHER_KEY, token_id="t", user_id="@a:b", device_id=None,
        expires_at_ms=NOW - 1,
    )
    assert _invalid(wrong_key).soft_logout is False


def test_second_user_id_rejected():
    """
    A holder appending a second user_id caveat, even the same one, is
    rejected.
    """
    _invalid(_append(_mint(), "user_id = @alice:example.org"))


def test_impersonation_rejected():
    """
    A holder appending user_id = @mallory:x cannot become mallory.
    """
    _invalid(_append(_mint(), "user_id = @mallory:x"))
    _invalid(_append(_mint(device_id=None), "user_id = @mallory:x"))


@pytest.mark.parametrize("predicate", [
    "device_id = OTHER",
    "type = access",
    "type = refresh",
    "guest = true",
    "gen = 2",
])
def test_repeated_single_caveat_rejected(predicate):
    """
    Appending a second gen, type, device_id or guest caveat is rejected.
    """
    token = _mint(guest=True)
    _invalid(_append(token, predicate))


@pytest.mark.parametrize("bad", [
    "user_id_x = @mallory:x",
    "user_idsomething",
    "user_idx = @mallory:x",
    "user_id=@mallory:x",
    "user_id  = @mallory:x",
    "user_id =  @mallory:x",
    "user_id = @mallory:x extra",
    "user_id = @mallory:x ",
    "user_id = @mallory:x\n",
    " user_id = @mallory:x",
    "user_id = mallory",
    "user_id = ",
    "gen = 1",
    "gen = 10",
    "guest = false",
    "guest = true ",
    "device_id = a b",
    "device_id = ",
    "type = access\n",
    "method = get",
    "method = GET PUT",
    "room_id = room:example.org",
    "room_id = room:example.org",
    "path_prefix = _matrix",
    "path_prefix = /a b",
    "time < -1",
    "time < 1.5",
    "time < \u0661\u0662",
    "time <= 5",
    "time > 5",
    "admin = true",
    "",
])
def test_server_signed_bad_caveat_rejected(bad):
    """
    A correctly signed token with a caveat outside the exact grammar is
    rejected, whoever added it.
    """
    _invalid(_raw(GOOD + [bad]))
    _invalid(_append(_mint(), bad))


def test_replaced_user_id_rejected():
    """
    A token whose only user caveat merely starts with user_id is rejected.
    """
    _invalid(_raw(["user_idsomething", "type = access", "gen = 2"]))
    _invalid(_raw(["user_id_x = @a:b", "type = access", "gen = 2"]))


@pytest.mark.parametrize("missing", range(3))
def test_missing_required_caveat_rejected(missing):
    """
    A token lacking gen, user_id or type is rejected.
    """
    _invalid(_raw(GOOD[:missing] + GOOD[missing + 1:]))


def test_unknown_caveat_appended_rejected():
    """
    Appending a caveat with an unknown key invalidates the token.
    """
    _invalid(_append(_mint(), "server_admin = true"))


def test_duplicated_gen_rejected():
    """
    A token minted with two gen caveats is rejected.
    """
    _invalid(_raw(GOOD + ["gen = 2"]))


@pytest.mark.parametrize("predicate", [
    "guest = true", "device_id = OTHER", "user_id = @alice:example.org",
    "type = refresh",
])
def test_identity_caveat_appended_by_a_holder_rejected(predicate):
    """
    What follows the gen caveat is the holder's: an identity caveat there
    (a guest flag, a device) makes the token invalid, even one the server
    would have minted itself.
    """
    _invalid(_append(_mint(device_id=None), predicate))
    _invalid(_append(_mint(), predicate))


def test_holder_may_append_only_narrowing_caveats():
    """Time, method, room and path caveats after gen are accepted (and applied)."""
    token = _append(_mint(), "method = GET")
    assert verify_token(KEY, token, now_ms=NOW).restrictions.methods == frozenset({"GET"})


def test_first_generation_tokens_refused():
    """A token of the first format (gen = 1 first, no end marker) is refused: its holder logs in again."""
    _invalid(_raw(["gen = 1", "user_id = @alice:example.org", "type = access"]))
    _invalid(_raw(["gen = 1", "user_id = @alice:example.org", "type = access", "guest = true"]))


@pytest.mark.parametrize("spelling", [
    lambda t: t + "=", lambda t: t + "==", lambda t: t + "A",
    lambda t: t[:-1] + ("B" if t[-1] != "B" else "C"),
])
def test_only_the_minted_spelling_verifies(spelling):
    """Extra padding, extra bytes or another last character spell the same macaroon, and are refused."""
    token = _mint()
    assert verify_token(KEY, token, now_ms=NOW).user_id == "@alice:example.org"
    _invalid(spelling(token))


@pytest.mark.parametrize("token", [
    "",
    " ",
    "\u00e9",
    "\u0442\u043e\u043a\u0435\u043d",
    "syt_YWxpY2U_abcdefghij_0123",
    "!!!!",
    "AAAA",
    "Ag",
    "A" * 9000,
    "Bearer abc",
    "AgEAAgNhYmMAAgdnZW4gPSAxAAAGIExqGVqA2G9ffZxAi0CeZExB220LTDAd2i1jmmUE8VQe",
])
def test_garbage_is_invalid_token(token):
    """
    Malformed tokens raise InvalidToken rather than another exception.
    """
    _invalid(token)


def test_malformed_valid_token_variants():
    """
    A truncated token, one with junk appended, bytes and non-ASCII
    variants all raise InvalidToken.
    """
    token = _mint()
    _invalid(token[:-5])
    _invalid(token[:40])
    _invalid(token + "!!")
    _invalid(token + "\u00e9")
    _invalid(token.encode("ascii"))
    _invalid(None)


def test_non_utf8_identifier_rejected():
    """
    A signed token whose identifier is not UTF-8 is rejected.
    """
    _invalid(_raw(GOOD, identifier=b"\xff\xfe"))


def test_v1_macaroon_rejected():
    """
    A correctly signed version 1 macaroon is not accepted.
    """
    _invalid(_raw(GOOD, version=MACAROON_V1))


def test_third_party_caveat_rejected():
    """
    A token with a third-party caveat is rejected even if signed by us.
    """
    m = Macaroon(location="", identifier="tok1", key=KEY, version=MACAROON_V2)
    for predicate in GOOD:
        m.add_first_party_caveat(predicate)
    m.add_third_party_caveat("https://other.example", b"shared", "cav-id")
    assert "third-party" in _invalid(m.serialize()).reason


def test_reason_omits_token():
    """
    The rejection reason never contains the token.
    """
    token = _append(_mint(), "user_id = @mallory:x")
    error = _invalid(token)
    assert token not in error.reason
    assert token[:20] not in str(error)


def test_method_attenuation():
    """
    An appended method = GET caveat allows GET (and HEAD) but not PUT.
    """
    claims = verify_token(KEY, _append(_mint(), "method = GET"), now_ms=NOW)
    r = claims.restrictions
    assert not r.unrestricted
    assert r.methods == frozenset({"GET"})
    assert r.allows("GET", "/_matrix/client/v3/sync", None)
    assert r.allows("HEAD", "/_matrix/client/v3/sync", None)
    assert r.allows("OPTIONS", "/_matrix/client/v3/sync", None)
    assert not r.allows("PUT", SEND_PATH, ROOM)
    assert not r.allows("POST", "/_matrix/client/v3/logout", None)


def test_methods_intersect():
    """
    Two different method caveats intersect to nothing, except OPTIONS.
    """
    token = _append(_append(_mint(), "method = GET"), "method = PUT")
    r = verify_token(KEY, token, now_ms=NOW).restrictions
    assert r.methods == frozenset()
    assert not r.allows("GET", "/_matrix/client/v3/sync", None)
    assert not r.allows("PUT", SEND_PATH, ROOM)
    assert r.allows("OPTIONS", SEND_PATH, ROOM)


def test_room_attenuation():
    """
    A room_id caveat allows requests about that room only.
    """
    token = _append(_mint(), f"room_id = {ROOM}")
    r = verify_token(KEY, token, now_ms=NOW).restrictions
    assert r.room_ids == frozenset({ROOM})
    assert r.allows("PUT", SEND_PATH, ROOM)
    assert not r.allows("PUT", SEND_PATH.replace(ROOM, OTHER_ROOM), OTHER_ROOM)
    assert not r.allows("GET", "/_matrix/client/v3/sync", None)


def test_rooms_intersect():
    """
    Two room_id caveats intersect, so a room must satisfy both.
    """
    token = _append(_append(_mint(), f"room_id = {ROOM}"),
                    f"room_id = {OTHER_ROOM}")
    r = verify_token(KEY, token, now_ms=NOW).restrictions
    assert not r.allows("GET", SEND_PATH, ROOM)
    assert not r.allows("GET", SEND_PATH, OTHER_ROOM)


def test_path_prefix_attenuation():
    """
    A path_prefix caveat allows paths under it at a segment boundary, and
    every prefix caveat must match.
    """
    prefix = "/_matrix/client/v3/rooms"
    token = _append(_mint(), f"path_prefix = {prefix}")
    r = verify_token(KEY, token, now_ms=NOW).restrictions
    assert r.path_prefixes == (prefix,)
    assert r.allows("PUT", SEND_PATH, ROOM)
    assert r.allows("GET", prefix, None)
    assert not r.allows("GET", "/_matrix/client/v3/sync", None)
    assert not r.allows("GET", prefix + "x/foo", None)
    assert not r.allows("GET", prefix + "/../account/whoami", None)
    assert not r.allows("GET", prefix + "/%2e%2e/account/whoami", None)

    token2 = _append(token, "path_prefix = /_matrix/client/v3/account")
    r2 = verify_token(KEY, token2, now_ms=NOW).restrictions
    assert not r2.allows("PUT", SEND_PATH, ROOM)


def test_appended_earlier_time_takes_effect():
    """
    An appended time caveat earlier than the server's shortens the token's
    life; a later one does not extend it.
    """
    token = _mint(expires_at_ms=NOW + HOUR)
    shorter = _append(token, f"time < {NOW + 10}")
    assert verify_token(KEY, shorter, now_ms=NOW).expires_at_ms == NOW + 10
    assert _invalid(shorter, now_ms=NOW + 10).soft_logout is True

    longer = _append(token, f"time < {NOW + 10 * HOUR}")
    assert verify_token(KEY, longer, now_ms=NOW).expires_at_ms == NOW + HOUR
    assert _invalid(longer, now_ms=NOW + HOUR).soft_logout is True


def test_time_appended_to_non_expiring_token():
    """
    A holder may give a non-expiring token an expiry.
    """
    token = _append(_mint(), f"time < {NOW}")
    assert _invalid(token, now_ms=NOW).soft_logout is True
    assert verify_token(KEY, token, now_ms=NOW - 1).expires_at_ms == NOW


def test_restrictions_default_allows_everything():
    """
    Restrictions without caveats are unrestricted and allow any request.
    """
    r = Restrictions()
    assert r.unrestricted
    assert r.allows("DELETE", "/anything", None)


@pytest.mark.parametrize("kwargs", [
    dict(user_id="alice"),
    dict(user_id="@alice:example.org extra"),
    dict(device_id="a b"),
    dict(device_id=""),
    dict(token_id=""),
    dict(token_type="Access"),
    dict(expires_at_ms=-1),
    dict(expires_at_ms=1.5),
])
def test_mint_refuses_unverifiable_values(kwargs):
    """
    Minting refuses values that would not verify or could inject caveats.
    """
    with pytest.raises(ValueError):
        _mint(**kwargs)


def test_empty_key_refused():
    """
    An empty key is refused for minting and verifying.
    """
    with pytest.raises(ValueError):
        mint_token(b"", token_id="t", user_id="@a:b", device_id=None)
    with pytest.raises(ValueError):
        verify_token(b"", _mint(), now_ms=NOW)
