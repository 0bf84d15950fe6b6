"""
End-to-end encryption between users of two ruma_tx daemons federating
over TLS on loopback: matrix-nio clients on each side hold an encrypted
conversation (tests/e2e/e2ee_federation_scenario.py, in a child process),
and device changes on one server reach the other's /sync and key queries
(m.device_list_update and m.signing_key_update EDUs), which it answers from
what it was told, even while the other server is down.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import quote

import pytest
import pytest_twisted
from federation_helpers import SyncWatcher
from room_helpers import create_room, ok
from scenario_steps import run_scenario
from test_cross_signing import query, upload_cross_signing, upload_device_keys

SCENARIO = Path(__file__).with_name("e2ee_federation_scenario.py")

#: Each step of the scenario and the behaviour it shows.
STEPS = {
    "register": "alice registers on server A and bob on server B, and each registration device logs out.",
    "login": "Each user logs in on a new device with an encrypted nio store.",
    "keys_upload": "Both devices upload device and one-time keys, and /sync counts the one-time keys.",
    "create_room": "alice creates a room with Megolm m.room.encryption state and invites bob of the other server.",
    "join": "bob joins over federation, and his nio sees the room as encrypted with alice in it.",
    "device_lists": "Each one's sync lists the other, of the other server, in device_lists.changed.",
    "keys_query": "/keys/query gives each client the other server's user's device with its own identity keys.",
    "keys_claim": "alice claims one of bob's one-time keys through her server, and bob's /sync count drops by one.",
    "alice_sends": "alice's Megolm room key goes to bob's device over to-device, and her message is encrypted.",
    "bob_decrypts": "bob's server delivers the room key (an m.direct_to_device EDU) and the message; nio decrypts.",
    "to_device_once": "A to-device message is not delivered again once the next sync acknowledged it.",
    "bob_replies": "bob replies encrypted and alice's nio decrypts it with the room key his server sent on.",
    "history": "Paging back with /messages on bob's server, his nio decrypts both messages.",
    "bob_new_device": "bob's new device reaches alice's sync (device_lists.changed) and her key query.",
    "alice_new_device": "alice's new device reaches bob's sync (device_lists.changed) and his key query.",
    "leave": "When bob leaves, alice's sync lists him in device_lists.left and her next room key skips him.",
}


@pytest.fixture(scope="module")
def pair(start_federating):
    return start_federating(), start_federating()


@pytest.fixture(scope="module")
def e2ee_results(pair, tmp_path_factory):
    """Run the scenario once, alice on the first daemon and bob on the second: C{step -> (ok, detail)}."""
    for module in ("nio", "vodozemac"):
        if importlib.util.find_spec(module) is None:
            pytest.fail(f"{module} is not installed (pip install -e '.[test]' installs matrix-nio[e2e])")
    stores = tmp_path_factory.mktemp("nio-federated-stores")
    return run_scenario(SCENARIO, pair[0].base_url, pair[1].base_url, str(stores))


def test_scenario_covers_every_step(e2ee_results):
    """The scenario reports every step this module checks, and no others."""
    assert list(e2ee_results) == list(STEPS)


@pytest.mark.parametrize("step", list(STEPS))
def test_federated_e2ee_step(e2ee_results, step):
    """nio completes the encrypted step across the two servers (see STEPS)."""
    ok_, detail = e2ee_results.get(step, (False, "not reported"))
    assert ok_, f"nio step {step!r} failed: {STEPS[step]}\n{detail}"


async def room_mates(a, b) -> tuple[dict, dict, SyncWatcher]:
    """alice of A and bob of B share a room of A; alice's /sync is followed from now."""
    alice, bob = await a.register(), await b.register()
    room_id = await create_room(a, alice, preset="public_chat")
    await ok(b, "POST", f"join/{quote(room_id)}", {}, user=bob, query={"via": a.server.server_name})
    watcher = SyncWatcher(a, alice)
    await watcher.sync_once()
    return alice, bob, watcher


def names(user_id: str):
    """A predicate: the /sync response names C{user_id} in device_lists.changed."""
    return lambda response: user_id in response.get("device_lists", {}).get("changed", [])


def without_unsigned(keys: dict) -> dict:
    return {k: v for k, v in keys.items() if k != "unsigned"}


@pytest_twisted.ensureDeferred
async def test_a_new_and_a_deleted_device_of_another_server_reach_sync_and_key_queries(pair, make_client):
    """bob of B uploads keys for a new device, then deletes it: each time alice of A sees him in
    device_lists.changed, and A's /keys/query lists the device, then no longer does."""
    a, b = make_client(pair[0]), make_client(pair[1])
    alice, bob, alice_sync = await room_mates(a, b)
    login = await b.login(bob["user_id"])
    assert login.code == 200, login
    second = login.json
    keys, _ = await upload_device_keys(b, second)

    await alice_sync.wait_for(names(bob["user_id"]), "bob's new device")
    found = (await query(a, alice, {bob["user_id"]: []}))["device_keys"][bob["user_id"]]
    assert without_unsigned(found[second["device_id"]]) == keys

    deleted = await b.with_password_uia("DELETE", f"devices/{quote(second['device_id'])}", {}, bob)
    assert deleted.code == 200, deleted
    await alice_sync.wait_for(names(bob["user_id"]), "the deletion of bob's device")
    answer = await query(a, alice, {bob["user_id"]: []})
    assert second["device_id"] not in answer["device_keys"][bob["user_id"]]
    assert answer["failures"] == {}


@pytest_twisted.ensureDeferred
async def test_a_remote_room_mates_keys_are_known_while_their_server_is_down(start_federating, make_client):
    """Once A holds bob's device list (and his new cross-signing keys, told by an m.signing_key_update),
    alice's /keys/query answers with them, without failures, even after B has stopped; but not with
    those of carol of B, who left the room (B no longer had to tell A of her changes)."""
    servers = start_federating(), start_federating()
    a, b = make_client(servers[0]), make_client(servers[1])
    alice, bob, alice_sync = await room_mates(a, b)
    keys, _ = await upload_device_keys(b, bob)
    await alice_sync.wait_for(names(bob["user_id"]), "bob's device keys")
    assert (await query(a, alice, {bob["user_id"]: []}))["device_keys"][bob["user_id"]] != {}

    carol = await b.register()
    room_id = await create_room(a, alice, preset="public_chat")
    await ok(b, "POST", f"join/{quote(room_id)}", {}, user=carol, query={"via": a.server.server_name})
    await upload_device_keys(b, carol)
    assert (await query(a, alice, {carol["user_id"]: []}))["device_keys"][carol["user_id"]] != {}
    await ok(b, "POST", f"rooms/{quote(room_id)}/leave", {}, user=carol)
    await alice_sync.wait_for(
        lambda response: carol["user_id"] in response.get("device_lists", {}).get("left", []), "carol's leave")

    cross_signing = await upload_cross_signing(b, bob)
    await alice_sync.wait_for(names(bob["user_id"]), "bob's cross-signing keys")
    servers[1].stop()

    answer = await query(a, alice, {carol["user_id"]: []})
    assert list(answer["failures"]) == [servers[1].server_name]
    answer = await query(a, alice, {bob["user_id"]: []})
    assert answer["failures"] == {}
    assert without_unsigned(answer["device_keys"][bob["user_id"]][bob["device_id"]]) == keys
    assert answer["master_keys"][bob["user_id"]] == cross_signing.body()["master_key"]
    assert answer["self_signing_keys"][bob["user_id"]] == cross_signing.body()["self_signing_key"]
