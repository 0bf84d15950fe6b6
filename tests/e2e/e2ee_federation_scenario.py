"""
An end-to-end encrypted conversation between users of two homeservers
(two ruma_tx daemons, or ruma_tx and Synapse), with matrix-nio on each side.

Usage: C{python e2ee_federation_scenario.py ALICE_BASE_URL BOB_BASE_URL STORE_DIR}

The steps of e2ee_scenario.py, with alice on the first server and bob on
the second: each server learns the other's users' devices with
C{/user/devices} or C{/user/keys/query}, claims one-time keys with
C{/user/keys/claim}, and carries the Megolm room keys as
C{m.direct_to_device} EDUs; bob's join and leave reach alice's
C{device_lists}. Before bob leaves, each user logs in on a second device
and uploads its keys: the other server hears of it by an
C{m.device_list_update} EDU, the other user's sync names them in
C{device_lists.changed}, and their key query lists the new device.
"""
from __future__ import annotations

import asyncio
import os
import sys

from e2ee_scenario import PASSWORD, Scenario
from nio import AsyncClient, AsyncClientConfig, KeysQueryResponse, KeysUploadResponse, LoginResponse
from scenario_steps import check, expect

class FederatedScenario(Scenario):
    def __init__(self, alice_url: str, bob_url: str, store_dir: str):
        super().__init__({"alice": alice_url, "bob": bob_url}, store_dir)
        self.second_devices: dict[str, AsyncClient] = {}

    async def close(self):
        await super().close()
        for client in self.second_devices.values():
            await client.close()

    async def alice_new_device(self):
        """Alice logs in a second device: bob's sync names her in device_lists.changed, his query lists it."""
        return await self.new_device("alice", "bob")

    async def bob_new_device(self):
        """Bob logs in a second device: alice's sync names him in device_lists.changed, her query lists it."""
        return await self.new_device("bob", "alice")

    async def new_device(self, who: str, watcher_name: str) -> str:
        user_id, watcher = self.user_ids[who], self.clients[watcher_name]
        store_path = os.path.join(self.store_dir, who + "2")
        os.makedirs(store_path, exist_ok=True)
        second = self.second_devices[who] = AsyncClient(
            self.base_urls[who], user_id, store_path=store_path,
            config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False))
        expect(await second.login(PASSWORD, device_name=f"{who}'s second nio"), LoginResponse)
        expect(await second.keys_upload(), KeysUploadResponse)

        changed = await self.device_list_until(watcher, "changed", user_id)
        check(user_id in changed, f"{watcher_name}'s device_lists.changed never named {who}: {sorted(changed)}")

        watcher.olm.users_for_key_query.add(user_id)
        devices = expect(await watcher.keys_query(), KeysQueryResponse).device_keys.get(user_id, {})
        check({self.clients[who].device_id, second.device_id} <= set(devices),
              f"{watcher_name}'s /keys/query lists {sorted(devices)} for {who}, not both of "
              f"{self.clients[who].device_id} and {second.device_id}")
        device = watcher.device_store[user_id].get(second.device_id)
        check(device is not None and device.ed25519 == second.olm.account.identity_keys["ed25519"],
              f"the keys {watcher_name} got for {who}'s new device are not its own: {devices[second.device_id]}")
        return f"{watcher_name} sees {who}'s new device {second.device_id}"

    STEPS = [*Scenario.STEPS[:-1],
             ("bob_new_device", ("keys_query",)),
             ("alice_new_device", ("keys_query",)),
             Scenario.STEPS[-1]]


async def main(alice_url: str, bob_url: str, store_dir: str) -> int:
    scenario = FederatedScenario(alice_url, bob_url, store_dir)
    try:
        return 0 if await scenario.run() else 1
    finally:
        await scenario.close()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(*sys.argv[1:])))
