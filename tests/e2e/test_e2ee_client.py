"""
An end-to-end encrypted conversation between two real clients through the
daemon: matrix-nio with its C{e2e} extra (Olm and Megolm from vodozemac).

Like test_nio.py, tests/e2e/e2ee_scenario.py runs in a child process (nio
needs asyncio; the test runs Twisted), once per module, with its crypto
stores in a temporary directory; each step is its own test here, so a
failing step names the endpoint and the detail nio reported.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from scenario_steps import run_scenario

SCENARIO = Path(__file__).with_name("e2ee_scenario.py")

#: Each step of the scenario and the behaviour it shows.
STEPS = {
    "register": "Two users register, and the registration device logs out.",
    "login": "Each user logs in on a new device with an encrypted nio store.",
    "keys_upload": "Both devices upload device and one-time keys, and /sync counts the one-time keys.",
    "create_room": "Alice creates a room with Megolm m.room.encryption state and invites bob.",
    "join": "Bob joins, and his nio sees the room as encrypted with alice in it.",
    "device_lists": "Once they share an encrypted room, each one's sync lists the other in "
                    "device_lists.changed.",
    "keys_query": "/keys/query gives each client the other device, with that device's own identity keys.",
    "keys_claim": "Alice claims one of bob's signed one-time keys, and bob's /sync count drops by one.",
    "alice_sends": "Alice shares a Megolm room key with bob's device over to-device and sends an encrypted "
                   "message, which the server holds only as m.room.encrypted.",
    "bob_decrypts": "Bob's sync delivers the room key over Olm and the message, which decrypts to "
                    "alice's text.",
    "to_device_once": "A to-device message is not delivered again once the next sync acknowledged it.",
    "bob_replies": "Bob replies encrypted and alice's sync decrypts it to bob's text.",
    "history": "Paging back with /messages, bob's nio decrypts both messages.",
    "leave": "When bob leaves, alice's sync lists him in device_lists.left and her next room key skips him.",
}


@pytest.fixture(scope="module")
def e2ee_results(homeserver, tmp_path_factory):
    """Run the scenario once against the shared daemon: C{step -> (ok, detail)}."""
    for module in ("nio", "vodozemac"):
        if importlib.util.find_spec(module) is None:
            pytest.fail(f"{module} is not installed (pip install -e '.[test]' installs matrix-nio[e2e])")
    stores = tmp_path_factory.mktemp("nio-stores")
    return run_scenario(SCENARIO, homeserver.base_url, str(stores))


def test_scenario_covers_every_step(e2ee_results):
    """The scenario reports every step this module checks, and no others."""
    assert list(e2ee_results) == list(STEPS)


@pytest.mark.parametrize("step", list(STEPS))
def test_e2ee_step(e2ee_results, step):
    """nio completes the encrypted step (see STEPS for the behaviour each shows)."""
    ok, detail = e2ee_results.get(step, (False, "not reported"))
    assert ok, f"E2EE step {step!r} failed: {STEPS[step]}\n{detail}"
