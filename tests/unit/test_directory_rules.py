"""
The directory's pure parts and the canonical alias check, on fake stores:
no daemon, no database, no reactor.
"""
from __future__ import annotations

import pytest
from twisted.internet import defer

from ruma_tx.http.errors import status_code
from ruma_tx.matrix.directory import (
    ListedRoom,
    added_aliases,
    decode_token,
    directory_entry,
    encode_token,
    plain_text_topic,
)
from ruma_tx.matrix.errors import MatrixError
from ruma_tx.matrix.events import StoredEvent
from ruma_tx.services.canonical_alias import CanonicalAliasCheck

ROOM = "!room:test.local"
OTHER = "!other:test.local"


class FakeDirectoryStore:
    def __init__(self, aliases: dict[str, str]):
        self.aliases = aliases
        self.lookups = []

    async def get_alias_rooms(self, room_aliases):
        self.lookups.append(list(room_aliases))
        return {a: self.aliases[a] for a in room_aliases if a in self.aliases}


class FakeEventStore:
    def __init__(self, canonical_alias_content: dict | None = None):
        self.content = canonical_alias_content

    async def get_state(self, room_id, keys=None):
        if self.content is None:
            return {}
        pdu = {"type": "m.room.canonical_alias", "state_key": "", "sender": "@a:test.local",
               "content": self.content}
        return {("m.room.canonical_alias", ""): StoredEvent(1, "$e", room_id, pdu)}


def run(coroutine):
    """Run a coroutine that never waits (fakes answer at once); return or raise its result."""
    d = defer.ensureDeferred(coroutine)
    results = []
    d.addBoth(results.append)
    assert results, "the coroutine waited"
    result = results[0]
    if hasattr(result, "raiseException"):
        result.raiseException()
    return result


def directory(aliases=None, current=None) -> tuple[CanonicalAliasCheck, FakeDirectoryStore]:
    store = FakeDirectoryStore(aliases or {})
    check = CanonicalAliasCheck(directory=store, events=FakeEventStore(current))
    return check, store


def refused(check, content) -> str:
    with pytest.raises(MatrixError) as caught:
        run(check(ROOM, content))
    assert status_code(caught.value) == 400
    return caught.value.errcode


def test_aliases_of_this_room_are_accepted():
    """An alias and alt aliases that all name the room pass."""
    handler, _ = directory({"#a:test.local": ROOM, "#b:test.local": ROOM})
    run(handler(ROOM, {"alias": "#a:test.local", "alt_aliases": ["#b:test.local"]}))


@pytest.mark.parametrize("content", [
    {"alias": "#theirs:test.local"},
    {"alt_aliases": ["#theirs:test.local"]},
    {"alias": "#unknown:test.local"},
    {"alias": "#remote:elsewhere.example"},
])
def test_alias_not_pointing_here_is_bad_alias(content):
    """An alias naming another room, no room, or another server's room is M_BAD_ALIAS."""
    handler, _ = directory({"#theirs:test.local": OTHER})
    assert refused(handler, content) == "M_BAD_ALIAS"


@pytest.mark.parametrize("content", [
    {"alias": "no-sigil:test.local"},
    {"alias": 5},
    {"alt_aliases": ["#nocolon"]},
    {"alt_aliases": "#a:test.local"},
    {"alt_aliases": [{"x": 1}]},
])
def test_malformed_alias_is_invalid_param(content):
    """Malformed aliases, and alt_aliases that is not a list, are M_INVALID_PARAM (spec, room_state)."""
    handler, _ = directory({"#a:test.local": ROOM})
    assert refused(handler, content) == "M_INVALID_PARAM"


@pytest.mark.parametrize("content", [{}, {"alias": ""}, {"alias": None}, {"alt_aliases": []}])
def test_no_alias_needs_no_lookup(content):
    """Clearing the aliases is always allowed and reads nothing."""
    handler, store = directory()
    run(handler(ROOM, content))
    assert store.lookups == []


def test_aliases_already_in_the_event_are_not_checked():
    """Only aliases the event adds are checked: ones already there may have drifted (spec)."""
    current = {"alias": "#old:test.local", "alt_aliases": ["#stale:test.local"]}
    handler, store = directory({"#new:test.local": ROOM}, current=current)
    run(handler(
        ROOM, {"alias": "#old:test.local", "alt_aliases": ["#stale:test.local", "#new:test.local"]}))
    assert store.lookups == [["#new:test.local"]]


def test_added_aliases_compares_with_the_current_event():
    """Only aliases absent from the current event count as added; with none, every alias does."""
    assert added_aliases({"alias": "#old:test.local"}, {"alias": "#old:test.local"}) == []
    assert added_aliases({"alias": "#old:test.local"}, None) == ["#old:test.local"]
    assert added_aliases({"alias": "#a:test.local", "alt_aliases": ["#a:test.local", "#b:test.local"]},
                         {"alt_aliases": ["#b:test.local"]}) == ["#a:test.local"]


def test_tokens_round_trip_and_refuse_garbage():
    """Pagination tokens decode to what was encoded; anything else is 400 M_INVALID_PARAM."""
    assert decode_token(encode_token(True, 3, ROOM)) == (True, 3, ROOM)
    assert decode_token(encode_token(False, 0, "!é:x")) == (False, 0, "!é:x")
    for garbage in ("", "!!!", encode_token(True, 1, ROOM)[:-3], "WzIsMSwiYSJd"):
        with pytest.raises(MatrixError) as caught:
            decode_token(garbage)
        assert caught.value.errcode == "M_INVALID_PARAM"


def test_directory_entry_fields():
    """An entry carries the room's name, topic, alias, avatar, join rule and type, and drops bad values."""
    room = ListedRoom(ROOM, 4, {
        "m.room.name": {"name": "Name"},
        "m.room.topic": {"topic": "Topic"},
        "m.room.canonical_alias": {"alias": "not an alias"},
        "m.room.avatar": {"url": "mxc://test.local/a"},
        "m.room.join_rules": {"join_rule": "knock"},
        "m.room.history_visibility": {"history_visibility": "world_readable"},
        "m.room.guest_access": {"guest_access": "can_join"},
        "m.room.create": {"type": "m.space"},
    })
    assert directory_entry(room) == {
        "room_id": ROOM, "num_joined_members": 4, "world_readable": True, "guest_can_join": True,
        "name": "Name", "topic": "Topic", "avatar_url": "mxc://test.local/a", "join_rule": "knock",
        "room_type": "m.space",
    }
    assert directory_entry(ListedRoom(ROOM, 1, {})) == {
        "room_id": ROOM, "num_joined_members": 1, "world_readable": False, "guest_can_join": False,
    }


def test_plain_text_topic_prefers_the_text_plain_representation():
    """The topic is m.topic's text/plain body when there is one, else the topic property."""
    rich = {"topic": "fallback", "m.topic": {"m.text": [
        {"mimetype": "text/html", "body": "<b>html</b>"}, {"body": "plain"}]}}
    assert plain_text_topic(rich) == "plain"
    assert plain_text_topic({"topic": "only", "m.topic": {"m.text": [{"mimetype": "text/html", "body": "x"}]}}) \
        == "only"
    assert plain_text_topic({"topic": ""}) is None
