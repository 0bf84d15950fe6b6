"""
The admin API's event reports, as an admin UI's moderation pages use
them: users report events, an admin pages through the reports, filters
them, opens one and deletes it. Through the real daemon.
"""
from urllib.parse import quote

import pytest_twisted

from admin_helpers import ADMIN, assert_shape, register_admin
from room_helpers import create_room, join, ok, send_text

REPORT = {
    "id": int, "received_ts": int, "room_id": str, "name": (str, type(None)), "event_id": str, "user_id": str,
    "reason": (str, type(None)), "score": (int, type(None)), "sender": (str, type(None)),
    "canonical_alias": (str, type(None)),
}
LISTING = {"event_reports": [REPORT], "total": int, "next_token?": int}


async def _report(client, user: dict, room_id: str, event_id: str, reason: str, **extra) -> None:
    await ok(client, "POST", f"rooms/{quote(room_id)}/report/{quote(event_id)}", {"reason": reason, **extra},
             user=user)


async def _list(client, admin: dict, **query) -> dict:
    response = await client.request("GET", f"{ADMIN}/v1/event_reports", token=admin["access_token"],
                                    query={name: str(value) for name, value in query.items()})
    assert response.code == 200, response
    assert_shape(response.json, LISTING)
    return response.json


async def _reported_room(client, alias: str) -> tuple[dict, dict, str, list[str]]:
    """alice's named room with an alias, bob in it reporting her three messages: (alice, bob, room, events)."""
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat", name="Moderated", room_alias_name=alias)
    await join(client, bob, room_id)
    events = [await send_text(client, alice, room_id, f"rude #{n}", f"rude{n}") for n in range(3)]
    for n, event_id in enumerate(events):
        await _report(client, bob, room_id, event_id, f"reason #{n}", **({"score": -100} if n == 0 else {}))
    return alice, bob, room_id, events


@pytest_twisted.ensureDeferred
async def test_admin_pages_through_a_rooms_reports(client):
    """Newest first by default, two at a time with next_token; dir=f oldest first; room and sender shown."""
    admin = await register_admin(client)
    alice, bob, room_id, events = await _reported_room(client, "reports_paging")

    first = await _list(client, admin, room_id=room_id, limit=2)
    assert first["total"] == 3 and first["next_token"] == 2
    assert [report["event_id"] for report in first["event_reports"]] == events[:0:-1]
    newest = first["event_reports"][0]
    assert (newest["user_id"], newest["sender"], newest["room_id"], newest["reason"]) == \
        (bob["user_id"], alice["user_id"], room_id, "reason #2")
    assert newest["name"] == "Moderated"
    assert newest["canonical_alias"] == f"#reports_paging:{client.server.server_name}"
    assert first["event_reports"][0]["id"] > first["event_reports"][1]["id"]

    last = await _list(client, admin, room_id=room_id, limit=2, **{"from": first["next_token"]})
    assert [report["event_id"] for report in last["event_reports"]] == events[:1]
    assert last["event_reports"][0]["score"] == -100
    assert "next_token" not in last

    oldest_first = await _list(client, admin, room_id=room_id, dir="f")
    assert [report["event_id"] for report in oldest_first["event_reports"]] == events
    assert "next_token" not in oldest_first


@pytest_twisted.ensureDeferred
async def test_admin_filters_reports_by_reporter_and_by_sender(client):
    """user_id picks the reporter's reports; event_sender_user_id the reports against one sender."""
    admin = await register_admin(client)
    alice, bob, room_id, events = await _reported_room(client, "reports_filters")
    carol = await client.register()
    await join(client, carol, room_id)
    carols = await send_text(client, carol, room_id, "spam", "spam")
    await _report(client, alice, room_id, carols, "spam")

    by_alice = await _list(client, admin, user_id=alice["user_id"])
    assert [(r["event_id"], r["sender"]) for r in by_alice["event_reports"]] == [(carols, carol["user_id"])]
    by_bob = await _list(client, admin, user_id=bob["user_id"])
    assert sorted(r["event_id"] for r in by_bob["event_reports"]) == sorted(events)
    against_carol = await _list(client, admin, event_sender_user_id=carol["user_id"])
    assert [r["user_id"] for r in against_carol["event_reports"]] == [alice["user_id"]]
    assert against_carol["total"] == 1
    nothing = await _list(client, admin, room_id=room_id, user_id=carol["user_id"])
    assert nothing == {"event_reports": [], "total": 0}


@pytest_twisted.ensureDeferred
async def test_admin_opens_a_report_with_its_event_then_deletes_it(client):
    """The details carry the reported event's JSON; once deleted, the report is gone (404) from everywhere."""
    admin = await register_admin(client)
    alice, bob, room_id, events = await _reported_room(client, "reports_details")
    report_id = (await _list(client, admin, room_id=room_id))["event_reports"][0]["id"]
    path = f"{ADMIN}/v1/event_reports/{report_id}"

    details = await client.request("GET", path, token=admin["access_token"])
    assert details.code == 200, details
    assert_shape(details.json, {**REPORT, "event_json": {"type": str, "sender": str, "content": dict}})
    assert details.json["event_id"] == events[2]
    event = details.json["event_json"]
    assert (event["type"], event["sender"], event["room_id"], event["content"]["body"]) == \
        ("m.room.message", alice["user_id"], room_id, "rude #2")

    deleted = await client.request("DELETE", path, token=admin["access_token"])
    assert (deleted.code, deleted.json) == (200, {})
    for method in ("GET", "DELETE"):
        gone = await client.request(method, path, token=admin["access_token"])
        assert (gone.code, gone.json["errcode"]) == (404, "M_NOT_FOUND"), gone
    remaining = await _list(client, admin, room_id=room_id)
    assert [r["event_id"] for r in remaining["event_reports"]] == events[1::-1]


@pytest_twisted.ensureDeferred
async def test_bad_report_ids_and_paging_are_refused(client):
    """A report id that is not a number, or a bad from/limit/dir, is 400 M_INVALID_PARAM; an unknown id 404."""
    admin = await register_admin(client)
    for report_id in ("abc", "-1", "1.5", "99999999999999999999"):
        response = await client.request("GET", f"{ADMIN}/v1/event_reports/{report_id}",
                                        token=admin["access_token"])
        assert (response.code, response.json["errcode"]) == (400, "M_INVALID_PARAM"), (report_id, response)
    unknown = await client.request("DELETE", f"{ADMIN}/v1/event_reports/987654321", token=admin["access_token"])
    assert (unknown.code, unknown.json["errcode"]) == (404, "M_NOT_FOUND")
    for query in ({"limit": "-1"}, {"from": "-5"}, {"from": "x"}, {"dir": "up"}):
        response = await client.request("GET", f"{ADMIN}/v1/event_reports", token=admin["access_token"],
                                        query=query)
        assert (response.code, response.json["errcode"]) == (400, "M_INVALID_PARAM"), (query, response)


@pytest_twisted.ensureDeferred
async def test_users_cannot_read_or_delete_reports(client):
    """A plain user (even the reporter) gets 403 M_FORBIDDEN from every report endpoint."""
    alice, bob, room_id, events = await _reported_room(client, "reports_forbidden")
    for method, path in (("GET", "/v1/event_reports"), ("GET", "/v1/event_reports/1"),
                         ("DELETE", "/v1/event_reports/1")):
        response = await client.request(method, ADMIN + path, token=bob["access_token"])
        assert (response.code, response.json["errcode"]) == (403, "M_FORBIDDEN"), (path, response)
