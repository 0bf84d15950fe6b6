"""
A real client library against ruma_tx: matrix-nio's AsyncClient (asyncio and
aiohttp, so it runs in its own process, away from the test's Twisted
reactor).

Usage: C{python nio_scenario.py BASE_URL}

Two users register (nio's dummy-auth flow), one creates a room and invites
the other, who joins; they send messages, sync, read and change state, page
back through history with /messages, and leave. nio checks each response
against its own JSON schemas, so a malformed response fails the step.

Each step prints one JSON line C{{"step", "ok", "detail"}}; a step whose
prerequisites failed is reported as not run. The exit status is 0 only if
every step passed.
"""
from __future__ import annotations

import asyncio
import os
import sys
import time

from nio import (
    Api,
    AsyncClient,
    AsyncClientConfig,
    JoinedMembersResponse,
    JoinResponse,
    MessageDirection,
    RegisterResponse,
    RoomCreateResponse,
    RoomGetStateEventResponse,
    RoomGetStateResponse,
    RoomLeaveResponse,
    RoomMessagesResponse,
    RoomMessageText,
    RoomPreset,
    RoomPutStateResponse,
    RoomSendResponse,
    SyncResponse,
    WhoamiResponse,
)
from scenario_steps import StepScenario, check, expect

PASSWORD = "correct horse battery staple"
MESSAGES = 25


def texts(events) -> list[str]:
    return [e.body for e in events if isinstance(e, RoomMessageText)]


class Scenario(StepScenario):
    def __init__(self, base_url: str):
        super().__init__()
        config = AsyncClientConfig(encryption_enabled=False, store_sync_tokens=False)
        self.alice = AsyncClient(base_url, "", config=config)
        self.bob = AsyncClient(base_url, "", config=config)
        stamp = f"{os.getpid()}x{int(time.time() * 1000) % 10**8}"
        self.localparts = (f"nioalice{stamp}", f"niobob{stamp}")
        self.room_id: str | None = None
        self.sent_ids: list[str] = []
        self.sync_window: list[str] = []
        self.prev_batch: str | None = None

    async def close(self):
        await self.alice.close()
        await self.bob.close()

    # -- steps -------------------------------------------------------------

    async def register(self):
        for client, localpart in zip((self.alice, self.bob), self.localparts):
            response = expect(await client.register(localpart, PASSWORD, device_name="nio"), RegisterResponse)
            check(response.user_id.startswith(f"@{localpart}:"), f"unexpected user id {response.user_id}")
            check(client.access_token == response.access_token, "nio did not keep the access token")
        who = expect(await self.alice.whoami(), WhoamiResponse)
        check(who.user_id == self.alice.user_id, f"whoami says {who.user_id}")
        return f"{self.alice.user_id}, {self.bob.user_id}"

    async def create_room(self):
        response = expect(await self.alice.room_create(
            name="nio room", topic="testing nio", preset=RoomPreset.private_chat,
            invite=[self.bob.user_id],
        ), RoomCreateResponse)
        self.room_id = response.room_id
        sync = expect(await self.alice.sync(timeout=0, full_state=True), SyncResponse)
        check(self.room_id in sync.rooms.join, "the new room is not in the creator's sync")
        room = self.alice.rooms[self.room_id]
        check(room.name == "nio room", f"room name is {room.name!r}")
        check(room.topic == "testing nio", f"room topic is {room.topic!r}")
        return self.room_id

    async def invite_in_sync(self):
        sync = expect(await self.bob.sync(timeout=3000), SyncResponse)
        check(self.room_id in sync.rooms.invite, f"no invite in bob's sync: {list(sync.rooms.invite)}")
        invited = self.bob.invited_rooms.get(self.room_id)
        check(invited is not None, "nio did not record the invited room")
        check(invited.name == "nio room", f"invited room name is {invited.name!r}")
        return "invite seen with its stripped state"

    async def join(self):
        nio_join = await self.bob.join(self.room_id)
        refused = None
        if not isinstance(nio_join, JoinResponse):
            # nio posts no body at all. Record that, then join with a "{}"
            # body so that the later steps still run and report.
            refused = f"nio's join (no request body) got {type(nio_join).__name__}: " \
                      f"{getattr(nio_join, 'status_code', None)} {getattr(nio_join, 'message', nio_join)}"
            method, path = Api.join(self.bob.access_token, self.room_id)
            expect(await self.bob._send(JoinResponse, method, path, "{}"), JoinResponse)
        self.results["bob_joined"] = True
        sync = expect(await self.bob.sync(timeout=3000), SyncResponse)
        check(self.room_id in sync.rooms.join, "bob's sync does not list the joined room")
        check(self.room_id in self.bob.rooms, "nio has no joined room for bob")
        check(self.room_id not in self.bob.invited_rooms, "the invite is still listed after joining")
        check(refused is None, f"{refused} (the scenario went on after joining with a '{{}}' body)")
        return "joined"

    async def member_counts(self):
        """The other client's nio room model learns of the join (from the sync summary)."""
        expect(await self.alice.sync(timeout=3000), SyncResponse)
        room = self.alice.rooms[self.room_id]
        check(self.bob.user_id in room.users, f"alice's room members: {list(room.users)}")
        check(room.joined_count == 2, f"alice's nio room says {room.joined_count} joined "
                                      f"(summary {room.summary})")
        check(room.invited_count == 0, f"alice's nio room says {room.invited_count} invited")
        return "two joined, none invited"

    async def send(self):
        for i in range(MESSAGES):
            response = expect(await self.alice.room_send(
                self.room_id, "m.room.message", {"msgtype": "m.text", "body": f"nio message {i}"},
            ), RoomSendResponse)
            self.sent_ids.append(response.event_id)
        reply = expect(await self.bob.room_send(
            self.room_id, "m.room.message", {"msgtype": "m.text", "body": "reply from bob"},
        ), RoomSendResponse)
        self.sent_ids.append(reply.event_id)
        check(len(set(self.sent_ids)) == len(self.sent_ids), "two sends got the same event id")
        return f"{len(self.sent_ids)} events sent"

    async def sync_receive(self):
        sync = expect(await self.bob.sync(timeout=3000), SyncResponse)
        timeline = sync.rooms.join[self.room_id].timeline
        bodies = texts(timeline.events)
        expected = [f"nio message {i}" for i in range(MESSAGES)] + ["reply from bob"]
        check(bodies and bodies == expected[-len(bodies):], f"sync timeline bodies: {bodies}")
        check(timeline.limited, "26 new events under the default limit of 10 should be limited")
        check(timeline.prev_batch, "no prev_batch to paginate from")
        self.sync_window = [e.event_id for e in timeline.events]
        self.prev_batch = timeline.prev_batch
        # Alice's next incremental sync has bob's reply (and not her own old messages again).
        alice_sync = expect(await self.alice.sync(timeout=3000), SyncResponse)
        alice_room = alice_sync.rooms.join.get(self.room_id)
        check(alice_room is not None, "alice's incremental sync lacks the room")
        check(texts(alice_room.timeline.events)[-1:] == ["reply from bob"], "alice did not get bob's reply")
        return f"{len(bodies)} messages in bob's sync, limited with prev_batch"

    async def state(self):
        state = expect(await self.alice.room_get_state(self.room_id), RoomGetStateResponse)
        types = {event["type"] for event in state.events}
        check({"m.room.create", "m.room.name", "m.room.topic", "m.room.member"} <= types,
              f"state types: {sorted(types)}")
        topic = expect(await self.bob.room_get_state_event(self.room_id, "m.room.topic"),
                       RoomGetStateEventResponse)
        check(topic.content.get("topic") == "testing nio", f"topic content {topic.content}")
        expect(await self.alice.room_put_state(self.room_id, "m.room.topic", {"topic": "changed by nio"}),
               RoomPutStateResponse)
        expect(await self.bob.sync(timeout=3000), SyncResponse)
        check(self.bob.rooms[self.room_id].topic == "changed by nio",
              f"bob's nio room topic is {self.bob.rooms[self.room_id].topic!r}")
        return "state read, topic changed and synced"

    async def joined_members(self):
        members = expect(await self.alice.joined_members(self.room_id), JoinedMembersResponse)
        ids = sorted(m.user_id for m in members.members)
        check(ids == sorted([self.alice.user_id, self.bob.user_id]), f"joined members: {ids}")
        return "two joined members"

    async def history(self):
        """Page back from the sync's prev_batch to the room's start, 10 at a time."""
        collected: list = []
        token = self.prev_batch
        pages = 0
        while pages < 20:
            response = expect(await self.bob.room_messages(
                self.room_id, start=token, direction=MessageDirection.back, limit=10,
            ), RoomMessagesResponse)
            pages += 1
            collected.extend(response.chunk)
            if not response.chunk or response.end is None:
                break
            check(response.end != token, "pagination token did not move")
            token = response.end
        chronological = list(reversed(collected))
        ids = [e.event_id for e in chronological]
        check(len(ids) == len(set(ids)), "an event came twice while paginating")
        check(not set(ids) & set(self.sync_window), "pagination repeated events of the sync timeline")
        everything = ids + self.sync_window
        check([i for i in everything if i in self.sent_ids] == self.sent_ids,
              "history plus the sync window is not every message in order")
        first = chronological[0] if chronological else None
        check(first is not None and getattr(first, "source", {}).get("type") == "m.room.create",
              f"pagination did not reach the create event (first: {first!r})")
        return f"{len(collected)} events in {pages} pages, back to m.room.create"

    async def leave(self):
        expect(await self.bob.room_leave(self.room_id), RoomLeaveResponse)
        sync = expect(await self.bob.sync(timeout=3000), SyncResponse)
        check(self.room_id in sync.rooms.leave, "bob's sync does not list the room as left")
        expect(await self.alice.sync(timeout=3000), SyncResponse)
        room = self.alice.rooms[self.room_id]
        check(self.bob.user_id not in room.users, "alice's nio room still lists bob")
        return "left; alice's room no longer lists bob"

    STEPS = [
        ("register", ()),
        ("create_room", ("register",)),
        ("invite_in_sync", ("create_room",)),
        ("join", ("invite_in_sync",)),
        ("member_counts", ("bob_joined",)),
        ("send", ("bob_joined",)),
        ("sync_receive", ("send",)),
        ("state", ("bob_joined",)),
        ("joined_members", ("bob_joined",)),
        ("history", ("sync_receive",)),
        ("leave", ("bob_joined",)),
    ]



async def main(base_url: str) -> int:
    scenario = Scenario(base_url)
    try:
        return 0 if await scenario.run() else 1
    finally:
        await scenario.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(sys.argv[1])))
