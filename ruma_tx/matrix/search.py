"""
Finding things (spec: "Server Side Search", "User directory") as pure
rules: what a request may ask, what text of an event is searchable, which
rooms make their members visible in the user directory, the pagination
tokens, and how a page of results is grouped and highlighted.

No I/O: the full-text matching itself is PostgreSQL's (C{ruma_tx.storage.search}
and C{ruma_tx.storage.user_directory}).
"""
from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import orjson

from ruma_tx.matrix.errors import bad_json, invalid_param, missing_param
from ruma_tx.matrix.events import StoredEvent, room_event
from ruma_tx.matrix.filters import FilterError, RoomEventFilter, parse_room_event_filter
from ruma_tx.matrix.identifiers import InvalidIdentifier, parse_user_id
from ruma_tx.matrix.sync import StoredJson
from ruma_tx.matrix.types import JsonDict

#: The keys a room event search may look at (spec), each in one event type.
BODY, NAME, TOPIC = "content.body", "content.name", "content.topic"
SEARCH_KEYS = (BODY, NAME, TOPIC)

#: The event type whose text each key is.
KEY_EVENT_TYPES = {BODY: "m.room.message", NAME: "m.room.name", TOPIC: "m.room.topic"}

RANK, RECENT = "rank", "recent"
ORDERINGS = (RANK, RECENT)

#: What results may be grouped by (spec: "The current required supported groupings").
GROUP_KEYS = ("room_id", "sender")

#: Results per page when the filter sets no limit (Synapse's default), and
#: the most a page holds (the spec asks servers to impose a maximum).
DEFAULT_RESULT_LIMIT = 10
MAX_RESULT_LIMIT = 100

#: Events of context on each side of a result: the spec's default, and our cap.
DEFAULT_CONTEXT_LIMIT = 5
MAX_CONTEXT_LIMIT = 20

#: User directory results: 10 by default, at most 50 (as Synapse clamps it).
DEFAULT_DIRECTORY_LIMIT = 10
MAX_DIRECTORY_LIMIT = 50

#: What marks a matched word in a highlighted text (PostgreSQL's
#: C{ts_headline} puts them around each word that matched the query).
HIGHLIGHT_START, HIGHLIGHT_STOP = "\x1e", "\x1f"


# ------------------------------------------------------------------ requests


@dataclass(frozen=True)
class EventContext:
    """What C{event_context} asks around each result."""

    before_limit: int = DEFAULT_CONTEXT_LIMIT
    after_limit: int = DEFAULT_CONTEXT_LIMIT
    include_profile: bool = False


@dataclass(frozen=True)
class RoomEventsCriteria:
    """
    A validated C{search_categories.room_events}.

    @ivar limit: results per page (the filter's C{limit}, capped).
    @ivar context: C{None} when no context is asked for.
    @ivar group_by: the requested group keys, in request order, without repeats.
    """

    search_term: str
    keys: tuple[str, ...] = SEARCH_KEYS
    order_by: str = RANK
    event_filter: RoomEventFilter = RoomEventFilter()
    limit: int = DEFAULT_RESULT_LIMIT
    context: EventContext | None = None
    include_state: bool = False
    group_by: tuple[str, ...] = ()


def _typed(obj: JsonDict, key: str, kind: type, where: str, default: Any) -> Any:
    """C{obj[key]} if present (and of C{kind}, booleans never passing for integers), else C{default}."""
    if key not in obj:
        return default
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise bad_json(f"{where}{key} has the wrong type")
    return value


def _context_limit(obj: JsonDict, key: str) -> int:
    value: int = _typed(obj, key, int, "event_context.", DEFAULT_CONTEXT_LIMIT)
    if value < 0:
        raise bad_json(f"event_context.{key} must not be negative")
    return min(value, MAX_CONTEXT_LIMIT)


def parse_search_request(body: JsonDict) -> RoomEventsCriteria:
    """
    Validate the body of C{POST /search}. The only category is
    C{room_events}; any other is refused rather than silently ignored
    (Synapse ignores it), so that a client never mistakes "not searched"
    for "nothing found".

    @raise BadRequest: M_MISSING_PARAM for a missing C{search_categories},
        C{room_events} or C{search_term}; M_BAD_JSON for a wrong type, an
        unknown category, key, ordering or group key, or a bad filter.
    """
    categories = body.get("search_categories")
    if categories is None:
        raise missing_param("Missing parameter: search_categories")
    if not isinstance(categories, dict):
        raise bad_json("search_categories must be an object")
    unknown = sorted(set(categories) - {"room_events"})
    if unknown:
        raise bad_json(f"Unknown search category: {unknown[0]} (only room_events is supported)")
    criteria = categories.get("room_events")
    if criteria is None:
        raise missing_param("Missing parameter: search_categories.room_events")
    if not isinstance(criteria, dict):
        raise bad_json("search_categories.room_events must be an object")
    search_term = criteria.get("search_term")
    if search_term is None:
        raise missing_param("Missing parameter: search_term")
    if not isinstance(search_term, str):
        raise bad_json("search_term must be a string")
    keys = _typed(criteria, "keys", list, "", list(SEARCH_KEYS))
    for key in keys:
        if key not in SEARCH_KEYS:
            raise bad_json(f"Unknown search key {key!r}: expected one of {', '.join(SEARCH_KEYS)}")
    order_by = _typed(criteria, "order_by", str, "", RANK)
    if order_by not in ORDERINGS:
        raise bad_json(f"Unknown order_by {order_by!r}: expected rank or recent")
    try:
        event_filter = parse_room_event_filter(_typed(criteria, "filter", dict, "", {}))
    except FilterError as e:
        raise bad_json(f"filter: {e}") from None
    context = None
    if criteria.get("event_context") is not None:
        raw = _typed(criteria, "event_context", dict, "", {})
        context = EventContext(_context_limit(raw, "before_limit"), _context_limit(raw, "after_limit"),
                               _typed(raw, "include_profile", bool, "event_context.", False))
    groupings = _typed(criteria, "groupings", dict, "", {})
    group_by: list[str] = []
    for group in _typed(groupings, "group_by", list, "groupings.", []):
        key = group.get("key") if isinstance(group, dict) else None
        if key not in GROUP_KEYS:
            raise bad_json(f"Unknown group key {key!r}: expected room_id or sender")
        if key not in group_by:
            group_by.append(key)
    return RoomEventsCriteria(
        search_term=search_term, keys=tuple(dict.fromkeys(keys)), order_by=order_by,
        event_filter=event_filter,
        limit=event_filter.effective_limit(DEFAULT_RESULT_LIMIT, MAX_RESULT_LIMIT), context=context,
        include_state=_typed(criteria, "include_state", bool, "", False), group_by=tuple(group_by),
    )


def parse_directory_request(body: JsonDict) -> tuple[str, int]:
    """
    Validate the body of C{POST /user_directory/search}.

    @return: C{(search_term, limit)}; the limit is clamped to 0..50, as
        Synapse does.
    @raise BadRequest: M_MISSING_PARAM without C{search_term}, M_BAD_JSON
        for a value of the wrong type.
    """
    search_term = body.get("search_term")
    if search_term is None:
        raise missing_param("Missing parameter: search_term")
    if not isinstance(search_term, str):
        raise bad_json("search_term must be a string")
    limit = _typed(body, "limit", int, "", DEFAULT_DIRECTORY_LIMIT)
    return search_term, max(0, min(limit, MAX_DIRECTORY_LIMIT))


def directory_search_text(search_term: str) -> str:
    """
    The text to match user ids and display names against: a whole user id
    (C{@alice:example.org}) searches its localpart, and a leading C{@} is
    dropped, so that C{@ali} finds C{@alice:...} (a server name in the
    text would otherwise match nobody, as only localparts are indexed).
    """
    text = search_term.strip()
    if text.startswith("@") and ":" in text:
        try:
            return parse_user_id(text)[0]
        except InvalidIdentifier:
            pass
    return text.lstrip("@")


# ----------------------------------------------------------------- indexing


def _string(content: JsonDict, key: str) -> str | None:
    value = content.get(key)
    return value if isinstance(value, str) and value.strip() else None


def _plain_topic(content: JsonDict) -> str | None:
    """The body of the C{text/plain} representation in C{m.topic} (the default mimetype)."""
    block = content.get("m.topic")
    representations = block.get("m.text") if isinstance(block, dict) else None
    if not isinstance(representations, list):
        return None
    for representation in representations:
        if isinstance(representation, dict) and representation.get("mimetype", "text/plain") == "text/plain":
            return _string(representation, "body")
    return None


def searchable_text(event_type: str, state_key: str | None, content: JsonDict) -> tuple[str, str] | None:
    """
    The key and text a room event search finds an event by, or C{None}
    for an event it never finds (spec: C{content.body} of
    C{m.room.message}, C{content.name} of C{m.room.name}, and of
    C{m.room.topic} its C{content.topic} and the C{text/plain} body in
    C{m.topic}). Encrypted events have no such text.

    C{ruma_tx.storage.search} indexes events stored before the index
    existed with the same rule, written in SQL.
    """
    if event_type == "m.room.message" and state_key is None:
        body = _string(content, "body")
        return (BODY, body) if body is not None else None
    if state_key != "":
        return None
    if event_type == "m.room.name":
        name = _string(content, "name")
        return (NAME, name) if name is not None else None
    if event_type == "m.room.topic":
        texts = [t for t in (_string(content, "topic"), _plain_topic(content)) if t is not None]
        unique = list(dict.fromkeys(texts))
        return (TOPIC, "\n".join(unique)) if unique else None
    return None


#: The state events that make a room's members visible to everyone in the
#: user directory (spec: "joined to rooms ... that have a public join rule
#: ... or a world_readable history visibility"; as Synapse's
#: C{is_room_world_readable_or_publicly_joinable}).
PUBLIC_JOIN, WORLD_READABLE = "public_join", "world_readable"


def room_publicity(event_type: str, state_key: str | None, content: JsonDict) -> tuple[str, bool] | None:
    """
    What a state event says of its room's publicity in the user directory:
    C{(PUBLIC_JOIN, is public)} for a join rules event, C{(WORLD_READABLE,
    is world readable)} for a history visibility event, C{None} for any
    other event. The room is public while either holds.
    """
    if state_key != "":
        return None
    if event_type == "m.room.join_rules":
        return PUBLIC_JOIN, content.get("join_rule") == "public"
    if event_type == "m.room.history_visibility":
        return WORLD_READABLE, content.get("history_visibility") == "world_readable"
    return None


# --------------------------------------------------------------- pagination


@dataclass(frozen=True)
class SearchToken:
    """
    Where a page of results ends (a C{next_batch}): the sort key of its last
    result, C{(rank, position)}, rank always 0 when ordered by C{recent};
    for a token inside a group, the group it continues.
    """

    order_by: str
    rank: float
    position: int
    group: tuple[str, str] | None = None

    def encode(self) -> str:
        fields: list[object] = [self.order_by, self.rank, self.position]
        if self.group is not None:
            fields += list(self.group)
        raw = json.dumps(fields, separators=(",", ":")).encode("utf-8")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def parse_search_token(text: str, order_by: str) -> SearchToken:
    """
    Read a C{next_batch} this server made for a search ordered by C{order_by}.

    @raise BadRequest: M_INVALID_PARAM for anything else (including a token
        of the other ordering).
    """
    bad = invalid_param("next_batch is not a valid token for this search")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        fields = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(fields, list) or len(fields) not in (3, 5) or fields[0] != order_by:
        raise bad
    rank, position = fields[1], fields[2]
    if (isinstance(rank, bool) or not isinstance(rank, (int, float)) or not math.isfinite(rank)
            or isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < 2**63):
        raise bad
    group = None
    if len(fields) == 5:
        key, value = fields[3], fields[4]
        if key not in GROUP_KEYS or not isinstance(value, str):
            raise bad
        group = (key, value)
    return SearchToken(order_by, float(rank), position, group)


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class Hit:
    """One result as grouping sees it: its event, room, sender and sort key."""

    event_id: str
    room_id: str
    sender: str
    rank: float
    position: int


def group_results(hits: Sequence[Hit], group_by: Iterable[str], order_by: str,
                  ends: dict[str, dict[str, tuple[float, int]]]) -> JsonDict:
    """
    The C{groups} of a page: per group key, per value, the ids of the
    page's results in it, C{order} (1 for the group of the best result,
    then in the order groups first appear) and a C{next_batch} that goes on
    within the group when the group has results after its last one here.

    @param ends: per group key and value, the sort key of the group's last
        result of the whole search; a group not there has no more.
    """
    groups: JsonDict = {}
    for key in group_by:
        entries: dict[str, JsonDict] = {}
        last: dict[str, Hit] = {}
        for hit in hits:
            value = hit.room_id if key == "room_id" else hit.sender
            entry = entries.setdefault(value, {"results": [], "order": len(entries) + 1})
            entry["results"].append(hit.event_id)
            last[value] = hit
        for value, hit in last.items():
            end = ends.get(key, {}).get(value)
            if end is not None and end != (hit.rank, hit.position):
                entries[value]["next_batch"] = SearchToken(order_by, hit.rank, hit.position,
                                                           (key, value)).encode()
        groups[key] = entries
    return groups


def event_with_room_id(event: StoredEvent) -> JsonDict | StoredJson:
    """
    An event in client format with its C{room_id}, from its stored /sync
    JSON (which has none) without parsing it when there is one.
    """
    stored = event.client_json
    if stored is not None and stored.startswith("{") and stored != "{}":
        room_id = orjson.dumps(event.room_id).decode("utf-8")
        return StoredJson(f'{{"room_id":{room_id},{stored[1:]}')
    return room_event(event)


def highlight_words(headlines: Iterable[str]) -> list[str]:
    """
    The distinct words marked in highlighted texts (between
    L{HIGHLIGHT_START} and L{HIGHLIGHT_STOP}), in first-seen order: the
    words of the results that matched, as clients highlight them.
    """
    words: dict[str, None] = {}
    for headline in headlines:
        for piece in headline.split(HIGHLIGHT_START)[1:]:
            word, stop, _ = piece.partition(HIGHLIGHT_STOP)
            if stop and word.strip():
                words.setdefault(word.strip(), None)
    return list(words)
