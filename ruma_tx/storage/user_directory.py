"""
The user directory (spec: "User directory"): users found by the words of
their localpart and display name. SQL only.

The words and their vector live in C{user_directory} for local users, kept
by a trigger on C{profiles} (schema 019), with the functions that fold and
split text the same way for users and search terms, and in
C{user_directory_remote} for other servers' users joined to our rooms, kept
by triggers on C{current_state} (schema 034). Who may be found is read from the
rooms' current membership at search time, so membership changes count at
once: a user is found by a searcher who shares a room with them, or by
anyone when they are joined to a room of C{user_directory_rooms} (public
join rule or world-readable history), written with the state events that
decide it (L{record_room_publicity}).
"""
from __future__ import annotations

from typing import Iterable, Sequence

from ruma_tx.matrix.search import PUBLIC_JOIN, WORLD_READABLE, room_publicity
from ruma_tx.matrix.types import JsonDict
from ruma_tx.services.ports.events import NewEvent
from ruma_tx.services.ports.search import DirectoryUser
from ruma_tx.storage.database import Database, Transaction


async def record_room_publicity(txn: Transaction, events: Sequence[NewEvent]) -> None:
    """
    Record what join rules and history visibility events among C{events}
    (being stored, in order) say of their rooms' publicity; nothing is
    written for other events.
    """
    await _record_publicity(txn, [(event.room_id, event.pdu) for event in events])


async def record_joined_room_publicity(txn: Transaction, room_id: str, state: Iterable[JsonDict]) -> None:
    """
    Record what the state of a room joined through another server (its
    state events, received as outliers) says of its publicity.
    """
    await _record_publicity(txn, [(room_id, pdu) for pdu in state])


async def _record_publicity(txn: Transaction, events: Sequence[tuple[str, JsonDict]]) -> None:
    """C{events}: C{(room_id, pdu)}, in order."""
    rooms: dict[str, dict[str, bool]] = {}
    for room_id, pdu in events:
        found = room_publicity(pdu["type"], pdu.get("state_key"), pdu.get("content") or {})
        if found is not None:
            rooms.setdefault(room_id, {})[found[0]] = found[1]
    if not rooms:
        return
    rows = [(room_id, flags.get(PUBLIC_JOIN), flags.get(WORLD_READABLE)) for room_id, flags in rooms.items()]
    await txn.insert_many(
        "user_directory_rooms", ("room_id", "public_join", "world_readable"), rows,
        "ON CONFLICT (room_id) DO UPDATE SET"
        " public_join = COALESCE(EXCLUDED.public_join, user_directory_rooms.public_join),"
        " world_readable = COALESCE(EXCLUDED.world_readable, user_directory_rooms.world_readable)",
    )


#: Who the searcher may find, unless every user may be found: someone
#: joined to a public room, or (never the searcher themself: as Synapse,
#: whose shared-room pairs never pair a user with themself) joined to a
#: room the searcher is joined to.
_VISIBLE = (
    "EXISTS (SELECT 1 FROM current_state c"
    " WHERE c.type = 'm.room.member' AND c.state_key = m.user_id AND c.membership = 'join'"
    " AND (c.room_id IN (SELECT room_id FROM user_directory_rooms WHERE public_join OR world_readable)"
    "  OR (m.user_id <> %(searcher)s AND c.room_id IN (SELECT room_id FROM current_state"
    "   WHERE type = 'm.room.member' AND state_key = %(searcher)s AND membership = 'join')))"
    # OFFSET 0 keeps it a test per user, made only for the users ranked
    # high enough, rather than a join with every member of those rooms.
    " OFFSET 0)"
)


#: The columns of a directory entry, local (schema 019) or remote (schema 034).
_ENTRY = "user_id, display_name, avatar_url, localpart_key, name_key, vector"


class UserDirectoryStore:
    """
    @param database: the L{ruma_tx.storage.database.Database}.
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    async def search_users(self, searcher: str, text: str, limit: int, *,
                           search_all_users: bool) -> list[DirectoryUser]:
        """
        Up to C{limit + 1} users whose words start with each word of C{text}
        (at most 10 words), best first: those whose localpart or display name
        is the text, then those where one starts with it, then by rank (a
        localpart word counts more than a display name word), those with a
        display name, then with an avatar, then by user id. Deactivated
        users are not in the directory; other servers' users are, while they
        are joined to a room this server holds.

        Matches are ranked first, then checked for visibility in that order
        until the page is full, so a common term does not check every match.

        @param search_all_users: every other user may be found (as
            Synapse's C{search_all_users}, which leaves out the searcher).
        """
        visible = "m.user_id <> %(searcher)s" if search_all_users else _VISIBLE
        rows = await self._db.fetch_all(
            "WITH t AS MATERIALIZED ("
            "  SELECT array_to_string(w, ' ') AS key, user_directory_query(w) AS query"
            "  FROM (SELECT COALESCE(user_directory_words(%(text)s), '{}') AS w) words)"
            " SELECT m.user_id, m.display_name, m.avatar_url FROM ("
            "  SELECT d.user_id, d.display_name, d.avatar_url,"
            "   CASE WHEN d.localpart_key = t.key OR d.name_key = t.key THEN 0"
            "    WHEN starts_with(d.localpart_key, t.key) OR starts_with(d.name_key, t.key) THEN 1"
            "    ELSE 2 END AS tier,"
            "   ts_rank(d.vector, t.query) AS rank,"
            "   d.display_name IS NULL AS no_name, d.avatar_url IS NULL AS no_avatar"
            f"  FROM (SELECT {_ENTRY} FROM user_directory UNION ALL SELECT {_ENTRY} FROM user_directory_remote) d"
            "  CROSS JOIN t WHERE d.vector @@ t.query"
            "  ORDER BY tier, rank DESC, no_name, no_avatar, d.user_id"
            "  OFFSET 0) m"   # a fence: rank first, then check visibility in rank order
            f" WHERE {visible}"
            " ORDER BY m.tier, m.rank DESC, m.no_name, m.no_avatar, m.user_id"
            " LIMIT %(limit)s",
            {"text": text, "searcher": searcher, "limit": limit + 1},
        )
        return [DirectoryUser(user_id, displayname, avatar_url) for user_id, displayname, avatar_url in rows]
