"""
The server's ed25519 signing key (spec: appendices.md "Signing JSON",
server-server-api.md "Retrieving server keys").

The key is kept in a file in signedjson's format, one line
C{ed25519 a_XXXX <unpadded base64 seed>}, the same format Synapse uses for its
C{signing_key_path}. It is created on first use and reused afterwards, since
every event this server ever signed stays verifiable only with it.

This is the only module under C{ruma_tx.matrix} that touches the filesystem;
it is called once, at start-up.
"""

from __future__ import annotations

import os
import pathlib
import secrets
import string
import tempfile

from signedjson.key import (
    encode_verify_key_base64,
    generate_signing_key,
    get_verify_key,
    read_signing_keys,
    write_signing_keys,
)
from signedjson.types import SigningKey

_VERSION_ALPHABET = string.ascii_letters + string.digits


def _new_key_version() -> str:
    """
    Make a key version like Synapse's: C{a_} and four random letters or digits.
    """
    return "a_" + "".join(secrets.choice(_VERSION_ALPHABET) for _ in range(4))


def _read_key(path: pathlib.Path) -> SigningKey:
    """
    Read the first signing key of a signedjson key file.

    @raise ValueError: If the file holds no valid key.
    """
    with open(path, encoding="ascii") as stream:
        keys = read_signing_keys(line for line in stream if line.strip())
    if not keys:
        raise ValueError(f"no signing key in {path}")
    return keys[0]


def load_or_create_signing_key(path: pathlib.Path) -> SigningKey:
    """
    Load the server's signing key, creating it on first use.

    A new key file is written with mode 0600 under a temporary name and then
    hard-linked into place, so a concurrent reader never sees a half-written
    file and two starting processes agree on one key.

    @param path: The key file. Its directory is created if missing.
    @return: A signedjson C{SigningKey} (PyNaCl key with C{alg} and
        C{version} attributes, version like C{"a_XXXX"}).
    @raise ValueError: If the file exists but holds no valid key.
    """
    path = pathlib.Path(path)
    if path.exists():
        return _read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_signing_key(_new_key_version())
    # mkstemp creates the file with mode 0600 regardless of the umask.
    fd, tmp_name = tempfile.mkstemp(prefix=".signing-key-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as stream:
            write_signing_keys(stream, [key])
            stream.flush()
            os.fsync(stream.fileno())
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            # Another process created it first: use theirs.
            return _read_key(path)
    finally:
        os.unlink(tmp_name)
    return key


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
