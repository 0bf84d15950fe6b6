"""Discovery: /versions, /.well-known/matrix/client and /capabilities."""
from __future__ import annotations

from ruma_tx.http.routing import NO_PREFIX, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester

#: The spec versions whose required client endpoints we serve. Clients
#: trust this list: a client seeing v1.11 or later downloads media from
#: the authenticated /_matrix/client/v1/media/* endpoints, one seeing v1.3
#: or later reads /relations. So a version is only listed when every
#: endpoint it requires is served (tests/e2e/test_versions.py asks each).
#:
#: "Required": the core client-server API. Modules are only required for
#: the feature profiles a server targets (client-server API, "Modules"),
#: and the Embedded profile requires none, so module endpoints (content
#: repository, spaces, threads, SSO, search, push gateways...) are not
#: counted; nor are endpoints the spec calls optional or gates behind a
#: capability or a login/UIA type the server does not offer.
#:
#: What each version added to the client API (spec changelogs, "New
#: Endpoints" and "Backwards Compatible Changes"):
#:   - v1.1: /room_keys/* (served), /keys/device_signing/upload and
#:     /keys/signatures/upload (served), /knock (served);
#:     /login/sso/redirect/{idpId} (SSO module: m.login.sso is not offered).
#:   - v1.2: /v1/rooms/{roomId}/hierarchy (Spaces module, optional in every
#:     profile); /v1/register/m.login.registration_token/validity (only for
#:     servers offering m.login.registration_token; this one does not).
#:   - v1.3: GET /v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]
#:     (core: "Forming relationships between events", "Relationships API",
#:     added in v1.3), and server-side aggregations. NOT served, so v1.3
#:     and everything after it are not advertised.
#:   - later, for the record: v1.4 /v1/rooms/{roomId}/threads (Threading
#:     module); v1.6 /v1/rooms/{roomId}/timestamp_to_event (served); v1.7
#:     async media uploads (content repository) and /v1/login/get_token
#:     (optional); v1.10 /.well-known/matrix/support (may be served by
#:     another web server); v1.11 authenticated media /v1/media/* (not
#:     served).
#:
#: A known gap in the core that every version shares: POST
#: /user_directory/search is not served. Strictly, no version is complete
#: without it; it is named here so that it is not forgotten, and it does
#: not change which version is the highest one to list.
SPEC_VERSIONS = ["r0.6.1", "v1.1", "v1.2"]


class MetaApi:
    def __init__(self, *, public_baseurl: str | None, room_versions: dict[str, str],
                 default_room_version: str) -> None:
        self._public_baseurl = public_baseurl
        self._room_versions = room_versions
        self._default_room_version = default_room_version

    @endpoint("GET", "/_matrix/client/versions", auth="none", prefixes=NO_PREFIX)
    async def versions(self, request: MatrixRequest, requester: None) -> JsonDict:
        return {"versions": SPEC_VERSIONS, "unstable_features": {}}

    @endpoint("GET", "/.well-known/matrix/client", auth="none", prefixes=NO_PREFIX)
    async def well_known(self, request: MatrixRequest, requester: None) -> JsonDict | tuple[int, JsonDict]:
        if self._public_baseurl is None:
            # As Synapse: without a public base URL there is nothing to advertise.
            return 404, {"errcode": "M_NOT_FOUND", "error": "No .well-known configured"}
        return {"m.homeserver": {"base_url": self._public_baseurl}}

    @endpoint("GET", "/capabilities")
    async def capabilities(self, request: MatrixRequest, requester: Requester) -> JsonDict:
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
