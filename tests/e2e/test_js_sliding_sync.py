"""
matrix-js-sdk's sliding sync, what Element Web runs with "simplified
sliding sync" on, against the daemon's unstable
C{org.matrix.simplified_msc3575} path: the SDK's SlidingSync loop and its
Room objects, driven by tests/e2e/js/sliding_scenario.mjs through the
spec-checking proxy (the sliding sync responses are not in the spec's
OpenAPI, so the proxy passes them; everything else the SDK asks is
checked). Each step of the scenario is a test here, and so are the
endpoints the SDK must have used. See js_clients.py for what it needs.
"""
from __future__ import annotations

import re

from js_clients import ClientScenarioChecks

#: The unstable sliding sync endpoint the SDK speaks.
SLIDING_SYNC = r"/_matrix/client/unstable/org\.matrix\.simplified_msc3575/sync"

#: Each step of the scenario and the behaviour it shows.
STEPS = {
    "register": "Two users register; each gets a display name.",
    "create_rooms": "Alice creates a named room with some history, an unnamed direct chat and a room she invites Bob to.",
    "room_list": "Bob's client starts on sliding sync with Element Web's room list and shows the three rooms: "
                 "names (the direct chat named after Alice), member counts, the invite from Alice, the list's count "
                 "and the last events of each room's timeline.",
    "new_message": "Alice's message lands in the live timeline of Bob's client and bumps its room to the top.",
    "join_invite": "Bob joins the invited room through the SDK; his client turns it to 'join' with two members.",
    "typing": "Alice typing, then stopping, shows on her member in Bob's client (the typing extension).",
    "read_receipt": "Alice's read receipt on the new message reaches Bob's client (the receipts extension).",
    "room_subscription": "A room subscription, as opening a room in Element Web makes, brings the room's "
                         "whole state (its power levels: Alice is admin) and 50 events of timeline, in order.",
    "scrollback": "Bob paginates back in a room from the prev_batch sliding sync gave: /messages brings all its history.",
    "favourite": "A room Bob tags as a favourite shows the tag in his client (the account_data extension).",
    "to_device": "A to-device message from Alice reaches Bob's client (the to_device extension, through its crypto).",
    "no_sync_errors": "The SDK's sliding sync loop never got an error (it would silently start over), "
                      "and the e2ee extension counted the one-time keys the SDK's crypto uploaded.",
}

#: Endpoints the SDK must have reached, each at least once with success.
ENDPOINTS = [
    ("POST", SLIDING_SYNC),
    ("GET", r"/_matrix/client/v3/rooms/[^/]+/messages"),
    ("PUT", r"/_matrix/client/v3/rooms/[^/]+/typing/[^/]+"),
    ("POST", r"/_matrix/client/v3/rooms/[^/]+/receipt/m\.read/[^/]+"),
    ("POST", r"/_matrix/client/v3/join/[^/]+"),
    ("POST", r"/_matrix/client/v3/keys/upload"),
    ("PUT", r"/_matrix/client/v3/user/[^/]+/rooms/[^/]+/tags/m\.favourite"),
    ("PUT", r"/_matrix/client/v3/sendToDevice/[^/]+/[^/]+"),
]


class TestSlidingSync(ClientScenarioChecks):
    """matrix-js-sdk's sliding sync runs sliding_scenario.mjs: each of STEPS, and each of ENDPOINTS reached."""

    SCRIPT, STEPS, ENDPOINTS, LIBRARY = "sliding_scenario.mjs", STEPS, ENDPOINTS, "matrix-js-sdk sliding sync"

    def test_every_sliding_sync_request_succeeded(self, scenario):
        """No sliding sync request of the SDK's failed (after a 400 such as M_UNKNOWN_POS it silently starts over)."""
        failed = [(e.path, e.status) for e in scenario[1].exchanges
                  if e.method == "POST" and re.fullmatch(SLIDING_SYNC, e.path) and e.status != 200]
        assert not failed
