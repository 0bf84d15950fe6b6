"""
A real web client, Hydrogen (hydrogen-view-sdk's app) in headless
Chromium, driven through its UI against the daemon: login, an invite,
images, files and avatars shown, pictures and files sent from its
composer, reactions both ways. Its peer is matrix-js-sdk.

tests/e2e/js/hydrogen_scenario.mjs runs it (Playwright drives Debian's
Chromium), through a proxy that validates every response against the
spec; each step is a test here, as are the spec check and the endpoints
Hydrogen must have used. Hydrogen has no UI for threads, message or user
search, or setting an avatar: matrix-js-sdk covers those
(test_js_sdk.py). Needs what js_clients.py says, and Chromium.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from js_clients import ClientScenarioChecks

#: The browser the scenario drives (it reads the same variable).
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

#: Each step of the scenario and the behaviour it shows.
STEPS = {
    "register": "Two users register; the peer (matrix-js-sdk) sets a display name and an avatar.",
    "login": "Hydrogen logs in through its login form, after discovering the homeserver.",
    "accept_invite": "An invite shows in Hydrogen's room list and Accept joins the room.",
    "show_image": "An m.image from the peer shows in Hydrogen's timeline, loaded from the authenticated thumbnail endpoint.",
    "show_file": "An m.file from the peer shows as a download with its name and size.",
    "show_avatar": "The peer's avatar shows next to its message, loaded from the authenticated thumbnail endpoint.",
    "send_image": "A picture sent from Hydrogen's composer reaches the peer as an m.image with its size, byte for byte.",
    "send_file": "A file sent from Hydrogen's composer reaches the peer as an m.file, byte for byte.",
    "react": "A reaction picked from a message's menu in Hydrogen is aggregated by the peer.",
    "show_reaction": "The peer's reaction shows under the message in Hydrogen with its count.",
}

#: Endpoints Hydrogen must have reached (r0 paths: it predates v3), each with success.
ENDPOINTS = [
    ("GET", r"/\.well-known/matrix/client"),
    ("POST", r"/_matrix/client/r0/login"),
    ("GET", r"/_matrix/client/r0/sync"),
    ("POST", r"/_matrix/client/r0/keys/upload"),
    ("POST", r"/_matrix/client/r0/rooms/[^/]+/join"),
    ("POST", r"/_matrix/media/r0/upload"),
    ("GET", r"/_matrix/client/v1/media/thumbnail/[^/]+/[^/]+"),
    ("PUT", r"/_matrix/client/r0/rooms/[^/]+/send/m\.room\.message/[^/]+"),
    ("PUT", r"/_matrix/client/r0/rooms/[^/]+/send/m\.reaction/[^/]+"),
]


class TestHydrogen(ClientScenarioChecks):
    """Hydrogen runs hydrogen_scenario.mjs: each of STEPS, and each of ENDPOINTS reached."""

    SCRIPT, STEPS, ENDPOINTS, LIBRARY = "hydrogen_scenario.mjs", STEPS, ENDPOINTS, "Hydrogen"

    @classmethod
    def run(cls, homeserver, spec):
        if not Path(CHROMIUM).is_file():
            pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)")
        return super().run(homeserver, spec)
