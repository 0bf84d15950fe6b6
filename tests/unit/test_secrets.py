"""Rotating the signing key and reading the retired ones (ruma_tx.runtime.secrets)."""
import json
import os
import stat

import pytest

from ruma_tx.matrix.signing import key_id, verify_key_base64
from ruma_tx.runtime.config import ConfigError
from ruma_tx.runtime.secrets import load_old_signing_keys, load_or_create_signing_key, rotate_signing_key

NOW_MS = 1_700_000_000_000


def test_rotation_retires_the_key_as_of_now_and_makes_a_new_one(tmp_path):
    """The key becomes a retired key expired now; a new key replaces it; both files are 0600."""
    key_path, old_path = tmp_path / "signing.key", tmp_path / "old_signing_keys.json"
    first = load_or_create_signing_key(key_path)

    retired_id, new_id = rotate_signing_key(key_path, old_path, NOW_MS)
    second = load_or_create_signing_key(key_path)
    assert (retired_id, new_id) == (key_id(first), key_id(second))
    assert key_id(second) != key_id(first)
    retired = load_old_signing_keys(old_path)
    assert list(retired) == [key_id(first)]
    assert retired[key_id(first)].expired_ts == NOW_MS
    assert bytes(retired[key_id(first)].key) == bytes(first.verify_key)
    for path in (key_path, old_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old_signing_keys.json", "signing.key"]

    # A second rotation keeps the first retired key, with its own expiry.
    rotate_signing_key(key_path, old_path, NOW_MS + 1000)
    retired = load_old_signing_keys(old_path)
    assert {kid: old.expired_ts for kid, old in retired.items()} == {key_id(first): NOW_MS,
                                                                     key_id(second): NOW_MS + 1000}


def test_rotation_needs_a_key(tmp_path):
    """Nothing is rotated (nor created) where there is no signing key yet."""
    with pytest.raises(ConfigError, match="no signing key"):
        rotate_signing_key(tmp_path / "signing.key", tmp_path / "old.json", NOW_MS)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rotation_keeps_the_key(tmp_path, monkeypatch):
    """When the new key cannot be written, the old key stays current (and is listed as retired too)."""
    key_path, old_path = tmp_path / "signing.key", tmp_path / "old.json"
    first = load_or_create_signing_key(key_path)
    real_replace = os.replace

    def replace(source, target):
        if str(target) == str(key_path):
            raise OSError(28, "No space left on device")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ConfigError, match="No space left"):
        rotate_signing_key(key_path, old_path, NOW_MS)
    assert key_id(load_or_create_signing_key(key_path)) == key_id(first)
    assert list(load_old_signing_keys(old_path)) == [key_id(first)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json", "signing.key"]


def test_no_retired_keys_without_the_file(tmp_path):
    """A server that never rotated has no retired keys."""
    assert load_old_signing_keys(tmp_path / "old_signing_keys.json") == {}


@pytest.mark.parametrize("content", [
    "not json", "[]", '{"ed25519:a": {"key": "AAAA"}}', '{"ed25519:a": {"key": 1, "expired_ts": 1}}',
    '{"ed25519:a": {"key": "AAAA", "expired_ts": true}}', '{"curve:a": {"key": "AAAA", "expired_ts": 1}}',
    '{"ed25519:a": {"key": "AAAA", "expired_ts": 1}}', '{"ed25519:a": []}',
])
def test_a_damaged_retired_keys_file_is_refused(tmp_path, content):
    """A retired keys file that is not the expected object is a config error naming the file."""
    path = tmp_path / "old_signing_keys.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="old_signing_keys.json"):
        load_old_signing_keys(path)


def test_retired_keys_file_is_the_spec_shape(tmp_path):
    """The file holds what old_verify_keys publishes: key id -> public key and expired_ts."""
    key_path, old_path = tmp_path / "signing.key", tmp_path / "old.json"
    first = load_or_create_signing_key(key_path)
    rotate_signing_key(key_path, old_path, NOW_MS)
    assert json.loads(old_path.read_text()) == {key_id(first): {"key": verify_key_base64(first),
                                                                "expired_ts": NOW_MS}}
