"""
Locked and suspended accounts through the real daemon: the spec's admin
endpoints (/_matrix/client/v1/admin/lock and /suspend), what a locked or
suspended user is refused and what they may still do.
"""
import shutil
from urllib.parse import quote

import pytest_twisted
from admin_helpers import register_admin
from conftest import Homeserver, unique_localpart
from polling import DEADLINE_S
from room_helpers import create_room, join, ok, send_text
from twisted.internet import reactor
from twisted.internet.task import deferLater

ADMIN_V1 = "/_matrix/client/v1/admin"


async def set_flag(client, admin: dict, kind: str, user_id: str, value: bool):
    """PUT /admin/lock or /admin/suspend (C{kind}); the response."""
    field = "locked" if kind == "lock" else "suspended"
    return await client.request("PUT", f"{ADMIN_V1}/{kind}/{quote(user_id)}", {field: value},
                                token=admin["access_token"])


async def flag(client, admin: dict, kind: str, user_id: str):
    return await client.request("GET", f"{ADMIN_V1}/{kind}/{quote(user_id)}", token=admin["access_token"])


def assert_locked(response) -> None:
    assert response.code == 401, response
    assert response.json["errcode"] == "M_USER_LOCKED" and response.json["soft_logout"] is True, response


def assert_suspended(response) -> None:
    assert (response.code, response.json["errcode"]) == (403, "M_USER_SUSPENDED"), response


@pytest_twisted.ensureDeferred
async def test_a_locked_user_is_soft_logged_out_until_unlocked(client):
    """Every request but logout gets 401 M_USER_LOCKED (a token in use included); unlocking restores the same token."""
    admin = await register_admin(client)
    user = await client.register()
    whoami = await client.request("GET", "account/whoami", token=user["access_token"])
    assert whoami.code == 200  # the token is verified and cached before the lock

    locked = await set_flag(client, admin, "lock", user["user_id"], True)
    assert (locked.code, locked.json) == (200, {"locked": True}), locked
    assert (await flag(client, admin, "lock", user["user_id"])).json == {"locked": True}
    for method, path in (("GET", "account/whoami"), ("GET", "sync"), ("POST", "createRoom")):
        assert_locked(await client.request(method, path, {} if method == "POST" else None,
                                           token=user["access_token"]))
    localpart = user["user_id"][1:].split(":")[0]
    assert_locked(await client.login(localpart))
    wrong_password = await client.login(localpart, password="not the password")
    assert (wrong_password.code, wrong_password.json["errcode"]) == (403, "M_FORBIDDEN")

    unlocked = await set_flag(client, admin, "lock", user["user_id"], False)
    assert unlocked.json == {"locked": False}
    whoami = await client.request("GET", "account/whoami", token=user["access_token"])
    assert (whoami.code, whoami.json["user_id"]) == (200, user["user_id"])
    assert (await client.login(localpart)).code == 200


@pytest_twisted.ensureDeferred
async def test_a_locked_user_may_log_out(client):
    """/logout and /logout/all still work while locked, and end those sessions."""
    admin = await register_admin(client)
    user = await client.register()
    localpart = user["user_id"][1:].split(":")[0]
    second = (await client.login(localpart)).json
    await set_flag(client, admin, "lock", user["user_id"], True)
    logout = await client.request("POST", "logout", {}, token=second["access_token"])
    assert (logout.code, logout.json) == (200, {}), logout
    logout_all = await client.request("POST", "logout/all", {}, token=user["access_token"])
    assert logout_all.code == 200, logout_all
    await set_flag(client, admin, "lock", user["user_id"], False)
    for token in (user["access_token"], second["access_token"]):
        gone = await client.request("GET", "account/whoami", token=token)
        assert (gone.code, gone.json["errcode"]) == (401, "M_UNKNOWN_TOKEN"), gone


@pytest_twisted.ensureDeferred
async def test_a_suspended_user_reads_but_cannot_act(client):
    """Suspended: send, state, join, invite, create, profile and upload are 403 M_USER_SUSPENDED; reading, own redactions and leaving work."""
    admin = await register_admin(client)
    owner = await client.register()
    user = await client.register()
    room_id = await create_room(client, owner, preset="public_chat")
    await join(client, user, room_id)
    theirs = await send_text(client, owner, room_id, "hello", "t1")
    mine = await send_text(client, user, room_id, "mine", "t2")
    other_room = await create_room(client, owner, preset="public_chat")

    suspended = await set_flag(client, admin, "suspend", user["user_id"], True)
    assert (suspended.code, suspended.json) == (200, {"suspended": True}), suspended
    assert (await flag(client, admin, "suspend", user["user_id"])).json == {"suspended": True}
    token = user["access_token"]
    room = f"rooms/{quote(room_id)}"
    for method, path, body in (
        ("PUT", f"{room}/send/m.room.message/t3", {"msgtype": "m.text", "body": "no"}),
        ("PUT", f"{room}/state/m.room.topic", {"topic": "no"}),
        ("PUT", f"{room}/state/m.room.member/{quote(user['user_id'])}", {"membership": "join"}),
        ("POST", f"rooms/{quote(other_room)}/join", {}),
        ("POST", f"join/{quote(other_room)}", {}),
        ("POST", f"{room}/invite", {"user_id": admin["user_id"]}),
        ("POST", "createRoom", {}),
        ("PUT", f"profile/{quote(user['user_id'])}/displayname", {"displayname": "no"}),
        ("PUT", f"{room}/redact/{quote(theirs)}/t4", {}),
    ):
        assert_suspended(await client.request(method, path, body, token=token))
    upload = await client.request("POST", "/_matrix/media/v3/upload", b"data", token=token,
                                  headers={"Content-Type": "text/plain"})
    assert_suspended(upload)

    synced = await ok(client, "GET", "sync", user=user)
    assert room_id in synced["rooms"]["join"]
    messages = await ok(client, "GET", f"{room}/messages", user=user, query={"dir": "b"})
    assert {theirs, mine} <= {event["event_id"] for event in messages["chunk"]}
    await ok(client, "PUT", f"{room}/redact/{quote(mine)}/t5", {}, user=user)
    await ok(client, "POST", f"{room}/leave", {}, user=user)

    await set_flag(client, admin, "suspend", user["user_id"], False)
    await join(client, user, room_id)
    await send_text(client, user, room_id, "back", "t6")


@pytest_twisted.ensureDeferred
async def test_only_admins_moderate_and_only_local_accounts(client):
    """Non-admins get 403; remote ids 400; unknown users 404; the admin's own and other admins' accounts 403."""
    admin = await register_admin(client)
    other_admin = await register_admin(client)
    user = await client.register()
    for kind in ("lock", "suspend"):
        field = "locked" if kind == "lock" else "suspended"
        path = f"{ADMIN_V1}/{kind}/{quote(admin['user_id'])}"
        for method in ("GET", "PUT"):
            refused = await client.request(method, path, {field: True} if method == "PUT" else None,
                                           token=user["access_token"])
            assert (refused.code, refused.json["errcode"]) == (403, "M_FORBIDDEN"), refused
        for user_id, code, errcode in (("@someone:elsewhere.example", 400, "M_INVALID_PARAM"),
                                       (f"@{unique_localpart('nobody')}:test.local", 404, "M_NOT_FOUND"),
                                       (admin["user_id"], 403, "M_FORBIDDEN"),
                                       (other_admin["user_id"], 403, "M_FORBIDDEN")):
            answer = await set_flag(client, admin, kind, user_id, True)
            assert (answer.code, answer.json["errcode"]) == (code, errcode), (kind, user_id, answer)
        assert (await flag(client, admin, kind, user["user_id"])).json == {field: False}

    capabilities = await ok(client, "GET", "capabilities", user=admin)
    assert capabilities["capabilities"]["m.account_moderation"] == {"lock": True, "suspend": True}
    capabilities = await ok(client, "GET", "capabilities", user=user)
    assert "m.account_moderation" not in capabilities["capabilities"]


@pytest_twisted.ensureDeferred
async def test_a_lock_reaches_every_daemon_of_the_database(start_homeserver, make_client, tmp_path):
    """A second daemon on the same database, which verified the token before, refuses it once locked."""
    first = start_homeserver("[rate_limits]\nenabled = false\n")
    second = Homeserver(tmp_path, first.dsn)
    (tmp_path / "var").mkdir()
    shutil.copy(first.directory / "var" / "macaroon_secret.key", tmp_path / "var")
    second.start()
    try:
        client, other = make_client(first), make_client(second)
        admin = await register_admin(client)
        user = await client.register()
        assert (await other.request("GET", "account/whoami", token=user["access_token"])).code == 200
        await set_flag(client, admin, "lock", user["user_id"], True)
        answer = None
        for _ in range(DEADLINE_S * 10):
            answer = await other.request("GET", "account/whoami", token=user["access_token"])
            if answer.code != 200:
                break
            await deferLater(reactor, 0.1, lambda: None)
        assert_locked(answer)
    finally:
        second.stop()
