"""
The admin API's rooms (Synapse's "Rooms" admin API), through the real
daemon, replaying what an admin UI (synapse-admin, Ketesa) asks: the room
list and a room's pages, blocking, deleting, make_room_admin and forward
extremities.
"""
from urllib.parse import quote

import psycopg2
import pytest_twisted
from admin_helpers import ADMIN, assert_shape, register_admin
from conftest import unique_localpart
from federation_helpers import SyncWatcher, membership_of
from room_helpers import create_room, join, ok, send_text
from sliding_helpers import UNSTABLE, Connection
from twisted.internet import reactor
from twisted.internet.task import deferLater

from polling import DEADLINE_S

#: A room of Synapse's room list (docs/admin_api/rooms.md, "List Room API").
LISTED_ROOM = {
    "room_id": str, "name": (str, type(None)), "canonical_alias": (str, type(None)), "joined_members": int,
    "joined_local_members": int, "version": str, "creator": str, "encryption": (str, type(None)),
    "federatable": bool, "public": bool, "join_rules": (str, type(None)), "guest_access": (str, type(None)),
    "history_visibility": (str, type(None)), "state_events": int, "room_type": (str, type(None)),
}

#: Synapse's "Room Details API".
ROOM_DETAILS = {**LISTED_ROOM, "avatar": (str, type(None)), "topic": (str, type(None)),
                "joined_local_devices": int, "forgotten": bool}

SHUTDOWN = {"kicked_users": [str], "failed_to_kick_users": [str], "local_aliases": [str],
            "new_room_id": (str, type(None))}

DELETE_STATUS = {"delete_id": str, "room_id": str, "status": str, "error?": str, "shutdown_room": SHUTDOWN}


async def admin_get(client, admin, path: str, **kwargs):
    response = await client.request("GET", ADMIN + path, token=admin["access_token"], **kwargs)
    assert response.code == 200, response
    return response.json


async def list_rooms(client, admin, **query) -> dict:
    listed = await admin_get(client, admin, "/v1/rooms", query=query)
    assert_shape(listed, {"rooms": [LISTED_ROOM], "offset": int, "total_rooms": int, "next_batch?": int,
                          "prev_batch?": int})
    return listed


async def finished_deletion(client, admin, delete_id: str) -> dict:
    """The deletion's status once it is over (complete or failed)."""
    for _ in range(DEADLINE_S * 20):
        status = await admin_get(client, admin, f"/v2/rooms/delete_status/{delete_id}")
        assert_shape(status, DELETE_STATUS)
        if status["status"] in ("complete", "failed"):
            return status
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"deletion {delete_id} did not finish: {status}")


async def sync(client, user, since=None) -> dict:
    return await ok(client, "GET", "sync", user=user, query={"since": since} if since else None)


def rows_of_room(dsn: str, room_id: str) -> dict[str, int]:
    """How many rows each table of the daemon's database holds of the room (those holding any)."""
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT c.table_name FROM information_schema.columns c"
                       " JOIN information_schema.tables t USING (table_schema, table_name)"
                       " WHERE c.column_name = 'room_id' AND c.table_schema = 'public'"
                       " AND t.table_type = 'BASE TABLE'")
        counts = {}
        for (table,) in cursor.fetchall():
            cursor.execute(f'SELECT count(*) FROM "{table}" WHERE room_id = %s', (room_id,))
            (count,) = cursor.fetchone()
            if count:
                counts[table] = count
        cursor.execute("SELECT type, membership FROM events WHERE room_id = %s", (room_id,))
        counts["kept events"] = sorted(cursor.fetchall())
    connection.close()
    return counts


@pytest_twisted.ensureDeferred
async def test_non_admin_is_refused(client):
    """A plain user gets 403 M_FORBIDDEN from every room page and action."""
    user = await client.register()
    room_id = await create_room(client, user)
    for method, path in (("GET", "/v1/rooms"), ("GET", f"/v1/rooms/{room_id}"),
                         ("PUT", f"/v1/rooms/{room_id}/block"), ("DELETE", f"/v2/rooms/{room_id}"),
                         ("POST", f"/v1/rooms/{room_id}/make_room_admin")):
        response = await client.request(method, ADMIN + path, {}, token=user["access_token"])
        assert response.code == 403 and response.json["errcode"] == "M_FORBIDDEN", (method, path, response)


@pytest_twisted.ensureDeferred
async def test_room_list_pages_orders_and_searches(client):
    """The rooms page: search by name, alias and id; sort; page with next_batch and prev_batch."""
    admin = await register_admin(client)
    owner, guest_a, guest_b = await client.register(), await client.register(), await client.register()
    tag = unique_localpart("list")
    alpha = await create_room(client, owner, name=f"{tag} alpha", preset="public_chat", room_version="9")
    beta = await create_room(client, owner, name=f"{tag} beta", preset="public_chat", visibility="public",
                             room_alias_name=f"{tag}-b")
    gamma = await create_room(client, owner, name=f"{tag} gamma", preset="public_chat", room_version="10")
    for guest in (guest_a, guest_b):
        await join(client, guest, beta)
    await join(client, guest_a, gamma)

    by_name = await list_rooms(client, admin, search_term=tag.upper())
    assert [room["room_id"] for room in by_name["rooms"]] == [alpha, beta, gamma]
    assert by_name["total_rooms"] == 3 and by_name["offset"] == 0 and "next_batch" not in by_name
    listed_beta = by_name["rooms"][1]
    assert listed_beta["joined_members"] == 3 and listed_beta["joined_local_members"] == 3
    assert listed_beta["public"] is True and listed_beta["join_rules"] == "public"
    assert listed_beta["canonical_alias"] == f"#{tag}-b:{client.server.server_name}"
    assert listed_beta["creator"] == owner["user_id"] and listed_beta["federatable"] is True

    by_size = await list_rooms(client, admin, search_term=tag, order_by="joined_members")
    assert [room["room_id"] for room in by_size["rooms"]] == [beta, gamma, alpha]
    reversed_size = await list_rooms(client, admin, search_term=tag, order_by="size", dir="b")
    assert [room["room_id"] for room in reversed_size["rooms"]] == [alpha, gamma, beta]
    by_version = await list_rooms(client, admin, search_term=tag, order_by="version")
    assert [room["version"] for room in by_version["rooms"]][1:] == ["10", "9"]   # as numbers, largest first

    first = await list_rooms(client, admin, search_term=tag, limit=2)
    assert len(first["rooms"]) == 2 and first["next_batch"] == 2 and "prev_batch" not in first
    second = await list_rooms(client, admin, search_term=tag, limit=2, **{"from": first["next_batch"]})
    assert [room["room_id"] for room in second["rooms"]] == [gamma]
    assert second["offset"] == 2 and second["prev_batch"] == 0 and "next_batch" not in second
    assert second["total_rooms"] == 3

    by_alias = await list_rooms(client, admin, search_term=f"{tag}-B")
    assert [room["room_id"] for room in by_alias["rooms"]] == [beta]
    by_id = await list_rooms(client, admin, search_term=gamma)
    assert [room["room_id"] for room in by_id["rooms"]] == [gamma]
    published = await list_rooms(client, admin, search_term=tag, public_rooms="true")
    assert [room["room_id"] for room in published["rooms"]] == [beta]

    for query in ({"order_by": "colour"}, {"dir": "sideways"}, {"from": "-1"}, {"search_term": ""}):
        response = await client.request("GET", f"{ADMIN}/v1/rooms", token=admin["access_token"], query=query)
        assert response.code == 400 and response.json["errcode"] == "M_INVALID_PARAM", (query, response)


@pytest_twisted.ensureDeferred
async def test_room_details_members_and_state(client):
    """A room's page: its details, members and state, as the admin UI shows them."""
    admin = await register_admin(client)
    owner, member = await client.register(), await client.register()
    room_id = await create_room(client, owner, name="Details", topic="what we talk about", preset="public_chat",
                                initial_state=[{"type": "m.room.encryption", "state_key": "",
                                                "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
    await join(client, member, room_id)

    details = await admin_get(client, admin, f"/v1/rooms/{quote(room_id)}")
    assert_shape(details, ROOM_DETAILS)
    assert details["room_id"] == room_id and details["name"] == "Details"
    assert details["topic"] == "what we talk about" and details["encryption"] == "m.megolm.v1.aes-sha2"
    assert details["joined_members"] == 2 and details["joined_local_devices"] == 2
    assert details["forgotten"] is False and details["public"] is False

    # The admin UI's related lists ask with paging and sorting, which these endpoints ignore (as Synapse).
    paging = {"from": "0", "limit": "25", "order_by": "id", "dir": "f"}
    members = await admin_get(client, admin, f"/v1/rooms/{room_id}/members", query=paging)
    assert members == {"members": sorted([owner["user_id"], member["user_id"]]), "total": 2}

    state = await admin_get(client, admin, f"/v1/rooms/{room_id}/state", query=paging)
    assert_shape(state, {"state": [{"type": str, "state_key": str, "event_id": str, "sender": str,
                                    "content": dict, "origin_server_ts": int, "room_id": str}]})
    keys = {(event["type"], event["state_key"]) for event in state["state"]}
    assert {("m.room.create", ""), ("m.room.topic", ""), ("m.room.member", member["user_id"])} <= keys
    assert len(state["state"]) == details["state_events"]
    names = await admin_get(client, admin, f"/v1/rooms/{room_id}/state", query={"type": "m.room.name"})
    assert [event["content"] for event in names["state"]] == [{"name": "Details"}]

    for path in ("", "/members", "/state", "/messages"):
        missing = await client.request("GET", f"{ADMIN}/v1/rooms/!nowhere:{client.server.server_name}{path}",
                                       token=admin["access_token"])
        assert missing.code == 404 and missing.json["errcode"] == "M_NOT_FOUND", (path, missing)


@pytest_twisted.ensureDeferred
async def test_admin_reads_messages_of_a_room_it_is_not_in(client):
    """The messages page: an admin outside a members-only room pages through all of it."""
    admin = await register_admin(client)
    owner = await client.register()
    room_id = await create_room(client, owner, preset="private_chat",
                                initial_state=[{"type": "m.room.history_visibility", "state_key": "",
                                                "content": {"history_visibility": "joined"}}])
    sent = [await send_text(client, owner, room_id, f"message {n}", f"m{n}") for n in range(3)]
    refused = await client.request("GET", f"rooms/{room_id}/messages", token=admin["access_token"],
                                   query={"dir": "b"})
    assert refused.code == 403, refused

    newest = await admin_get(client, admin, f"/v1/rooms/{room_id}/messages", query={"dir": "b", "limit": "2"})
    assert_shape(newest, {"chunk": [{"event_id": str, "type": str}], "start": str, "end": str})
    assert [event["event_id"] for event in newest["chunk"]] == sent[:0:-1]
    older = await admin_get(client, admin, f"/v1/rooms/{room_id}/messages",
                            query={"dir": "b", "from": newest["end"], "limit": "10"})
    assert sent[0] in [event["event_id"] for event in older["chunk"]]
    assert older["chunk"][-1]["type"] == "m.room.create"
    # dir defaults to forwards, from the room's start.
    forwards = await admin_get(client, admin, f"/v1/rooms/{room_id}/messages", query={"limit": "1"})
    assert forwards["chunk"][0]["type"] == "m.room.create"


@pytest_twisted.ensureDeferred
async def test_blocked_room_cannot_be_joined_or_invited_to(client):
    """Block: users of this server get 403 on joining or being invited; unblocking lets them in."""
    admin = await register_admin(client)
    owner, outsider = await client.register(), await client.register()
    room_id = await create_room(client, owner, preset="public_chat")
    path = f"{ADMIN}/v1/rooms/{room_id}/block"
    assert await admin_get(client, admin, f"/v1/rooms/{room_id}/block") == {"block": False}

    blocked = await client.request("PUT", path, {"block": True}, token=admin["access_token"])
    assert blocked.code == 200 and blocked.json == {"block": True}, blocked
    assert await admin_get(client, admin, f"/v1/rooms/{room_id}/block") == {
        "block": True, "user_id": admin["user_id"]}
    joining = await client.request("POST", f"rooms/{room_id}/join", {}, token=outsider["access_token"])
    assert joining.code == 403 and joining.json["errcode"] == "M_FORBIDDEN", joining
    inviting = await client.request("POST", f"rooms/{room_id}/invite", {"user_id": outsider["user_id"]},
                                    token=owner["access_token"])
    assert inviting.code == 403 and inviting.json["errcode"] == "M_FORBIDDEN", inviting

    unblocked = await client.request("PUT", path, {"block": False}, token=admin["access_token"])
    assert unblocked.json == {"block": False}, unblocked
    await join(client, outsider, room_id)

    # A room unknown here can be blocked ahead; a malformed id or body is refused.
    ahead = await client.request("PUT", f"{ADMIN}/v1/rooms/!elsewhere:example.org/block", {"block": True},
                                 token=admin["access_token"])
    assert ahead.code == 200, ahead
    for bad_path, body in ((f"{ADMIN}/v1/rooms/not-a-room/block", {"block": True}), (path, {"block": "yes"}),
                           (path, {})):
        response = await client.request("PUT", bad_path, body, token=admin["access_token"])
        assert response.code == 400, (bad_path, body, response)


@pytest_twisted.ensureDeferred
async def test_delete_with_purge_removes_the_room(client):
    """
    Delete (v2, purged): members see themselves leave the room in their
    next sync, the room is gone from the list and its alias from the
    directory, and the deletion's status says what it did.
    """
    admin = await register_admin(client)
    owner, member = await client.register(), await client.register()
    tag = unique_localpart("doomed")
    room_id = await create_room(client, owner, name=tag, preset="public_chat", visibility="public",
                                room_alias_name=tag)
    await join(client, member, room_id)
    hello = await send_text(client, member, room_id, "hello searchable", "t1")
    await ok(client, "PUT", f"rooms/{room_id}/send/m.reaction/t3", {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": hello, "key": "+1"}}, user=owner)
    await ok(client, "POST", f"rooms/{room_id}/receipt/m.read/{hello}", {}, user=owner)
    await ok(client, "PUT", f"user/{quote(member['user_id'])}/rooms/{room_id}/tags/u.work", {}, user=member)
    before = {user["user_id"]: (await sync(client, user))["next_batch"] for user in (owner, member)}
    everything = {"ranges": [[0, 20]], "timeline_limit": 1, "required_state": [["*", "*"]]}
    sliding = Connection(client, UNSTABLE, member, lists={"all": everything})
    assert room_id in (await sliding.sync())["rooms"]
    held = rows_of_room(client.server.dsn, room_id)
    assert {"receipts", "event_relations", "event_search", "account_data", "room_aliases"} <= set(held), held

    started = await client.request("DELETE", f"{ADMIN}/v2/rooms/{room_id}", {}, token=admin["access_token"])
    assert started.code == 200 and set(started.json) == {"delete_id"}, started
    status = await finished_deletion(client, admin, started.json["delete_id"])
    assert status["status"] == "complete", status
    assert status["room_id"] == room_id
    assert sorted(status["shutdown_room"]["kicked_users"]) == sorted([owner["user_id"], member["user_id"]])
    assert status["shutdown_room"]["local_aliases"] == [f"#{tag}:{client.server.server_name}"]
    assert status["shutdown_room"]["new_room_id"] is None and status["shutdown_room"]["failed_to_kick_users"] == []
    by_room = await admin_get(client, admin, f"/v2/rooms/{room_id}/delete_status")
    assert [result["delete_id"] for result in by_room["results"]] == [started.json["delete_id"]]

    for user in (owner, member):
        incremental = await sync(client, user, before[user["user_id"]])
        assert room_id in incremental["rooms"]["leave"], incremental
        assert room_id not in incremental["rooms"].get("join", {})
        initial = await sync(client, user)
        assert room_id not in initial.get("rooms", {}).get("join", {})
    await sliding.sync(timeout=0)   # Element X's sync goes on, without the room's state
    assert (await list_rooms(client, admin, search_term=tag))["rooms"] == []
    gone = await client.request("GET", f"{ADMIN}/v1/rooms/{room_id}", token=admin["access_token"])
    assert gone.code == 404 and gone.json["errcode"] == "M_NOT_FOUND", gone
    alias = await client.request("GET", f"directory/room/{quote(f'#{tag}:{client.server.server_name}')}")
    assert alias.code == 404, alias
    public = await ok(client, "GET", "publicRooms", user=member, query={"limit": "500"})
    assert room_id not in [room["room_id"] for room in public["chunk"]]
    rejoin = await client.request("POST", f"rooms/{room_id}/join", {}, token=member["access_token"])
    assert rejoin.code == 404, rejoin
    # What is left of the room: its local users' leaves (which their syncs
    # showed above), and the record of its deletion.
    assert rows_of_room(client.server.dsn, room_id) == {
        "events": 2, "current_state": 2, "room_delete_jobs": 1,
        "kept events": [("m.room.member", "leave"), ("m.room.member", "leave")]}
    again = await client.request("DELETE", f"{ADMIN}/v2/rooms/{room_id}", {}, token=admin["access_token"])
    assert again.code == 400, again


@pytest_twisted.ensureDeferred
async def test_delete_moves_members_to_a_new_room(client):
    """Delete with new_room_user_id: members are joined to a new room with the admin's message; aliases follow."""
    admin = await register_admin(client)
    owner, member = await client.register(), await client.register()
    tag = unique_localpart("moved")
    room_id = await create_room(client, owner, preset="public_chat", room_alias_name=tag)
    await join(client, member, room_id)

    started = await client.request("DELETE", f"{ADMIN}/v2/rooms/{room_id}", {
        "new_room_user_id": admin["user_id"], "room_name": "Closed", "message": "This room broke the rules.",
        "block": True}, token=admin["access_token"])
    assert started.code == 200, started
    status = await finished_deletion(client, admin, started.json["delete_id"])
    assert status["status"] == "complete", status
    new_room_id = status["shutdown_room"]["new_room_id"]
    assert new_room_id is not None and new_room_id != room_id

    for user in (owner, member):
        joined = await ok(client, "GET", "joined_rooms", user=user)
        assert joined["joined_rooms"] == [new_room_id], joined
        messages = await ok(client, "GET", f"rooms/{new_room_id}/messages", user=user, query={"dir": "b"})
        assert "This room broke the rules." in [event["content"].get("body") for event in messages["chunk"]]
        speaking = await client.request("PUT", f"rooms/{new_room_id}/send/m.room.message/t1",
                                        {"msgtype": "m.text", "body": "but"}, token=user["access_token"])
        assert speaking.code == 403, speaking   # moved users may read, not speak
    name = await ok(client, "GET", f"rooms/{new_room_id}/state/m.room.name", user=member)
    assert name == {"name": "Closed"}
    alias = await ok(client, "GET", f"directory/room/{quote(f'#{tag}:{client.server.server_name}')}", user=member)
    assert alias["room_id"] == new_room_id
    assert await admin_get(client, admin, f"/v1/rooms/{room_id}/block") == {"block": True,
                                                                           "user_id": admin["user_id"]}


@pytest_twisted.ensureDeferred
async def test_delete_v1_without_purge_answers_when_done(client):
    """The older synchronous delete: it answers with what it did; unpurged, the room stays, empty and blocked."""
    admin = await register_admin(client)
    owner, invited = await client.register(), await client.register()
    room_id = await create_room(client, owner, preset="private_chat", invite=[invited["user_id"]])

    response = await client.request("DELETE", f"{ADMIN}/v1/rooms/{room_id}", {"purge": False, "block": True},
                                    token=admin["access_token"])
    assert response.code == 200, response
    assert_shape(response.json, SHUTDOWN)
    assert sorted(response.json["kicked_users"]) == sorted([owner["user_id"], invited["user_id"]])
    details = await admin_get(client, admin, f"/v1/rooms/{room_id}")
    assert details["joined_members"] == 0 and details["forgotten"] is False
    joining = await client.request("POST", f"rooms/{room_id}/join", {}, token=owner["access_token"])
    assert joining.code == 403, joining

    empty_body = await client.request("DELETE", f"{ADMIN}/v1/rooms/{room_id}", b"", token=admin["access_token"])
    assert empty_body.code == 400, empty_body   # the body must be a JSON object, {} at least (as Synapse)
    unknown = await client.request("DELETE", f"{ADMIN}/v1/rooms/!unknown:{client.server.server_name}", {},
                                   token=admin["access_token"])
    assert unknown.code == 400, unknown
    missing = await client.request("GET", f"{ADMIN}/v2/rooms/delete_status/nosuchid", token=admin["access_token"])
    assert missing.code == 404, missing


@pytest_twisted.ensureDeferred
async def test_make_room_admin_gives_the_top_power_level(client):
    """make_room_admin: the admin (by default) or a named member gets the room creator's level."""
    admin = await register_admin(client)
    owner, member = await client.register(), await client.register()
    room_id = await create_room(client, owner, preset="public_chat", room_version="10")
    await join(client, member, room_id)

    response = await client.request("POST", f"{ADMIN}/v1/rooms/{room_id}/make_room_admin",
                                    {"user_id": member["user_id"]}, token=admin["access_token"])
    assert response.code == 200 and response.json == {}, response
    levels = await ok(client, "GET", f"rooms/{room_id}/state/m.room.power_levels", user=member)
    assert levels["users"][member["user_id"]] == 100 == levels["users"][owner["user_id"]]

    private = await create_room(client, owner, preset="private_chat", room_alias_name=unique_localpart("pa"))
    alias = (await ok(client, "GET", f"rooms/{private}/state/m.room.canonical_alias", user=owner))["alias"]
    response = await client.request("POST", f"{ADMIN}/v1/rooms/{quote(alias)}/make_room_admin", {},
                                    token=admin["access_token"])
    assert response.code == 200, response
    levels = await ok(client, "GET", f"rooms/{private}/state/m.room.power_levels", user=owner)
    assert levels["users"][admin["user_id"]] == max(levels["users"].values())
    invites = (await sync(client, admin)).get("rooms", {}).get("invite", {})
    assert private in invites   # not in a private room: invited, as Synapse does

    remote = await client.request("POST", f"{ADMIN}/v1/rooms/{room_id}/make_room_admin",
                                  {"user_id": "@someone:elsewhere.example"}, token=admin["access_token"])
    assert remote.code == 400, remote


@pytest_twisted.ensureDeferred
async def test_forward_extremities_of_a_local_room(client):
    """A room on this server alone has one forward extremity, its last event; none is extra to delete."""
    admin = await register_admin(client)
    owner = await client.register()
    room_id = await create_room(client, owner)
    last = await send_text(client, owner, room_id, "last", "t1")

    extremities = await admin_get(client, admin, f"/v1/rooms/{room_id}/forward_extremities")
    assert_shape(extremities, {"count": int, "results": [{"event_id": str, "state_group": (int, type(None)),
                                                          "depth": int, "received_ts": int}]})
    assert extremities["count"] == 1 and extremities["results"][0]["event_id"] == last
    deleted = await client.request("DELETE", f"{ADMIN}/v1/rooms/{room_id}/forward_extremities",
                                   token=admin["access_token"])
    assert deleted.code == 200 and deleted.json == {"deleted": 0}, deleted
    assert (await admin_get(client, admin, f"/v1/rooms/{room_id}/forward_extremities"))["count"] == 1
    # New events still build on the room's head.
    await send_text(client, owner, room_id, "after", "t2")


@pytest_twisted.ensureDeferred
async def test_admin_joins_a_user_to_a_room(client):
    """POST /v1/join: a public room directly; a private one the admin is in, by an invite first."""
    admin = await register_admin(client)
    owner, user = await client.register(), await client.register()
    public = await create_room(client, owner, preset="public_chat")
    response = await client.request("POST", f"{ADMIN}/v1/join/{public}", {"user_id": user["user_id"]},
                                    token=admin["access_token"])
    assert response.code == 200 and response.json == {"room_id": public}, response

    private = await create_room(client, owner, preset="private_chat")
    refused = await client.request("POST", f"{ADMIN}/v1/join/{private}", {"user_id": user["user_id"]},
                                   token=admin["access_token"])
    assert refused.code == 403, refused
    await ok(client, "POST", f"rooms/{private}/invite", {"user_id": admin["user_id"]}, user=owner)
    await join(client, admin, private)
    response = await client.request("POST", f"{ADMIN}/v1/join/{private}", {"user_id": user["user_id"]},
                                    token=admin["access_token"])
    assert response.code == 200, response
    joined = await ok(client, "GET", "joined_rooms", user=user)
    assert {public, private} <= set(joined["joined_rooms"])


@pytest_twisted.ensureDeferred
async def test_deletion_cut_short_by_a_crash_finishes_when_asked_again(start_homeserver, make_client):
    """
    The daemon is killed as a deletion starts: it starts again (nothing
    half-purged in its way), the deletion says complete or failed (never
    still running), a failed one finishes when asked again, and the
    members' syncs show the room left.
    """
    server = start_homeserver("[rate_limits]\nenabled = false\n")
    client = make_client(server)
    admin = await register_admin(client)
    owner, member = await client.register(), await client.register()
    room_id = await create_room(client, owner, preset="public_chat")
    await join(client, member, room_id)
    for n in range(50):
        await send_text(client, owner if n % 2 else member, room_id, f"message {n}", f"t{n}")
    since = (await sync(client, member))["next_batch"]

    started = await client.request("DELETE", f"{ADMIN}/v2/rooms/{room_id}", {}, token=admin["access_token"])
    assert started.code == 200, started
    server.kill()
    server.start()

    status = await admin_get(client, admin, f"/v2/rooms/delete_status/{started.json['delete_id']}")
    assert status["status"] in ("complete", "failed"), status
    if status["status"] == "failed":
        again = await client.request("DELETE", f"{ADMIN}/v2/rooms/{room_id}", {}, token=admin["access_token"])
        assert again.code == 200, again
        assert (await finished_deletion(client, admin, again.json["delete_id"]))["status"] == "complete"
    server.stop()
    server.start()   # and once more, with what a purge leaves
    assert room_id in (await sync(client, member, since))["rooms"]["leave"]
    assert room_id not in (await sync(client, owner)).get("rooms", {}).get("join", {})
    gone = await client.request("GET", f"{ADMIN}/v1/rooms/{room_id}", token=admin["access_token"])
    assert gone.code == 404, gone


@pytest_twisted.ensureDeferred
async def test_deleting_a_room_shared_with_another_server(start_federating, make_client):
    """
    A room bob of server B joined: A's admin sees its DAG's forward
    extremity, deletes it; B hears alice leave, and A keeps nothing of the
    room's DAG but alice's leave.
    """
    server_a, server_b = start_federating(), start_federating()
    a, b = make_client(server_a), make_client(server_b)
    admin, alice, bob = await register_admin(a), await a.register(), await b.register()
    room_id = await create_room(a, alice, preset="public_chat")
    await ok(b, "POST", f"join/{quote(room_id)}", {}, user=bob, query={"server_name": server_a.server_name})
    await send_text(b, bob, room_id, "from B", "t1")
    bob_sync = SyncWatcher(b, bob)
    await bob_sync.wait_for(membership_of(alice["user_id"], "join", room_id), "the room")

    extremities = await admin_get(a, admin, f"/v1/rooms/{room_id}/forward_extremities")
    assert extremities["count"] >= 1 and all(isinstance(x["state_group"], int) for x in extremities["results"])

    started = await a.request("DELETE", f"{ADMIN}/v2/rooms/{room_id}", {}, token=admin["access_token"])
    status = await finished_deletion(a, admin, started.json["delete_id"])
    assert status["status"] == "complete" and status["shutdown_room"]["kicked_users"] == [alice["user_id"]]
    await bob_sync.wait_for(membership_of(alice["user_id"], "leave", room_id), "alice's leave")
    assert rows_of_room(server_a.dsn, room_id) == {
        "events": 1, "current_state": 1, "room_delete_jobs": 1, "kept events": [("m.room.member", "leave")]}


@pytest_twisted.ensureDeferred
async def test_invites_from_another_server_into_a_blocked_room_are_refused(start_federating, make_client):
    """
    A room of server B that A's admin blocked: B's invite of A's user is refused (B's user
    gets 403) and never reaches the user; once unblocked, the invite arrives.
    """
    server_a, server_b = start_federating(), start_federating()
    a, b = make_client(server_a), make_client(server_b)
    admin, alice, bob = await register_admin(a), await a.register(), await b.register()
    room_id = await create_room(b, bob, preset="private_chat")
    blocked = await a.request("PUT", f"{ADMIN}/v1/rooms/{room_id}/block", {"block": True},
                              token=admin["access_token"])
    assert blocked.code == 200, blocked
    refused = await b.request("POST", f"rooms/{quote(room_id)}/invite", {"user_id": alice["user_id"]},
                              token=bob["access_token"])
    assert refused.code == 403, refused
    alice_sync = await sync(a, alice)
    assert room_id not in alice_sync.get("rooms", {}).get("invite", {})

    await a.request("PUT", f"{ADMIN}/v1/rooms/{room_id}/block", {"block": False}, token=admin["access_token"])
    await ok(b, "POST", f"rooms/{quote(room_id)}/invite", {"user_id": alice["user_id"]}, user=bob)
    assert room_id in (await sync(a, alice))["rooms"]["invite"]
