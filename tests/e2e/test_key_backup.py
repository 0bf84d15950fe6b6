"""
Server-side key backups through the real daemon: backup versions, keys at
the three path levels, the spec's replacement rule, etags and counts, and
the errors for wrong, unknown and other users' versions.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest_twisted
from twisted.internet import defer

ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"
ROOM_A = "!backupa:test.local"
ROOM_B = "!backupb:test.local"


def auth_data(public_key: str = "pubkey") -> dict:
    return {"public_key": public_key, "signatures": {}}


def key(verified: bool = False, first: int = 0, forwarded: int = 0, tag: str = "x") -> dict:
    return {
        "first_message_index": first,
        "forwarded_count": forwarded,
        "is_verified": verified,
        "session_data": {"ephemeral": "eph", "ciphertext": f"cipher-{tag}", "mac": "mac"},
    }


def keys_path(room_id: str | None = None, session_id: str | None = None) -> str:
    path = "room_keys/keys"
    if room_id is not None:
        path += "/" + quote(room_id, safe="")
    if session_id is not None:
        path += "/" + quote(session_id, safe="")
    return path


async def create_version(client, user: dict, data: dict | None = None) -> str:
    response = await client.request("POST", "room_keys/version",
                                    {"algorithm": ALGORITHM, "auth_data": data or auth_data()},
                                    token=user["access_token"])
    assert response.code == 200, response
    return response.json["version"]


async def call(client, user: dict, method: str, path: str, body=None, version: str | None = None,
               expect: int = 200):
    response = await client.request(method, path, body, token=user["access_token"],
                                    query=None if version is None else {"version": version})
    assert response.code == expect, response
    return response.json


@pytest_twisted.ensureDeferred
async def test_backup_versions_lifecycle(client):
    """Versions are created with increasing ids, read, updated, deleted, and never reused."""
    user = await client.register()
    token = user["access_token"]
    missing = await client.request("GET", "room_keys/version", token=token)
    assert (missing.code, missing.json["errcode"]) == (404, "M_NOT_FOUND")

    assert await create_version(client, user, auth_data("one")) == "1"
    current = await call(client, user, "GET", "room_keys/version")
    assert current == {"algorithm": ALGORITHM, "auth_data": auth_data("one"), "count": 0,
                       "etag": current["etag"], "version": "1"}
    assert await create_version(client, user, auth_data("two")) == "2"
    assert (await call(client, user, "GET", "room_keys/version"))["version"] == "2"
    assert (await call(client, user, "GET", "room_keys/version/1"))["auth_data"] == auth_data("one")

    # Updating: only auth_data changes; the body's version must match; algorithm must match.
    assert await call(client, user, "PUT", "room_keys/version/1",
                      {"algorithm": ALGORITHM, "auth_data": auth_data("new"), "version": "1"}) == {}
    assert (await call(client, user, "GET", "room_keys/version/1"))["auth_data"] == auth_data("new")
    mismatch = await call(client, user, "PUT", "room_keys/version/1",
                          {"algorithm": ALGORITHM, "auth_data": {}, "version": "2"}, expect=400)
    assert mismatch["errcode"] == "M_INVALID_PARAM"
    other_algorithm = await call(client, user, "PUT", "room_keys/version/2",
                                 {"algorithm": "org.example.other", "auth_data": {}}, expect=400)
    assert other_algorithm["errcode"] == "M_INVALID_PARAM"
    assert (await call(client, user, "GET", "room_keys/version/2"))["auth_data"] == auth_data("two")
    unknown = await call(client, user, "PUT", "room_keys/version/7",
                         {"algorithm": ALGORITHM, "auth_data": {}}, expect=404)
    assert unknown["errcode"] == "M_NOT_FOUND"

    # Deleting the current version makes the previous one current again.
    assert await call(client, user, "DELETE", "room_keys/version/2") == {}
    assert (await call(client, user, "GET", "room_keys/version"))["version"] == "1"
    assert (await call(client, user, "GET", "room_keys/version/2", expect=404))["errcode"] == "M_NOT_FOUND"
    assert await call(client, user, "DELETE", "room_keys/version/2") == {}  # again: still fine
    await call(client, user, "PUT", "room_keys/version/2",
               {"algorithm": ALGORITHM, "auth_data": {}}, expect=404)
    for never in ("9", "abc"):
        assert (await call(client, user, "DELETE", f"room_keys/version/{never}",
                           expect=404))["errcode"] == "M_NOT_FOUND"
        await call(client, user, "GET", f"room_keys/version/{never}", expect=404)

    assert await create_version(client, user) == "3"  # deleted ids are not reused
    assert await call(client, user, "DELETE", "room_keys/version/3") == {}
    assert await call(client, user, "DELETE", "room_keys/version/1") == {}
    await call(client, user, "GET", "room_keys/version", expect=404)


@pytest_twisted.ensureDeferred
async def test_keys_at_the_three_levels(client):
    """Keys are stored, read and deleted per session, per room and for the whole backup."""
    user = await client.register()
    version = await create_version(client, user)

    one = await call(client, user, "PUT", keys_path(ROOM_A, "s1"), key(tag="a1"), version)
    assert one["count"] == 1
    two = await call(client, user, "PUT", keys_path(ROOM_A),
                     {"sessions": {"s2": key(tag="a2"), "s3": key(tag="a3")}}, version)
    assert two["count"] == 3 and two["etag"] != one["etag"]
    three = await call(client, user, "PUT", keys_path(),
                       {"rooms": {ROOM_B: {"sessions": {"s1": key(tag="b1")}}}}, version)
    assert three["count"] == 4 and three["etag"] not in (one["etag"], two["etag"])
    info = await call(client, user, "GET", f"room_keys/version/{version}")
    assert (info["count"], info["etag"]) == (4, three["etag"])

    assert await call(client, user, "GET", keys_path(ROOM_A, "s2"), version=version) == key(tag="a2")
    assert await call(client, user, "GET", keys_path(ROOM_A), version=version) == {
        "sessions": {"s1": key(tag="a1"), "s2": key(tag="a2"), "s3": key(tag="a3")}}
    assert await call(client, user, "GET", keys_path(), version=version) == {"rooms": {
        ROOM_A: {"sessions": {"s1": key(tag="a1"), "s2": key(tag="a2"), "s3": key(tag="a3")}},
        ROOM_B: {"sessions": {"s1": key(tag="b1")}},
    }}
    # A room without keys is empty; a session without a key is not found.
    assert await call(client, user, "GET", keys_path("!none:test.local"), version=version) == {
        "sessions": {}}
    missing = await call(client, user, "GET", keys_path(ROOM_B, "s2"), version=version, expect=404)
    assert missing["errcode"] == "M_NOT_FOUND"

    deleted = await call(client, user, "DELETE", keys_path(ROOM_A, "s1"), version=version)
    assert deleted["count"] == 3 and deleted["etag"] != three["etag"]
    await call(client, user, "GET", keys_path(ROOM_A, "s1"), version=version, expect=404)
    unchanged = await call(client, user, "DELETE", keys_path(ROOM_A, "s1"), version=version)
    assert unchanged == deleted  # nothing deleted: same etag and count
    room = await call(client, user, "DELETE", keys_path(ROOM_A), version=version)
    assert room["count"] == 1
    assert await call(client, user, "GET", keys_path(ROOM_A), version=version) == {"sessions": {}}
    everything = await call(client, user, "DELETE", keys_path(), version=version)
    assert everything["count"] == 0
    assert await call(client, user, "GET", keys_path(), version=version) == {"rooms": {}}
    info = await call(client, user, "GET", "room_keys/version")
    assert (info["count"], info["etag"]) == (0, everything["etag"])


@pytest_twisted.ensureDeferred
async def test_better_keys_replace_worse_are_ignored(client):
    """An uploaded key replaces the stored one only when better by the spec's rule."""
    user = await client.register()
    version = await create_version(client, user)
    path = keys_path(ROOM_A, "sess")

    async def upload(**fields):
        return await call(client, user, "PUT", path, key(**fields), version)

    async def stored():
        return await call(client, user, "GET", path, version=version)

    first = await upload(verified=False, first=5, forwarded=3, tag="first")
    # Worse: a higher first_message_index; equal ranks; a higher forwarded_count.
    for worse in ({"first": 6, "forwarded": 0}, {"first": 5, "forwarded": 3},
                  {"first": 5, "forwarded": 4}):
        ignored = await upload(verified=False, tag="worse", **worse)
        assert ignored == first  # etag and count unchanged
        assert await stored() == key(False, 5, 3, "first")

    lower_forwarded = await upload(verified=False, first=5, forwarded=1, tag="fc")
    assert lower_forwarded["etag"] != first["etag"] and lower_forwarded["count"] == 1
    assert await stored() == key(False, 5, 1, "fc")
    await upload(verified=False, first=2, forwarded=9, tag="fmi")
    assert await stored() == key(False, 2, 9, "fmi")
    # Verified beats unverified whatever the indexes, and not the other way round.
    await upload(verified=True, first=50, forwarded=50, tag="verified")
    assert await stored() == key(True, 50, 50, "verified")
    await upload(verified=False, first=0, forwarded=0, tag="unverified")
    assert await stored() == key(True, 50, 50, "verified")

    # In a batch, each session is judged on its own.
    batch = await call(client, user, "PUT", keys_path(ROOM_A), {"sessions": {
        "sess": key(True, 60, 0, "batch-worse"), "fresh": key(False, 0, 0, "fresh")}}, version)
    assert batch["count"] == 2
    assert await stored() == key(True, 50, 50, "verified")
    assert await call(client, user, "GET", keys_path(ROOM_A, "fresh"), version=version) == key(
        False, 0, 0, "fresh")


@pytest_twisted.ensureDeferred
async def test_only_the_current_version_is_writable(client):
    """Writing to an older version is 403 M_WRONG_ROOM_KEYS_VERSION naming the current one."""
    user = await client.register()
    no_backup = await call(client, user, "PUT", keys_path(ROOM_A, "s"), key(), "1", expect=404)
    assert no_backup["errcode"] == "M_NOT_FOUND"
    old = await create_version(client, user)
    await call(client, user, "PUT", keys_path(ROOM_A, "s"), key(tag="old"), old)
    current = await create_version(client, user)

    for path, body in ((keys_path(ROOM_A, "s"), key()),
                       (keys_path(ROOM_A), {"sessions": {"s": key()}}),
                       (keys_path(), {"rooms": {ROOM_A: {"sessions": {"s": key()}}}})):
        wrong = await call(client, user, "PUT", path, body, old, expect=403)
        assert wrong["errcode"] == "M_WRONG_ROOM_KEYS_VERSION"
        assert wrong["current_version"] == current
        unknown = await call(client, user, "PUT", path, body, "99", expect=404)
        assert unknown["errcode"] == "M_NOT_FOUND"

    # Older versions stay readable and their keys deletable; the new one starts empty.
    assert await call(client, user, "GET", keys_path(ROOM_A, "s"), version=old) == key(tag="old")
    assert await call(client, user, "GET", keys_path(), version=current) == {"rooms": {}}
    assert (await call(client, user, "DELETE", keys_path(), version=old))["count"] == 0

    # Deleting a version deletes its keys; reading or writing it is then 404.
    await call(client, user, "PUT", keys_path(ROOM_A, "s"), key(), current)
    await call(client, user, "DELETE", f"room_keys/version/{current}")
    await call(client, user, "GET", keys_path(), version=current, expect=404)
    await call(client, user, "DELETE", keys_path(), version=current, expect=404)
    await call(client, user, "PUT", keys_path(ROOM_A, "s"), key(), current, expect=404)
    # The old version is current again, so it takes writes.
    assert (await call(client, user, "PUT", keys_path(ROOM_A, "s"), key(), old))["count"] == 1


@pytest_twisted.ensureDeferred
async def test_backups_are_private_to_their_user(client):
    """Another user sees none of a user's versions or keys, and numbers their own from 1."""
    alice = await client.register()
    bob = await client.register()
    version = await create_version(client, alice)
    await call(client, alice, "PUT", keys_path(ROOM_A, "s"), key(tag="alice"), version)

    await call(client, bob, "GET", "room_keys/version", expect=404)
    await call(client, bob, "GET", f"room_keys/version/{version}", expect=404)
    await call(client, bob, "GET", keys_path(), version=version, expect=404)
    await call(client, bob, "GET", keys_path(ROOM_A, "s"), version=version, expect=404)
    await call(client, bob, "DELETE", keys_path(), version=version, expect=404)
    await call(client, bob, "DELETE", f"room_keys/version/{version}", expect=404)
    await call(client, bob, "PUT", f"room_keys/version/{version}",
               {"algorithm": ALGORITHM, "auth_data": {}}, expect=404)

    assert await create_version(client, bob, auth_data("bob")) == version
    assert await call(client, bob, "GET", keys_path(), version=version) == {"rooms": {}}
    await call(client, bob, "PUT", keys_path(ROOM_A, "s"), key(tag="bob"), version)
    assert await call(client, alice, "GET", keys_path(ROOM_A, "s"), version=version) == key(tag="alice")
    assert (await call(client, alice, "GET", "room_keys/version"))["auth_data"] == auth_data()


@pytest_twisted.ensureDeferred
async def test_bad_requests_are_refused(client):
    """A missing version parameter, malformed keys or bad ids are 400; guests are refused."""
    user = await client.register()
    token = user["access_token"]
    version = await create_version(client, user)
    for method, body in (("GET", None), ("DELETE", None), ("PUT", {"rooms": {}})):
        response = await client.request(method, keys_path(), body, token=token, validate=False)
        assert (response.code, response.json["errcode"]) == (400, "M_MISSING_PARAM"), response

    malformed = [
        (keys_path(ROOM_A, "s"), {**key(), "is_verified": "yes"}, "M_BAD_JSON"),
        (keys_path(ROOM_A, "s"), {"first_message_index": 0}, "M_BAD_JSON"),
        (keys_path(ROOM_A), {"sessions": []}, "M_BAD_JSON"),
        (keys_path(), {}, "M_MISSING_PARAM"),
        (keys_path("not-a-room", "s"), key(), "M_INVALID_PARAM"),
    ]
    for path, body, errcode in malformed:
        response = await client.request("PUT", path, body, token=token, query={"version": version},
                                        validate=False)
        assert (response.code, response.json["errcode"]) == (400, errcode), (path, response)
    assert (await call(client, user, "GET", "room_keys/version"))["count"] == 0

    no_auth_data = await client.request("POST", "room_keys/version", {"algorithm": ALGORITHM},
                                        token=token, validate=False)
    assert (no_auth_data.code, no_auth_data.json["errcode"]) == (400, "M_MISSING_PARAM")

    guest = await client.register_guest()
    refused = await client.request("GET", "room_keys/version", token=guest["access_token"])
    assert (refused.code, refused.json["errcode"]) == (403, "M_GUEST_ACCESS_FORBIDDEN")


@pytest_twisted.ensureDeferred
async def test_concurrent_and_large_uploads(client):
    """Concurrent uploads of one session keep one key, the best; big batches count exactly."""
    user = await client.register()
    version = await create_version(client, user)
    uploads = [call(client, user, "PUT", keys_path(ROOM_A, "race"), key(False, first, 0, str(first)),
                    version) for first in (7, 3, 9, 1, 5, 8, 2, 6)]
    results = await defer.gatherResults([defer.ensureDeferred(u) for u in uploads])
    assert {r["count"] for r in results} == {1}
    assert await call(client, user, "GET", keys_path(ROOM_A, "race"), version=version) == key(
        False, 1, 0, "1")

    sessions = {f"s{n}": key(False, n % 7, n % 3, str(n)) for n in range(1000)}
    big = await call(client, user, "PUT", keys_path(ROOM_B), {"sessions": sessions}, version)
    assert big["count"] == 1001
    again = await call(client, user, "PUT", keys_path(ROOM_B), {"sessions": sessions}, version)
    assert again == big  # the same keys again change nothing
    room = await call(client, user, "GET", keys_path(ROOM_B), version=version)
    assert room == {"sessions": sessions}
