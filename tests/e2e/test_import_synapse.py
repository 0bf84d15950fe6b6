"""
C{ruma-admin import-synapse}: a real Synapse's database (synapse_source.py)
moved into a new ruma_tx database, then the daemon started on it and used
the way the moved users would: old passwords, their own nio devices and
crypto stores, their profiles, settings, keys and media. Also: what the
import refuses, and resuming after it was killed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest_twisted
from admin_helpers import ADMIN, RUMA_ADMIN, ruma_admin
from scenario_steps import run_scenario
from synapse_source import (  # noqa: F401 (fixtures)
    import_target, imported, moved, needs_synapse, synapse_export, synapse_sqlite_export)

pytestmark = needs_synapse

IMPORTED_NIO = Path(__file__).with_name("imported_nio.py")
#: The summary line of a step: name, Synapse's count, ruma_tx's count, verdict.
SUMMARY_LINE = re.compile(r"^(\w+)\s+(\d+)\s+(\d+)\s+(ok|MISMATCH)$", re.MULTILINE)


def summary(output: str) -> dict[str, tuple[int, int, str]]:
    return {name: (int(source), int(imported), verdict)
            for name, source, imported, verdict in SUMMARY_LINE.findall(output)}




async def login(client, user_id: str, password: str) -> dict:
    response = await client.login(user_id, password)
    assert response.code == 200, response
    return response.json


def test_import_verifies_every_step(imported, synapse_export):
    """The summary lists every step with equal counts in Synapse and ruma_tx, and says so."""
    _, done = imported
    counts = summary(done.stdout)
    manifest = synapse_export.manifest
    for step in ("users", "profiles", "devices", "device_keys", "one_time_keys", "fallback_keys",
                 "cross_signing_keys", "cross_signing_signatures", "key_backup_versions", "key_backup_keys",
                 "media", "registration_tokens", "account_data", "room_account_data", "tags", "push_rules",
                 "pushers"):
        assert step in counts, done.stdout
    assert all(verdict == "ok" and source == imported_count
               for source, imported_count, verdict in counts.values()), done.stdout
    # admin, alice, bob, carol, mallory, the guest and the extra users
    assert counts["users"][0] == 6 + len(manifest["extra_users"])
    assert counts["media"][0] == len(manifest["media"])
    assert "every count matches" in done.stdout


def test_progress_bar_on_stderr(imported):
    """Each step shows a progress bar with its counts on stderr."""
    _, done = imported
    assert re.search(r"^users\s+\[#{30}\] \d+/\d+$", done.stderr, re.MULTILINE), done.stderr
    assert re.search(r"^media\s+\[[#-]{30}\] 0/2$", done.stderr, re.MULTILINE), done.stderr


def test_signing_key_is_synapses(imported, synapse_export):
    """ruma_tx now signs with Synapse's key, under its key id."""
    server, done = imported
    installed = (server.directory / "var" / "signing.key").read_text().split()
    theirs = synapse_export.signing_key.read_text().split()
    assert installed == theirs
    assert f"ed25519:{theirs[1]}" in done.stderr


def test_users_keep_their_devices_keys_and_history(imported, synapse_export):
    """
    With nio, alice and bob log in with their old passwords on their old
    devices: their keys are still theirs, and they decrypt the messages
    sent over Synapse.
    """
    server, _ = imported
    results = run_scenario(IMPORTED_NIO, server.base_url, str(synapse_export.manifest_path))
    failed = {step: detail for step, (ok, detail) in results.items() if not ok}
    assert not failed, failed


@pytest_twisted.ensureDeferred
async def test_old_access_tokens_need_a_new_login(moved, synapse_export):
    """Synapse's access tokens are not valid here: 401 M_UNKNOWN_TOKEN, not a soft logout."""
    response = await moved.request("GET", "account/whoami", token=synapse_export.manifest["old_access_token"])
    assert response.code == 401, response
    assert response.json["errcode"] == "M_UNKNOWN_TOKEN"
    assert response.json.get("soft_logout", False) is False


@pytest_twisted.ensureDeferred
async def test_profile_and_account_data(moved, synapse_export):
    """Alice's profile, global and per-room account data and ignore list are hers again."""
    manifest = synapse_export.manifest
    alice_id = manifest["users"]["alice"]
    alice = await login(moved, alice_id, manifest["password"])
    token = alice["access_token"]
    profile = await moved.request("GET", f"profile/{quote(alice_id)}")
    assert profile.code == 200 and profile.json == manifest["profile"], profile
    for data_type, content in manifest["account_data"].items():
        response = await moved.request("GET", f"user/{quote(alice_id)}/account_data/{data_type}", token=token)
        assert response.code == 200 and response.json == content, (data_type, response)
    room = manifest["room_account_data"]
    response = await moved.request(
        "GET", f"user/{quote(alice_id)}/rooms/{quote(room['room_id'])}/account_data/{room['type']}", token=token)
    assert response.code == 200 and response.json == room["content"], response
    sync = await moved.request("GET", "sync", token=token, query={"timeout": "0"})
    assert sync.code == 200, sync
    global_types = {event["type"] for event in sync.json["account_data"]["events"]}
    assert set(manifest["account_data"]) <= global_types, global_types


@pytest_twisted.ensureDeferred
async def test_room_tags(moved, synapse_export):
    """Alice's room tags come back with their order."""
    manifest = synapse_export.manifest
    alice_id = manifest["users"]["alice"]
    alice = await login(moved, alice_id, manifest["password"])
    for room_id, tags in manifest["tags"].items():
        response = await moved.request("GET", f"user/{quote(alice_id)}/rooms/{quote(room_id)}/tags",
                                       token=alice["access_token"])
        assert response.code == 200 and response.json == {"tags": tags}, response


@pytest_twisted.ensureDeferred
async def test_push_rules(moved, synapse_export):
    """Alice's own push rules and her changes to the server-default ones are in force."""
    manifest = synapse_export.manifest
    alice = await login(moved, manifest["users"]["alice"], manifest["password"])
    response = await moved.request("GET", "pushrules/", token=alice["access_token"])
    assert response.code == 200, response
    rules = {(kind, rule["rule_id"]): rule for kind, listed in response.json["global"].items() for rule in listed}
    for path, expected in manifest["push_rules"].items():
        kind, rule_id = path.split("/", 1)
        rule = rules[(kind, rule_id)]
        assert rule["enabled"] is True and rule["default"] is False, rule
        assert rule["actions"] == expected["actions"], rule
        for field in ("pattern", "conditions"):
            if field in expected:
                assert rule[field] == expected[field], rule
    assert rules[("override", ".m.rule.tombstone")]["enabled"] is False
    assert rules[("underride", ".m.rule.call")]["actions"] == ["notify"]
    # Alice's own override rule comes before the server-default ones but after the master rule.
    overrides = [rule["rule_id"] for rule in response.json["global"]["override"]]
    assert overrides.index("org.example.mute_notices") == 1, overrides


@pytest_twisted.ensureDeferred
async def test_pusher(moved, synapse_export):
    """Alice's pusher is still set, on her device."""
    manifest = synapse_export.manifest
    alice = await login(moved, manifest["users"]["alice"], manifest["password"])
    response = await moved.request("GET", "pushers", token=alice["access_token"])
    assert response.code == 200, response
    expected = manifest["pusher"]
    [pusher] = response.json["pushers"]
    assert {key: pusher.get(key) for key in expected} == expected, pusher


@pytest_twisted.ensureDeferred
async def test_devices_and_cross_signing(moved, synapse_export):
    """Alice's devices keep their names; her cross-signing keys and signatures are queryable."""
    manifest = synapse_export.manifest
    alice_id = manifest["users"]["alice"]
    alice = await login(moved, alice_id, manifest["password"])
    token = alice["access_token"]
    devices = await moved.request("GET", "devices", token=token)
    names = {device["device_id"]: device.get("display_name") for device in devices.json["devices"]}
    assert names[manifest["devices"]["alice"]] == "alice's laptop", names
    # The cross-signing keys are not devices.
    assert manifest["cross_signing"]["master"] not in names
    keys = await moved.request("POST", "keys/query", {"device_keys": {alice_id: []}}, token=token)
    assert keys.code == 200, keys
    cross = manifest["cross_signing"]
    master = keys.json["master_keys"][alice_id]
    assert master["keys"] == {f"ed25519:{cross['master']}": cross["master"]}
    device_id = manifest["devices"]["alice"]
    assert f"ed25519:{device_id}" in master["signatures"][alice_id], master
    assert keys.json["self_signing_keys"][alice_id]["keys"] == {
        f"ed25519:{cross['self_signing']}": cross["self_signing"]}
    device = keys.json["device_keys"][alice_id][device_id]
    assert f"ed25519:{cross['self_signing']}" in device["signatures"][alice_id], device
    # Only alice sees her own user-signing key.
    assert keys.json["user_signing_keys"][alice_id]["keys"] == {
        f"ed25519:{cross['user_signing']}": cross["user_signing"]}


@pytest_twisted.ensureDeferred
async def test_one_time_and_fallback_keys(moved, synapse_export):
    """
    Bob's one-time keys are claimable; back on her old device, alice's sync
    counts her one-time keys and lists her fallback key.
    """
    manifest = synapse_export.manifest
    bob_id, bob_device = manifest["users"]["bob"], manifest["devices"]["bob"]
    bob = await login(moved, bob_id, manifest["password"])
    claimed = await moved.request("POST", "keys/claim", {"one_time_keys": {bob_id: {bob_device: "signed_curve25519"}}},
                                  token=bob["access_token"])
    assert claimed.code == 200, claimed
    [key_id] = claimed.json["one_time_keys"][bob_id][bob_device]
    assert key_id.startswith("signed_curve25519:")
    alice_device = manifest["devices"]["alice"]
    response = await moved.login(manifest["users"]["alice"], manifest["password"], device_id=alice_device)
    assert response.code == 200 and response.json["device_id"] == alice_device, response
    sync = await moved.request("GET", "sync", token=response.json["access_token"], query={"timeout": "0"})
    assert sync.json["device_one_time_keys_count"].get("signed_curve25519", 0) > 0, sync.json
    assert sync.json["device_unused_fallback_key_types"] == ["signed_curve25519"], sync.json


@pytest_twisted.ensureDeferred
async def test_key_backup(moved, synapse_export):
    """Alice's key backup version and its keys are there."""
    manifest = synapse_export.manifest
    alice = await login(moved, manifest["users"]["alice"], manifest["password"])
    backup = manifest["key_backup"]
    version = await moved.request("GET", "room_keys/version", token=alice["access_token"])
    assert version.code == 200, version
    assert version.json["version"] == backup["version"] and version.json["auth_data"] == backup["auth_data"]
    assert version.json["count"] == len(backup["sessions"])
    keys = await moved.request("GET", "room_keys/keys", token=alice["access_token"],
                               query={"version": backup["version"]})
    assert sorted(keys.json["rooms"][backup["room_id"]]["sessions"]) == backup["sessions"]


@pytest_twisted.ensureDeferred
async def test_media_downloadable(moved, synapse_export):
    """Media uploaded to Synapse downloads from ruma_tx with the same bytes, type and name."""
    manifest = synapse_export.manifest
    bob = await login(moved, manifest["users"]["bob"], manifest["password"])
    for media in manifest["media"]:
        server_name, media_id = media["mxc"][len("mxc://"):].split("/", 1)
        response = await moved.request("GET", f"/_matrix/client/v1/media/download/{server_name}/{media_id}",
                                       token=bob["access_token"])
        assert response.code == 200, response
        assert hashlib.sha256(response.raw).hexdigest() == media["sha256"]
        assert response.headers["content-type"].startswith(media["content_type"])
        assert media["filename"] in response.headers.get("content-disposition", "")


@pytest_twisted.ensureDeferred
async def test_account_states(moved, synapse_export):
    """The admin is an admin; the deactivated user stays out; the locked one is locked; guests go on numbering."""
    manifest = synapse_export.manifest
    admin = await login(moved, manifest["admin"], manifest["password"])
    version = await moved.request("GET", f"{ADMIN}/v1/server_version", token=admin["access_token"])
    assert version.code == 200, version
    deactivated = await moved.login(manifest["deactivated"], manifest["password"])
    assert deactivated.code in (401, 403) and deactivated.json["errcode"] in ("M_FORBIDDEN", "M_USER_DEACTIVATED")
    locked = await moved.login(manifest["locked"], manifest["password"])
    assert locked.code == 401 and locked.json["errcode"] == "M_USER_LOCKED", locked
    guest = await moved.register_guest()
    assert guest["user_id"] != manifest["guest"]


@pytest_twisted.ensureDeferred
async def test_registration_token(moved, synapse_export):
    """Synapse's registration token is still valid."""
    response = await moved.request("GET", "/_matrix/client/v1/register/m.login.registration_token/validity",
                                   query={"token": synapse_export.manifest["registration_token"]})
    assert response.code == 200 and response.json == {"valid": True}, response


def test_refuses_a_finished_import(imported, synapse_export):
    """Importing again into the imported database is refused."""
    server, _ = imported
    done = synapse_export.import_into(server)
    assert done.returncode == 1
    assert "already holds a finished import" in done.stderr


def test_refuses_a_database_with_users(synapse_export, import_target):
    """A database that already has a user of its own is refused, and left as it was."""
    server = import_target(synapse_export.server_name)
    assert ruma_admin("migrate", "--config", server.config_path).returncode == 0
    made = ruma_admin("register-user", "--config", server.config_path, "someone", stdin="a password\n")
    assert made.returncode == 0, made.stderr
    done = synapse_export.import_into(server)
    assert done.returncode == 1
    assert "already holds users or rooms" in done.stderr
    assert not (server.directory / "var" / "signing.key").exists()


def test_refuses_another_server_name(synapse_export, import_target):
    """A ruma_tx configured for another server name is refused: ids cannot change."""
    server = import_target("elsewhere.example")
    done = synapse_export.import_into(server)
    assert done.returncode == 1
    assert "elsewhere.example" in done.stderr and synapse_export.server_name in done.stderr


def test_asks_before_importing(synapse_export, import_target):
    """Without --yes and without a terminal, nothing is imported."""
    server = import_target(synapse_export.server_name)
    done = ruma_admin(*synapse_export.import_args(server))
    assert done.returncode == 1 and "--yes" in done.stderr


def test_resumes_after_being_killed(synapse_export, import_target, imported):
    """
    Killed with SIGKILL mid-import, the import resumes where it stopped
    when run again, and ends with the same counts as an import in one go.
    """
    server = import_target(synapse_export.server_name)
    process = subprocess.Popen([RUMA_ADMIN, *synapse_export.import_args(server, "--yes", "--batch-size", "1")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        for line in process.stderr:
            seen.append(line)
            if line.startswith("one_time_keys"):
                break
    finally:
        process.kill()
        process.wait(30)
    assert any(line.startswith("one_time_keys") for line in seen), "".join(seen)
    resumed = synapse_export.import_into(server)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming the unfinished import" in resumed.stderr
    # The users were done before the kill: shown done at once, not walked again.
    assert re.search(r"^users\s+\[#{30}\]", resumed.stderr, re.MULTILINE)
    assert not re.search(r"^users\s+\[-{30}\]", resumed.stderr, re.MULTILINE), resumed.stderr
    assert summary(resumed.stdout) == summary(imported[1].stdout)


def test_missing_media_file_fails_verification_until_restored(synapse_export, import_target, tmp_path):
    """
    A media file missing from Synapse's store is reported, the counts
    differ and the exit code is 1; once the file is back, running the
    command again imports it and verification passes.
    """
    media_store = tmp_path / "media_store"
    shutil.copytree(synapse_export.media_store, media_store)
    media_id = synapse_export.manifest["media"][1]["mxc"].rsplit("/", 1)[1]
    missing = media_store / "local_content" / media_id[:2] / media_id[2:4] / media_id[4:]
    kept = tmp_path / "kept"
    missing.rename(kept)
    export = dataclasses.replace(synapse_export, media_store=media_store)
    server = import_target(export.server_name)
    failed = export.import_into(server)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert summary(failed.stdout)["media"] == (2, 1, "MISMATCH")
    assert f"media {media_id}: no file" in failed.stderr and "verification failed" in failed.stderr
    kept.rename(missing)
    fixed = export.import_into(server)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "resuming the unfinished import" in fixed.stderr
    assert summary(fixed.stdout)["media"] == (2, 2, "ok")


@pytest_twisted.ensureDeferred
async def test_sqlite_source(synapse_sqlite_export, import_target, make_client):
    """A Synapse on SQLite moves too: old password, profile, account data and media."""
    export = synapse_sqlite_export
    server = import_target(export.server_name)
    done = export.import_into(server)
    assert done.returncode == 0, done.stdout + done.stderr
    server.start()
    client = make_client(server)
    manifest = export.manifest
    alice_id = manifest["users"]["alice"]
    alice = await login(client, alice_id, manifest["password"])
    profile = await client.request("GET", f"profile/{quote(alice_id)}")
    assert profile.json == manifest["profile"]
    settings = await client.request("GET", f"user/{quote(alice_id)}/account_data/org.example.settings",
                                    token=alice["access_token"])
    assert settings.json == manifest["account_data"]["org.example.settings"]
    for media in manifest["media"]:
        server_name, media_id = media["mxc"][len("mxc://"):].split("/", 1)
        response = await client.request("GET", f"/_matrix/client/v1/media/download/{server_name}/{media_id}",
                                        token=alice["access_token"])
        assert hashlib.sha256(response.raw).hexdigest() == media["sha256"]
    assert all(verdict == "ok" for _, _, verdict in summary(done.stdout).values()), done.stdout
