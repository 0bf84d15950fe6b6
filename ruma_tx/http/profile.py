"""
The profile endpoints (spec: "Profiles"): read anyone's display name and
avatar, change one's own.

C{displayname} and C{avatar_url} have routes of their own, so that the
guest allow-list (guests may change their display name only) stays in the
declarations; Werkzeug prefers them to the C{<key_name>} route, which
answers for every other key.
"""
from __future__ import annotations

from ruma_tx.http.parsing import get_field, read_json_object
from ruma_tx.http.routing import endpoint
from ruma_tx.http.site import MatrixRequest
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.guard import Requester
from ruma_tx.services.profile import AVATAR_URL, DISPLAYNAME, ProfileEditor


class ProfileApi:
    """
    @param profiles: the L{ruma_tx.services.profile.ProfileEditor}.
    """

    def __init__(self, profiles: ProfileEditor) -> None:
        self._profiles = profiles

    @endpoint("GET", "/profile/<user_id>", auth="optional")
    async def get_profile(self, request: MatrixRequest, requester: Requester | None,
                          user_id: str) -> JsonDict:
        return await self._profiles.get_profile(user_id)

    @endpoint("GET", "/profile/<user_id>/displayname", auth="optional")
    async def get_displayname(self, request: MatrixRequest, requester: Requester | None,
                              user_id: str) -> JsonDict:
        return await self._profiles.get_profile_field(user_id, DISPLAYNAME)

    @endpoint("GET", "/profile/<user_id>/avatar_url", auth="optional")
    async def get_avatar_url(self, request: MatrixRequest, requester: Requester | None,
                             user_id: str) -> JsonDict:
        return await self._profiles.get_profile_field(user_id, AVATAR_URL)

    @endpoint("GET", "/profile/<user_id>/<key_name>", auth="optional")
    async def get_field(self, request: MatrixRequest, requester: Requester | None, user_id: str,
                        key_name: str) -> JsonDict:
        return await self._profiles.get_profile_field(user_id, key_name)

    @endpoint("PUT", "/profile/<user_id>/displayname", guest=True, suspended=False)
    async def set_displayname(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        displayname = get_field(read_json_object(request), DISPLAYNAME, str)
        await self._profiles.set_displayname(requester, user_id, displayname)
        return {}

    @endpoint("PUT", "/profile/<user_id>/avatar_url", suspended=False)
    async def set_avatar_url(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        avatar_url = get_field(read_json_object(request), AVATAR_URL, str)
        await self._profiles.set_avatar_url(requester, user_id, avatar_url)
        return {}

    @endpoint("PUT", "/profile/<user_id>/<key_name>", suspended=False)
    async def set_field(self, request: MatrixRequest, requester: Requester, user_id: str,
                        key_name: str) -> JsonDict:
        read_json_object(request)
        await self._profiles.change_unsupported_field(requester, user_id, key_name, delete=False)
        return {}

    @endpoint("DELETE", "/profile/<user_id>/displayname", guest=True, suspended=False)
    async def delete_displayname(self, request: MatrixRequest, requester: Requester,
                                 user_id: str) -> JsonDict:
        await self._profiles.set_displayname(requester, user_id, None)
        return {}

    @endpoint("DELETE", "/profile/<user_id>/avatar_url", suspended=False)
    async def delete_avatar_url(self, request: MatrixRequest, requester: Requester, user_id: str) -> JsonDict:
        await self._profiles.set_avatar_url(requester, user_id, None)
        return {}

    @endpoint("DELETE", "/profile/<user_id>/<key_name>", suspended=False)
    async def delete_field(self, request: MatrixRequest, requester: Requester, user_id: str,
                           key_name: str) -> JsonDict:
        await self._profiles.change_unsupported_field(requester, user_id, key_name, delete=True)
        return {}
