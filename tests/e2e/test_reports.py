"""Reporting events, rooms and users through the real daemon; reports read back from its database."""
from urllib.parse import quote

import psycopg2
import pytest_twisted
from twisted.internet import reactor

from room_helpers import create_room, join, send_text
from ruma_tx.services.reports import ContentReports
from ruma_tx.storage.database import Database
from ruma_tx.storage.reports import ReportStore


def _reports(dsn: str, reporter: str) -> list[tuple]:
    """C{(kind, room_id, event_id, target_user_id, reason, score)} of a reporter's reports, oldest first."""
    conn = psycopg2.connect(dsn, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT kind, room_id, event_id, target_user_id, reason, score FROM content_reports"
                        " WHERE reporter = %s ORDER BY report_id", (reporter,))
            return cur.fetchall()
    finally:
        conn.close()


async def _report_event(client, user, room_id, event_id, body=None):
    return await client.request("POST", f"rooms/{quote(room_id)}/report/{quote(event_id)}",
                                {"reason": "offensive"} if body is None else body, token=user["access_token"])


@pytest_twisted.ensureDeferred
async def test_event_report_is_stored(client):
    """A member reports an event, with a reason and an old client's score: the report is kept."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    event_id = await send_text(client, alice, room_id, "rude words", "m1")
    response = await _report_event(client, bob, room_id, event_id, {"reason": "rude", "score": -100})
    assert (response.code, response.json) == (200, {})
    no_reason = await _report_event(client, bob, room_id, event_id, {})
    assert no_reason.code == 200, no_reason
    assert _reports(client.server.dsn, bob["user_id"]) == [
        ("event", room_id, event_id, None, "rude", -100), ("event", room_id, event_id, None, None, None)]


@pytest_twisted.ensureDeferred
async def test_event_report_404_whatever_the_reason(client):
    """Unknown, elsewhere, redacted, not joined, or not visible: the same 404, and nothing is stored."""
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    other_room = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    elsewhere = await send_text(client, alice, other_room, "elsewhere", "m1")
    redacted = await send_text(client, alice, room_id, "oops", "m2")
    await client.request("PUT", f"rooms/{quote(room_id)}/redact/{quote(redacted)}/r1", {},
                         token=alice["access_token"])
    private = await create_room(client, alice, preset="private_chat")
    await client.request("PUT", f"rooms/{quote(private)}/state/m.room.history_visibility",
                         {"history_visibility": "joined"}, token=alice["access_token"])
    before_carol = await send_text(client, alice, private, "before carol joined", "m3")
    await client.request("POST", f"rooms/{quote(private)}/invite", {"user_id": carol["user_id"]},
                         token=alice["access_token"])
    await join(client, carol, private)
    visible = await send_text(client, alice, room_id, "fine", "m4")
    cases = [(bob, room_id, "$unknown"), (bob, room_id, elsewhere), (bob, room_id, redacted),
             (carol, room_id, visible), (carol, private, before_carol)]
    for user, room, event_id in cases:
        response = await _report_event(client, user, room, event_id)
        assert (response.code, response.json["errcode"]) == (404, "M_NOT_FOUND"), (room, event_id, response)
    assert _reports(client.server.dsn, bob["user_id"]) == []
    assert _reports(client.server.dsn, carol["user_id"]) == []


@pytest_twisted.ensureDeferred
async def test_room_report_needs_no_membership(client):
    """Anyone may report a room that exists; an unknown room is 404; a missing reason is 400."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="private_chat")
    response = await client.request("POST", f"rooms/{quote(room_id)}/report", {"reason": ""},
                                    token=bob["access_token"])
    assert (response.code, response.json) == (200, {})
    unknown = await client.request("POST", f"rooms/{quote('!nope:' + client.server.server_name)}/report",
                                   {"reason": "spam"}, token=bob["access_token"])
    assert (unknown.code, unknown.json["errcode"]) == (404, "M_NOT_FOUND")
    missing = await client.request("POST", f"rooms/{quote(room_id)}/report", {}, token=bob["access_token"])
    assert (missing.code, missing.json["errcode"]) == (400, "M_MISSING_PARAM")
    assert _reports(client.server.dsn, bob["user_id"]) == [("room", room_id, None, None, "", None)]


@pytest_twisted.ensureDeferred
async def test_user_report(client):
    """A local user or another server's is reported; an unknown local user is 404, a malformed id 400."""
    alice, bob = await client.register(), await client.register()
    response = await client.request("POST", f"users/{quote(alice['user_id'])}/report", {"reason": "spammer"},
                                    token=bob["access_token"])
    assert (response.code, response.json) == (200, {})
    remote = await client.request("POST", f"users/{quote('@eve:elsewhere.example')}/report", {"reason": "x"},
                                  token=bob["access_token"])
    assert remote.code == 200, remote
    unknown = await client.request("POST", f"users/{quote('@ghost:' + client.server.server_name)}/report",
                                   {"reason": "x"}, token=bob["access_token"])
    assert (unknown.code, unknown.json["errcode"]) == (404, "M_NOT_FOUND")
    malformed = await client.request("POST", "users/not-a-user/report", {"reason": "x"},
                                     token=bob["access_token"])
    assert (malformed.code, malformed.json["errcode"]) == (400, "M_INVALID_PARAM")
    assert _reports(client.server.dsn, bob["user_id"]) == [
        ("user", None, None, alice["user_id"], "spammer", None),
        ("user", None, None, "@eve:elsewhere.example", "x", None)]


@pytest_twisted.ensureDeferred
async def test_reports_are_rate_limited(start_homeserver, make_client):
    """Past the report bucket's burst, a report is 429 with retry_after_ms, and not stored."""
    server = start_homeserver("[rate_limits]\nreport = { per_second = 0.01, burst_count = 2 }\n")
    client = make_client(server)
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    codes = []
    for _ in range(3):
        response = await client.request("POST", f"rooms/{quote(room_id)}/report", {"reason": "spam"},
                                        token=bob["access_token"])
        codes.append(response.code)
    assert codes == [200, 200, 429]
    assert response.json["errcode"] == "M_LIMIT_EXCEEDED" and response.json["retry_after_ms"] > 0
    assert len(_reports(server.dsn, bob["user_id"])) == 2


@pytest_twisted.ensureDeferred
async def test_admins_list_reports_newest_first(client):
    """The service's listing (for the admin API) gives reports newest first, of one kind, page by page."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    for reason in ("first", "second"):
        response = await client.request("POST", f"rooms/{quote(room_id)}/report", {"reason": reason},
                                        token=bob["access_token"])
        assert response.code == 200, response
    response = await client.request("POST", f"users/{quote(alice['user_id'])}/report", {"reason": "third"},
                                    token=bob["access_token"])
    assert response.code == 200, response
    database = Database(client.server.dsn, 1, reactor)
    await database.open()
    try:
        reports = ContentReports(reports=ReportStore(database), events=None, history=None, accounts=None,
                                 clock=reactor, server_name=client.server.server_name)
        newest = [r for r in await reports.list_reports(limit=1000) if r.reporter == bob["user_id"]]
        assert [(r.kind, r.reason) for r in newest] == [("user", "third"), ("room", "second"), ("room", "first")]
        assert newest[0].user_id == alice["user_id"] and newest[1].room_id == room_id
        rooms = [r for r in await reports.list_reports(kind="room", limit=1000) if r.reporter == bob["user_id"]]
        assert [r.reason for r in rooms] == ["second", "first"]
        page = await reports.list_reports(kind="room", before=rooms[0].report_id, limit=1)
        assert [r.report_id for r in page] == [rooms[1].report_id]
    finally:
        database.close()
