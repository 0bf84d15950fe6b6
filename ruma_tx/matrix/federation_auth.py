"""
Federation request authentication and server keys, as pure functions
(spec: server-server-api.md "Request Authentication", "Retrieving server
keys", "Publishing Keys", "Querying Keys Through Another Server";
appendices.md "Signing JSON").

A request is signed by wrapping its method, target, origin, destination
and JSON body in an object, signing that object's canonical JSON with the
origin's ed25519 key, and sending the signature in an C{Authorization:
X-Matrix ...} header. A server publishes its keys in a response signed by
each of its current keys; a notary re-serves such a response with its own
signature added.

Time is an argument (C{now_ms}); nothing here reads a clock or the network.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, NamedTuple, TypeGuard

from canonicaljson import encode_canonical_json
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from signedjson.sign import sign_json
from signedjson.types import SigningKey
from unpaddedbase64 import decode_base64, encode_base64

from ruma_tx.matrix.identifiers import is_valid_server_name
from ruma_tx.matrix.signing import key_id, verify_key_base64
from ruma_tx.matrix.types import JsonDict

ED25519 = "ed25519"

#: "Servers MUST use the lesser of [valid_until_ts] and 7 days into the
#: future when determining if a key is valid" (keys.yaml).
MAX_KEY_VALIDITY_MS = 7 * 24 * 60 * 60 * 1000


class FederationAuthError(ValueError):
    """
    A request's C{X-Matrix} authorization is malformed, is for another
    server, or does not verify. The HTTP layer answers 401 M_UNAUTHORIZED.
    """


class InvalidServerKeys(ValueError):
    """
    A key response cannot be trusted: malformed, for another server, not
    signed as it must be, or expired.
    """


class XMatrix(NamedTuple):
    """
    The parameters of an C{Authorization: X-Matrix} header.

    @ivar destination: C{None} when an older server (before spec v1.3) left
        it out.
    @ivar key: the key ID, e.g. C{ed25519:abc}.
    @ivar sig: the unpadded base64 signature.
    """

    origin: str
    destination: str | None
    key: str
    sig: str


class OldVerifyKey(NamedTuple):
    """A key the server used to sign with, valid for events until C{expired_ts}."""

    key: VerifyKey
    expired_ts: int


@dataclass(frozen=True)
class ServerKeys:
    """
    A server's keys from a verified key response.

    @ivar verify_keys: key ID -> key; these sign requests and events.
    @ivar old_verify_keys: key ID -> retired key; these only verify events.
    @ivar valid_until_ts: until when C{verify_keys} may be trusted without
        refetching: the response's C{valid_until_ts}, at most
        L{MAX_KEY_VALIDITY_MS} after it was verified.
    """

    verify_keys: Mapping[str, VerifyKey]
    old_verify_keys: Mapping[str, OldVerifyKey]
    valid_until_ts: int

    def key_valid_at(self, key_id: str, ts_ms: int) -> VerifyKey | None:
        """
        The key that may verify an event signature made at C{ts_ms}: a
        current key up to C{valid_until_ts}, a retired one up to its
        C{expired_ts}; C{None} otherwise.
        """
        current = self.verify_keys.get(key_id)
        if current is not None and ts_ms <= self.valid_until_ts:
            return current
        old = self.old_verify_keys.get(key_id)
        if old is not None and ts_ms <= old.expired_ts:
            return old.key
        return None


# ------------------------------------------------------------ request signing

def _request_json(method: str, uri: str, origin: str, destination: str, content: Any) -> JsonDict:
    """The object a request's signature covers (step 1 of the spec); no C{content} for no body."""
    request: JsonDict = {"method": method, "uri": uri, "origin": origin, "destination": destination}
    if content is not None:
        request["content"] = content
    return request


def _quote(value: str) -> str:
    """An RFC 9110 quoted-string (server names, key IDs and base64 never need escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def x_matrix_header(signing_key: SigningKey, origin: str, destination: str, method: str,
                    uri: str, content: Any) -> str:
    """
    The C{Authorization} header value that signs a request from C{origin}
    to C{destination}, written as the spec asks senders to for older
    servers: one space after C{X-Matrix}, lower-case names, quoted values,
    no spaces around commas.

    @param uri: the request target from C{/_matrix/...}, with C{?} and
        query string if any, without scheme or host.
    @param content: the JSON request body, or C{None} when there is none.
    """
    message = encode_canonical_json(_request_json(method, uri, origin, destination, content))
    sig = encode_base64(signing_key.sign(message).signature)
    params = {"origin": origin, "destination": destination, "key": key_id(signing_key), "sig": sig}
    return "X-Matrix " + ",".join(f"{name}={_quote(value)}" for name, value in params.items())


# ------------------------------------------------------------ header parsing

# RFC 9110 section 5.6.2 tchar.
_TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
_SCHEME = re.compile(r"X-Matrix +", re.IGNORECASE)
# name BWS "=" BWS (quoted-string / token), with the OWS allowed around the
# separating comma. Unquoted values may also hold colons, which older
# servers send unquoted (origin=example.org:8448).
_PARAM = re.compile(
    rf"[ \t]*([{_TCHAR}]+)[ \t]*=[ \t]*"
    r'(?:"((?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*)"'
    rf"|([{_TCHAR}:]+))[ \t]*")
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)


def parse_x_matrix(header_value: str) -> XMatrix:
    """
    Parse an C{Authorization} header value with the C{X-Matrix} scheme as
    the spec describes it (RFC 9110 section 11.4): the scheme (case
    insensitive) and one or more spaces, then comma-separated C{name=value}
    parameters, names case insensitive and in any order, values quoted
    (with backslash escapes) or bare tokens, unknown parameters ignored.

    The signature parameter is C{sig}: the spec's list says C{signature}
    but its example, and every implementation, sends C{sig}. A parameter
    given twice is refused (RFC 9110 section 11.2 allows each once), so no
    two readers of one header can disagree on who sent it.

    @raise FederationAuthError: for another scheme, a malformed parameter
        list, a repeated parameter, a missing C{origin}, C{key} or C{sig},
        or an C{origin} or C{destination} that is not a server name.
    """
    header = header_value.strip(" \t")
    scheme = _SCHEME.match(header)
    if scheme is None:
        raise FederationAuthError("Authorization is not of the X-Matrix scheme")
    params: dict[str, str] = {}
    pos = scheme.end()
    while True:
        param = _PARAM.match(header, pos)
        if param is None:
            raise FederationAuthError(f"Malformed X-Matrix parameter at character {pos}")
        name = param[1].lower()
        if name in params:
            raise FederationAuthError(f"X-Matrix parameter {name!r} is given twice")
        quoted = param[2]
        params[name] = _QUOTED_PAIR.sub(r"\1", quoted) if quoted is not None else param[3]
        pos = param.end()
        if pos == len(header):
            break
        if header[pos] != ",":
            raise FederationAuthError(f"Expected ',' between X-Matrix parameters at character {pos}")
        pos += 1
    missing = [name for name in ("origin", "key", "sig") if not params.get(name)]
    if missing:
        raise FederationAuthError(f"X-Matrix authorization lacks {', '.join(missing)}")
    destination = params.get("destination")
    for name, server in (("origin", params["origin"]), ("destination", destination)):
        if server is not None and not is_valid_server_name(server):
            raise FederationAuthError(f"X-Matrix {name} {server!r} is not a server name")
    return XMatrix(params["origin"], destination, params["key"], params["sig"])


def signature_verifies(verify_key: VerifyKey, message: bytes, sig: object) -> bool:
    """Whether C{sig} (unpadded base64) is C{verify_key}'s signature of C{message}."""
    if not isinstance(sig, str):
        return False
    try:
        verify_key.verify(message, decode_base64(sig))
    except (BadSignatureError, ValueError):  # a wrong, short or non-base64 signature
        return False
    return True


def verify_request(x_matrix: XMatrix, method: str, uri: str, content: Any, our_server_name: str,
                   verify_keys: Mapping[str, VerifyKey]) -> None:
    """
    Check that a request carrying C{x_matrix} was signed by its origin
    for us.

    The signed object always names us as its destination: an older server
    that leaves C{destination} out of the header still signed it.

    @param uri: the request target exactly as received (path and query).
    @param content: the parsed JSON body, or C{None} when there is none.
    @param verify_keys: key ID -> the origin's current verify key (only
        current keys sign requests; old_verify_keys only sign events).
    @raise FederationAuthError: if the header names another destination,
        names a key not in C{verify_keys}, or the signature does not verify.
    """
    if x_matrix.destination is not None and x_matrix.destination != our_server_name:
        raise FederationAuthError(
            f"Request is for {x_matrix.destination!r}, not for this server ({our_server_name})")
    verify_key = verify_keys.get(x_matrix.key)
    if verify_key is None:
        raise FederationAuthError(f"Unknown key {x_matrix.key!r} for {x_matrix.origin}")
    message = encode_canonical_json(_request_json(method, uri, x_matrix.origin, our_server_name, content))
    if not signature_verifies(verify_key, message, x_matrix.sig):
        raise FederationAuthError(f"Invalid signature by {x_matrix.origin}'s {x_matrix.key}")


# ------------------------------------------------------------ server keys

def server_keys_response(server_name: str, signing_key: SigningKey, valid_until_ts: int,
                         old_verify_keys: Mapping[str, OldVerifyKey]) -> JsonDict:
    """
    The body of C{GET /_matrix/key/v2/server}: our current key, our
    retired keys, until when to trust them, signed with the current key.
    """
    response: JsonDict = {
        "server_name": server_name,
        "verify_keys": {key_id(signing_key): {"key": verify_key_base64(signing_key)}},
        "old_verify_keys": {
            old_id: {"key": encode_base64(bytes(old.key)), "expired_ts": old.expired_ts}
            for old_id, old in old_verify_keys.items()
        },
        "valid_until_ts": valid_until_ts,
    }
    return sign_json(response, server_name, signing_key)


def notary_sign(response: JsonDict, notary_name: str, notary_key: SigningKey) -> JsonDict:
    """
    A copy of another server's key response with the notary's signature
    added next to the server's own, as C{POST /_matrix/key/v2/query}
    returns it.
    """
    return sign_json(copy.deepcopy(response), notary_name, notary_key)


def is_json_int(value: object) -> TypeGuard[int]:
    """Whether a JSON value is an integer (JSON booleans are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _ed25519_keys(response: JsonDict, field: str) -> dict[str, JsonDict]:
    """
    The C{ed25519:*} entries of C{field}, each an object with a string
    C{key}; keys of other algorithms are skipped, as Synapse does (no
    other algorithm is specified).
    """
    entries = response.get(field, {})
    if not isinstance(entries, dict):
        raise InvalidServerKeys(f"'{field}' must be an object")
    keys: dict[str, JsonDict] = {}
    for entry_id, entry in entries.items():
        if not entry_id.startswith(ED25519 + ":"):
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise InvalidServerKeys(f"'{field}' entry {entry_id!r} must be an object with a string 'key'")
        keys[entry_id] = entry
    return keys


def _verify_key(entry_id: str, entry: JsonDict) -> VerifyKey:
    try:
        return VerifyKey(decode_base64(entry["key"]))
    except ValueError:  # not base64, or not 32 bytes
        raise InvalidServerKeys(f"Key {entry_id!r} is not an unpadded base64 ed25519 key") from None


def _check_signed(response: JsonDict, signer: str, keys: Mapping[str, VerifyKey],
                  key_ids: Iterable[str]) -> None:
    """
    Check that C{signer} signed C{response} (without C{signatures} and
    C{unsigned}) with each of C{key_ids}, whose keys are in C{keys}.
    """
    signatures = _signatures_by(response, signer)
    message = encode_canonical_json(
        {k: v for k, v in response.items() if k not in ("signatures", "unsigned")})
    for signing_id in key_ids:
        if signing_id not in signatures:
            raise InvalidServerKeys(f"Key response is not signed by {signer}'s {signing_id}")
        if not signature_verifies(keys[signing_id], message, signatures[signing_id]):
            raise InvalidServerKeys(f"Invalid signature by {signer}'s {signing_id}")


def _signatures_by(response: JsonDict, signer: str) -> Mapping[str, object]:
    signatures = response.get("signatures")
    by_signer = signatures.get(signer, {}) if isinstance(signatures, dict) else None
    if not isinstance(by_signer, dict):
        raise InvalidServerKeys("'signatures' must map server names to objects")
    return by_signer


def verified_server_keys(response: object, server_name: str, now_ms: int) -> ServerKeys:
    """
    The keys in C{server_name}'s key response (from C{GET
    /_matrix/key/v2/server}, or one entry of a notary's C{server_keys}),
    once it is checked: it is for C{server_name}, every one of its
    C{verify_keys} signed it, and its C{valid_until_ts} has not passed.
    Requiring every key's signature is stricter than Synapse, which needs
    one of them (Synapse itself signs with all its keys).

    Retired keys are kept whatever their C{expired_ts}: they still verify
    events sent before it (L{ServerKeys.key_valid_at}).

    @raise InvalidServerKeys: otherwise.
    """
    if not isinstance(response, dict):
        raise InvalidServerKeys("Key response must be an object")
    if response.get("server_name") != server_name:
        raise InvalidServerKeys(f"Key response is for {response.get('server_name')!r}, not {server_name}")
    valid_until_ts = response.get("valid_until_ts")
    if not is_json_int(valid_until_ts):
        raise InvalidServerKeys("'valid_until_ts' must be an integer")
    verify_keys = {
        entry_id: _verify_key(entry_id, entry)
        for entry_id, entry in _ed25519_keys(response, "verify_keys").items()
    }
    if not verify_keys:
        raise InvalidServerKeys(f"Key response for {server_name} has no ed25519 verify_keys")
    old_verify_keys = {}
    for entry_id, entry in _ed25519_keys(response, "old_verify_keys").items():
        if not is_json_int(entry.get("expired_ts")):
            raise InvalidServerKeys(f"Old key {entry_id!r} must have an integer 'expired_ts'")
        old_verify_keys[entry_id] = OldVerifyKey(_verify_key(entry_id, entry), entry["expired_ts"])
    _check_signed(response, server_name, verify_keys, verify_keys)
    if valid_until_ts < now_ms:
        raise InvalidServerKeys(f"Key response for {server_name} expired at {valid_until_ts}")
    return ServerKeys(verify_keys, old_verify_keys, min(valid_until_ts, now_ms + MAX_KEY_VALIDITY_MS))


def verified_notary_keys(response: object, server_name: str, notary_name: str,
                         notary_verify_keys: Mapping[str, VerifyKey], now_ms: int) -> ServerKeys:
    """
    L{verified_server_keys} for a response relayed by the notary
    C{notary_name}, which must also have signed it with at least one of
    the keys we trust it by (each such signature must verify).

    @param notary_verify_keys: key ID -> the notary's verify key, as we
        know it (configured or fetched).
    @raise InvalidServerKeys: otherwise.
    """
    if not isinstance(response, dict):
        raise InvalidServerKeys("Key response must be an object")
    known = [k for k in _signatures_by(response, notary_name) if k in notary_verify_keys]
    if not known:
        raise InvalidServerKeys(f"Key response is not signed by a known key of the notary {notary_name}")
    _check_signed(response, notary_name, notary_verify_keys, known)
    return verified_server_keys(response, server_name, now_ms)
