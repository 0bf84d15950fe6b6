"""
/versions advertises only spec versions whose required endpoints the
daemon serves (see the reasoning at SPEC_VERSIONS in ruma_tx/http/meta.py):
every endpoint each advertised version requires is asked, and none may
answer as an unknown endpoint.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest_twisted

ROOM = quote("!room:test.local")
USER = quote("@someone:test.local")
ALIAS = quote("#alias:test.local")
EVENT = quote("$event")
V3 = "/_matrix/client/v3"

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
        # Profiles. (POST /user_directory/search, also core, is not served:
        # a known gap, see SPEC_VERSIONS.)
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
    # the Spaces module, and the registration token validity check only to
    # servers offering m.login.registration_token.
    "v1.2": [],
}


@pytest_twisted.ensureDeferred
async def test_versions_lists_only_versions_whose_required_endpoints_are_served(client):
    """Each advertised version has its required endpoints listed here, and each answers as a known endpoint (not 404/405 M_UNRECOGNIZED)."""
    response = await client.request("GET", "/_matrix/client/versions")
    assert response.code == 200, response
    assert response.json["versions"] == list(REQUIRED)
    # A v1.3 server serves the Relationships API; a v1.11 one authenticated media.
    assert "v1.3" not in response.json["versions"] and "v1.11" not in response.json["versions"]

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
async def test_endpoints_of_later_versions_are_indeed_missing(client):
    """The reason v1.3 and later are not advertised holds: /relations and authenticated media answer 404 M_UNRECOGNIZED."""
    user = await client.register()
    for path in (f"/_matrix/client/v1/rooms/{ROOM}/relations/{EVENT}",
                 "/_matrix/client/v1/media/config"):
        answer = await client.request("GET", path, token=user["access_token"])
        assert (answer.code, answer.json["errcode"]) == (404, "M_UNRECOGNIZED"), (
            f"{path} is served now: see whether SPEC_VERSIONS in ruma_tx/http/meta.py may grow")
