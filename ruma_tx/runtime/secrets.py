"""
The server's secrets on disk: the macaroon key and the ed25519 signing key,
and the public halves of the signing keys it retired.

Each is generated on first start and reused afterwards (tokens and signed
events stay verifiable only with them). A new secret file appears whole
or not at all: it is written with mode 0600 under a temporary name, synced,
then hard-linked into place, so a crash leaves no empty or partial key and
two processes starting at once agree on one key. C{ruma-admin
rotate-signing-key} replaces the signing key the same way (renamed into
place), after adding it to the retired keys.
"""
from __future__ import annotations

import io
import json
import os
import secrets
import string
import tempfile
from pathlib import Path
from typing import Callable

from nacl.signing import VerifyKey
from signedjson.key import generate_signing_key, read_signing_keys, write_signing_keys
from signedjson.types import SigningKey
from unpaddedbase64 import decode_base64, encode_base64

from ruma_tx.matrix.federation_auth import OldVerifyKey, is_json_int
from ruma_tx.matrix.signing import key_id, verify_key_base64
from ruma_tx.runtime.config import Config, ConfigError

_VERSION_ALPHABET = string.ascii_letters + string.digits


def _write_then(path: Path, data: bytes, put_in_place: Callable[[str], None]) -> None:
    """Write C{data} to a synced temporary file (mode 0600) beside C{path}; C{put_in_place(its name)}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file with mode 0600 whatever the umask.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        put_in_place(tmp_name)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)   # the new name survives a crash
    finally:
        os.close(directory)


def create_file_once(path: Path, data: bytes) -> bool:
    """
    Create C{path} holding C{data}, mode 0600, atomically.

    @return: C{False} when the file exists already (nothing is written).
    @raise OSError: if it cannot be created.
    """
    if path.exists():
        return False
    created: list[bool] = []

    def link(tmp_name: str) -> None:
        try:
            os.link(tmp_name, path)
            created.append(True)
        except FileExistsError:
            pass  # another process created it first: theirs wins

    _write_then(path, data, link)
    return bool(created)


def replace_file(path: Path, data: bytes) -> None:
    """
    Make C{path} hold C{data}, mode 0600, atomically: readers see the old
    file or the new one, never a part.

    @raise OSError: if it cannot be written.
    """
    _write_then(path, data, lambda tmp_name: os.replace(tmp_name, path))


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


def load_old_signing_keys(path: Path) -> dict[str, OldVerifyKey]:
    """
    The signing keys this server retired: key id -> public key and
    C{expired_ts}, from the JSON object C{ruma-admin rotate-signing-key}
    writes (the shape of the spec's C{old_verify_keys}); none without the
    file.

    @raise ConfigError: if the file cannot be read or is not such an object.
    """
    path = Path(path)
    try:
        entries = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read the retired signing keys: {e}") from None
    if not isinstance(entries, dict):
        raise ConfigError(f"{path}: the retired signing keys must be a JSON object")
    keys: dict[str, OldVerifyKey] = {}
    for old_id, entry in entries.items():
        try:
            if not (old_id.startswith("ed25519:") and isinstance(entry["key"], str)
                    and is_json_int(entry["expired_ts"])):
                raise ValueError("not an ed25519 key id with a base64 key and an integer expired_ts")
            keys[old_id] = OldVerifyKey(VerifyKey(decode_base64(entry["key"])), entry["expired_ts"])
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"{path}: retired signing key {old_id!r}: {e}") from None
    return keys


def rotate_signing_key(signing_key_path: Path, old_keys_path: Path, now_ms: int) -> tuple[str, str]:
    """
    Retire the signing key at C{signing_key_path} as of C{now_ms}, keeping
    its public half in C{old_keys_path}, and replace it with a new key.

    The retired key is written down first: a crash between the two steps
    leaves the current key both current and retired, which the key server
    shows as current only (and which rotating again completes).

    @return: the retired and the new key ids.
    @raise ConfigError: if there is no key to retire, or a file cannot be
        read or written.
    """
    signing_key_path, old_keys_path = Path(signing_key_path), Path(old_keys_path)
    if not signing_key_path.exists():
        raise ConfigError(f"{signing_key_path}: no signing key to rotate")
    current = load_or_create_signing_key(signing_key_path)
    retired = load_old_signing_keys(old_keys_path)
    old_id = key_id(current)
    taken = {old_id, *retired}
    new_key = generate_signing_key(_new_key_version())
    while key_id(new_key) in taken:
        new_key = generate_signing_key(_new_key_version())
    entries = {kid: {"key": encode_base64(bytes(old.key)), "expired_ts": old.expired_ts}
               for kid, old in retired.items()}
    entries[old_id] = {"key": verify_key_base64(current), "expired_ts": now_ms}
    text = io.StringIO()
    write_signing_keys(text, [new_key])
    try:
        replace_file(old_keys_path, json.dumps(entries, indent=2, sort_keys=True).encode("ascii") + b"\n")
        replace_file(signing_key_path, text.getvalue().encode("ascii"))
    except OSError as e:
        raise ConfigError(f"cannot rotate the signing key: {e}") from None
    return old_id, key_id(new_key)


def create_secrets(config: Config) -> None:
    """Create the server's secrets where C{config} puts them, unless they exist."""
    read_or_create_secret(config.macaroon_key_path)
    load_or_create_signing_key(config.signing_key_path)
