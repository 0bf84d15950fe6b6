"""
Room summaries, the space hierarchy and mutual rooms (spec: "Room
Summaries", "Spaces", "Mutual Rooms").

Only rooms this server has are summarised: a child room or a summary that
another server would have to give is left out (the hierarchy) or not found
(a summary), and C{via} is not used. Other servers may ask for a space and
its children (federation C{/hierarchy}).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import AbstractSet

from ruma_tx.matrix.errors import BadRequest, forbidden, invalid_param, not_found
from ruma_tx.matrix.identifiers import InvalidIdentifier, is_valid_user_id, parse_room_alias, random_string
from ruma_tx.matrix.spaces import (
    MAX_HIERARCHY_PAGE,
    MUTUAL_ROOMS_PAGE,
    SPACE,
    RoomSummaryState,
    SpaceChild,
    decode_mutual_rooms_token,
    encode_mutual_rooms_token,
    may_preview,
    ordered_children,
    summary_entry,
)
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.caches import LRUCache
from ruma_tx.services.clock import Clock, now_ms
from ruma_tx.services.ports.directory import DirectoryStorage
from ruma_tx.services.ports.events import Events
from ruma_tx.services.ports.spaces import RoomSummaryStorage

#: How long a hierarchy pagination token lasts (Synapse's five minutes).
HIERARCHY_TOKEN_LIFETIME_MS = 5 * 60 * 1000


@dataclass(frozen=True)
class _HierarchySession:
    """
    Where a hierarchy walk stopped: the query it belongs to, the rooms
    still to visit (the next one last) and those visited.
    """

    user_id: str
    room_id: str
    suggested_only: bool
    max_depth: int | None
    queue: tuple[tuple[str, int], ...]
    processed: frozenset[str]
    created_ms: int


@dataclass(frozen=True)
class _Viewer:
    """A requester's memberships, read once per request."""

    memberships: dict[str, str]
    joined: AbstractSet[str]

    def may_preview(self, room: RoomSummaryState) -> bool:
        return may_preview(room, self.memberships.get(room.room_id), self.joined)


class RoomSummaries:
    """
    @param summaries: the L{ruma_tx.storage.room_summaries.RoomSummaryStore}.
    @param events: the L{ruma_tx.storage.events.EventStore} (the
        requester's memberships).
    @param directory: the L{ruma_tx.storage.directory.DirectoryStore}
        (aliases).
    @param sessions_size: how many hierarchy pagination tokens to keep.
    """

    def __init__(self, *, summaries: RoomSummaryStorage, events: Events, directory: DirectoryStorage,
                 clock: Clock, sessions_size: int = 1000) -> None:
        self._summaries = summaries
        self._events = events
        self._directory = directory
        self._clock = clock
        # Invalidation: a session never changes; it is refused once older
        # than HIERARCHY_TOKEN_LIFETIME_MS, and the least recent ones are
        # dropped (their tokens then fail as unknown, as after a restart).
        self._sessions: LRUCache[str, _HierarchySession] = LRUCache(sessions_size)

    async def _viewer(self, user_id: str | None) -> _Viewer:
        if user_id is None:
            return _Viewer({}, frozenset())
        rooms = await self._events.get_rooms_for_user(user_id)
        memberships = {room_id: membership for room_id, (membership, _) in rooms.items()}
        return _Viewer(memberships, {room_id for room_id, m in memberships.items() if m == "join"})

    # -- GET /room_summary --------------------------------------------------

    async def summary(self, user_id: str | None, room_id_or_alias: str) -> JsonDict:
        """
        A room's summary, with the requester's C{membership} (C{leave} when
        they have none; absent without a token).

        @param user_id: the requester; C{None} without an access token,
            who may only see rooms anyone may preview (spec: public, knock
            and world-readable rooms).
        @raise BadRequest: M_INVALID_PARAM for something that is neither a
            room id nor an alias.
        @raise NotFound: for a room this server does not know, or one the
            requester may not preview.
        """
        room_id = await self._resolve(room_id_or_alias)
        viewer = await self._viewer(user_id)
        room = (await self._summaries.get_room_summaries([room_id])).get(room_id)
        if room is None or not viewer.may_preview(room):
            raise not_found("Room not found or is not accessible")
        entry = summary_entry(room)
        if user_id is not None:
            entry["membership"] = viewer.memberships.get(room_id, "leave")
        return entry

    async def _resolve(self, room_id_or_alias: str) -> str:
        if room_id_or_alias.startswith("#"):
            try:
                parse_room_alias(room_id_or_alias)
            except InvalidIdentifier as e:
                raise invalid_param(str(e)) from None
            found = await self._directory.get_alias(room_id_or_alias)
            if found is None:
                raise not_found("Room alias not found")
            return found[0]
        if not room_id_or_alias.startswith("!"):
            raise invalid_param("Expected a room id or a room alias")
        return room_id_or_alias

    # -- GET /hierarchy -----------------------------------------------------

    async def hierarchy(self, user_id: str, room_id: str, *, suggested_only: bool = False,
                        max_depth: int | None = None, limit: int | None = None,
                        from_token: str | None = None) -> JsonDict:
        """
        A page of the space tree under C{room_id}, depth first (spec: "when
        it encounters another space as a child it recurses into that space
        before returning non-space children"), each room once: the root,
        then each child in the space's order followed by what is under it.
        Rooms the requester may not preview are left out, and so is what is
        under them; so are rooms this server does not have.

        @param max_depth: how deep to go (0: the root only); C{None}: all
            the way (each room is visited once, so a loop ends).
        @param limit: rooms per page, at most L{MAX_HIERARCHY_PAGE}.
        @param from_token: a C{next_batch}, only for the same room,
            requester, C{suggested_only} and C{max_depth}.
        @raise Forbidden: when the requester may not preview the root (or
            it is unknown here).
        @raise BadRequest: M_INVALID_PARAM for an unknown, expired or
            mismatched token.
        """
        viewer = await self._viewer(user_id)
        root = (await self._summaries.get_room_summaries([room_id])).get(room_id)
        if root is None or not viewer.may_preview(root):
            raise forbidden(f"You may not preview room {room_id}")
        queue, processed = [(room_id, 0)], set()
        if from_token is not None:
            session = self._session(from_token, user_id, room_id, suggested_only, max_depth)
            queue, processed = list(session.queue), set(session.processed)
        page_size = min(limit or MAX_HIERARCHY_PAGE, MAX_HIERARCHY_PAGE)
        known: dict[str, RoomSummaryState | None] = {room_id: root}
        rooms: list[JsonDict] = []
        # Rooms that will not be shown are passed over even once the page is
        # full, so a next_batch always leads to more rooms.
        while queue:
            current, depth = queue[-1]
            if current in processed:
                queue.pop()
                continue
            if current not in known:
                # The rooms about to be visited, in one read.
                wanted = {current} | {room for room, _ in queue[-page_size:] if room not in known}
                found = await self._summaries.get_room_summaries(sorted(wanted))
                known.update({room: found.get(room) for room in wanted})
            room = known[current]
            if room is None or not viewer.may_preview(room):
                queue.pop()
                processed.add(current)
                continue
            if len(rooms) == page_size:
                break
            queue.pop()
            processed.add(current)
            entry = summary_entry(room)
            children = []
            if room.room_type == SPACE:
                children = ordered_children(await self._summaries.get_space_children(current),
                                            suggested_only=suggested_only)
            entry["children_state"] = [child.stripped() for child in children]
            rooms.append(entry)
            if max_depth is None or depth < max_depth:
                queue.extend((child.room_id, depth + 1) for child in reversed(children))
        response: JsonDict = {"rooms": rooms}
        if queue:
            token = random_string(24)
            self._sessions[token] = _HierarchySession(
                user_id, room_id, suggested_only, max_depth, tuple(queue), frozenset(processed),
                now_ms(self._clock))
            response["next_batch"] = token
        return response

    # -- federation GET /hierarchy -------------------------------------------

    async def hierarchy_for_server(self, origin: str, room_id: str, *, suggested_only: bool = False
                                   ) -> JsonDict:
        """
        The room and its children, one level down and not paginated, as
        far as C{origin} could peek or join them: it has a member in the
        room, or the room is world-readable, or anyone may join or knock,
        or it is restricted to a room C{origin} has a member in (the
        client rule of L{may_preview}, with the server's members for the
        user). Children this server does not have are left out; those
        C{origin} could not reach are listed in C{inaccessible_children}.

        @raise NotFound: when the room is unknown here, or C{origin} could
            not reach it (spec: 404).
        """
        root = (await self._summaries.get_room_summaries([room_id])).get(room_id)
        if root is None:
            raise not_found("Room not found or is not accessible")
        children: list[SpaceChild] = []
        if root.room_type == SPACE:
            children = ordered_children(await self._summaries.get_space_children(room_id),
                                        suggested_only=suggested_only)
        found = await self._summaries.get_room_summaries([child.room_id for child in children])
        rooms = [root, *found.values()]
        wanted = {room.room_id for room in rooms} | {allowed for room in rooms for allowed in room.allowed_room_ids}
        with_origin = await self._summaries.get_rooms_with_server(origin, sorted(wanted))

        def reachable(room: RoomSummaryState) -> bool:
            return may_preview(room, "join" if room.room_id in with_origin else None, with_origin)

        if not reachable(root):
            raise not_found("Room not found or is not accessible")
        entry = summary_entry(root)
        entry["children_state"] = [child.stripped() for child in children]
        shown: list[JsonDict] = []
        inaccessible: list[str] = []
        for child_id in dict.fromkeys(child.room_id for child in children):
            room = found.get(child_id)
            if room is not None and reachable(room):
                shown.append(summary_entry(room))
            elif room is not None:
                inaccessible.append(child_id)
        return {"room": entry, "children": shown, "inaccessible_children": inaccessible}

    def _session(self, token: str, user_id: str, room_id: str, suggested_only: bool,
                 max_depth: int | None) -> _HierarchySession:
        session = self._sessions.get(token)
        if session is None or now_ms(self._clock) - session.created_ms > HIERARCHY_TOKEN_LIFETIME_MS \
                or (session.user_id, session.room_id, session.suggested_only, session.max_depth) \
                != (user_id, room_id, suggested_only, max_depth):
            # Spec: suggested_only and max_depth cannot change during pagination.
            raise invalid_param("Unknown or expired pagination token, or one for another query")
        return session


class MutualRooms:
    """
    C{GET /mutual_rooms}: the rooms two users are both joined to.

    @param summaries: the L{ruma_tx.storage.room_summaries.RoomSummaryStore}.
    """

    def __init__(self, *, summaries: RoomSummaryStorage) -> None:
        self._summaries = summaries

    async def mutual_rooms(self, user_id: str, other_user_id: str, from_token: str | None = None) -> JsonDict:
        """
        A page of the rooms both are joined to, by room id, with the total
        C{count}; a user who does not exist shares none (spec).

        @raise BadRequest: M_INVALID_PARAM for a malformed user id, the
            requester's own, or a token we did not issue.
        """
        if not is_valid_user_id(other_user_id):
            raise invalid_param(f"Invalid user_id: {other_user_id!r}")
        if other_user_id == user_id:
            raise BadRequest("M_INVALID_PARAM", "You cannot request a list of shared rooms with yourself")
        after = decode_mutual_rooms_token(from_token) if from_token is not None else None
        rooms = sorted(await self._summaries.get_mutual_rooms(user_id, other_user_id))
        remaining = [room for room in rooms if after is None or room > after]
        response: JsonDict = {"joined": remaining[:MUTUAL_ROOMS_PAGE], "count": len(rooms)}
        if len(remaining) > MUTUAL_ROOMS_PAGE:
            response["next_batch"] = encode_mutual_rooms_token(remaining[MUTUAL_ROOMS_PAGE - 1])
        return response
