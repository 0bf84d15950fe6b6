"""
What the sliding sync tests share: one adapter per path (the unstable
C{org.matrix.simplified_msc3575} endpoint Element X speaks, and MSC4186's
C{/v4/sync}) that writes a request in that path's format and reads its
answer, so one test body covers both; and a L{Connection}, a client's sync
loop that sends its request again with the last C{pos}.

Tests write room configs once: a list's window as C{first, last}, its
C{required_state} as the unstable C{[type, state_key]} pairs (C{"*"},
C{"$ME"}, C{["m.room.member", "$LAZY"]}) and its filters with C{is_invite};
the v4 adapter turns them into C{range}, C{include}/C{lazy_members} and
C{is_invited}.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
from events_schema import validate_stripped_state, validate_sync_event

LAZY = ("m.room.member", "$LAZY")


@dataclass(frozen=True)
class SlidingPath:
    """One of the two sliding sync endpoints and its wire format."""

    name: str
    url: str

    @property
    def stable(self) -> bool:
        return self.name == "v4"

    def required_state(self, pairs) -> list | dict:
        if not self.stable:
            return [list(pair) for pair in pairs]
        include, lazy = [], False
        for event_type, state_key in pairs:
            if (event_type, state_key) == LAZY:
                lazy = True
                continue
            element = {}
            if event_type != "*":
                element["type"] = event_type
            if state_key != "*":
                element["state_key"] = state_key
            include.append(element)
        config: dict = {"include": include}
        if lazy:
            config["lazy_members"] = True
        return config

    def room_config(self, timeline_limit: int = 1, required_state=()) -> dict:
        """A room subscription (the room config part of a list)."""
        return {"timeline_limit": timeline_limit, "required_state": self.required_state(required_state)}

    def list_config(self, first: int = 0, last: int = 19, *, timeline_limit: int = 1,
                    required_state=(), filters: dict | None = None) -> dict:
        config = self.room_config(timeline_limit, required_state)
        if self.stable:
            config["range"] = [first, last]
        else:
            config["ranges"] = [[first, last]]
        if filters is not None:
            if self.stable and "is_invite" in filters:
                filters = {("is_invited" if k == "is_invite" else k): v for k, v in filters.items()}
            config["filters"] = filters
        return config

    async def post(self, client, user: dict, body: dict, *, pos: str | None = None,
                   timeout: int | None = None, set_presence: str | None = None):
        """One request; the raw response (whatever its status)."""
        params = {"pos": pos, "timeout": timeout, "set_presence": set_presence}
        params = {k: v for k, v in params.items() if v is not None}
        if self.stable:
            return await client.request("POST", self.url, {**body, **params}, token=user["access_token"])
        query = {k: str(v) for k, v in params.items()} or None
        return await client.request("POST", self.url, body, token=user["access_token"], query=query)

    def stripped_state(self, room: dict) -> list[dict]:
        """An invited room's stripped state events."""
        return room["stripped_state" if self.stable else "invite_state"]

    def expanded(self, room: dict) -> bool:
        return room.get("expanded_timeline" if self.stable else "unstable_expanded_timeline", False)


UNSTABLE = SlidingPath("unstable", "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync")
V4 = SlidingPath("v4", "/_matrix/client/v4/sync")

#: Parametrizes a test (argument C{path}) over both endpoints.
both_paths = pytest.mark.parametrize("path", [UNSTABLE, V4], ids=lambda p: p.name)


def checked(body: dict) -> dict:
    """A 200 response body: it has a pos, and its events meet the spec's event schemas."""
    assert isinstance(body.get("pos"), str) and body["pos"], body
    for room in (body.get("rooms") or {}).values():
        for event in room.get("timeline") or ():
            validate_sync_event(event)
        for event in room.get("required_state") or ():
            if "content" in event:  # not a stub for deleted state
                validate_sync_event(event)
        for key in ("invite_state", "stripped_state"):
            for event in room.get(key) or ():
                validate_stripped_state(event)
    return body


@dataclass
class Connection:
    """
    A client's sync loop on one path: the same request again and again,
    each with the C{pos} of the previous answer.
    """

    client: object
    path: SlidingPath
    user: dict
    lists: dict = field(default_factory=dict)
    room_subscriptions: dict = field(default_factory=dict)
    extensions: dict = field(default_factory=dict)
    conn_id: str | None = None
    pos: str | None = None

    def body(self) -> dict:
        body: dict = {"lists": self.lists, "room_subscriptions": self.room_subscriptions,
                      "extensions": self.extensions}
        if self.conn_id is not None:
            body["conn_id"] = self.conn_id
        return body

    async def sync(self, timeout: int | None = None, *, pos: str | None = None) -> dict:
        """One request (from C{pos}, by default the last one); assert 200, remember and return the answer."""
        response = await self.path.post(self.client, self.user, self.body(),
                                        pos=pos or self.pos, timeout=timeout)
        assert response.code == 200, response
        body = checked(response.json)
        self.pos = body["pos"]
        return body


def rooms(body: dict) -> dict:
    return body.get("rooms") or {}


def count(body: dict, list_name: str) -> int:
    return body["lists"][list_name]["count"]


def keys(events: list[dict]) -> set[tuple[str, str]]:
    return {(e["type"], e["state_key"]) for e in events}


def members(events: list[dict]) -> set[str]:
    """The state keys of the member events among C{events}."""
    return {e["state_key"] for e in events if e["type"] == "m.room.member"}


def bodies(room: dict) -> list[str]:
    return [e["content"]["body"] for e in room.get("timeline") or () if e["type"] == "m.room.message"]


def event_ids(room: dict) -> list[str]:
    return [e["event_id"] for e in room.get("timeline") or ()]


async def call(client, method: str, path: str, body=None, *, user: dict, **kwargs):
    """C{user}'s request, which must answer 200; its JSON body."""
    response = await client.request(method, path, body, token=user["access_token"], **kwargs)
    assert response.code == 200, response
    return response.json


async def send(client, user: dict, room_id: str, body: str) -> str:
    """A text message; its event id."""
    txn = f"t{time.monotonic_ns()}"
    sent = await call(client, "PUT", f"rooms/{quote(room_id)}/send/m.room.message/{txn}",
                      {"msgtype": "m.text", "body": body}, user=user)
    return sent["event_id"]


async def put_state(client, user: dict, room_id: str, event_type: str, content: dict,
                    state_key: str = "") -> str:
    sent = await call(client, "PUT", f"rooms/{quote(room_id)}/state/{event_type}/{quote(state_key)}",
                      content, user=user)
    return sent["event_id"]


async def create_room(client, user: dict, **body) -> str:
    return (await call(client, "POST", "createRoom", body, user=user))["room_id"]


async def join(client, user: dict, room_id: str) -> None:
    await call(client, "POST", f"rooms/{quote(room_id)}/join", {}, user=user)


async def invite(client, user: dict, room_id: str, invitee: dict) -> None:
    await call(client, "POST", f"rooms/{quote(room_id)}/invite", {"user_id": invitee["user_id"]}, user=user)


async def set_account_data(client, user: dict, event_type: str, content: dict,
                           room_id: str | None = None) -> None:
    where = f"rooms/{quote(room_id)}/" if room_id else ""
    await call(client, "PUT", f"user/{quote(user['user_id'])}/{where}account_data/{event_type}",
               content, user=user)


async def second_device(client, user: dict) -> dict:
    """The user logged in again: another device, with its own token."""
    response = await client.login(user["user_id"])
    assert response.code == 200, response
    return response.json
