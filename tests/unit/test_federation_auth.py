"""
Tests for L{ruma_tx.matrix.federation_auth}: X-Matrix request signing and
server key responses, as a peer server sees them.
"""

import copy

import pytest
from nacl.signing import VerifyKey
from signedjson.key import decode_signing_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json, verify_signed_json

from ruma_tx.matrix.federation_auth import (
    MAX_KEY_VALIDITY_MS,
    FederationAuthError,
    InvalidServerKeys,
    OldVerifyKey,
    XMatrix,
    notary_sign,
    parse_x_matrix,
    server_keys_response,
    verified_notary_keys,
    verified_server_keys,
    verify_request,
    x_matrix_header,
)
from ruma_tx.matrix.signing import verify_key_base64

# appendices.md "Cryptographic Test Vectors": the seed, as key ed25519:1.
SPEC_KEY = decode_signing_key_base64("ed25519", "1", "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
OTHER_KEY = generate_signing_key("other")
NOTARY_KEY = generate_signing_key("notary1")

ORIGIN = "origin.hs.example.com"
DESTINATION = "destination.hs.example.com"
URI = "/_matrix/federation/v1/send/txn1?x=1"
BODY = {"pdus": [], "edus": [{"edu_type": "m.typing", "content": {"typing": True}}]}
NOW = 1_700_000_000_000
HOUR = 3_600_000


def _vk(signing_key) -> VerifyKey:
    return VerifyKey(bytes(get_verify_key(signing_key)))


ORIGIN_KEYS = {"ed25519:1": _vk(SPEC_KEY)}


def _signed_request(method="PUT", uri=URI, content=BODY, key=SPEC_KEY):
    """The parsed header of a request from ORIGIN to DESTINATION."""
    return parse_x_matrix(x_matrix_header(key, ORIGIN, DESTINATION, method, uri, content))


# ------------------------------------------------------------ request signing

def test_header_is_what_the_spec_example_code_sends():
    """The header equals, byte for byte, the one the spec's example Python code builds with sign_json."""
    request_json = {"method": "PUT", "uri": URI, "origin": ORIGIN, "destination": DESTINATION,
                    "content": copy.deepcopy(BODY)}
    sig = sign_json(request_json, ORIGIN, SPEC_KEY)["signatures"][ORIGIN]["ed25519:1"]
    expected = f'X-Matrix origin="{ORIGIN}",destination="{DESTINATION}",key="ed25519:1",sig="{sig}"'
    assert x_matrix_header(SPEC_KEY, ORIGIN, DESTINATION, "PUT", URI, BODY) == expected


def test_bodyless_request_signs_no_content():
    """A GET has no content member in the signed JSON, so a peer that omits it verifies our header."""
    request_json = {"method": "GET", "uri": "/_matrix/federation/v1/version", "origin": ORIGIN,
                    "destination": DESTINATION}
    header = parse_x_matrix(x_matrix_header(SPEC_KEY, ORIGIN, DESTINATION, "GET",
                                            "/_matrix/federation/v1/version", None))
    signed = dict(request_json, signatures={ORIGIN: {header.key: header.sig}})
    verify_signed_json(signed, ORIGIN, get_verify_key(SPEC_KEY))


@pytest.mark.parametrize("method, content", [("PUT", BODY), ("GET", None), ("POST", {})])
def test_round_trip_verifies(method, content):
    """A request we sign is accepted by a server checking it with our key."""
    x_matrix = _signed_request(method=method, content=content)
    assert x_matrix == XMatrix(ORIGIN, DESTINATION, "ed25519:1", x_matrix.sig)
    verify_request(x_matrix, method, URI, content, DESTINATION, ORIGIN_KEYS)


def test_request_signed_by_another_implementation_verifies():
    """A header built with signedjson's sign_json, as Synapse does, is accepted."""
    request_json = {"method": "POST", "uri": URI, "origin": ORIGIN, "destination": DESTINATION,
                    "content": {"a": [1, "two"]}}
    sig = sign_json(request_json, ORIGIN, SPEC_KEY)["signatures"][ORIGIN]["ed25519:1"]
    x_matrix = parse_x_matrix(f"X-Matrix origin={ORIGIN},key=\"ed25519:1\",sig=\"{sig}\"")
    verify_request(x_matrix, "POST", URI, {"a": [1, "two"]}, DESTINATION, ORIGIN_KEYS)


@pytest.mark.parametrize("method, uri, content", [
    ("POST", URI, BODY),
    ("PUT", "/_matrix/federation/v1/send/txn2?x=1", BODY),
    ("PUT", "/_matrix/federation/v1/send/txn1", BODY),
    ("PUT", URI, {"pdus": [], "edus": []}),
    ("PUT", URI, None),
])
def test_tampered_request_refused(method, uri, content):
    """Changing the method, target, query string or body after signing makes the signature fail."""
    with pytest.raises(FederationAuthError, match="Invalid signature"):
        verify_request(_signed_request(), method, uri, content, DESTINATION, ORIGIN_KEYS)


def test_other_destination_refused():
    """A request addressed to another server is refused, even with a valid signature."""
    with pytest.raises(FederationAuthError, match="not for this server"):
        verify_request(_signed_request(), "PUT", URI, BODY, "evil.example.com", ORIGIN_KEYS)


def test_destination_header_cannot_be_swapped():
    """Rewriting the header's destination to ours does not help: the signature covered the original one."""
    x_matrix = _signed_request()._replace(destination="relay.example.com")
    with pytest.raises(FederationAuthError, match="Invalid signature"):
        verify_request(x_matrix, "PUT", URI, BODY, "relay.example.com", ORIGIN_KEYS)


def test_missing_destination_still_binds_to_us():
    """Without a destination parameter (older servers) the signature must still be over our name."""
    x_matrix = _signed_request()._replace(destination=None)
    verify_request(x_matrix, "PUT", URI, BODY, DESTINATION, ORIGIN_KEYS)
    with pytest.raises(FederationAuthError, match="Invalid signature"):
        verify_request(x_matrix, "PUT", URI, BODY, "relay.example.com", ORIGIN_KEYS)


def test_other_origin_refused():
    """Claiming another origin with the same signature fails."""
    x_matrix = _signed_request()._replace(origin="victim.example.com")
    with pytest.raises(FederationAuthError, match="Invalid signature"):
        verify_request(x_matrix, "PUT", URI, BODY, DESTINATION, ORIGIN_KEYS)


def test_wrong_key_refused():
    """A request signed by a key other than the origin's published key under that ID is refused."""
    impostor = decode_signing_key_base64("ed25519", "1", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    with pytest.raises(FederationAuthError, match="Invalid signature"):
        verify_request(_signed_request(key=impostor), "PUT", URI, BODY, DESTINATION, ORIGIN_KEYS)


def test_unknown_key_id_refused():
    """A key ID the origin does not publish is refused."""
    with pytest.raises(FederationAuthError, match="Unknown key 'ed25519:other'"):
        verify_request(_signed_request(key=OTHER_KEY), "PUT", URI, BODY, DESTINATION, ORIGIN_KEYS)


@pytest.mark.parametrize("sig", ["", "not base64!", "AAAA", "x" * 86 + "=="])
def test_garbage_signature_refused(sig):
    """A malformed or short signature is a refusal, not a crash."""
    x_matrix = _signed_request()._replace(sig=sig)
    with pytest.raises(FederationAuthError, match="Invalid signature"):
        verify_request(x_matrix, "PUT", URI, BODY, DESTINATION, ORIGIN_KEYS)


# ------------------------------------------------------------ header parsing

def test_parse_spec_example():
    """The spec's example header parses to its four parts."""
    header = ('X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",'
              'key="ed25519:key1",sig="ABCDEF..."')
    assert parse_x_matrix(header) == XMatrix(ORIGIN, DESTINATION, "ed25519:key1", "ABCDEF...")


@pytest.mark.parametrize("header", [
    # Unquoted tokens, with colons as older servers send them.
    "X-Matrix origin=origin.hs.example.com,destination=destination.hs.example.com,key=ed25519:k,sig=abc+de",
    # Order free, names case insensitive, scheme case insensitive.
    'x-matrix SIG="abc+de",Key="ed25519:k",Destination="destination.hs.example.com",Origin="origin.hs.example.com"',
    # Several spaces after the scheme, spaces and tabs around commas and '='.
    'X-Matrix   origin="origin.hs.example.com" ,\tdestination = "destination.hs.example.com"\t, '
    'key="ed25519:k",  sig="abc+de"',
    # Unknown parameters are ignored, quoted or not.
    'X-Matrix origin="origin.hs.example.com",extra=1,destination="destination.hs.example.com",'
    'key="ed25519:k",note="a, b=c",sig="abc+de"',
    # Escapes inside quotes are undone.
    r'X-Matrix origin="origin.hs.\example.com",destination="destination.hs.example.com",'
    r'key="ed25519:\k",sig="abc\+de"',
])
def test_parse_tolerant_forms(header):
    """Every form the spec allows parses to the same parameters."""
    assert parse_x_matrix(header) == XMatrix(ORIGIN, DESTINATION, "ed25519:k", "abc+de")


def test_parse_escaped_quote_and_backslash():
    """A quoted value keeps an escaped quote or backslash as that character."""
    parsed = parse_x_matrix(r'X-Matrix origin=a.example,key="ed25519:\"q\\",sig="s,\"t"')
    assert (parsed.key, parsed.sig) == ('ed25519:"q\\', 's,"t')


def test_parse_without_destination():
    """A header from a server older than v1.3 has no destination."""
    parsed = parse_x_matrix('X-Matrix origin=a.example:8448,key="ed25519:k",sig="s"')
    assert parsed == XMatrix("a.example:8448", None, "ed25519:k", "s")


def test_parse_round_trip_ipv6_origin():
    """An IPv6 literal origin, which needs quotes, survives signing and parsing."""
    header = x_matrix_header(SPEC_KEY, "[::1]:8448", DESTINATION, "GET", "/x", None)
    assert parse_x_matrix(header).origin == "[::1]:8448"


@pytest.mark.parametrize("header, reason", [
    ("", "scheme"),
    ("Bearer abc", "scheme"),
    ("X-Matrix", "scheme"),
    ("X-Matrixorigin=a,key=b,sig=c", "scheme"),
    ("X-Matrix\torigin=a,key=ed25519:k,sig=c", "scheme"),
    ("X-Matrix abc==", "Malformed"),
    ("X-Matrix origin=a.example,key=ed25519:k,sig=c,", "Malformed"),
    ("X-Matrix origin=a.example,,key=ed25519:k,sig=c", "Malformed"),
    ("X-Matrix origin=a.example key=ed25519:k,sig=c", "Expected ','"),
    ('X-Matrix origin="a.example,key=ed25519:k,sig=c', "Malformed"),
    ('X-Matrix origin="a.example"x,key=ed25519:k,sig=c', "Expected ','"),
    ("X-Matrix origin=a.example,key=ed25519:k,sig=ab/cd", "Expected ','"),
    ('X-Matrix origin="a.ex\nample",key=ed25519:k,sig=c', "Malformed"),
    ("X-Matrix origin=a.example,key=ed25519:k", "lacks sig"),
    ('X-Matrix key=ed25519:k,sig=c,destination="b.example"', "lacks origin"),
    ("X-Matrix origin=a.example,sig=c", "lacks key"),
    ('X-Matrix origin="",key=ed25519:k,sig=c', "lacks origin"),
    ("X-Matrix origin=a.example,signature=c,key=ed25519:k", "lacks sig"),
    ("X-Matrix origin=a.example,key=ed25519:k,sig=c,Origin=b.example", "twice"),
    ('X-Matrix origin="a example",key=ed25519:k,sig=c', "not a server name"),
    ('X-Matrix origin=a.example,destination="b/c",key=ed25519:k,sig=c', "not a server name"),
])
def test_parse_refuses_malformed(header, reason):
    """Malformed headers are refused with the auth error the HTTP layer turns into 401."""
    with pytest.raises(FederationAuthError, match=reason) as raised:
        parse_x_matrix(header)
    assert isinstance(raised.value, ValueError)


# ------------------------------------------------------------ server keys

RETIRED = OldVerifyKey(_vk(OTHER_KEY), NOW - 30 * 24 * HOUR)


def _keys_response(server_name="example.org", key=SPEC_KEY, valid_until_ts=NOW + HOUR, old=None):
    return server_keys_response(server_name, key, valid_until_ts,
                                {"ed25519:other": RETIRED} if old is None else old)


def _resign(response, *keys, name="example.org"):
    """The response with its signatures replaced by C{keys}' (after an edit)."""
    unsigned = {k: v for k, v in response.items() if k != "signatures"}
    for key in keys:
        unsigned = sign_json(unsigned, name, key)
    return unsigned


def test_keys_response_shape_and_round_trip():
    """Our key response publishes the key, retired keys and expiry, and a peer accepts it."""
    response = _keys_response()
    # The public half of the spec appendix's seed.
    assert response["verify_keys"] == {"ed25519:1": {"key": "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI"}}
    assert response["server_name"] == "example.org"
    assert response["valid_until_ts"] == NOW + HOUR
    assert response["old_verify_keys"]["ed25519:other"]["expired_ts"] == RETIRED.expired_ts
    verify_signed_json(response, "example.org", get_verify_key(SPEC_KEY))
    keys = verified_server_keys(response, "example.org", NOW)
    assert bytes(keys.verify_keys["ed25519:1"]) == bytes(get_verify_key(SPEC_KEY))
    assert keys.old_verify_keys == {"ed25519:other": RETIRED}
    assert keys.valid_until_ts == NOW + HOUR


def test_spec_example_response_with_fake_keys_refused():
    """The spec's example response (placeholder keys and signature) is not trusted."""
    example = {
        "server_name": "example.org",
        "verify_keys": {"ed25519:abc123": {"key": "VGhpcyBzaG91bGQgYmUgYSByZWFsIGVkMjU1MTkgcGF5bG9hZA"}},
        "old_verify_keys": {},
        "signatures": {"example.org": {"ed25519:auto2": "VGhpcyBzaG91bGQgYWN0dWFsbHkgYmUgYSBzaWduYXR1cmU"}},
        "valid_until_ts": 1652262000000,
    }
    with pytest.raises(InvalidServerKeys):
        verified_server_keys(example, "example.org", 1)


def test_keys_for_another_server_refused():
    """A response for another server name is refused even though it verifies."""
    with pytest.raises(InvalidServerKeys, match="is for 'evil.org'"):
        verified_server_keys(_keys_response(server_name="evil.org"), "example.org", NOW)


def test_keys_signed_by_another_key_refused():
    """A response publishing a key but signed by a different one is refused."""
    response = _resign(_keys_response(), OTHER_KEY)
    with pytest.raises(InvalidServerKeys, match="not signed by example.org's ed25519:1"):
        verified_server_keys(response, "example.org", NOW)


def test_keys_with_forged_signature_refused():
    """A signature under the published key ID that another key made is refused."""
    response = _keys_response()
    impostor = decode_signing_key_base64("ed25519", "1", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    response = _resign(response, impostor)
    with pytest.raises(InvalidServerKeys, match="Invalid signature"):
        verified_server_keys(response, "example.org", NOW)


def test_keys_tampered_after_signing_refused():
    """Extending valid_until_ts after signing breaks the signature."""
    response = _keys_response()
    response["valid_until_ts"] += 365 * 24 * HOUR
    with pytest.raises(InvalidServerKeys, match="Invalid signature"):
        verified_server_keys(response, "example.org", NOW)


def test_every_verify_key_must_sign():
    """With two current keys, a response signed by only one of them is refused; by both, accepted."""
    response = _keys_response()
    response["verify_keys"]["ed25519:notary1"] = {"key": verify_key_base64(NOTARY_KEY)}
    with pytest.raises(InvalidServerKeys, match="not signed by example.org's ed25519:notary1"):
        verified_server_keys(_resign(response, SPEC_KEY), "example.org", NOW)
    keys = verified_server_keys(_resign(response, SPEC_KEY, NOTARY_KEY), "example.org", NOW)
    assert set(keys.verify_keys) == {"ed25519:1", "ed25519:notary1"}


def test_expired_keys_refused():
    """A response whose valid_until_ts has passed is refused."""
    with pytest.raises(InvalidServerKeys, match="expired"):
        verified_server_keys(_keys_response(valid_until_ts=NOW - 1), "example.org", NOW)
    verified_server_keys(_keys_response(valid_until_ts=NOW), "example.org", NOW)


def test_validity_capped_at_seven_days():
    """A key valid for a year is trusted for at most 7 days from when it was fetched."""
    keys = verified_server_keys(_keys_response(valid_until_ts=NOW + 365 * 24 * HOUR), "example.org", NOW)
    assert keys.valid_until_ts == NOW + MAX_KEY_VALIDITY_MS


def test_old_verify_keys_valid_until_expired_ts():
    """A retired key verifies events up to its expired_ts only; a current key up to valid_until_ts."""
    keys = verified_server_keys(_keys_response(), "example.org", NOW)
    assert keys.key_valid_at("ed25519:other", RETIRED.expired_ts) == RETIRED.key
    assert keys.key_valid_at("ed25519:other", RETIRED.expired_ts + 1) is None
    assert keys.key_valid_at("ed25519:1", NOW + HOUR) is keys.verify_keys["ed25519:1"]
    assert keys.key_valid_at("ed25519:1", NOW + HOUR + 1) is None
    assert keys.key_valid_at("ed25519:unknown", NOW) is None


def test_old_verify_key_does_not_sign_requests():
    """A request signed with a retired key is refused: only verify_keys authenticate requests."""
    keys = verified_server_keys(_keys_response(), "example.org", NOW)
    x_matrix = parse_x_matrix(x_matrix_header(OTHER_KEY, "example.org", DESTINATION, "GET", "/x", None))
    with pytest.raises(FederationAuthError, match="Unknown key"):
        verify_request(x_matrix, "GET", "/x", None, DESTINATION, keys.verify_keys)


def test_other_algorithms_ignored():
    """Keys of unknown algorithms are skipped rather than failing the response."""
    response = _keys_response()
    response["verify_keys"]["curve9999:x"] = {"whatever": 1}
    keys = verified_server_keys(_resign(response, SPEC_KEY), "example.org", NOW)
    assert set(keys.verify_keys) == {"ed25519:1"}


@pytest.mark.parametrize("edit, reason", [
    (lambda r: r.update(verify_keys={}), "no ed25519 verify_keys"),
    (lambda r: r.update(verify_keys=[]), "must be an object"),
    (lambda r: r["verify_keys"].update({"ed25519:1": {"key": "short"}}), "not an unpadded base64"),
    (lambda r: r["verify_keys"].update({"ed25519:1": "k"}), "string 'key'"),
    (lambda r: r.pop("valid_until_ts"), "integer"),
    (lambda r: r.update(valid_until_ts=True), "integer"),
    (lambda r: r["old_verify_keys"]["ed25519:other"].pop("expired_ts"), "expired_ts"),
    (lambda r: r.update(signatures=[]), "'signatures'"),
])
def test_malformed_keys_refused(edit, reason):
    """Malformed key responses are refused with a reason, never a crash."""
    response = _keys_response()
    edit(response)
    with pytest.raises(InvalidServerKeys, match=reason):
        verified_server_keys(response, "example.org", NOW)
    with pytest.raises(InvalidServerKeys, match="must be an object"):
        verified_server_keys([response], "example.org", NOW)


# ------------------------------------------------------------ notaries

NOTARY_KEYS = {"ed25519:notary1": _vk(NOTARY_KEY)}


def test_notary_signs_alongside_origin():
    """The notary's response keeps the origin's signature and adds its own, without changing the input."""
    response = _keys_response()
    relayed = notary_sign(response, "notary.example", NOTARY_KEY)
    assert set(relayed["signatures"]) == {"example.org", "notary.example"}
    assert set(response["signatures"]) == {"example.org"}
    verify_signed_json(relayed, "example.org", get_verify_key(SPEC_KEY))
    verify_signed_json(relayed, "notary.example", get_verify_key(NOTARY_KEY))
    keys = verified_notary_keys(relayed, "example.org", "notary.example", NOTARY_KEYS, NOW)
    assert set(keys.verify_keys) == {"ed25519:1"}


def test_notary_response_needs_trusted_notary_signature():
    """A relayed response the notary did not sign, or signed with a key we do not trust it by, is refused."""
    with pytest.raises(InvalidServerKeys, match="known key of the notary"):
        verified_notary_keys(_keys_response(), "example.org", "notary.example", NOTARY_KEYS, NOW)
    relayed = notary_sign(_keys_response(), "notary.example", OTHER_KEY)
    with pytest.raises(InvalidServerKeys, match="known key of the notary"):
        verified_notary_keys(relayed, "example.org", "notary.example", NOTARY_KEYS, NOW)


def test_notary_cannot_extend_origin_response():
    """A notary that extends a cached response's valid_until_ts and signs it is refused: the origin's signature breaks."""
    stale = _keys_response()
    stale["valid_until_ts"] = NOW + 2 * HOUR
    relayed = notary_sign(stale, "notary.example", NOTARY_KEY)
    with pytest.raises(InvalidServerKeys, match="Invalid signature by example.org's ed25519:1"):
        verified_notary_keys(relayed, "example.org", "notary.example", NOTARY_KEYS, NOW)


def test_notary_relaying_another_server_refused():
    """A notary answer that relays some other server's keys is refused for the server we asked about."""
    relayed = notary_sign(_keys_response(server_name="evil.org"), "notary.example", NOTARY_KEY)
    with pytest.raises(InvalidServerKeys, match="is for 'evil.org'"):
        verified_notary_keys(relayed, "example.org", "notary.example", NOTARY_KEYS, NOW)


def test_notary_forged_signature_refused():
    """A notary signature under a trusted key ID that does not verify is refused."""
    relayed = notary_sign(_keys_response(), "notary.example", NOTARY_KEY)
    relayed["signatures"]["notary.example"]["ed25519:notary1"] = (
        notary_sign(_keys_response(), "notary.example", OTHER_KEY)["signatures"]["notary.example"]["ed25519:other"])
    with pytest.raises(InvalidServerKeys, match="Invalid signature by notary.example"):
        verified_notary_keys(relayed, "example.org", "notary.example", NOTARY_KEYS, NOW)
