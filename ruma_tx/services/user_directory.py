"""
The user directory (spec: "User directory"): finding users, local or of
other servers joined to our rooms, by user id and display name, among
those the searcher may see.
"""
from __future__ import annotations

from ruma_tx.matrix.search import directory_search_text
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.ports.search import UserDirectoryIndex


class UserDirectory:
    """
    Who may be found: users who share a room with the searcher, and users
    joined to a room with a public join rule or world-readable history (the
    spec's minimum, and Synapse's default); with C{search_all_users}, every
    user in the directory but the searcher (Synapse's option of that name).
    Local users' display names and avatars are their global profiles, never
    a room's member event: a name set for one room is not for the whole
    server (as Synapse, which keeps a local user's directory entry from their
    profile only). Other servers' users have those of their latest join
    event, preferably in a public room (see schema 034).

    @param index: the L{ruma_tx.storage.user_directory.UserDirectoryStore}.
    """

    def __init__(self, *, index: UserDirectoryIndex, search_all_users: bool) -> None:
        self._index = index
        self._search_all_users = search_all_users

    async def search(self, user_id: str, search_term: str, limit: int) -> JsonDict:
        """The body of C{POST /user_directory/search}: up to C{limit} users, best first."""
        found = await self._index.search_users(user_id, directory_search_text(search_term), limit,
                                               search_all_users=self._search_all_users)
        results = []
        for user in found[:limit]:
            result: JsonDict = {"user_id": user.user_id}
            if user.display_name is not None:
                result["display_name"] = user.display_name
            if user.avatar_url is not None:
                result["avatar_url"] = user.avatar_url
            results.append(result)
        return {"limited": len(found) > limit, "results": results}
