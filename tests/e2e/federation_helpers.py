"""
Helpers for tests of rooms shared between servers: waiting, through a
user's /sync, until something sent on another server has arrived.
"""
from __future__ import annotations

from typing import Callable
from urllib.parse import quote

from twisted.internet import reactor
from twisted.internet.task import deferLater

from polling import DEADLINE_S


class SyncWatcher:
    """One user's /sync, followed incrementally; C{wait_for} long-polls until a predicate holds."""

    def __init__(self, client, user: dict) -> None:
        self.client = client
        self.user = user
        self.since: str | None = None
        self.seen: list[dict] = []   # every /sync response so far

    async def sync_once(self, timeout_ms: int = 0) -> dict:
        path = "sync?timeout=%d" % timeout_ms + (f"&since={quote(self.since)}" if self.since else "")
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
