"""
The admin API's federation destinations, between two real daemons: the
servers A sends to, how sending goes, the rooms shared with each, and
cutting a failing server's backoff short after an outage.
"""
from __future__ import annotations

import time
from urllib.parse import quote

import psycopg2
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from admin_helpers import ADMIN, assert_shape, register_admin
from federation_helpers import SyncWatcher, link, message_with_body
from polling import DEADLINE_S
from room_helpers import send_text

DESTINATION = {"destination": str, "retry_last_ts": int, "retry_interval": int, "failure_ts": (int, type(None)),
               "last_successful_stream_ordering": int}
HOUR_MS = 3_600_000


async def _link(start_federating, make_client):
    """A and B; bob of B joined to alice's room on A, and a message of hers has reached him."""
    linked = await link(start_federating, make_client)
    await send_text(linked.a, linked.alice, linked.room_id, "hello B", "hello")
    await linked.bob_sync.wait_for(message_with_body("hello B", linked.room_id), "alice's message")
    return (linked.server_a, linked.server_b, linked.a, linked.b, linked.alice, linked.bob, linked.room_id)


async def _get(client, admin: dict, path: str, **query):
    return await client.request("GET", f"{ADMIN}/v1/federation/destinations{path}", token=admin["access_token"],
                                query=query or None)


async def _destination(client, admin: dict, name: str) -> dict:
    response = await _get(client, admin, f"/{quote(name)}")
    assert response.code == 200, response
    assert_shape(response.json, DESTINATION)
    return response.json


async def _until_failing(client, admin: dict, name: str) -> dict:
    """The destination once a try to send to it has failed."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        status = await _destination(client, admin, name)
        if status["failure_ts"] is not None:
            return status
        await deferLater(reactor, 0.1, lambda: None)
    raise AssertionError(f"sending to {name} never failed")


@pytest_twisted.ensureDeferred
async def test_admin_sees_the_peer_its_rooms_and_its_health(start_federating, make_client):
    """After a federated send, A lists B as healthy, with the room they share; unknown servers are 404."""
    server_a, server_b, a, b, alice, bob, room_id = await _link(start_federating, make_client)
    admin = await register_admin(a)

    listing = await _get(a, admin, "")
    assert listing.code == 200, listing
    assert_shape(listing.json, {"destinations": [DESTINATION], "total": int})
    assert [d["destination"] for d in listing.json["destinations"]] == [server_b.server_name]
    assert listing.json["total"] == 1 and "next_token" not in listing.json
    healthy = listing.json["destinations"][0]
    assert (healthy["retry_last_ts"], healthy["retry_interval"], healthy["failure_ts"]) == (0, 0, None)
    assert await _destination(a, admin, server_b.server_name) == healthy

    ordered = await _get(a, admin, "", order_by="retry_interval", dir="b", destination="localhost")
    assert ordered.code == 200 and ordered.json["destinations"] == [healthy]
    assert (await _get(a, admin, "", destination="elsewhere")).json == {"destinations": [], "total": 0}
    bad_order = await _get(a, admin, "", order_by="size")
    assert (bad_order.code, bad_order.json["errcode"]) == (400, "M_INVALID_PARAM")

    rooms = await _get(a, admin, f"/{quote(server_b.server_name)}/rooms")
    assert rooms.code == 200, rooms
    assert_shape(rooms.json, {"rooms": [{"room_id": str, "stream_ordering": int}], "total": int})
    assert [room["room_id"] for room in rooms.json["rooms"]] == [room_id]
    assert rooms.json["rooms"][0]["stream_ordering"] > 0

    for path in ("/unknown.example", "/unknown.example/rooms"):
        unknown = await _get(a, admin, path)
        assert (unknown.code, unknown.json["errcode"]) == (404, "M_NOT_FOUND"), path
    not_failing = await a.request("POST", f"{ADMIN}/v1/federation/destinations/{quote(server_b.server_name)}"
                                  "/reset_connection", {}, token=admin["access_token"])
    assert not_failing.code == 400, not_failing


@pytest_twisted.ensureDeferred
async def test_reset_connection_sends_at_once_what_waits_for_a_backoff(start_federating, make_client):
    """
    B was down when alice wrote, and A backs off from it for an hour: the
    admin sees the failure, resets the connection, and bob gets the message.
    """
    server_a, server_b, a, b, alice, bob, room_id = await _link(start_federating, make_client)
    admin = await register_admin(a)
    name = server_b.server_name
    server_b.kill()
    await send_text(a, alice, room_id, "while B was down", "down")
    failing = await _until_failing(a, admin, name)
    assert failing["retry_last_ts"] >= failing["failure_ts"] > 0 and failing["retry_interval"] > 0

    # A restarts an hour into its backoff (as after a long outage), then B comes back.
    server_a.stop()
    with psycopg2.connect(server_a.dsn) as db, db.cursor() as cursor:
        cursor.execute("UPDATE federation_destinations SET retry_at_ms = retry_last_ms + %s, backoff_ms = %s"
                       " WHERE destination = %s", (HOUR_MS, HOUR_MS, name))
    server_a.start()
    waiting = await _destination(a, admin, name)
    assert waiting["retry_interval"] == HOUR_MS and waiting["failure_ts"] == failing["failure_ts"]
    server_b.start()

    reset = await a.request("POST", f"{ADMIN}/v1/federation/destinations/{quote(name)}/reset_connection", {},
                            token=admin["access_token"])
    assert (reset.code, reset.json) == (200, {})
    after = await _destination(a, admin, name)
    assert (after["retry_last_ts"], after["retry_interval"], after["failure_ts"]) == (0, 0, None)
    await SyncWatcher(b, bob).wait_for(message_with_body("while B was down", room_id), "the outage's message")


@pytest_twisted.ensureDeferred
async def test_no_destinations_without_federation(client):
    """With federation off, nothing is listed and no server is known."""
    admin = await register_admin(client)
    listing = await _get(client, admin, "")
    assert (listing.code, listing.json) == (200, {"destinations": [], "total": 0})
    unknown = await _get(client, admin, "/matrix.org")
    assert (unknown.code, unknown.json["errcode"]) == (404, "M_NOT_FOUND")


@pytest_twisted.ensureDeferred
async def test_users_cannot_see_or_reset_destinations(client):
    """A plain user gets 403 M_FORBIDDEN from every federation endpoint."""
    user = await client.register()
    for method, path in (("GET", ""), ("GET", "/matrix.org"), ("GET", "/matrix.org/rooms"),
                         ("POST", "/matrix.org/reset_connection")):
        response = await client.request(method, f"{ADMIN}/v1/federation/destinations{path}", {} if method == "POST"
                                        else None, token=user["access_token"])
        assert (response.code, response.json["errcode"]) == (403, "M_FORBIDDEN"), path
