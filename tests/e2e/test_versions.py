"""
/versions advertises only spec versions whose required endpoints the
daemon serves (see the reasoning at SPEC_VERSIONS in ruma_tx/http/meta.py):
every endpoint each advertised version requires is asked, and none may
answer as an unknown endpoint; what the versions leave out is switched off
the way the spec says; each unstable feature answers at its path.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest_twisted
from room_helpers import create_room, join

from ruma_tx.http.meta import UNSTABLE_FEATURES

ROOM = quote("!room:test.local")
USER = quote("@someone:test.local")
ALIAS = quote("#alias:test.local")
EVENT = quote("$event")
V3 = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"

#: The endpoints of the core client-server API (what every feature
#: profile needs; modules are optional for the Embedded profile) each
#: advertised version requires, by the version that added them.
REQUIRED: dict[str, list[tuple[str, str]]] = {
    "r0.6.1": [
        ("GET", "/_matrix/client/versions"),
        ("GET", "/.well-known/matrix/client"),
        ("GET", f"{V3}/capabilities"),
        # Accounts and sessions.
        ("GET", f"{V3}/login"),
        ("POST", f"{V3}/login"),
        ("POST", f"{V3}/logout"),
        ("POST", f"{V3}/logout/all"),
        ("POST", f"{V3}/register"),
        ("GET", f"{V3}/register/available"),
        ("POST", f"{V3}/account/password"),
        ("POST", f"{V3}/account/deactivate"),
        ("GET", f"{V3}/account/3pid"),
        ("GET", f"{V3}/account/whoami"),
        # Filters and sync.
        ("POST", f"{V3}/user/{USER}/filter"),
        ("GET", f"{V3}/user/{USER}/filter/1"),
        ("GET", f"{V3}/sync"),
        # Getting events and state.
        ("GET", f"{V3}/rooms/{ROOM}/event/{EVENT}"),
        ("GET", f"{V3}/rooms/{ROOM}/state/m.room.name/x"),
        ("GET", f"{V3}/rooms/{ROOM}/state"),
        ("GET", f"{V3}/rooms/{ROOM}/members"),
        ("GET", f"{V3}/rooms/{ROOM}/joined_members"),
        ("GET", f"{V3}/rooms/{ROOM}/messages"),
        # Sending events.
        ("PUT", f"{V3}/rooms/{ROOM}/state/m.room.name/x"),
        ("PUT", f"{V3}/rooms/{ROOM}/send/m.room.message/t1"),
        ("PUT", f"{V3}/rooms/{ROOM}/redact/{EVENT}/t1"),
        # Rooms, aliases and membership.
        ("POST", f"{V3}/createRoom"),
        ("PUT", f"{V3}/directory/room/{ALIAS}"),
        ("GET", f"{V3}/directory/room/{ALIAS}"),
        ("DELETE", f"{V3}/directory/room/{ALIAS}"),
        ("GET", f"{V3}/rooms/{ROOM}/aliases"),
        ("GET", f"{V3}/joined_rooms"),
        ("POST", f"{V3}/rooms/{ROOM}/invite"),
        ("POST", f"{V3}/join/{ROOM}"),
        ("POST", f"{V3}/rooms/{ROOM}/join"),
        ("POST", f"{V3}/rooms/{ROOM}/leave"),
        ("POST", f"{V3}/rooms/{ROOM}/forget"),
        ("POST", f"{V3}/rooms/{ROOM}/kick"),
        ("POST", f"{V3}/rooms/{ROOM}/ban"),
        ("POST", f"{V3}/rooms/{ROOM}/unban"),
        # The room directory.
        ("GET", f"{V3}/directory/list/room/{ROOM}"),
        ("PUT", f"{V3}/directory/list/room/{ROOM}"),
        ("GET", f"{V3}/publicRooms"),
        ("POST", f"{V3}/publicRooms"),
        # Profiles and the user directory.
        ("POST", f"{V3}/user_directory/search"),
        ("PUT", f"{V3}/profile/{USER}/displayname"),
        ("GET", f"{V3}/profile/{USER}/displayname"),
        ("PUT", f"{V3}/profile/{USER}/avatar_url"),
        ("GET", f"{V3}/profile/{USER}/avatar_url"),
        ("GET", f"{V3}/profile/{USER}"),
    ],
    # v1.1 also added key backup and cross-signing (the end-to-end
    # encryption module, served) and SSO redirects (the SSO module).
    "v1.1": [
        ("POST", f"{V3}/knock/{ROOM}"),
    ],
    # v1.2 added no core endpoint: /v1/rooms/{roomId}/hierarchy belongs to
    # the Spaces module, and the registration token validity check to
    # servers offering m.login.registration_token (served all the same:
    # tests/e2e/test_registration_tokens.py).
    "v1.2": [],
    "v1.3": [
        ("POST", f"{V3}/refresh"),
        ("GET", f"{V1}/rooms/{ROOM}/relations/{EVENT}"),
        ("GET", f"{V1}/rooms/{ROOM}/relations/{EVENT}/m.thread"),
        ("GET", f"{V1}/rooms/{ROOM}/relations/{EVENT}/m.annotation/m.reaction"),
    ],
    # Threads (a module, but clients only ask /threads of a v1.4 server).
    "v1.4": [
        ("GET", f"{V1}/rooms/{ROOM}/threads"),
    ],
    "v1.5": [],
    "v1.6": [
        ("GET", f"{V1}/rooms/{ROOM}/timestamp_to_event"),
    ],
    # Async uploads (content repository); /v1/login/get_token is optional.
    "v1.7": [
        ("POST", "/_matrix/media/v1/create"),
        ("PUT", "/_matrix/media/v3/upload/test.local/someid"),
    ],
    "v1.8": [],
    "v1.9": [],
    "v1.10": [
        ("GET", "/.well-known/matrix/support"),
    ],
    # Authenticated media: a v1.11 client downloads only from these. URL
    # previews are optional (off by default, as in Synapse).
    "v1.11": [
        ("GET", f"{V1}/media/config"),
        ("GET", f"{V1}/media/download/test.local/someid"),
        ("GET", f"{V1}/media/download/test.local/someid/name.txt"),
        ("GET", f"{V1}/media/thumbnail/test.local/someid"),
    ],
    # Account locking and suspension only concern servers that lock or
    # suspend accounts (this one does: tests/e2e/test_account_restrictions.py).
    "v1.12": [],
    # Reports (Reporting Content module) of rooms, then of users.
    "v1.13": [
        ("POST", f"{V3}/rooms/{ROOM}/report"),
    ],
    "v1.14": [
        ("POST", f"{V3}/users/{USER}/report"),
    ],
    # Also /v1/auth_metadata: 404 M_UNRECOGNIZED without OAuth 2.0, asked below.
    "v1.15": [
        ("GET", f"{V1}/room_summary/{ROOM}"),
    ],
    # Also use_state_after on /sync: tests/e2e/test_sync_state_after.py.
    "v1.16": [
        ("PUT", f"{V3}/profile/{USER}/m.tz"),
        ("GET", f"{V3}/profile/{USER}/m.tz"),
        ("DELETE", f"{V3}/profile/{USER}/m.tz"),
    ],
    # For application services and OAuth 2.0 servers only.
    "v1.17": [],
    # Redactions through /send: tests/e2e/test_redact_via_send.py; the admin
    # endpoints are the Server Administration module's.
    "v1.18": [],
    # Mutual rooms (a module).
    "v1.19": [
        ("GET", f"{V1}/mutual_rooms"),
    ],
}

#: The stages of user-interactive auth (and login types) that would bring
#: endpoints along which no version then requires: email and phone
#: validation (the requestToken endpoints), registration tokens (offered
#: only with [registration] requires_token), SSO and login tokens.
NOT_OFFERED = {"m.login.email.identity", "m.login.msisdn", "m.login.registration_token",
               "m.login.sso", "m.login.token"}


@pytest_twisted.ensureDeferred
async def test_versions_lists_only_versions_whose_required_endpoints_are_served(client):
    """Each advertised version has its required endpoints listed here, and each answers as a known endpoint (not 404/405 M_UNRECOGNIZED)."""
    response = await client.request("GET", "/_matrix/client/versions")
    assert response.code == 200, response
    assert response.json["versions"] == list(REQUIRED)
    user = await client.register()
    for version, endpoints in REQUIRED.items():
        for method, path in endpoints:
            token = user["access_token"]
            if path.endswith(("/logout", "/logout/all")):
                token = (await client.register())["access_token"]  # sessions to end
            answer = await client.request(method, path, {} if method in ("POST", "PUT") else None,
                                          token=token)
            assert isinstance(answer.json, dict), (version, method, path, answer)
            assert answer.json.get("errcode") != "M_UNRECOGNIZED", (
                f"{version} requires {method} {path}: {answer}")


@pytest_twisted.ensureDeferred
async def test_what_the_versions_do_not_require_is_switched_off_as_the_spec_says(client):
    """
    The endpoints left out of REQUIRED are off the way the spec lets a
    server say so: no OAuth 2.0 (auth_metadata is 404 M_UNRECOGNIZED), the
    Admin Contact Information API and login tokens behind disabled
    capabilities, no admin moderation for non-admins, profile fields
    limited to those the capability allows, and no login or registration
    stage that needs email, phone, registration token or SSO endpoints.
    """
    user = await client.register()
    metadata = await client.request("GET", f"{V1}/auth_metadata")
    assert (metadata.code, metadata.json["errcode"]) == (404, "M_UNRECOGNIZED")

    response = await client.request("GET", f"{V3}/capabilities", token=user["access_token"])
    capabilities = response.json["capabilities"]
    assert capabilities["m.3pid_changes"] == {"enabled": False}
    assert capabilities["m.get_login_token"] == {"enabled": False}
    assert "m.account_moderation" not in capabilities
    # Profile fields beyond these are refused, as the capability says.
    assert capabilities["m.profile_fields"] == {"enabled": True, "allowed": ["displayname", "avatar_url"]}
    for key, code in (("displayname", 200), ("m.tz", 403), ("org.example.pronouns", 403)):
        answer = await client.request("PUT", f"{V3}/profile/{quote(user['user_id'])}/{key}",
                                      {key: "Europe/Paris"}, token=user["access_token"])
        assert answer.code == code, (key, answer)

    login = await client.request("GET", f"{V3}/login")
    assert not {flow["type"] for flow in login.json["flows"]} & NOT_OFFERED
    challenge = await client.request("POST", f"{V3}/register", {})
    assert challenge.code == 401, challenge
    stages = {stage for flow in challenge.json["flows"] for stage in flow["stages"]}
    assert stages and not stages & NOT_OFFERED


@pytest_twisted.ensureDeferred
async def test_each_unstable_feature_is_served_at_its_path(client):
    """
    /versions lists exactly UNSTABLE_FEATURES, and each answers at the
    unstable path clients call for it: mutual rooms by query parameter,
    simplified sliding sync (Element X's flag) at its POST /sync.
    """
    response = await client.request("GET", "/_matrix/client/versions")
    assert response.json["unstable_features"] == UNSTABLE_FEATURES == {
        "uk.half-shot.msc2666.query_mutual_rooms": True, "org.matrix.simplified_msc3575": True}

    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, invite=[bob["user_id"]])
    await join(client, bob, room_id)
    mutual = await client.request("GET", "/_matrix/client/unstable/uk.half-shot.msc2666/user/mutual_rooms",
                                  token=alice["access_token"], query={"user_id": bob["user_id"]})
    assert mutual.code == 200, mutual
    assert mutual.json["joined"] == [room_id]

    sliding = await client.request(
        "POST", "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync",
        {"lists": {"all": {"ranges": [[0, 9]], "timeline_limit": 1, "required_state": []}}},
        token=bob["access_token"])
    assert sliding.code == 200, sliding
    assert sliding.json["lists"]["all"]["count"] == 1 and list(sliding.json["rooms"]) == [room_id]
