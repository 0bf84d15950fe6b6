"""Discovery: /versions, /.well-known/matrix/client and /capabilities."""
from __future__ import annotations

from ruma_tx.http.routing import NO_PREFIX, endpoint

#: The spec versions whose client API we serve.
SPEC_VERSIONS = ["r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8",
                 "v1.9", "v1.10", "v1.11", "v1.12"]


class MetaApi:
    def __init__(self, *, public_baseurl: str | None, room_versions: dict[str, str],
                 default_room_version: str):
        self._public_baseurl = public_baseurl
        self._room_versions = room_versions
        self._default_room_version = default_room_version

    @endpoint("GET", "/_matrix/client/versions", auth="none", prefixes=NO_PREFIX)
    async def versions(self, request, requester):
        return {"versions": SPEC_VERSIONS, "unstable_features": {}}

    @endpoint("GET", "/.well-known/matrix/client", auth="none", prefixes=NO_PREFIX)
    async def well_known(self, request, requester):
        if self._public_baseurl is None:
            # As Synapse: without a public base URL there is nothing to advertise.
            return 404, {"errcode": "M_NOT_FOUND", "error": "No .well-known configured"}
        return {"m.homeserver": {"base_url": self._public_baseurl}}

    @endpoint("GET", "/capabilities")
    async def capabilities(self, request, requester):
        return {
            "capabilities": {
                "m.change_password": {"enabled": True},
                "m.room_versions": {
                    "default": self._default_room_version,
                    "available": dict(self._room_versions),
                },
                "m.set_displayname": {"enabled": True},
                "m.set_avatar_url": {"enabled": True},
                "m.3pid_changes": {"enabled": False},
                "m.get_login_token": {"enabled": False},
            }
        }
