"""
A real web client library, matrix-js-sdk (Element Web's engine), against
the daemon: images and files, avatars, reactions, threads and search.

tests/e2e/js/js_sdk_scenario.mjs runs the SDK in Node.js (a child
process), through a proxy that validates every response the SDK gets
against the spec's OpenAPI. The scenario runs once per module; each of
its steps is a test here, and so are the spec check of all the traffic
and the endpoints the SDK must have used. See js_clients.py for what the
module needs installed (it fails, never skips, without it).
"""
from __future__ import annotations

from js_clients import ClientScenarioChecks

#: Each step of the scenario and the behaviour it shows.
STEPS = {
    "register": "Two users register through the UIA dummy stage with the SDK's registerRequest.",
    "login": "A user logs in with a password (a second device), and whoami answers that device.",
    "sync": "Both SDK clients start with thread support and lazy-loaded members, as Element does, and sync.",
    "create_room": "A private room created with an invite shows in the creator's client and as an invite in the other's.",
    "join": "The invitee joins; both clients count two joined members.",
    "upload_image": "A PNG uploaded with uploadContent is sent as an m.image message.",
    "upload_file": "A text file uploaded with uploadContent is sent as an m.file message.",
    "see_media": "The other user's client shows the m.image and the m.file in its timeline.",
    "download_media": "The other user downloads both, byte for byte, from the authenticated media URLs the SDK builds.",
    "thumbnail": "An avatar-sized thumbnail of the image, from the SDK's authenticated URL, is a 32x32 image.",
    "avatar": "A new profile avatar reaches the other user's member list, and its thumbnail loads.",
    "react": "A reaction is aggregated under its key in the sender's client and listed by /relations.",
    "thread": "A reply in a thread lands in the SDK's thread, not the main timeline, and /relations lists it.",
    "thread_list": "The SDK's threads panel lists the thread from /threads, with the root's reply count.",
    "search_messages": "Searching messages with searchRoomEvents finds the message and nothing for an absent word.",
    "search_users": "Searching the user directory by display name finds the other user.",
}

#: Endpoints the SDK must have reached, each at least once with success.
ENDPOINTS = [
    ("POST", r"/_matrix/media/v3/upload"),
    ("GET", r"/_matrix/client/v1/media/download/[^/]+/[^/]+"),
    ("GET", r"/_matrix/client/v1/media/thumbnail/[^/]+/[^/]+"),
    ("PUT", r"/_matrix/client/v3/profile/[^/]+/avatar_url"),
    ("PUT", r"/_matrix/client/v3/rooms/[^/]+/send/m\.reaction/[^/]+"),
    ("GET", r"/_matrix/client/v1/rooms/[^/]+/relations/[^/]+/m\.annotation/m\.reaction"),
    ("GET", r"/_matrix/client/v1/rooms/[^/]+/relations/[^/]+/m\.thread"),
    ("GET", r"/_matrix/client/v1/rooms/[^/]+/threads"),
    ("POST", r"/_matrix/client/v3/search"),
    ("POST", r"/_matrix/client/v3/user_directory/search"),
]


class TestJsSdk(ClientScenarioChecks):
    """matrix-js-sdk runs js_sdk_scenario.mjs: each of STEPS, and each of ENDPOINTS reached."""

    SCRIPT, STEPS, ENDPOINTS, LIBRARY = "js_sdk_scenario.mjs", STEPS, ENDPOINTS, "matrix-js-sdk"
