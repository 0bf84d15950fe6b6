"""
An end-to-end encrypted conversation between two real clients, through
ruma_tx: matrix-nio with its C{e2e} extra (Olm and Megolm from vodozemac, the
Rust implementation, with the crypto store in SQLite files).

Usage: C{python e2ee_scenario.py BASE_URL STORE_DIR}
(e2ee_federation_scenario.py runs the same steps with the two users on two
servers.)

Alice and Bob register, then log in on new, encryption-capable devices whose
stores live under STORE_DIR. Each uploads device keys and one-time keys;
alice creates a Megolm-encrypted room and invites bob, who joins. Each learns
the other's device from the device list changes in /sync and /keys/query,
and checks that the keys the server hands out are the other device's own.
Alice claims one of bob's one-time keys, shares a Megolm room key with bob's
device over an Olm-encrypted to-device message, and sends an encrypted
message; bob's sync delivers the room key and the message, and nio decrypts
it to alice's plaintext. Bob replies the same way and alice decrypts; then
bob pages back through /messages and decrypts both. Last, bob leaves: alice's
sync lists him in device_lists.left and her next room key skips him.

nio decides itself when to upload, query and claim keys (as its
C{sync_forever} does); the scenario calls those steps one by one so that a
failing step names the endpoint. Each step prints one JSON line
C{{"step", "ok", "detail"}}; a step whose prerequisites failed is reported
as not run. The exit status is 0 only if every step passed.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from nio import (
    AsyncClient,
    AsyncClientConfig,
    EncryptionError,
    JoinResponse,
    KeysClaimResponse,
    KeysQueryResponse,
    KeysUploadResponse,
    LoginResponse,
    LogoutResponse,
    MegolmEvent,
    MessageDirection,
    RegisterResponse,
    RoomCreateResponse,
    RoomKeyEvent,
    RoomLeaveResponse,
    RoomMessagesResponse,
    RoomMessageText,
    RoomPreset,
    RoomSendResponse,
    SyncResponse,
)
from nio.api import Api
from scenario_steps import StepScenario, check, expect

PASSWORD = "correct horse battery staple"
MEGOLM = "m.megolm.v1.aes-sha2"
OLM = "m.olm.v1.curve25519-aes-sha2"
ALICE_TEXT = "the eagle lands at midnight"
BOB_TEXT = "understood, bringing the cake"

#: Syncs (of up to 3 s each) made until news (from another server) has come.
RECEIVE_SYNCS = 10


class Scenario(StepScenario):
    def __init__(self, base_urls: dict[str, str], store_dir: str):
        """@param base_urls: the homeserver of each of C{"alice"} and C{"bob"}."""
        super().__init__()
        self.base_urls = base_urls
        self.store_dir = store_dir
        stamp = f"{os.getpid()}x{int(time.time() * 1000) % 10**8}"
        self.localparts = {"alice": f"e2ealice{stamp}", "bob": f"e2ebob{stamp}"}
        self.clients: dict[str, AsyncClient] = {}
        self.user_ids: dict[str, str] = {}
        self.room_id: str | None = None
        self.sent: dict[str, str] = {}  # who -> event id of their encrypted message
        self.bob_join_changed: set[str] = set()  # device_lists.changed in bob's sync after joining

    @property
    def alice(self) -> AsyncClient:
        return self.clients["alice"]

    @property
    def bob(self) -> AsyncClient:
        return self.clients["bob"]

    async def close(self):
        for client in self.clients.values():
            await client.close()

    async def sync(self, client: AsyncClient, timeout: int = 3000) -> SyncResponse:
        """One incremental sync (nio decrypts what it can while handling it)."""
        return expect(await client.sync(timeout=timeout), SyncResponse)

    async def raw(self, client: AsyncClient, method: str, path: str):
        """The JSON body of a request nio does not model, unparsed."""
        response = await client.send(method, path)
        return response.status, await response.json()

    # -- steps -------------------------------------------------------------

    async def register(self):
        """Register both users with a plain client, then log its device out."""
        for who, localpart in self.localparts.items():
            plain = AsyncClient(self.base_urls[who], "", config=AsyncClientConfig(encryption_enabled=False))
            try:
                response = expect(await plain.register(localpart, PASSWORD, device_name="setup"),
                                  RegisterResponse)
                self.user_ids[who] = response.user_id
                expect(await plain.logout(), LogoutResponse)
            finally:
                await plain.close()
        return ", ".join(self.user_ids.values())

    async def login(self):
        """Log in on a new device with an encrypted store each."""
        for who, user_id in self.user_ids.items():
            store_path = os.path.join(self.store_dir, who)
            os.makedirs(store_path, exist_ok=True)
            config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False)
            client = AsyncClient(self.base_urls[who], user_id, store_path=store_path, config=config)
            self.clients[who] = client
            expect(await client.login(PASSWORD, device_name=f"{who}'s nio"), LoginResponse)
            check(client.olm is not None, f"nio loaded no Olm machine for {who}")
            check(client.should_upload_keys, f"{who}'s new device has no keys to upload?")
        return ", ".join(f"{c.user_id}/{c.device_id}" for c in self.clients.values())

    async def keys_upload(self):
        """Both devices upload device keys and one-time keys; /sync counts them."""
        counts = {}
        for who, client in self.clients.items():
            response = expect(await client.keys_upload(), KeysUploadResponse)
            check(response.signed_curve25519_count > 0,
                  f"{who}: the upload response counts {response.signed_curve25519_count} one-time keys")
            check(not client.should_upload_keys, f"{who}'s nio still wants to upload keys")
            sync = expect(await client.sync(timeout=0, full_state=True), SyncResponse)
            synced = sync.device_key_count.signed_curve25519
            check(synced == response.signed_curve25519_count,
                  f"{who}: /sync counts {synced} one-time keys, the upload said "
                  f"{response.signed_curve25519_count}")
            counts[who] = synced
        self.results["uploaded"] = True
        return f"one-time key counts {counts}"

    async def create_room(self):
        """Alice creates a Megolm-encrypted room and invites bob."""
        response = expect(await self.alice.room_create(
            name="secret room", preset=RoomPreset.private_chat, invite=[self.bob.user_id],
            initial_state=[{"type": "m.room.encryption", "state_key": "",
                            "content": {"algorithm": MEGOLM}}],
        ), RoomCreateResponse)
        self.room_id = response.room_id
        await self.sync(self.alice)
        check(self.room_id in self.alice.rooms, "the new room is not in alice's sync")
        check(self.alice.rooms[self.room_id].encrypted, "alice's nio does not see the room as encrypted")
        return self.room_id

    async def join(self):
        """Bob sees the invite, joins and sees the room as encrypted."""
        sync = await self.sync(self.bob)
        check(self.room_id in sync.rooms.invite, f"no invite in bob's sync: {list(sync.rooms.invite)}")
        expect(await self.bob.join(self.room_id), JoinResponse)
        self.results["bob_joined"] = True
        sync = await self.sync(self.bob)
        self.bob_join_changed = set(sync.device_list.changed)
        check(self.room_id in self.bob.rooms, "bob's nio has no joined room")
        room = self.bob.rooms[self.room_id]
        check(room.encrypted, "bob's nio does not see the room as encrypted")
        check(self.alice.user_id in room.users, f"bob's room members: {list(room.users)}")
        return "joined an encrypted room"

    async def device_lists(self):
        """Once they share an encrypted room, each one's sync lists the other in device_lists.changed."""
        changed = await self.device_list_until(self.alice, "changed", self.bob.user_id)
        check(self.bob.user_id in changed,
              f"alice's device_lists.changed is {sorted(changed)}, without bob who just joined")
        check(self.alice.user_id in self.bob_join_changed,
              f"bob's device_lists.changed after joining is {sorted(self.bob_join_changed)}, without alice")
        return f"alice's changed: {sorted(changed)}; bob's: {sorted(self.bob_join_changed)}"

    async def keys_query(self):
        """Each client queries the other's device keys and gets that device's own identity keys."""
        for me, other in (("alice", "bob"), ("bob", "alice")):
            client, them = self.clients[me], self.clients[other]
            if not client.should_query_keys:
                # nio tracks the other member from the room's membership anyway;
                # its query is what this step tests, so make one.
                client.olm.users_for_key_query.add(them.user_id)
            response = expect(await client.keys_query(), KeysQueryResponse)
            devices = response.device_keys.get(them.user_id, {})
            check(them.device_id in devices,
                  f"{me}'s /keys/query lists {sorted(devices)} for {other}, not {them.device_id}")
            device = client.device_store[them.user_id].get(them.device_id)
            check(device is not None, f"{me}'s nio did not accept {other}'s device keys "
                                      f"(bad signature?): {devices[them.device_id]}")
            own = them.olm.account.identity_keys
            check(device.ed25519 == own["ed25519"] and device.curve25519 == own["curve25519"],
                  f"the keys {me} got for {other} are not {other}'s: {device.keys} vs {own}")
            # Trust on first use: the keys are the other device's own, so mark it verified.
            client.verify_device(device)
        return "both devices known and verified"

    async def keys_claim(self):
        """Alice claims one of bob's signed one-time keys, and bob's count goes down by one."""
        before = self.bob.olm.uploaded_key_count
        missing = self.alice.get_missing_sessions(self.room_id)
        check(self.bob.device_id in missing.get(self.bob.user_id, []),
              f"alice's nio wants no session with bob's device: {missing}")
        response = expect(await self.alice.keys_claim(missing), KeysClaimResponse)
        check(not response.failures, f"claim failures: {response.failures}")
        keys = response.one_time_keys.get(self.bob.user_id, {}).get(self.bob.device_id, {})
        check(len(keys) == 1 and next(iter(keys)).startswith("signed_curve25519:"),
              f"claimed for bob's device: {keys}")
        check(not self.alice.get_missing_sessions(self.room_id).get(self.bob.user_id),
              "alice's nio made no Olm session from the claimed key (bad signature?)")
        sync = await self.sync(self.bob, timeout=0)
        after = sync.device_key_count.signed_curve25519
        check(after == before - 1, f"bob's /sync counts {after} one-time keys, expected {before} - 1")
        return f"claimed {next(iter(keys))}; bob has {after} left"

    async def alice_sends(self):
        """Alice shares a Megolm room key with bob over to-device and sends an encrypted message."""
        response = expect(await self.alice.room_send(
            self.room_id, "m.room.message", {"msgtype": "m.text", "body": ALICE_TEXT},
        ), RoomSendResponse)
        self.sent["alice"] = response.event_id
        session = self.alice.olm.outbound_group_sessions.get(self.room_id)
        check(session is not None and session.shared, "alice's nio shared no room key")
        check((self.bob.user_id, self.bob.device_id) in session.users_shared_with,
              f"the room key went to {session.users_shared_with}, not bob's device")
        status, event = await self.raw(self.alice, *Api.room_get_event(
            self.alice.access_token, self.room_id, response.event_id))
        check(status == 200, f"GET the event: {status} {event}")
        check(event.get("type") == "m.room.encrypted", f"the server holds a {event.get('type')}")
        check(event["content"].get("algorithm") == MEGOLM and ALICE_TEXT not in json.dumps(event),
              f"the server holds {event['content']}")
        return response.event_id

    async def bob_decrypts(self):
        """Bob's sync brings the room key (Olm to-device) and the message, which nio decrypts."""
        room_keys, events = await self.receive(self.bob, self.sent["alice"])
        check(room_keys, "no decrypted m.room_key among bob's to-device events")
        check(room_keys[0].room_id == self.room_id and room_keys[0].sender == self.alice.user_id,
              f"room key for {room_keys[0].room_id} from {room_keys[0].sender}")
        return self.decrypted(events, "alice", ALICE_TEXT)

    async def to_device_once(self):
        """A to-device message the next sync acknowledged is not delivered again."""
        sync = await self.sync(self.bob, timeout=0)
        check(not sync.to_device_events, f"delivered again: {sync.to_device_events}")
        return "no repeats"

    async def bob_replies(self):
        """Bob replies encrypted (his own Megolm session, shared with alice's device) and alice decrypts."""
        response = expect(await self.bob.room_send(
            self.room_id, "m.room.message", {"msgtype": "m.text", "body": BOB_TEXT},
        ), RoomSendResponse)
        self.sent["bob"] = response.event_id
        room_keys, events = await self.receive(self.alice, response.event_id)
        check(any(e.room_id == self.room_id and e.sender == self.bob.user_id for e in room_keys),
              f"no room key from bob in alice's to-device events: {room_keys}")
        return self.decrypted(events, "bob", BOB_TEXT)

    async def history(self):
        """Paging back with /messages, bob's nio decrypts both messages with the keys it holds."""
        await self.sync(self.bob, timeout=0)  # past his own reply
        response = expect(await self.bob.room_messages(
            self.room_id, start=self.bob.next_batch, direction=MessageDirection.back, limit=20,
        ), RoomMessagesResponse)
        details = [self.decrypted(response.chunk, who, text)
                   for who, text in (("alice", ALICE_TEXT), ("bob", BOB_TEXT))]
        return "; ".join(details)

    async def leave(self):
        """Bob leaves; alice's sync lists him in device_lists.left, and her next room key skips him."""
        expect(await self.bob.room_leave(self.room_id), RoomLeaveResponse)
        left = await self.device_list_until(self.alice, "left", self.bob.user_id)
        check(self.bob.user_id in left, f"alice's device_lists.left is {sorted(left)}, without bob")
        expect(await self.alice.room_send(
            self.room_id, "m.room.message", {"msgtype": "m.text", "body": "bob is gone"},
        ), RoomSendResponse)
        session = self.alice.olm.outbound_group_sessions[self.room_id]
        check(not any(user == self.bob.user_id for user, _ in session.users_shared_with),
              f"the new room key went to {session.users_shared_with}")
        return f"device_lists.left: {sorted(left)}"

    async def device_list_until(self, client: AsyncClient, field: str, user_id: str) -> set[str]:
        """
        Sync until C{user_id} is in C{device_lists.<field>} (news from
        another server may take a few syncs); every user named meanwhile.
        """
        named: set[str] = set()
        for _ in range(RECEIVE_SYNCS):
            named |= set(getattr((await self.sync(client)).device_list, field))
            if user_id in named:
                break
        return named

    async def receive(self, client: AsyncClient, event_id: str):
        """
        Sync until a room key (over Olm to-device) and the event have come
        (through another server they may come in different syncs): the
        room keys, and the room's timeline events, the event decrypted
        again if it came before its key.
        """
        room_keys: list[RoomKeyEvent] = []
        events: list = []
        for _ in range(RECEIVE_SYNCS):
            sync = await self.sync(client)
            room_keys += [e for e in sync.to_device_events if isinstance(e, RoomKeyEvent)]
            joined = sync.rooms.join.get(self.room_id)
            events += joined.timeline.events if joined is not None else []
            if room_keys and any(e.event_id == event_id for e in events):
                break
        for i, event in enumerate(events):
            if isinstance(event, MegolmEvent) and event.event_id == event_id:
                try:
                    events[i] = client.decrypt_event(event)
                except EncryptionError:
                    pass  # left undecrypted: decrypted() says so
        return room_keys, events

    def decrypted(self, events, sender: str, text: str) -> str:
        """Check the sender's encrypted message is among C{events}, decrypted to C{text}."""
        mine = [e for e in events if e.event_id == self.sent[sender]]
        check(mine, f"the message is not in the timeline: {[e.event_id for e in events]}")
        event = mine[0]
        check(not isinstance(event, MegolmEvent), f"nio could not decrypt it: {event}")
        check(isinstance(event, RoomMessageText), f"decrypted to {event!r}")
        check(event.decrypted, "nio did not mark the event as decrypted")
        check(event.body == text, f"decrypted body {event.body!r}, sent {text!r}")
        check(event.verified, "the message is not from the verified device")
        return f"decrypted {event.body!r} from a verified device"

    STEPS = [
        ("register", ()),
        ("login", ("register",)),
        ("keys_upload", ("login",)),
        ("create_room", ("login",)),
        ("join", ("create_room",)),
        ("device_lists", ("bob_joined", "uploaded")),
        ("keys_query", ("bob_joined", "uploaded")),
        ("keys_claim", ("keys_query",)),
        ("alice_sends", ("keys_query",)),
        ("bob_decrypts", ("alice_sends",)),
        ("to_device_once", ("bob_decrypts",)),
        ("bob_replies", ("keys_query",)),
        ("history", ("bob_decrypts", "bob_replies")),
        ("leave", ("bob_joined",)),
    ]



async def main(base_url: str, store_dir: str) -> int:
    scenario = Scenario({"alice": base_url, "bob": base_url}, store_dir)
    try:
        return 0 if await scenario.run() else 1
    finally:
        await scenario.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
