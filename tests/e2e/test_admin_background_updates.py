"""
The admin API's background updates, through the real daemon: the one
ruma_tx has, indexing past events for search, shown while it runs and
paused and resumed by an admin.
"""
from __future__ import annotations

import time

import psycopg2
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from admin_helpers import ADMIN, register_admin
from polling import DEADLINE_S
from room_helpers import create_room

UPDATE = {"name", "total_item_count", "total_duration_ms", "average_items_per_ms"}


async def _status(client, admin: dict) -> dict:
    response = await client.request("GET", f"{ADMIN}/v1/background_updates/status", token=admin["access_token"])
    assert response.code == 200, response
    assert set(response.json) == {"enabled", "current_updates"}
    return response.json


async def _set_enabled(client, admin: dict, enabled) -> dict:
    response = await client.request("POST", f"{ADMIN}/v1/background_updates/enabled", {"enabled": enabled},
                                    token=admin["access_token"])
    return response


async def _items(client, admin: dict) -> int:
    update = (await _status(client, admin))["current_updates"]["master"]
    assert set(update) == UPDATE and update["name"] == "event_search_backfill"
    return update["total_item_count"]


async def _until(what: str, check) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if await check():
            return
        await deferLater(reactor, 0.1, lambda: None)
    raise AssertionError(f"never {what}")


async def _pause() -> None:
    """Longer than the backfill's wait between batches."""
    await deferLater(reactor, 1.0, lambda: None)


@pytest_twisted.ensureDeferred
async def test_idle_server_reports_no_update_and_toggles_enabled(client):
    """Nothing left to index: no current update; enabled is set and read back; a bad body is 400."""
    admin = await register_admin(client)
    assert await _status(client, admin) == {"enabled": True, "current_updates": {}}
    paused = await _set_enabled(client, admin, False)
    assert (paused.code, paused.json) == (200, {"enabled": False})
    read = await client.request("GET", f"{ADMIN}/v1/background_updates/enabled", token=admin["access_token"])
    assert (read.code, read.json) == (200, {"enabled": False})
    assert (await _status(client, admin))["enabled"] is False
    assert (await _set_enabled(client, admin, True)).json == {"enabled": True}
    bad = await _set_enabled(client, admin, "yes")
    assert (bad.code, bad.json["errcode"]) == (400, "M_BAD_JSON")
    user = await client.register()
    forbidden = await client.request("GET", f"{ADMIN}/v1/background_updates/status", token=user["access_token"])
    assert (forbidden.code, forbidden.json["errcode"]) == (403, "M_FORBIDDEN")


@pytest_twisted.ensureDeferred
async def test_admin_watches_pauses_and_resumes_the_search_backfill(start_homeserver, make_client):
    """
    A database whose events predate the search index (from far above
    them, so the backfill has a long way to go):
    the backfill shows in the status with its progress; paused, its count
    stops moving; resumed, it moves again.
    """
    server = start_homeserver("[rate_limits]\nenabled = false\n")
    client = make_client(server)
    admin = await register_admin(client)
    await create_room(client, admin, name="indexed late")
    server.stop()
    with psycopg2.connect(server.dsn) as db, db.cursor() as cursor:
        cursor.execute("INSERT INTO event_search_backfill (below) VALUES (1000000000000)")
    server.start()

    await _until("saw the backfill make progress", lambda: _positive(client, admin))
    assert (await _set_enabled(client, admin, False)).json == {"enabled": False}
    await _pause()   # a batch under way when paused finishes
    paused_at = await _items(client, admin)
    await _pause()
    assert await _items(client, admin) == paused_at
    assert (await _status(client, admin))["enabled"] is False

    assert (await _set_enabled(client, admin, True)).json == {"enabled": True}
    await _until("saw the backfill resume", lambda: _beyond(client, admin, paused_at))


async def _positive(client, admin: dict) -> bool:
    return (await _status(client, admin))["current_updates"] != {} and await _items(client, admin) > 0


async def _beyond(client, admin: dict, count: int) -> bool:
    return await _items(client, admin) > count
