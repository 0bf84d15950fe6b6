"""
The server's ed25519 signing key (spec: appendices.md "Signing JSON",
server-server-api.md "Retrieving server keys").

How the key is kept on disk is the runtime's business
(C{ruma_tx.runtime.secrets}).
"""

from __future__ import annotations

from signedjson.key import (
    encode_verify_key_base64,
    get_verify_key,
)
from signedjson.types import SigningKey


def key_id(signing_key: SigningKey) -> str:
    """
    The signing key identifier, e.g. C{"ed25519:a_XXXX"}.

    @param signing_key: A signedjson C{SigningKey}.
    """
    return f"{signing_key.alg}:{signing_key.version}"


def verify_key_base64(signing_key: SigningKey) -> str:
    """
    The public half of a signing key in unpadded base64, as published in
    C{GET /_matrix/key/v2/server}'s C{verify_keys}.

    @param signing_key: A signedjson C{SigningKey}.
    """
    return encode_verify_key_base64(get_verify_key(signing_key))
