"""
Every stable room version through the real daemon: a room of each version
is created, a message is sent, redacted, and read back, with the event ID
format of its version (rooms/v1.md to v12.md).
"""
from __future__ import annotations

import re
from itertools import count
from urllib.parse import quote

import pytest
import pytest_twisted

_txns = count()

#: The shape of an event ID in each version: sender-chosen with the
#: server name (v1-2), a reference hash in standard (v3) or URL-safe
#: (v4+) unpadded base64.
_EVENT_ID = {
    "1": r"\$[A-Za-z0-9]+:test\.local",
    "3": r"\$[A-Za-z0-9+/]{43}",
    "4": r"\$[A-Za-z0-9_-]{43}",
}


def event_id_pattern(version: str) -> str:
    """The event ID regex of a room version."""
    n = int(version)
    return _EVENT_ID["1" if n <= 2 else "3" if n == 3 else "4"]


@pytest.mark.parametrize("version", [str(n) for n in range(1, 13)])
@pytest_twisted.ensureDeferred
async def test_message_lifecycle_in_every_room_version(client, version):
    """In a room of each version a message is sent, read, redacted and read back redacted."""
    alice = await client.register()
    token = alice["access_token"]
    created = await client.request("POST", "createRoom", {"room_version": version, "name": "v" + version},
                                   token=token)
    assert created.code == 200, created
    room_id = quote(created.json["room_id"], safe="")

    sent = await client.request("PUT", f"rooms/{room_id}/send/m.room.message/t{next(_txns)}",
                                {"msgtype": "m.text", "body": "secret"}, token=token)
    assert sent.code == 200, sent
    event_id = sent.json["event_id"]
    assert re.fullmatch(event_id_pattern(version), event_id), event_id
    path_id = quote(event_id, safe="")

    read = await client.request("GET", f"rooms/{room_id}/event/{path_id}", token=token)
    assert read.code == 200, read
    assert read.json["content"]["body"] == "secret"

    redacted = await client.request("PUT", f"rooms/{room_id}/redact/{path_id}/r{next(_txns)}",
                                    {"reason": "oops"}, token=token)
    assert redacted.code == 200, redacted
    redaction_id = redacted.json["event_id"]
    assert re.fullmatch(event_id_pattern(version), redaction_id), redaction_id

    again = await client.request("GET", f"rooms/{room_id}/event/{path_id}", token=token)
    assert again.code == 200, again
    assert again.json["content"] == {}
    assert again.json["unsigned"]["redacted_because"]["event_id"] == redaction_id

    page = await client.request("GET", f"rooms/{room_id}/messages", token=token,
                                query={"dir": "b", "limit": "2"})
    assert page.code == 200, page
    by_id = {e["event_id"]: e for e in page.json["chunk"]}
    assert by_id[event_id]["content"] == {}
    assert by_id[redaction_id]["redacts"] == event_id

    name = await client.request("GET", f"rooms/{room_id}/state/m.room.name/", token=token)
    assert name.code == 200 and name.json == {"name": "v" + version}
