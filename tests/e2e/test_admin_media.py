"""
The admin API's media pages, as an admin UI (synapse-admin, Ketesa) uses
them, through two federating daemons: A for local media, B for A's media
cached over federation. Shapes are checked against Synapse's documentation.
"""
from __future__ import annotations

import os
from urllib.parse import quote

import pytest
import pytest_twisted
from admin_helpers import ADMIN, assert_shape, register_admin
from conftest import unique_localpart
from media_helpers import download, image_bytes, media_path, stored_copies, thumbnail, upload
from room_helpers import create_room, ok

USER_MEDIA = {"media_id": str, "media_type": str, "media_length": int, "upload_name": (str, type(None)),
              "created_ts": int, "last_access_ts": (int, type(None)), "quarantined_by": (str, type(None)),
              "safe_from_quarantine": bool}
USER_MEDIA_PAGE = {"media": [USER_MEDIA], "total": int, "next_token?": int}
DELETED = {"deleted_media": [str], "total": int}
USAGE_PAGE = {"users": [{"user_id": str, "displayname": (str, type(None)), "media_count": int,
                         "media_length": int}], "total": int, "next_token?": int}
#: Larger than any other upload of these tests: what the date-and-size deletion may delete.
BIG = 300_000
#: A C{before_ts} after every upload of these tests (the year 2286).
FAR_FUTURE_MS = 10_000_000_000_000


@pytest.fixture(scope="module")
def pair(start_federating):
    """Two federating daemons, A and B."""
    return start_federating(), start_federating()


@pytest.fixture
def client(pair, make_client):
    """A client of A."""
    return make_client(pair[0])


async def admin_call(client, admin: dict, method: str, path: str, body=None, **query):
    return await client.request(method, ADMIN + path, body if body is not None or method != "POST" else {},
                                token=admin["access_token"], query=query or None)


def user_path(user_id: str) -> str:
    return quote(user_id, safe="")


def media_id_of(uri: str) -> str:
    return media_path(uri)[1]


async def is_served(client, user: dict, uri: str) -> bool:
    response = await download(client, user["access_token"], uri)
    if response.code == 404:
        assert response.json["errcode"] == "M_NOT_FOUND", response
        return False
    assert response.code == 200, response
    return True


@pytest_twisted.ensureDeferred
async def test_non_admin_is_refused(client):
    """A plain user gets 403 M_FORBIDDEN from every kind of media admin endpoint, and changes nothing."""
    user = await client.register()
    uri = await upload(client, user["access_token"], os.urandom(100))
    server_name, media_id = media_path(uri)
    for method, path in [("GET", f"/v1/users/{user_path(user['user_id'])}/media"),
                         ("POST", f"/v1/media/quarantine/{server_name}/{media_id}"),
                         ("DELETE", f"/v1/media/{server_name}/{media_id}"),
                         ("POST", f"/v1/media/delete?before_ts={FAR_FUTURE_MS}"),
                         ("GET", "/v1/statistics/users/media"),
                         ("POST", f"/v1/purge_media_cache?before_ts={FAR_FUTURE_MS}")]:
        response = await admin_call(client, user, method, path)
        assert (response.code, response.json["errcode"]) == (403, "M_FORBIDDEN"), (method, path, response)
    assert await is_served(client, user, uri)


@pytest_twisted.ensureDeferred
async def test_user_media_list_pages_and_orders(client):
    """A user's media page: newest first, paged with next_token, ordered by any documented column."""
    admin = await register_admin(client)
    user = await client.register()
    uploads = [await upload(client, user["access_token"], os.urandom(size), "application/octet-stream", name)
               for size, name in [(300, "b.bin"), (100, "c.bin"), (200, "a.bin")]]
    path = f"/v1/users/{user_path(user['user_id'])}/media"

    first = await admin_call(client, admin, "GET", path, limit="2")
    assert first.code == 200, first
    assert_shape(first.json, USER_MEDIA_PAGE)
    assert (first.json["total"], first.json["next_token"]) == (3, 2)
    rest = await admin_call(client, admin, "GET", path, limit="2", **{"from": "2"})
    assert rest.code == 200 and "next_token" not in rest.json, rest
    listed = first.json["media"] + rest.json["media"]
    assert [m["media_id"] for m in listed] == [media_id_of(uri) for uri in reversed(uploads)]  # newest first
    assert {(m["media_length"], m["upload_name"], m["quarantined_by"], m["safe_from_quarantine"])
            for m in listed} == {(size, name, None, False) for size, name in [(300, "b.bin"), (100, "c.bin"),
                                                                              (200, "a.bin")]}

    by_size = await admin_call(client, admin, "GET", path, order_by="media_length")
    assert [m["media_length"] for m in by_size.json["media"]] == [100, 200, 300]
    by_name = await admin_call(client, admin, "GET", path, order_by="upload_name", dir="b")
    assert [m["upload_name"] for m in by_name.json["media"]] == ["c.bin", "b.bin", "a.bin"]


@pytest_twisted.ensureDeferred
async def test_user_media_list_refuses_bad_queries(client, pair):
    """Bad paging or order is 400 M_INVALID_PARAM; another server's user 400; an unknown user 404."""
    admin = await register_admin(client)
    path = f"/v1/users/{user_path(admin['user_id'])}/media"
    for query in [{"order_by": "size"}, {"dir": "x"}, {"from": "-1"}, {"limit": "many"}]:
        response = await admin_call(client, admin, "GET", path, **query)
        assert (response.code, response.json["errcode"]) == (400, "M_INVALID_PARAM"), (query, response)
    someone_else = user_path(f"@someone:{pair[1].server_name}")
    remote = await admin_call(client, admin, "GET", f"/v1/users/{someone_else}/media")
    assert remote.code == 400, remote
    nobody = user_path(f"@nobody:{pair[0].server_name}")
    unknown = await admin_call(client, admin, "GET", f"/v1/users/{nobody}/media")
    assert (unknown.code, unknown.json["errcode"]) == (404, "M_NOT_FOUND")


@pytest_twisted.ensureDeferred
async def test_quarantine_by_id_then_unquarantine(client):
    """Quarantined media is 404 (download, thumbnail) and listed with who did it; unquarantined, served again."""
    admin = await register_admin(client)
    user = await client.register()
    uri = await upload(client, user["access_token"], image_bytes((80, 60)), "image/png", "cat.png")
    server_name, media_id = media_path(uri)

    response = await admin_call(client, admin, "POST", f"/v1/media/quarantine/{server_name}/{media_id}")
    assert (response.code, response.json) == (200, {})
    assert not await is_served(client, user, uri)
    small = await thumbnail(client, user["access_token"], uri, width=32, height=32, method="crop")
    assert (small.code, small.json["errcode"]) == (404, "M_NOT_FOUND")
    listed = await admin_call(client, admin, "GET", f"/v1/users/{user_path(user['user_id'])}/media")
    assert listed.json["media"][0]["quarantined_by"] == admin["user_id"]

    response = await admin_call(client, admin, "POST", f"/v1/media/unquarantine/{server_name}/{media_id}")
    assert (response.code, response.json) == (200, {})
    assert await is_served(client, user, uri)
    listed = await admin_call(client, admin, "GET", f"/v1/users/{user_path(user['user_id'])}/media")
    assert listed.json["media"][0]["quarantined_by"] is None


@pytest_twisted.ensureDeferred
async def test_room_media_listed_and_quarantined_but_protected(client, pair):
    """A room's media (files, thumbnails, its avatar) is listed and quarantined; protected media stays served."""
    admin = await register_admin(client)
    owner = await client.register()
    token = owner["access_token"]
    image, thumb, protected, avatar = [await upload(client, token, os.urandom(50)) for _ in range(4)]
    remote = f"mxc://{pair[1].server_name}/SomeoneElsesMedia"
    room_id = await create_room(client, owner)
    room = quote(room_id, safe="")
    for txn, (event_type, content) in enumerate([
        ("m.room.message", {"msgtype": "m.image", "body": "a", "url": image, "info": {"thumbnail_url": thumb}}),
        ("m.room.message", {"msgtype": "m.file", "body": "b", "url": protected}),
        ("m.room.message", {"msgtype": "m.image", "body": "c", "url": remote}),
        ("m.room.message", {"msgtype": "m.text", "body": f"not media: {image}x"}),
    ]):
        await ok(client, "PUT", f"rooms/{room}/send/{event_type}/t{txn}", content, user=owner)
    await ok(client, "PUT", f"rooms/{room}/state/m.room.avatar", {"url": avatar}, user=owner)

    listed = await admin_call(client, admin, "GET", f"/v1/room/{room}/media")
    assert listed.code == 200, listed
    assert_shape(listed.json, {"local": [str], "remote": [str]})
    assert sorted(listed.json["local"]) == sorted([image, thumb, protected, avatar])
    assert listed.json["remote"] == [remote]

    protect = await admin_call(client, admin, "POST", f"/v1/media/protect/{media_id_of(protected)}")
    assert (protect.code, protect.json) == (200, {})
    response = await admin_call(client, admin, "POST", f"/v1/room/{room}/media/quarantine")
    assert response.code == 200, response
    assert response.json == {"num_quarantined": 3}  # the remote media is not cached here: nothing to quarantine
    for uri in (image, thumb, avatar):
        assert not await is_served(client, owner, uri)
    assert await is_served(client, owner, protected)

    unknown = await admin_call(client, admin, "GET", f"/v1/room/{quote('!nowhere:' + pair[0].server_name)}/media")
    assert (unknown.code, unknown.json["errcode"]) == (404, "M_NOT_FOUND")


@pytest_twisted.ensureDeferred
async def test_quarantine_by_user_spares_protected_media(client):
    """Quarantining a user's media skips protected media until it is unprotected."""
    admin = await register_admin(client)
    user = await client.register()
    kept, bad = [await upload(client, user["access_token"], os.urandom(60)) for _ in range(2)]
    await admin_call(client, admin, "POST", f"/v1/media/protect/{media_id_of(kept)}")
    path = f"/v1/user/{user_path(user['user_id'])}/media/quarantine"

    response = await admin_call(client, admin, "POST", path)
    assert (response.code, response.json) == (200, {"num_quarantined": 1})
    assert not await is_served(client, user, bad) and await is_served(client, user, kept)
    listed = await admin_call(client, admin, "GET", f"/v1/users/{user_path(user['user_id'])}/media",
                              order_by="safe_from_quarantine")
    assert [(m["media_id"], m["safe_from_quarantine"]) for m in listed.json["media"]] == [
        (media_id_of(bad), False), (media_id_of(kept), True)]

    await admin_call(client, admin, "POST", f"/v1/media/unprotect/{media_id_of(kept)}")
    response = await admin_call(client, admin, "POST", path)
    assert response.json == {"num_quarantined": 2}
    assert not await is_served(client, user, kept)


@pytest_twisted.ensureDeferred
async def test_delete_by_id_removes_the_file(client, pair):
    """Deleted media is 404 and its file is gone; deleting it again is 404; another server's media is 400."""
    admin = await register_admin(client)
    user = await client.register()
    data = os.urandom(500)
    uri = await upload(client, user["access_token"], data)
    server_name, media_id = media_path(uri)
    assert len(stored_copies(pair[0], data)) == 1

    response = await admin_call(client, admin, "DELETE", f"/v1/media/{server_name}/{media_id}")
    assert response.code == 200, response
    assert_shape(response.json, DELETED)
    assert response.json == {"deleted_media": [media_id], "total": 1}
    assert not await is_served(client, user, uri)
    assert stored_copies(pair[0], data) == []
    again = await admin_call(client, admin, "DELETE", f"/v1/media/{server_name}/{media_id}")
    assert (again.code, again.json["errcode"]) == (404, "M_NOT_FOUND")
    remote = await admin_call(client, admin, "DELETE", f"/v1/media/{pair[1].server_name}/{media_id}")
    assert remote.code == 400, remote


@pytest_twisted.ensureDeferred
async def test_delete_by_date_and_size(client, pair):
    """
    Media last used before C{before_ts} and larger than C{size_gt} is
    deleted, but avatars (unless keep_profiles=false), protected and
    quarantined media; the older path does the same.
    """
    admin = await register_admin(client)
    user = await client.register()
    token = user["access_token"]
    small, big, avatar, protected, quarantined = (os.urandom(BIG // 2), *(os.urandom(BIG + 1) for _ in range(4)))
    uris = {name: await upload(client, token, data) for name, data in
            [("small", small), ("big", big), ("avatar", avatar), ("protected", protected),
             ("quarantined", quarantined)]}
    await ok(client, "PUT", f"profile/{user_path(user['user_id'])}/avatar_url", {"avatar_url": uris["avatar"]},
             user=user)
    await admin_call(client, admin, "POST", f"/v1/media/protect/{media_id_of(uris['protected'])}")
    await admin_call(client, admin, "POST", "/v1/media/quarantine/{}/{}".format(*media_path(uris["quarantined"])))
    listed = await admin_call(client, admin, "GET", f"/v1/users/{user_path(user['user_id'])}/media",
                              order_by="created_ts")
    first_upload_ts = listed.json["media"][0]["created_ts"]

    before_any = await admin_call(client, admin, "POST", "/v1/media/delete", before_ts=str(first_upload_ts),
                                  size_gt=str(BIG))
    assert (before_any.code, before_any.json) == (200, {"deleted_media": [], "total": 0})

    response = await admin_call(client, admin, "POST", "/v1/media/delete", before_ts=str(FAR_FUTURE_MS),
                                size_gt=str(BIG))
    assert response.code == 200, response
    assert_shape(response.json, DELETED)
    assert response.json == {"deleted_media": [media_id_of(uris["big"])], "total": 1}
    assert not await is_served(client, user, uris["big"]) and stored_copies(pair[0], big) == []
    for name in ("small", "avatar", "protected"):
        assert await is_served(client, user, uris[name]), name
    assert stored_copies(pair[0], quarantined)  # kept for the admins

    older = await admin_call(client, admin, "POST", f"/v1/media/{pair[0].server_name}/delete",
                             before_ts=str(FAR_FUTURE_MS), size_gt=str(BIG), keep_profiles="false")
    assert (older.code, older.json) == (200, {"deleted_media": [media_id_of(uris["avatar"])], "total": 1})
    assert not await is_served(client, user, uris["avatar"])


@pytest_twisted.ensureDeferred
async def test_delete_by_date_refuses_bad_arguments(client, pair):
    """No before_ts, one in seconds, a negative size, another server's name: 400, nothing deleted."""
    admin = await register_admin(client)
    for path, query, errcode in [
        ("/v1/media/delete", {}, "M_MISSING_PARAM"),
        ("/v1/media/delete", {"before_ts": "1700000000"}, "M_INVALID_PARAM"),
        ("/v1/media/delete", {"before_ts": str(FAR_FUTURE_MS), "size_gt": "-1"}, "M_INVALID_PARAM"),
        ("/v1/media/delete", {"before_ts": str(FAR_FUTURE_MS), "keep_profiles": "maybe"}, "M_INVALID_PARAM"),
        (f"/v1/media/{pair[1].server_name}/delete", {"before_ts": str(FAR_FUTURE_MS)}, "M_INVALID_PARAM"),
    ]:
        response = await admin_call(client, admin, "POST", path, **query)
        assert (response.code, response.json["errcode"]) == (400, errcode), (path, query, response)


@pytest_twisted.ensureDeferred
async def test_delete_user_media(client):
    """Deleting a user's media deletes the page the same query would list (here: the largest first)."""
    admin = await register_admin(client)
    user = await client.register()
    uploads = {size: await upload(client, user["access_token"], os.urandom(size)) for size in (10, 20, 30)}
    path = f"/v1/users/{user_path(user['user_id'])}/media"
    response = await admin_call(client, admin, "DELETE", path, order_by="media_length", dir="b", limit="2")
    assert response.code == 200, response
    assert_shape(response.json, DELETED)
    assert response.json == {"deleted_media": [media_id_of(uploads[30]), media_id_of(uploads[20])], "total": 2}
    listed = await admin_call(client, admin, "GET", path)
    assert [m["media_id"] for m in listed.json["media"]] == [media_id_of(uploads[10])]
    assert not await is_served(client, user, uploads[30])


@pytest_twisted.ensureDeferred
async def test_media_statistics_per_user(client):
    """Per-user counts and sizes, filtered by name and time, ordered, paged."""
    admin = await register_admin(client)
    tag = unique_localpart("stats")
    heavy = await client.register(f"{tag}heavy")
    light = await client.register(f"{tag}light")
    await ok(client, "PUT", f"profile/{user_path(heavy['user_id'])}/displayname",
             {"displayname": "Heavy Uploader"}, user=heavy)
    for user, sizes in ((heavy, (100, 250)), (light, (40,))):
        for size in sizes:
            await upload(client, user["access_token"], os.urandom(size))

    response = await admin_call(client, admin, "GET", "/v1/statistics/users/media", search_term=tag,
                                order_by="media_length")
    assert response.code == 200, response
    assert_shape(response.json, USAGE_PAGE)
    assert response.json["total"] == 2 and "next_token" not in response.json
    assert [(u["user_id"], u["displayname"], u["media_count"], u["media_length"])
            for u in response.json["users"]] == [(light["user_id"], light["user_id"][1:].split(":")[0], 1, 40),
                                                 (heavy["user_id"], "Heavy Uploader", 2, 350)]

    by_name = await admin_call(client, admin, "GET", "/v1/statistics/users/media", search_term="heavy uploader")
    assert [u["user_id"] for u in by_name.json["users"]] == [heavy["user_id"]]
    page = await admin_call(client, admin, "GET", "/v1/statistics/users/media", search_term=tag,
                            order_by="media_count", dir="b", limit="1")
    assert [u["user_id"] for u in page.json["users"]] == [heavy["user_id"]]
    assert (page.json["total"], page.json["next_token"]) == (2, 1)
    later = await admin_call(client, admin, "GET", "/v1/statistics/users/media", search_term=tag,
                             from_ts=str(FAR_FUTURE_MS))
    assert (later.json["users"], later.json["total"]) == ([], 0)
    for query in [{"order_by": "size"}, {"from_ts": "5", "until_ts": "4"}, {"search_term": ""}, {"dir": "up"}]:
        bad = await admin_call(client, admin, "GET", "/v1/statistics/users/media", **query)
        assert (bad.code, bad.json["errcode"]) == (400, "M_INVALID_PARAM"), (query, bad)


@pytest_twisted.ensureDeferred
async def test_cached_remote_media_quarantine_and_purge(pair, make_client):
    """
    B's admin quarantines A's media cached on B (404 on B, still served by
    A), and purges B's cache: quarantined media stays; the rest is deleted
    and fetched again when asked for.
    """
    a, b = pair
    on_a, on_b = make_client(a), make_client(b)
    author = await on_a.register()
    reader = await on_b.register()
    admin = await register_admin(on_b)
    data, other = os.urandom(700), os.urandom(800)
    uri = await upload(on_a, author["access_token"], data)
    other_uri = await upload(on_a, author["access_token"], other)
    assert await is_served(on_b, reader, uri) and await is_served(on_b, reader, other_uri)  # now cached on B
    server_name, media_id = media_path(uri)

    response = await admin_call(on_b, admin, "POST", f"/v1/media/quarantine/{server_name}/{media_id}")
    assert (response.code, response.json) == (200, {})
    assert not await is_served(on_b, reader, uri)
    assert await is_served(on_a, author, uri)

    nothing_old = await admin_call(on_b, admin, "POST", "/v1/purge_media_cache", before_ts="30000000000")
    assert (nothing_old.code, nothing_old.json) == (200, {"deleted": 0})
    purged = await admin_call(on_b, admin, "POST", "/v1/purge_media_cache", before_ts=str(FAR_FUTURE_MS))
    assert (purged.code, purged.json) == (200, {"deleted": 1})
    assert stored_copies(b, other) == [] and stored_copies(b, data)
    assert not await is_served(on_b, reader, uri)
    assert await is_served(on_b, reader, other_uri) and stored_copies(b, other)  # fetched again

    await admin_call(on_b, admin, "POST", f"/v1/media/unquarantine/{server_name}/{media_id}")
    assert await is_served(on_b, reader, uri)
    for query in [{}, {"before_ts": "1700000000"}, {"before_ts": "-5"}]:
        bad = await admin_call(on_b, admin, "POST", "/v1/purge_media_cache", **query)
        assert bad.code == 400 and bad.json["errcode"] in ("M_MISSING_PARAM", "M_INVALID_PARAM"), (query, bad)
