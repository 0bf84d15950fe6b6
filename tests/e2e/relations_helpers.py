"""
What the relation, thread and threaded-receipt tests share: rooms, the
contents of related events, and the requests a client makes about them.
"""
from __future__ import annotations

import itertools
import json
from urllib.parse import quote

from events_schema import validate_sync_response

_txns = itertools.count(1)


async def room_of(client, creator: dict, *members: dict, **body) -> str:
    """A public room C{creator} makes (with C{body}) and C{members} join."""
    created = await client.request("POST", "createRoom", {"preset": "public_chat", **body},
                                   token=creator["access_token"])
    assert created.code == 200, created
    room_id = created.json["room_id"]
    for member in members:
        joined = await client.request("POST", f"rooms/{quote(room_id)}/join", {},
                                      token=member["access_token"])
        assert joined.code == 200, joined
    return room_id


def text(body: str, **extra) -> dict:
    return {"msgtype": "m.text", "body": body, **extra}


def in_thread(root: str, body: str, **extra) -> dict:
    return text(body, **extra, **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}})


def reaction(parent: str, key: str) -> dict:
    return {"m.relates_to": {"rel_type": "m.annotation", "event_id": parent, "key": key}}


def edit(original: str, body: str) -> dict:
    return text(f"* {body}", **{"m.new_content": text(body),
                                "m.relates_to": {"rel_type": "m.replace", "event_id": original}})


def reference(parent: str, body: str = "see that") -> dict:
    return text(body, **{"m.relates_to": {"rel_type": "m.reference", "event_id": parent}})


async def send(client, user: dict, room_id: str, content: dict, event_type: str = "m.room.message"):
    """PUT /send: the response, whatever it is."""
    return await client.request("PUT", f"rooms/{quote(room_id)}/send/{event_type}/r{next(_txns)}",
                                content, token=user["access_token"])


async def send_ok(client, user: dict, room_id: str, content: dict, event_type: str = "m.room.message") -> str:
    response = await send(client, user, room_id, content, event_type)
    assert response.code == 200, response
    return response.json["event_id"]


async def react(client, user: dict, room_id: str, parent: str, key: str) -> str:
    return await send_ok(client, user, room_id, reaction(parent, key), "m.reaction")


async def redact(client, user: dict, room_id: str, event_id: str) -> None:
    response = await client.request(
        "PUT", f"rooms/{quote(room_id)}/redact/{quote(event_id)}/x{next(_txns)}", {},
        token=user["access_token"])
    assert response.code == 200, response


async def relations(client, user: dict, room_id: str, event_id: str, *path: str, **query):
    """GET /relations/{eventId}[/{relType}[/{eventType}]] with C{query}."""
    tail = "".join("/" + quote(part, safe="") for part in path)
    return await client.request(
        "GET", f"/_matrix/client/v1/rooms/{quote(room_id)}/relations/{quote(event_id)}{tail}",
        token=user["access_token"], query={k: str(v) for k, v in query.items()} or None)


async def relations_ok(client, user: dict, room_id: str, event_id: str, *path: str, **query) -> dict:
    response = await relations(client, user, room_id, event_id, *path, **query)
    assert response.code == 200, response
    return response.json


async def threads(client, user: dict, room_id: str, **query):
    return await client.request("GET", f"/_matrix/client/v1/rooms/{quote(room_id)}/threads",
                                token=user["access_token"], query={k: str(v) for k, v in query.items()} or None)


async def get_event(client, user: dict, room_id: str, event_id: str) -> dict:
    response = await client.request("GET", f"rooms/{quote(room_id)}/event/{quote(event_id)}",
                                    token=user["access_token"])
    assert response.code == 200, response
    return response.json


async def messages(client, user: dict, room_id: str, limit: int = 50) -> list[dict]:
    """The room's latest events, newest first (GET /messages)."""
    response = await client.request("GET", f"rooms/{quote(room_id)}/messages", token=user["access_token"],
                                    query={"dir": "b", "limit": str(limit)})
    assert response.code == 200, response
    return response.json["chunk"]


async def sync(client, user: dict, *, since: str | None = None, room_filter: dict | None = None) -> dict:
    query = {}
    if since is not None:
        query["since"] = since
    if room_filter is not None:
        query["filter"] = json.dumps({"room": room_filter})
    response = await client.request("GET", "sync", token=user["access_token"], query=query or None)
    assert response.code == 200, response
    return validate_sync_response(response.json)


def ids(events: list[dict]) -> list[str]:
    return [event["event_id"] for event in events]


def bundled(event: dict) -> dict:
    """The event's bundled aggregations (C{unsigned["m.relations"]}), C{{}} without any."""
    return event.get("unsigned", {}).get("m.relations", {})


def by_id(events: list[dict], event_id: str) -> dict:
    found = [event for event in events if event["event_id"] == event_id]
    assert len(found) == 1, (event_id, ids(events))
    return found[0]
