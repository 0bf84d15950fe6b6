"""
The server's secrets on disk: the macaroon key and the ed25519 signing key.

Each is generated on first start and reused afterwards (tokens and signed
events stay verifiable only with them). A new secret file appears whole
or not at all: it is written with mode 0600 under a temporary name, synced,
then hard-linked into place, so a crash leaves no empty or partial key and
two processes starting at once agree on one key.
"""
from __future__ import annotations

import io
import os
import secrets
import string
import tempfile
from pathlib import Path

from signedjson.key import generate_signing_key, read_signing_keys, write_signing_keys
from signedjson.types import SigningKey

from ruma_tx.runtime.config import Config, ConfigError

_VERSION_ALPHABET = string.ascii_letters + string.digits


def create_file_once(path: Path, data: bytes) -> bool:
    """
    Create C{path} holding C{data}, mode 0600, atomically.

    @return: C{False} when the file exists already (nothing is written).
    @raise OSError: if it cannot be created.
    """
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file with mode 0600 whatever the umask.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            return False  # another process created it first: theirs wins
    finally:
        os.unlink(tmp_name)
    return True


def read_or_create_secret(path: Path, nbytes: int = 32) -> bytes:
    """
    The secret stored at C{path}, generated on first use.

    @raise ConfigError: if it cannot be read or created, or is too short.
    """
    path = Path(path)
    try:
        create_file_once(path, secrets.token_hex(nbytes).encode("ascii") + b"\n")
        data = path.read_bytes().strip()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read or create the secret key: {e.strerror}") from None
    if len(data) < 32:
        raise ConfigError(f"{path}: secret key too short")
    return data


def _new_key_version() -> str:
    """A key version like Synapse's: C{a_} and four random letters or digits."""
    return "a_" + "".join(secrets.choice(_VERSION_ALPHABET) for _ in range(4))


def load_or_create_signing_key(path: Path) -> SigningKey:
    """
    The server's signing key, in signedjson's one-line format (C{ed25519
    a_XXXX <unpadded base64 seed>}, as Synapse's C{signing_key_path}),
    generated on first use.

    @raise ConfigError: if the file cannot be read or holds no valid key.
    """
    path = Path(path)
    try:
        if not path.exists():
            text = io.StringIO()
            write_signing_keys(text, [generate_signing_key(_new_key_version())])
            create_file_once(path, text.getvalue().encode("ascii"))
        with open(path, encoding="ascii") as stream:
            keys = read_signing_keys(line for line in stream if line.strip())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read or create the signing key: {e}") from None
    if not keys:
        raise ConfigError(f"{path}: no signing key in the file")
    return keys[0]


def create_secrets(config: Config) -> None:
    """Create the server's secrets where C{config} puts them, unless they exist."""
    read_or_create_secret(config.macaroon_key_path)
    load_or_create_signing_key(config.signing_key_path)
