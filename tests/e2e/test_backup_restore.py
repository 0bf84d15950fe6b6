"""
ruma-admin backup and restore, run as the installed console script: a server
backed up while its daemon runs comes back whole in a new server directory.
"""
import json
import os
import stat
from urllib.parse import quote

import pytest_twisted
from admin_helpers import ruma_admin
from conftest import PASSWORD, Homeserver, unique_localpart
from media_helpers import download, upload
from room_helpers import create_room, ok, send_text
from test_admin import assert_error, assert_ok

from ruma_tx.runtime.config import load_config
from ruma_tx.runtime.secrets import create_secrets

NO_RATE_LIMITS = "[rate_limits]\nenabled = false\n"


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def secret_files(config_path) -> dict[str, bytes]:
    config = load_config(config_path)
    return {"signing.key": config.signing_key_path.read_bytes(),
            "macaroon_secret.key": config.macaroon_key_path.read_bytes()}


@pytest_twisted.ensureDeferred
async def test_restored_server_is_the_backed_up_one(start_homeserver, make_client, tmp_path_factory):
    """
    A backup taken while the daemon runs on its embedded PostgreSQL, restored
    into a new server directory of the same name: the user logs in with the
    old password and their old access token, sees the room and its messages,
    downloads the media, and the server signs with the old key.
    """
    old = start_homeserver(NO_RATE_LIMITS, embedded=True)
    client = make_client(old)
    alice = await client.register(unique_localpart("alice"))
    room_id = await create_room(client, alice, name="Before the backup")
    bodies = [f"message {n} before the backup" for n in range(3)]
    for n, body in enumerate(bodies):
        await send_text(client, alice, room_id, body, f"txn{n}")
    content = b"the bytes of a file uploaded before the backup\n"
    content_uri = await upload(client, alice["access_token"], content, "text/plain")

    output = tmp_path_factory.mktemp("backups") / "nightly"
    stdout = assert_ok(ruma_admin("backup", "--config", old.config_path, "--output", output))
    assert "pg_dump" in stdout and "the backup is complete" in stdout, stdout
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["server_name"] == old.server_name
    assert manifest["schema_version"] >= 1
    assert manifest["media"] == {"backend": "local", "included": True, "files": 1, "bytes": len(content)}
    assert set(manifest["secrets"]) == {"signing.key", "macaroon_secret.key"}
    old_secrets = secret_files(old.config_path)
    for name, data in old_secrets.items():
        assert (output / "secrets" / name).read_bytes() == data
        assert mode_of(output / "secrets" / name) == 0o600
    assert mode_of(output) == 0o700

    # A second backup into the same directory would mix two backups.
    assert_error(ruma_admin("backup", "--config", old.config_path, "--output", output), "not empty", str(output))
    assert json.loads((output / "manifest.json").read_text()) == manifest
    old.stop()

    new = Homeserver(tmp_path_factory.mktemp("restored"), None, server_name=old.server_name,
                     extra_config=NO_RATE_LIMITS)
    create_secrets(load_config(new.config_path))  # a new server's own keys, as generate-config makes
    assert secret_files(new.config_path) != old_secrets
    stdout = assert_ok(ruma_admin("restore", "--config", new.config_path, "--input", output))
    assert "pg_restore" in stdout and f"restored {old.server_name}" in stdout, stdout
    assert secret_files(new.config_path) == old_secrets
    new_config = load_config(new.config_path)
    assert mode_of(new_config.signing_key_path) == 0o600
    assert mode_of(new_config.macaroon_key_path) == 0o600

    new.start()
    try:
        restored = make_client(new)
        whoami = await restored.request("GET", "account/whoami", token=alice["access_token"])
        assert whoami.code == 200, whoami
        assert whoami.json["user_id"] == alice["user_id"]
        login = await restored.login(alice["user_id"], PASSWORD)
        assert login.code == 200, login
        token = login.json["access_token"]

        synced = await ok(restored, "GET", "sync", user=login.json)
        timeline = synced["rooms"]["join"][room_id]["timeline"]["events"]
        assert bodies[-1] in [event["content"].get("body") for event in timeline]
        history = await ok(restored, "GET", f"rooms/{quote(room_id)}/messages", user=login.json,
                           query={"dir": "b", "limit": "50"})
        sent = [event["content"]["body"] for event in history["chunk"] if event["type"] == "m.room.message"]
        assert sent == list(reversed(bodies))
        name = await ok(restored, "GET", f"rooms/{quote(room_id)}/state/m.room.name", user=login.json)
        assert name["name"] == "Before the backup"

        media = await download(restored, token, content_uri)
        assert media.code == 200, media
        assert media.raw == content

        assert_error(ruma_admin("restore", "--config", new.config_path, "--input", output),
                     "daemon is running")
    finally:
        new.stop()
    assert_error(ruma_admin("restore", "--config", new.config_path, "--input", output),
                 "not empty", "restore only into a new, empty database")


def write_config(directory, dsn: str, server_name: str):
    directory.mkdir()
    path = directory / "ruma.toml"
    path.write_text(f'server_name = "{server_name}"\n[database]\ndsn = "{dsn}"\n'
                    f"[passwords]\nbcrypt_rounds = 4\n")
    return path


def with_password(dsn: str, password: str) -> str:
    """The test cluster's URI DSN with a password (which its trust authentication never asks for)."""
    scheme, rest = dsn.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{password}@{host}"


def test_configured_database_round_trip_never_shows_the_password(pg_cluster, tmp_path):
    """
    With [database] dsn: the backup restores into another new database of
    the same server name, but not over a database that holds a server, nor
    into a server of another name; no message shows the DSN's password.
    """
    password = "never-shown-pw"
    first = with_password(pg_cluster.create_database(f"backup_{unique_localpart('src')}"), password)
    source = write_config(tmp_path / "source", first, "backup.test")
    assert_ok(ruma_admin("migrate", "--config", source))
    assert_ok(ruma_admin("register-user", "--config", source, "bob", "--password", "bob's password"))
    create_secrets(load_config(source))

    output = tmp_path / "backup"
    result = ruma_admin("backup", "--config", source, "--output", output)
    stdout = assert_ok(result)
    assert "password=***" in stdout, stdout
    assert password not in stdout + result.stderr

    refused = ruma_admin("restore", "--config", source, "--input", output)
    line = assert_error(refused, "not empty")
    assert password not in line

    other_name = write_config(tmp_path / "other", with_password(
        pg_cluster.create_database(f"backup_{unique_localpart('other')}"), password), "other.test")
    assert_error(ruma_admin("restore", "--config", other_name, "--input", output),
                 "backup.test", "other.test", "cannot change its name")

    second = with_password(pg_cluster.create_database(f"backup_{unique_localpart('dst')}"), password)
    target = write_config(tmp_path / "target", second, "backup.test")
    result = ruma_admin("restore", "--config", target, "--input", output)
    assert_ok(result)
    assert password not in result.stdout + result.stderr
    assert secret_files(target) == secret_files(source)
    # The user came back with the database: the name is taken.
    assert_error(ruma_admin("register-user", "--config", target, "bob", "--password", "x"), "already exists")


def test_restore_refuses_a_directory_that_is_not_a_backup(pg_cluster, tmp_path):
    """A directory without a manifest (an unfinished backup) is refused before anything is written."""
    dsn = pg_cluster.create_database(f"backup_{unique_localpart('none')}")
    config = write_config(tmp_path / "server", dsn, "backup.test")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "database.dump").write_bytes(b"")
    assert_error(ruma_admin("restore", "--config", config, "--input", tmp_path / "half"),
                 "no manifest.json", "unfinished")
    assert not load_config(config).signing_key_path.exists()

