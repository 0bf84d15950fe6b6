"""
OpenID (spec: "OpenID"): issuing tokens on the client API, and the
federation endpoint third parties call to check them. HTTP only; the rules
are in L{ruma_tx.services.openid.OpenIdTokens}.
"""
from __future__ import annotations

from ruma_tx.http.parsing import query_arg, read_json_object
from ruma_tx.http.routing import NO_PREFIX, endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.openid import OpenIdTokens


class OpenIdApi:
    """C{POST /user/{userId}/openid/request_token}."""

    def __init__(self, tokens: OpenIdTokens) -> None:
        self._tokens = tokens

    @endpoint("POST", "/user/<user_id>/openid/request_token")
    async def request_token(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        # The body is "an empty object, reserved for future expansion"; as
        # Synapse, no body at all is accepted too.
        read_json_object(request, allow_empty=True)
        return await self._tokens.request_token(requester.user_id, user_id)


class OpenIdUserInfoApi:
    """
    C{GET /_matrix/federation/v1/openid/userinfo}: the one federation
    endpoint served, on client listeners and on listeners with the
    C{openid} resource (as Synapse's resource of that name).
    """

    def __init__(self, tokens: OpenIdTokens) -> None:
        self._tokens = tokens

    # auth="none": the access_token here is an OpenID token, never a client's.
    @endpoint("GET", "/_matrix/federation/v1/openid/userinfo", auth="none", prefixes=NO_PREFIX)
    async def userinfo(self, request: MatrixRequest, requester: None) -> JsonDict:
        return await self._tokens.userinfo(query_arg(request, "access_token"))
