"""
What the room upgrade, space, room summary and report tests share: the
requests a client makes, each expected to succeed.
"""
from __future__ import annotations

from urllib.parse import quote


async def ok(client, method: str, path: str, body=None, *, user: dict, **kwargs):
    """C{user}'s request, which must answer 200; its JSON body."""
    response = await client.request(method, path, body, token=user["access_token"], **kwargs)
    assert response.code == 200, response
    return response.json


async def create_room(client, owner: dict, **body) -> str:
    """A room C{owner} creates with the createRoom C{body}."""
    return (await ok(client, "POST", "createRoom", body, user=owner))["room_id"]


async def join(client, user: dict, room_id: str) -> None:
    await ok(client, "POST", f"rooms/{quote(room_id)}/join", {}, user=user)


async def send_text(client, user: dict, room_id: str, body: str, txn: str) -> str:
    """A message C{user} sends; its event id."""
    sent = await ok(client, "PUT", f"rooms/{quote(room_id)}/send/m.room.message/{txn}",
                    {"msgtype": "m.text", "body": body}, user=user)
    return sent["event_id"]
