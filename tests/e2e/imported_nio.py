"""
After a move from Synapse: the users' own nio clients, with the crypto stores
synapse_traffic.py kept, come back to ruma_tx.

Usage: C{python imported_nio.py BASE_URL MANIFEST}

Alice logs in with her old password on her old device (its id and Olm
account from the store), sees her device keys unchanged, finds bob's
device with the identity keys bob's client has, and decrypts the messages
she sent in the encrypted room before the move; bob, also back on his old
device, decrypts them too (his store holds the Megolm session alice shared
with him over Synapse). Each step prints one JSON line C{{"step", "ok",
"detail"}} (see scenario_steps.py).
"""
from __future__ import annotations

import asyncio
import json
import os
import sys

from nio import (
    AsyncClient,
    AsyncClientConfig,
    KeysQueryResponse,
    LoginResponse,
    MegolmEvent,
    MessageDirection,
    RoomMessagesResponse,
    RoomMessageText,
    SyncResponse,
)
from scenario_steps import StepScenario, check, expect


class Scenario(StepScenario):
    def __init__(self, base_url: str, manifest: dict) -> None:
        super().__init__()
        self.base_url = base_url
        self.manifest = manifest
        self.clients: dict[str, AsyncClient] = {}

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()

    async def login(self):
        """Alice and bob log in with their old passwords on their old devices and stores."""
        for who in ("alice", "bob"):
            user_id, device_id = self.manifest["users"][who], self.manifest["devices"][who]
            client = AsyncClient(self.base_url, user_id, device_id=device_id,
                                 store_path=os.path.join(self.manifest["store_dir"], who),
                                 config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False))
            self.clients[who] = client
            response = expect(await client.login(self.manifest["password"], device_name=f"{who}'s laptop"),
                              LoginResponse)
            check(response.device_id == device_id, f"{who} logged in on {response.device_id}, not {device_id}")
            check(client.olm is not None, f"nio loaded no Olm account for {who}")
            check(client.olm.account.identity_keys == self.manifest["device_keys"][who],
                  f"{who}'s store holds other keys than before the move")
            sync = expect(await client.sync(timeout=0, full_state=True), SyncResponse)
            # The one-time keys left over Synapse count again (a claim took one of bob's).
            check(sync.device_key_count.signed_curve25519 >= 49,
                  f"{who}'s one-time keys count {sync.device_key_count.signed_curve25519} after the move")
        return "both back on their devices"

    async def keys_query(self):
        """Alice's /keys/query gives bob's device with the identity keys his own client has."""
        alice, bob = self.clients["alice"], self.clients["bob"]
        alice.olm.users_for_key_query.add(bob.user_id)
        response = expect(await alice.keys_query(), KeysQueryResponse)
        device = response.device_keys.get(bob.user_id, {}).get(bob.device_id)
        check(device is not None, f"no keys for bob's device: {response.device_keys}")
        keys = device["keys"]
        expected = self.manifest["device_keys"]["bob"]
        check(keys[f"ed25519:{bob.device_id}"] == expected["ed25519"]
              and keys[f"curve25519:{bob.device_id}"] == expected["curve25519"], f"bob's keys are {keys}")
        return "bob's identity keys unchanged"

    async def decrypt_history(self):
        """Both page back through the encrypted room and decrypt alice's messages sent over Synapse."""
        room = self.manifest["encrypted_room"]
        details = []
        for who, client in self.clients.items():
            response = expect(await client.room_messages(room["room_id"], start=client.next_batch,
                                                         direction=MessageDirection.back, limit=50),
                              RoomMessagesResponse)
            by_id = {event.event_id: event for event in response.chunk}
            for event_id, text in zip(room["event_ids"], room["texts"]):
                event = by_id.get(event_id)
                check(event is not None, f"{who}: {event_id} is not in the room's history")
                if isinstance(event, MegolmEvent):
                    event = client.decrypt_event(event)
                check(isinstance(event, RoomMessageText) and event.body == text,
                      f"{who} could not decrypt {event_id}: {event!r}")
            details.append(f"{who} decrypted {len(room['texts'])}")
        return ", ".join(details)

    STEPS = [
        ("login", ()),
        ("keys_query", ("login",)),
        ("decrypt_history", ("login",)),
    ]


async def main(base_url: str, manifest_path: str) -> int:
    with open(manifest_path) as f:
        scenario = Scenario(base_url, json.load(f))
    try:
        return 0 if await scenario.run() else 1
    finally:
        await scenario.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
