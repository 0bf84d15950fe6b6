"""
Simplified sliding sync (MSC4186, merged as C{POST /v4/sync}; unstable
C{org.matrix.simplified_msc3575}): the pure rules. What a request asks
(lists, subscriptions, room configs, extensions), which rooms a list holds
and in what order, how room configs combine, and what a connection
remembers of what it sent. The two wire formats are read and written in
C{ruma_tx.http}; the reads in C{ruma_tx.services.sliding_sync}.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from ruma_tx.matrix.spaces import has_valid_via
from ruma_tx.matrix.types import JsonDict

#: "Proper" activity (MSC4186, C{bump_stamp}): the event types that bump a room.
BUMP_EVENT_TYPES = frozenset({
    "m.room.create", "m.room.message", "m.room.encrypted", "m.sticker",
    "m.call.invite", "m.poll.start", "m.beacon_info",
})

#: MSC4186: more lists or subscriptions than this is a 400.
MAX_LISTS = 100
MAX_SUBSCRIPTIONS = 100

#: The server may cap C{timeline_limit} (MSC4186); this is /messages' own cap.
MAX_TIMELINE_LIMIT = 1000

#: Memberships that always put a room in the user's server-side list.
_LISTED = frozenset({"join", "invite", "knock"})

#: A required-state element: C{(type, state_key)}, C{None} matching any.
StateElement = tuple["str | None", "str | None"]


@dataclass(frozen=True)
class RequiredState:
    """
    One room config's C{required_state}: what it includes, minus what it
    excludes; C{lazy_members} adds the members the timeline needs.
    """

    include: frozenset[StateElement] = frozenset()
    exclude: frozenset[StateElement] = frozenset()
    lazy_members: bool = False

    def matches(self, event_type: str, state_key: str) -> bool:
        """
        Whether the state under this key is sent. With C{lazy_members},
        member events come lazily, unless an element names the member.
        """
        if self.lazy_members and event_type == "m.room.member":
            return (event_type, state_key) in self.include or (None, state_key) in self.include
        return _any_matches(self.include, event_type, state_key) and not _any_matches(
            self.exclude, event_type, state_key)

    def all_members(self) -> bool:
        """Whether it returns every member event (then nothing is lazy)."""
        return not self.lazy_members and any(
            t in (None, "m.room.member") and k is None for t, k in self.include) and not any(
            t in (None, "m.room.member") for t, _ in self.exclude)

    def as_json(self) -> JsonDict:
        return {"include": sorted(map(list, self.include), key=str),
                "exclude": sorted(map(list, self.exclude), key=str), "lazy_members": self.lazy_members}

    @classmethod
    def from_json(cls, data: JsonDict) -> RequiredState:
        return cls(frozenset((t, k) for t, k in data["include"]),
                   frozenset((t, k) for t, k in data["exclude"]), bool(data["lazy_members"]))


def _any_matches(elements: frozenset[StateElement], event_type: str, state_key: str) -> bool:
    """Whether an element matches the key (four set lookups: exact, or either part a wildcard)."""
    return ((event_type, state_key) in elements or (event_type, None) in elements
            or (None, state_key) in elements or (None, None) in elements)


@dataclass(frozen=True)
class RoomConfig:
    """
    What to send of a room: at most C{timeline_limit} events, and the state
    any of C{required_state} matches (MSC4186 "Combining room configs":
    the configs of a room's rules are kept apart and their union sent).
    """

    timeline_limit: int
    required_state: tuple[RequiredState, ...]

    def matches(self, event_type: str, state_key: str) -> bool:
        return any(r.matches(event_type, state_key) for r in self.required_state)

    def more_timeline_than(self, old: RoomConfig) -> bool:
        """MSC4186 "Changes to timeline_limit": the limit grew."""
        return self.timeline_limit > old.timeline_limit

    def more_state_than(self, old: RoomConfig) -> bool:
        """MSC4186 "Changes to required_state": it asks state the old one did not."""
        return self != old and not set(self.required_state) <= set(old.required_state)

    @property
    def lazy_members(self) -> bool:
        """MSC4186: lazy when one config is, unless another returns every member."""
        return (any(r.lazy_members for r in self.required_state)
                and not any(r.all_members() and not r.lazy_members for r in self.required_state))

    def reads_all_state(self) -> bool:
        """Whether some config includes every type (the room's whole state is read)."""
        return any(t is None for r in self.required_state for t, _ in r.include)

    def whole_types(self) -> frozenset[str]:
        """Types some config includes under every state key."""
        return frozenset(t for r in self.required_state for t, k in r.include if t is not None and k is None)

    def exact_keys(self) -> frozenset[tuple[str, str]]:
        return frozenset((t, k) for r in self.required_state for t, k in r.include
                         if t is not None and k is not None)

    def as_json(self) -> JsonDict:
        return {"timeline_limit": self.timeline_limit,
                "required_state": [r.as_json() for r in self.required_state]}

    @classmethod
    def from_json(cls, data: JsonDict) -> RoomConfig:
        return cls(int(data["timeline_limit"]),
                   tuple(RequiredState.from_json(r) for r in data["required_state"]))


def combine_configs(configs: Iterable[RoomConfig]) -> RoomConfig:
    """The superset of several rules' configs (MSC4186 "Combining room configs")."""
    configs = list(configs)
    states: list[RequiredState] = []
    for config in configs:
        states.extend(r for r in config.required_state if r not in states)
    return RoomConfig(max(c.timeline_limit for c in configs), tuple(states))


@dataclass(frozen=True)
class ListFilters:
    """A list's C{filters} (MSC4186 C{SlidingRoomFilter}); C{None}: not filtered on."""

    is_dm: bool | None = None
    is_encrypted: bool | None = None
    is_invited: bool | None = None
    spaces: tuple[str, ...] | None = None
    room_types: tuple[str | None, ...] | None = None
    not_room_types: tuple[str | None, ...] = ()
    tags: tuple[str, ...] | None = None
    not_tags: tuple[str, ...] = ()

    def needs_facts(self) -> bool:
        """Whether matching reads the rooms' create and encryption events."""
        return self.is_encrypted is not None or self.room_types is not None or bool(self.not_room_types)


@dataclass(frozen=True)
class RoomFacts:
    """What list filters ask of a room, besides the user's own data."""

    room_type: str | None
    encrypted: bool


@dataclass(frozen=True)
class UserRoomData:
    """The user's data list filters ask: DM rooms, tags, children of the asked spaces."""

    direct: frozenset[str] = frozenset()
    tags: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: Per space the user is joined to, the rooms its C{m.space.child} events name.
    space_children: Mapping[str, frozenset[str]] = field(default_factory=dict)


def filter_matches(filters: ListFilters, room_id: str, membership: str, facts: RoomFacts | None,
                   data: UserRoomData) -> bool:
    """Whether a room of the user's list passes a list's filters."""
    if filters.is_invited is not None and (membership == "invite") != filters.is_invited:
        return False
    if filters.is_dm is not None and (room_id in data.direct) != filters.is_dm:
        return False
    if filters.spaces is not None and not any(
            room_id in data.space_children.get(space, ()) for space in filters.spaces):
        return False
    if facts is not None:
        if filters.is_encrypted is not None and facts.encrypted != filters.is_encrypted:
            return False
        # MSC4186: a type in both room_types and not_room_types is left out.
        if facts.room_type in filters.not_room_types:
            return False
        if filters.room_types is not None and facts.room_type not in filters.room_types:
            return False
    tags = data.tags.get(room_id, frozenset())
    if filters.not_tags and tags & set(filters.not_tags):
        return False
    if filters.tags is not None and not tags & set(filters.tags):
        return False
    return True


@dataclass(frozen=True)
class ListConfig:
    config: RoomConfig
    #: Inclusive C{(first, last)} indexes (one on the stable path, any number
    #: on the unstable one); C{None}: the whole filtered list.
    ranges: tuple[tuple[int, int], ...] | None = None
    filters: ListFilters = ListFilters()


@dataclass(frozen=True)
class ExtensionScope:
    """
    Which rooms a room-level extension covers: those of the named lists and
    subscriptions (C{"*"}: all), Synapse's default being all of both.
    """

    lists: tuple[str, ...] = ("*",)
    rooms: tuple[str, ...] = ("*",)

    def rooms_in(self, lists: Mapping[str, Sequence[str]], subscriptions: Iterable[str]) -> list[str]:
        chosen: dict[str, None] = {}
        for name, room_ids in lists.items():
            if "*" in self.lists or name in self.lists:
                chosen.update(dict.fromkeys(room_ids))
        subscribed = list(subscriptions)
        for room_id in subscribed if "*" in self.rooms else [r for r in self.rooms if r in subscribed]:
            chosen[room_id] = None
        return list(chosen)


@dataclass(frozen=True)
class ToDeviceExtension:
    since: str | None = None
    limit: int = 100


@dataclass(frozen=True)
class Extensions:
    to_device: ToDeviceExtension | None = None
    e2ee: bool = False
    account_data: ExtensionScope | None = None
    receipts: ExtensionScope | None = None
    typing: ExtensionScope | None = None


@dataclass(frozen=True)
class SlidingSyncRequest:
    """One request, in either wire format."""

    conn_id: str = ""
    pos: str | None = None
    timeout_ms: int = 0
    lists: Mapping[str, ListConfig] = field(default_factory=dict)
    subscriptions: Mapping[str, RoomConfig] = field(default_factory=dict)
    extensions: Extensions = Extensions()
    #: Rooms ordered by their last event of any type (the stable path, as
    #: MSC4186 says), or by C{bump_stamp} (the unstable path, as Synapse).
    order_by_bump: bool = False
    #: Rooms carry C{notification_count} and C{highlight_count} (the
    #: unstable path; MSC4186 dropped them).
    unread_counts: bool = False


# -- the user's list ----------------------------------------------------------


def listed_rooms(memberships: Mapping[str, tuple[str, int]], *, sent_before: Iterable[str],
                 removed_by_others: Iterable[str]) -> dict[str, str]:
    """
    The rooms of the user's server-side list (MSC4186 "Lists"): joined,
    invited and knocked; left or banned ones when someone else removed the
    user after they joined, or when the connection already knew the room.
    """
    known = set(sent_before) | set(removed_by_others)
    return {room_id: membership for room_id, (membership, _) in memberships.items()
            if membership in _LISTED or room_id in known}


#: A room's place in a list: sorted ascending, the most recent come first,
#: ties by room id (so a list is stable between requests).
SortKey = tuple[int, str]


def sort_key(room_id: str, recency: int) -> SortKey:
    return -recency, room_id


def window(room_ids: Sequence[str], ranges: Sequence[tuple[int, int]] | None) -> list[str]:
    """The rooms at the indexes of a list's ranges (inclusive), in order."""
    if ranges is None:
        return list(room_ids)
    indexes = sorted({i for first, last in ranges for i in range(first, min(last, len(room_ids) - 1) + 1)})
    return [room_ids[i] for i in indexes]


# -- what a connection remembers -----------------------------------------------


@dataclass(frozen=True)
class RoomSent:
    """
    What a connection last sent of a room.

    @ivar position: the stream position the room was sent up to.
    @ivar lazy_members: members whose event was sent lazily since the
        timeline was last cut (a limited timeline resets it).
    @ivar is_dm: whether it was sent as a DM (MSC4186: a change is sent).
    """

    position: int
    membership: str
    config: RoomConfig
    lazy_members: frozenset[str] = frozenset()
    is_dm: bool = False


#: At most this many lazily sent members are remembered per room; past it, senders are sent again.
MAX_LAZY_REMEMBERED = 200


@dataclass(frozen=True)
class ConnectionState:
    """What a connection had been sent when a C{pos} was handed out."""

    stream: int
    rooms: Mapping[str, RoomSent]

    def as_json(self) -> JsonDict:
        """Each room config once (the rooms of a list share theirs), rooms naming theirs by index."""
        configs: dict[RoomConfig, int] = {}
        rooms = {}
        for room_id, sent in self.rooms.items():
            index = configs.setdefault(sent.config, len(configs))
            rooms[room_id] = [sent.position, sent.membership, index, sorted(sent.lazy_members), sent.is_dm]
        return {"stream": self.stream, "configs": [c.as_json() for c in configs], "rooms": rooms}

    @classmethod
    def from_json(cls, data: JsonDict) -> ConnectionState:
        configs = [RoomConfig.from_json(c) for c in data["configs"]]
        return cls(int(data["stream"]), {
            room_id: RoomSent(int(position), str(membership), configs[index], frozenset(lazy), bool(is_dm))
            for room_id, (position, membership, index, lazy, is_dm) in data["rooms"].items()})


def expanded_state(old: RoomConfig, new: RoomConfig, event_type: str, state_key: str) -> bool:
    """Whether a state key is one the new config wants and the old did not."""
    return new.matches(event_type, state_key) and not old.matches(event_type, state_key)


def lazy_member_targets(senders: Iterable[str], member_keys: Iterable[str], already: frozenset[str],
                        reset: bool) -> set[str]:
    """
    MSC4186 "Lazy loaded memberships": the timeline's senders and member
    targets, less those sent before (unless the timeline was cut: the
    client then flushes its members).
    """
    wanted = set(senders) | set(member_keys)
    return wanted if reset else wanted - already


def remembered_lazy(already: frozenset[str], sent: Iterable[str], reset: bool) -> frozenset[str]:
    merged = frozenset(sent) if reset else already | frozenset(sent)
    return merged if len(merged) <= MAX_LAZY_REMEMBERED else frozenset()


#: Per MSC4186 heroes are sent when the room has no name.
def room_name(name_content: JsonDict | None) -> str | None:
    """The C{m.room.name} content's name, or C{None} (no event, or no usable name)."""
    if name_content is None:
        return None
    name = name_content.get("name")
    return name if isinstance(name, str) and name else None


def room_avatar(avatar_content: JsonDict | None) -> str | None:
    if avatar_content is None:
        return None
    url = avatar_content.get("url")
    return url if isinstance(url, str) and url else None


def hero(user_id: str, member_content: JsonDict | None) -> JsonDict:
    """MSC4186 C{Hero}: a member's id, with the name and avatar of their member event."""
    shown: JsonDict = {"user_id": user_id}
    content = member_content or {}
    if isinstance(content.get("displayname"), str):
        shown["displayname"] = content["displayname"]
    if isinstance(content.get("avatar_url"), str):
        shown["avatar_url"] = content["avatar_url"]
    return shown


def direct_rooms(m_direct: JsonDict | None) -> frozenset[str]:
    """The rooms of an C{m.direct} content (user id -> room ids)."""
    rooms: set[str] = set()
    for room_ids in (m_direct or {}).values():
        if isinstance(room_ids, list):
            rooms.update(r for r in room_ids if isinstance(r, str))
    return frozenset(rooms)


def space_children(space_state: Iterable[tuple[str, str, JsonDict]]) -> frozenset[str]:
    """The rooms C{m.space.child} events name, as /hierarchy counts them (a child without C{via} is removed)."""
    return frozenset(state_key for event_type, state_key, content in space_state
                     if event_type == "m.space.child" and has_valid_via(content))
