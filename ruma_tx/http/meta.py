"""Discovery: /versions, /.well-known/matrix/client and /capabilities."""
from __future__ import annotations

from typing import Awaitable, Callable

from ruma_tx.http.routing import NO_PREFIX, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.profile import SUPPORTED_FIELDS

#: The spec versions whose required client endpoints we serve. Clients
#: trust this list: a client seeing v1.11 or later downloads media from
#: the authenticated /_matrix/client/v1/media/* endpoints, one seeing v1.3
#: or later reads /relations, one seeing v1.16 asks /sync for state_after.
#: So a version is only listed when every endpoint it requires is served
#: (tests/e2e/test_versions.py asks each).
#:
#: "Required": the core client-server API. Modules are only required for
#: the feature profiles a server targets (client-server API, "Modules"),
#: and the Embedded profile requires none, so module endpoints (content
#: repository, spaces, threads, SSO, search, push gateways...) are not
#: counted; nor are endpoints the spec calls optional or gates behind a
#: capability or a login/UIA type the server does not offer.
#:
#: What each version added to the client API (spec changelogs, "New
#: Endpoints" and "Backwards Compatible Changes"), served unless said:
#:   - v1.1: /room_keys/*, /keys/device_signing/upload and
#:     /keys/signatures/upload, /knock; /login/sso/redirect/{idpId} (SSO
#:     module: m.login.sso is not offered).
#:   - v1.2: /v1/rooms/{roomId}/hierarchy (Spaces module);
#:     /v1/register/m.login.registration_token/validity (served; the stage
#:     is offered when [registration] requires_token is set).
#:   - v1.3: /v1/rooms/{roomId}/relations (the Relationships API) and
#:     server-side aggregations; /refresh.
#:   - v1.4: threads (/v1/rooms/{roomId}/threads, m.thread aggregation,
#:     thread_id on receipts, unread_thread_notifications), m.read.private,
#:     m.replace, room_types on /publicRooms, the server_acl push rule,
#:     CORP headers on media. Clients turn their thread support on from
#:     v1.4 (matrix-js-sdk asks /threads only then).
#:   - v1.5: m.reference aggregation. v1.6: /v1/rooms/{roomId}/timestamp_to_event.
#:   - v1.7: async uploads (/_matrix/media/v1/create, PUT /upload), the
#:     event_property_is/_contains push conditions and mention rules;
#:     /v1/login/get_token is optional (behind m.get_login_token).
#:   - v1.8, v1.9: room version 11, the suppress_edits push rule.
#:   - v1.10: /.well-known/matrix/support, recursive /relations, erasure on
#:     deactivation, Retry-After.
#:   - v1.11: authenticated media (/_matrix/client/v1/media/*), the
#:     animated thumbnail flag, no UIA for a first cross-signing upload;
#:     unsigned.membership is a SHOULD the spec lets servers omit. URL
#:     previews (/v1/media/preview_url) are optional: off by default, as in
#:     Synapse, where the endpoint is then unknown.
#:   - v1.12: via on /join and /knock (only this server's rooms can be
#:     joined: there is no other server to go through), guests' access to
#:     authenticated media, unread markers (account data), 403 on profile
#:     look-ups (a MAY); account locking (401 M_USER_LOCKED, but for
#:     /logout and /logout/all).
#:   - v1.13: POST /rooms/{roomId}/report (Reporting Content module);
#:     account suspension (403 M_USER_SUSPENDED).
#:   - v1.14: POST /users/{userId}/report.
#:   - v1.15: /v1/room_summary/{roomIdOrAlias} (core: "Room Summaries") and
#:     the hierarchy's new fields; /v1/auth_metadata, which a server without
#:     the OAuth 2.0 API answers 404 M_UNRECOGNIZED ("Authentication API
#:     discovery"), as it answers any unknown path (the test asserts it).
#:   - v1.16: use_state_after on /sync (a MUST: state_after);
#:     /profile/{userId}/{keyName} for any key, DELETE too, though only
#:     displayname and avatar_url are stored (m.tz and custom fields are
#:     refused): the m.profile_fields capability, which v1.16 added for
#:     that, lists them as the only fields allowed; format=event on GET
#:     /state; room version 12.
#:   - v1.17: only for application services (devices, /register without
#:     UIA; this server has none) and OAuth 2.0 servers (the m.oauth UIA
#:     type); the legacy mention push rules are gone.
#:   - v1.18: redactions through /send in every room version. The rest is
#:     optional or not ours: /v1/admin/lock and /v1/admin/suspend (Server
#:     Administration module: served, and the m.account_moderation
#:     capability shown to admins), the m.forget_forced_upon_leave capability, OAuth 2.0
#:     aware clients and the device grant (OAuth 2.0 servers only),
#:     /.well-known/matrix/policy_server (served by a policy server), and
#:     the Invite permission module (optional in every profile), which is
#:     NOT implemented: a client's "block invites" setting is not enforced.
#:   - v1.19: /v1/mutual_rooms (Mutual Rooms module); the rest is for clients
#:     (image packs, m.key_backup, encrypted history sharing) or optional
#:     (unsigned.replaces_state, not provided).
#:
#: Required by no version, so not served: the Admin Contact Information
#: API but GET /account/3pid (/account/3pid/add, bind, delete, unbind and
#: their requestToken endpoints: m.3pid_changes, which "affects a user's
#: ability to use the Admin Contact Information API", is false), the
#: requestToken endpoints of /register and /account/password (for the
#: m.login.email.identity and m.login.msisdn UIA stages, not offered),
#: /admin/whois (Server Administration module), /thirdparty/* (Third-party
#: Networks module) and the application service endpoints.
SPEC_VERSIONS = ["r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9",
                 "v1.10", "v1.11", "v1.12", "v1.13", "v1.14", "v1.15", "v1.16", "v1.17", "v1.18",
                 "v1.19"]

#: Features clients only find through unstable flags, each served at the
#: unstable path its flag names (tests/e2e/test_versions.py asks it).
#: Mutual rooms is in v1.19, but clients such as matrix-js-sdk still look
#: for this flag, then call /unstable/uk.half-shot.msc2666/user/mutual_rooms
#: (its pages of 100 rooms follow the spec's from/next_batch, where
#: matrix-js-sdk asks batch_token: it sees the first 100). No flag for the
#: room summary: clients use /v1/room_summary from v1.15 on.
#: Simplified sliding sync (MSC4186) is served at both its paths; Element X
#: and other matrix-rust-sdk clients look for the unstable flag.
UNSTABLE_FEATURES = {"uk.half-shot.msc2666.query_mutual_rooms": True, "org.matrix.simplified_msc3575": True}


class MetaApi:
    """
    @param may_moderate: C{async (user_id) -> bool}: whether the user may
        lock and suspend accounts (a server admin), to whom alone
        C{/capabilities} shows C{m.account_moderation}.
    """

    def __init__(self, *, public_baseurl: str | None, room_versions: dict[str, str],
                 default_room_version: str, may_moderate: Callable[[str], Awaitable[bool]]) -> None:
        self._public_baseurl = public_baseurl
        self._room_versions = room_versions
        self._default_room_version = default_room_version
        self._may_moderate = may_moderate

    @endpoint("GET", "/_matrix/client/versions", auth="none", prefixes=NO_PREFIX)
    async def versions(self, request: MatrixRequest, requester: None) -> JsonDict:
        return {"versions": SPEC_VERSIONS, "unstable_features": UNSTABLE_FEATURES}

    @endpoint("GET", "/.well-known/matrix/client", auth="none", prefixes=NO_PREFIX)
    async def well_known(self, request: MatrixRequest, requester: None) -> JsonDict | tuple[int, JsonDict]:
        if self._public_baseurl is None:
            # As Synapse: without a public base URL there is nothing to advertise.
            return 404, {"errcode": "M_NOT_FOUND", "error": "No .well-known configured"}
        return {"m.homeserver": {"base_url": self._public_baseurl}}

    @endpoint("GET", "/capabilities")
    async def capabilities(self, request: MatrixRequest, requester: Requester) -> JsonDict:
        # The spec: omitted for users who may neither lock nor suspend.
        moderation = {"m.account_moderation": {"lock": True, "suspend": True}} \
            if await self._may_moderate(requester.user_id) else {}
        return {
            "capabilities": {
                "m.change_password": {"enabled": True},
                "m.room_versions": {
                    "default": self._default_room_version,
                    "available": dict(self._room_versions),
                },
                "m.set_displayname": {"enabled": True},
                "m.set_avatar_url": {"enabled": True},
                # Only these fields are stored: v1.16 clients leave the others
                # (m.tz, custom fields) alone when told so.
                "m.profile_fields": {"enabled": True, "allowed": list(SUPPORTED_FIELDS)},
                "m.3pid_changes": {"enabled": False},
                "m.get_login_token": {"enabled": False},
                **moderation,
            }
        }
