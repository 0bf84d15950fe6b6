"""
Helpers for tests of rooms shared between servers: waiting, through a
user's /sync, until something sent on another server has arrived.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

from twisted.internet import reactor
from twisted.internet.task import deferLater

from polling import DEADLINE_S
from conftest import Client, Homeserver
from room_helpers import create_room, ok, send_text


class SyncWatcher:
    """One user's /sync, followed incrementally; C{wait_for} long-polls until a predicate holds."""

    def __init__(self, client, user: dict, sync_filter: str | None = None) -> None:
        self.client = client
        self.user = user
        self.sync_filter = sync_filter   # a filter id or JSON, sent with each /sync
        self.since: str | None = None
        self.seen: list[dict] = []   # every /sync response so far

    async def sync_once(self, timeout_ms: int = 0) -> dict:
        path = "sync?timeout=%d" % timeout_ms + (f"&since={quote(self.since)}" if self.since else "")
        if self.sync_filter is not None:
            path += f"&filter={quote(self.sync_filter)}"
        answer = await self.client.request("GET", path, token=self.user["access_token"])
        assert answer.code == 200, answer
        self.since = answer.json["next_batch"]
        self.seen.append(answer.json)
        return answer.json

    async def wait_for(self, found: Callable[[dict], object], what: str) -> object:
        """Sync until C{found(response)} is truthy for a response; its value. Fails at the deadline."""
        deadline = reactor.seconds() + DEADLINE_S
        if self.since is None:
            result = found(await self.sync_once())
            if result:
                return result
        while reactor.seconds() < deadline:
            result = found(await self.sync_once(timeout_ms=2_000))
            if result:
                return result
            await deferLater(reactor, 0.05, lambda: None)
        raise AssertionError(f"{self.user['user_id']} never saw {what}")


def timeline_events(response: dict, room_id: str, section: str = "join") -> list[dict]:
    room = response.get("rooms", {}).get(section, {}).get(room_id, {})
    return [*room.get("state", {}).get("events", []), *room.get("timeline", {}).get("events", [])]


def message_with_body(body: str, room_id: str) -> Callable[[dict], dict | None]:
    def found(response: dict) -> dict | None:
        for event in timeline_events(response, room_id):
            if event.get("type") == "m.room.message" and event.get("content", {}).get("body") == body:
                return event
        return None
    return found


def message_bodies(responses: list[dict], room_id: str) -> list[str]:
    """The bodies of the room's messages in a user's successive /sync responses, in order."""
    return [event["content"].get("body") for response in responses
            for event in timeline_events(response, room_id) if event.get("type") == "m.room.message"]


def membership_of(user_id: str, membership: str, room_id: str) -> Callable[[dict], dict | None]:
    def found(response: dict) -> dict | None:
        for section in ("join", "leave"):
            for event in timeline_events(response, room_id, section):
                if event.get("type") == "m.room.member" and event.get("state_key") == user_id \
                        and event.get("content", {}).get("membership") == membership:
                    return event
        return None
    return found


def invite_to(room_id: str) -> Callable[[dict], dict | None]:
    def found(response: dict) -> dict | None:
        return response.get("rooms", {}).get("invite", {}).get(room_id)
    return found


def knock_on(room_id: str) -> Callable[[dict], dict | None]:
    """The user's knock on the room, as /sync shows it under C{rooms.knock}."""
    def found(response: dict) -> dict | None:
        return response.get("rooms", {}).get("knock", {}).get(room_id)
    return found


async def page_back(client, user: dict, room_id: str, limit: int = 10) -> list[dict]:
    """
    Every event /messages gives C{user}, newest first, paging backwards from
    now until the start of the room (a page without C{end}, or an empty one).
    """
    events, token = [], None
    for _ in range(50):
        query = {"dir": "b", "limit": str(limit), **({"from": token} if token else {})}
        answer = await client.request("GET", f"rooms/{quote(room_id)}/messages", token=user["access_token"],
                                      query=query)
        assert answer.code == 200, answer
        events += answer.json["chunk"]
        token = answer.json.get("end")
        if token is None or not answer.json["chunk"]:
            return events
    raise AssertionError("/messages never reached the start of the room")


def bodies_of(events: list[dict]) -> list[str]:
    """The bodies of the messages among C{events}, in their order."""
    return [event["content"].get("body") for event in events if event["type"] == "m.room.message"]


async def room_with_messages(client, owner: dict, prefix: str, count: int = 30, **body) -> str:
    """A public room of C{owner} (C{createRoom} C{body} added) with messages C{"<prefix> 1"} to C{count}."""
    room_id = await create_room(client, owner, preset="public_chat", **body)
    for i in range(1, count + 1):
        await send_text(client, owner, room_id, f"{prefix} {i}", f"{prefix}{i}".replace(" ", "_"))
    return room_id


async def shared_room(servers, **body) -> tuple[dict, dict, str]:
    """
    alice's room on A (C{createRoom} C{body} added to the public_chat
    preset) that bob of B joined through A: C{(alice, bob, room_id)} once
    alice sees his join. C{servers}: the clients of A and B.
    """
    a, b = servers
    alice, bob = await a.register(), await b.register()
    room_id = await create_room(a, alice, preset="public_chat", **body)
    answer = await b.request("POST", f"join/{quote(room_id)}", {}, token=bob["access_token"],
                             query={"via": a.server.server_name})
    assert answer.code == 200, answer
    await SyncWatcher(a, alice).wait_for(membership_of(bob["user_id"], "join", room_id), "bob's join")
    return alice, bob, room_id


def _ephemeral(response: dict, room_id: str) -> list[dict]:
    return response.get("rooms", {}).get("join", {}).get(room_id, {}).get("ephemeral", {}).get("events", [])


def typing_of(user_id: str, room_id: str) -> Callable[[dict], bool]:
    def found(response: dict) -> bool:
        return any(e["type"] == "m.typing" and user_id in e["content"]["user_ids"]
                   for e in _ephemeral(response, room_id))
    return found


def receipt_of(user_id: str, event_id: str, room_id: str) -> Callable[[dict], bool]:
    def found(response: dict) -> bool:
        return any(e["type"] == "m.receipt" and user_id in e["content"].get(event_id, {}).get("m.read", {})
                   for e in _ephemeral(response, room_id))
    return found


def redaction_of(event_id: str, room_id: str) -> Callable[[dict], bool]:
    def found(response: dict) -> bool:
        return any(e["type"] == "m.room.redaction" and event_id in (e.get("redacts"), e["content"].get("redacts"))
                   for e in timeline_events(response, room_id))
    return found


#: A sync filter keeping up to 100 timeline events a room.
LONG_TIMELINE = json.dumps({"room": {"timeline": {"limit": 100}}})


@dataclass
class Linked:
    """Two daemons, A and B; a room of alice's on A that bob of B has joined, and bob's /sync."""

    server_a: Homeserver
    server_b: Homeserver
    a: Client
    b: Client
    alice: dict
    bob: dict
    room_id: str
    bob_sync: SyncWatcher

    async def messages(self, client: Client, user: dict) -> list[str]:
        """The room's message bodies as C{user} pages back through /messages, newest first."""
        page = await ok(client, "GET", f"rooms/{quote(self.room_id)}/messages", user=user,
                        query={"dir": "b", "limit": "100"})
        return [e["content"]["body"] for e in page["chunk"] if e["type"] == "m.room.message"]


async def link(start_federating, make_client) -> Linked:
    """Start A and B, and let bob of B join a room of alice's on A."""
    server_a, server_b = start_federating(), start_federating()
    a, b = make_client(server_a), make_client(server_b)
    alice, bob = await a.register(), await b.register()
    room_id = await create_room(a, alice, preset="public_chat")
    await ok(b, "POST", f"join/{quote(room_id)}", {}, user=bob, query={"via": server_a.server_name})
    await SyncWatcher(a, alice).wait_for(membership_of(bob["user_id"], "join", room_id), "bob's join")
    bob_sync = SyncWatcher(b, bob, LONG_TIMELINE)
    await bob_sync.wait_for(membership_of(bob["user_id"], "join", room_id), "his own join")
    return Linked(server_a, server_b, a, b, alice, bob, room_id, bob_sync)
