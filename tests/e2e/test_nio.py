"""
A real client library, matrix-nio, against the daemon.

nio runs on asyncio and aiohttp, so tests/e2e/nio_scenario.py runs it in a
child process (its own event loop, nothing shared with the test's Twisted
reactor); the scenario runs once per test module and each step is its own
test here, so a failing step (say, /messages) names itself and the detail
nio reported, and the others still count.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from scenario_steps import run_scenario

SCENARIO = Path(__file__).with_name("nio_scenario.py")

#: Each step of the scenario and the behaviour it shows.
STEPS = {
    "register": "Two users register through nio's dummy-auth flow and whoami answers the right user.",
    "create_room": "nio creates a named room with a topic and an invite, and its sync shows both.",
    "invite_in_sync": "The invitee's nio sync records the invite, named from its stripped state.",
    "join": "The invitee joins with nio's join (which posts no body) and its nio sync lists the room.",
    "member_counts": "After the join, the inviter's nio room counts two joined members and no invites.",
    "send": "nio sends 26 messages from two users and gets 26 distinct event ids.",
    "sync_receive": "An incremental nio sync gets the latest messages, limited, with a prev_batch.",
    "state": "nio reads the room state and one state event, changes the topic, and sees it synced.",
    "joined_members": "nio's joined_members lists the two members.",
    "history": "nio pages back with /messages from the sync's prev_batch to m.room.create, every message once.",
    "leave": "nio's room_leave (no body) works; the leaver's sync lists the room as left, the other's drops them.",
}


@pytest.fixture(scope="module")
def nio_results(homeserver):
    """Run the scenario once against the shared daemon: C{step -> (ok, detail)}."""
    if importlib.util.find_spec("nio") is None:
        pytest.fail("matrix-nio is not installed (pip install -e '.[test]')")
    return run_scenario(SCENARIO, homeserver.base_url)


def test_scenario_covers_every_step(nio_results):
    """The scenario reports every step this module checks, and no others."""
    assert list(nio_results) == list(STEPS)


@pytest.mark.parametrize("step", list(STEPS))
def test_nio_step(nio_results, step):
    """matrix-nio completes the step (see STEPS for the behaviour each shows)."""
    ok, detail = nio_results.get(step, (False, "not reported"))
    assert ok, f"nio step {step!r} failed: {STEPS[step]}\n{detail}"
