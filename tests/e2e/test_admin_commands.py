"""
The ruma-admin commands that act through the running daemon's admin API,
run as the installed console script against a real daemon.
"""
import os
from urllib.parse import quote

import pytest_twisted
from admin_helpers import ADMIN, register_admin, ruma_admin
from conftest import PASSWORD


def as_admin(client, admin: dict, *args, stdin: str = "", token: bool = False):
    """Run a ruma-admin API command as C{admin}: by its password (first stdin line) or its token."""
    base = [args[0], "--config", client.server.config_path, *args[1:]]
    if token:
        environment = {**os.environ, "RUMA_ADMIN_TOKEN": admin["access_token"]}
        return ruma_admin(*base, stdin=stdin, env=environment)
    return ruma_admin(*base, "--admin-user", admin["user_id"], stdin=PASSWORD + "\n" + stdin)


def ok(result) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


@pytest_twisted.ensureDeferred
async def test_list_users_and_make_admin(client):
    """list-users prints every user; make-admin lets a user into the admin API, --revoke shuts it again."""
    admin = await register_admin(client)
    bob = await client.register()
    listed = ok(as_admin(client, admin, "list-users"))
    assert bob["user_id"] in listed and admin["user_id"] in listed
    assert f"{admin['user_id']}\t" in listed and "admin" in listed.split(admin["user_id"], 1)[1].splitlines()[0]
    ok(as_admin(client, admin, "make-admin", bob["user_id"], token=True))
    version = await client.request("GET", f"{ADMIN}/v2/users", token=bob["access_token"])
    assert version.code == 200, version
    ok(as_admin(client, admin, "make-admin", bob["user_id"], "--revoke"))
    version = await client.request("GET", f"{ADMIN}/v2/users", token=bob["access_token"])
    assert version.code == 403
    # The command's own login session is gone once it is done.
    devices = await client.request("GET", "devices", token=admin["access_token"])
    assert [d["device_id"] for d in devices.json["devices"]] == [admin["device_id"]]


@pytest_twisted.ensureDeferred
async def test_reset_password(client):
    """reset-password sets the new password (the second stdin line) and logs the user's devices out."""
    admin = await register_admin(client)
    bob = await client.register()
    ok(as_admin(client, admin, "reset-password", bob["user_id"], stdin="a new password\n"))
    assert (await client.request("GET", "account/whoami", token=bob["access_token"])).code == 401
    assert (await client.login(bob["user_id"], "a new password")).code == 200
    assert (await client.login(bob["user_id"])).code == 403


@pytest_twisted.ensureDeferred
async def test_create_registration_token(client):
    """create-registration-token prints a token the validity endpoint accepts."""
    admin = await register_admin(client)
    token = ok(as_admin(client, admin, "create-registration-token", "--uses", "1", "--valid-days", "1")).strip()
    validity = await client.request("GET", "/_matrix/client/v1/register/m.login.registration_token/validity",
                                    query={"token": token})
    assert validity.code == 200 and validity.json == {"valid": True}


@pytest_twisted.ensureDeferred
async def test_purge_room(client):
    """purge-room removes the room's local members and the room itself, and says how many it removed."""
    admin = await register_admin(client)
    bob = await client.register()
    room = await client.request("POST", "createRoom", {"name": "doomed"}, token=bob["access_token"])
    room_id = room.json["room_id"]
    printed = ok(as_admin(client, admin, "purge-room", room_id, "--block"))
    assert "1 local users removed" in printed
    joined = await client.request("GET", "joined_rooms", token=bob["access_token"])
    assert room_id not in joined.json["joined_rooms"]
    rejoin = await client.request("POST", f"rooms/{quote(room_id)}/join", {}, token=bob["access_token"])
    assert rejoin.code == 403


@pytest_twisted.ensureDeferred
async def test_quarantine_media(client):
    """quarantine-media stops the media being served."""
    admin = await register_admin(client)
    bob = await client.register()
    upload = await client.request("POST", "/_matrix/media/v3/upload", b"not a secret", token=bob["access_token"],
                                  headers={"Content-Type": "text/plain"})
    assert upload.code == 200, upload
    mxc = upload.json["content_uri"]
    ok(as_admin(client, admin, "quarantine-media", mxc))
    server_name, media_id = mxc.removeprefix("mxc://").split("/")
    download = await client.request("GET", f"/_matrix/client/v1/media/download/{server_name}/{media_id}",
                                    token=bob["access_token"])
    assert download.code == 404


@pytest_twisted.ensureDeferred
async def test_refusals_are_one_line(client):
    """Without admin credentials, or as a non-admin, the command fails with one line and exit code 1."""
    bob = await client.register()
    missing = ruma_admin("list-users", "--config", client.server.config_path)
    assert missing.returncode == 1 and "RUMA_ADMIN_TOKEN" in missing.stderr
    refused = as_admin(client, bob, "list-users")
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "not a server admin" in refused.stderr and "403" in refused.stderr
