"""The pure rules of finding things (ruma_tx.matrix.search): requests, indexing, tokens, groups, highlights."""
from __future__ import annotations

import base64
import json

import pytest

from ruma_tx.matrix.errors import BadRequest
from ruma_tx.matrix.events import StoredEvent, room_event
from ruma_tx.matrix.filters import RoomEventFilter
from ruma_tx.matrix.search import (
    HIGHLIGHT_START,
    HIGHLIGHT_STOP,
    MAX_CONTEXT_LIMIT,
    MAX_RESULT_LIMIT,
    EventContext,
    Hit,
    RoomEventsCriteria,
    SearchToken,
    directory_search_text,
    event_with_room_id,
    group_results,
    highlight_words,
    parse_directory_request,
    parse_search_request,
    parse_search_token,
    room_publicity,
    searchable_text,
)
from ruma_tx.matrix.sync import StoredJson


def request(**criteria: object) -> dict:
    return {"search_categories": {"room_events": {"search_term": "martians", **criteria}}}


def errcode(body: dict) -> str | None:
    with pytest.raises(BadRequest) as caught:
        parse_search_request(body)
    return caught.value.errcode


# ------------------------------------------------------------- requests


def test_defaults():
    """A bare search term searches every key, by rank, 10 a page, no context, no state, no groups."""
    assert parse_search_request(request()) == RoomEventsCriteria(search_term="martians")


def test_everything_parsed():
    """Every field of room_events is read; limits are capped and repeated group keys dropped."""
    criteria = parse_search_request(request(
        keys=["content.name", "content.body", "content.name"], order_by="recent",
        filter={"limit": 5000, "senders": ["@a:x"], "rooms": ["!r:x"]},
        event_context={"before_limit": 1, "after_limit": 500, "include_profile": True},
        include_state=True, groupings={"group_by": [{"key": "sender"}, {"key": "room_id"}, {"key": "sender"}]},
    ))
    assert criteria.keys == ("content.name", "content.body")
    assert criteria.order_by == "recent"
    assert criteria.limit == MAX_RESULT_LIMIT
    assert criteria.event_filter == RoomEventFilter(limit=5000, senders=("@a:x",), rooms=("!r:x",))
    assert criteria.context == EventContext(1, MAX_CONTEXT_LIMIT, True)
    assert criteria.include_state is True
    assert criteria.group_by == ("sender", "room_id")


def test_empty_event_context_takes_the_defaults():
    """event_context: {} asks for 5 events each side without profiles (the spec's defaults)."""
    assert parse_search_request(request(event_context={})).context == EventContext(5, 5, False)


@pytest.mark.parametrize("body, code", [
    ({}, "M_MISSING_PARAM"),
    ({"search_categories": []}, "M_BAD_JSON"),
    ({"search_categories": {}}, "M_MISSING_PARAM"),
    ({"search_categories": {"room_events": {"search_term": "x"}, "people": {}}}, "M_BAD_JSON"),
    ({"search_categories": {"room_events": {}}}, "M_MISSING_PARAM"),
    ({"search_categories": {"room_events": {"search_term": ["x"]}}}, "M_BAD_JSON"),
    (request(keys="content.body"), "M_BAD_JSON"),
    (request(keys=["content.formatted_body"]), "M_BAD_JSON"),
    (request(order_by="oldest"), "M_BAD_JSON"),
    (request(filter={"limit": -1}), "M_BAD_JSON"),
    (request(filter={"senders": ["not a user"]}), "M_BAD_JSON"),
    (request(filter="nope"), "M_BAD_JSON"),
    (request(event_context={"before_limit": -1}), "M_BAD_JSON"),
    (request(event_context={"after_limit": True}), "M_BAD_JSON"),
    (request(event_context={"include_profile": "yes"}), "M_BAD_JSON"),
    (request(include_state="true"), "M_BAD_JSON"),
    (request(groupings={"group_by": [{"key": "type"}]}), "M_BAD_JSON"),
    (request(groupings={"group_by": ["room_id"]}), "M_BAD_JSON"),
])
def test_bad_requests(body, code):
    """Missing fields are M_MISSING_PARAM; wrong types and unknown values M_BAD_JSON."""
    assert errcode(body) == code


def test_directory_request():
    """The user directory takes a search term and a limit, clamped to 0..50 as Synapse does."""
    assert parse_directory_request({"search_term": "ali"}) == ("ali", 10)
    assert parse_directory_request({"search_term": "ali", "limit": 500}) == ("ali", 50)
    assert parse_directory_request({"search_term": "ali", "limit": -3}) == ("ali", 0)
    for body in ({}, {"search_term": None}):
        with pytest.raises(BadRequest) as caught:
            parse_directory_request(body)
        assert caught.value.errcode == "M_MISSING_PARAM"
    for body in ({"search_term": 1}, {"search_term": "a", "limit": 2.5}, {"search_term": "a", "limit": False}):
        with pytest.raises(BadRequest) as caught:
            parse_directory_request(body)
        assert caught.value.errcode == "M_BAD_JSON"


def test_directory_search_text():
    """A whole user id searches its localpart; a leading @ is dropped; other text is kept."""
    assert directory_search_text("@alice.smith:example.org") == "alice.smith"
    assert directory_search_text("  @ali ") == "ali"
    assert directory_search_text("Alice Smith") == "Alice Smith"
    assert directory_search_text("@bad:") == "bad:"


# ------------------------------------------------------------- indexing


def test_searchable_text_of_each_key():
    """The body of a message, the name and the topic (with its m.topic text) are searchable, by key."""
    assert searchable_text("m.room.message", None, {"msgtype": "m.text", "body": "hello"}) == (
        "content.body", "hello")
    assert searchable_text("m.room.name", "", {"name": "Lounge"}) == ("content.name", "Lounge")
    assert searchable_text("m.room.topic", "", {"topic": "Cats"}) == ("content.topic", "Cats")
    topic = {"topic": "Cats", "m.topic": {"m.text": [{"mimetype": "text/html", "body": "<b>Dogs</b>"},
                                                     {"body": "Dogs"}]}}
    assert searchable_text("m.room.topic", "", topic) == ("content.topic", "Cats\nDogs")
    same = {"topic": "Cats", "m.topic": {"m.text": [{"mimetype": "text/plain", "body": "Cats"}]}}
    assert searchable_text("m.room.topic", "", same) == ("content.topic", "Cats")


@pytest.mark.parametrize("event_type, state_key, content", [
    ("m.room.encrypted", None, {"ciphertext": "abc", "body": "sneaky"}),
    ("m.room.message", None, {"msgtype": "m.text"}),
    ("m.room.message", None, {"body": 5}),
    ("m.room.message", None, {"body": "   "}),
    ("m.room.message", "", {"body": "a state event is not a message"}),
    ("m.room.name", "other", {"name": "not the room's name"}),
    ("m.room.topic", "", {"topic": None, "m.topic": "nonsense"}),
    ("m.sticker", None, {"body": "stickers are not searched"}),
])
def test_nothing_else_is_searchable(event_type, state_key, content):
    """Encrypted events, missing or non-string text and other types or state keys give nothing."""
    assert searchable_text(event_type, state_key, content) is None


def test_room_publicity():
    """Join rules say whether the room is publicly joinable, history visibility whether world readable."""
    assert room_publicity("m.room.join_rules", "", {"join_rule": "public"}) == ("public_join", True)
    assert room_publicity("m.room.join_rules", "", {"join_rule": "knock"}) == ("public_join", False)
    assert room_publicity("m.room.history_visibility", "", {"history_visibility": "world_readable"}) == (
        "world_readable", True)
    assert room_publicity("m.room.history_visibility", "", {"history_visibility": "shared"}) == (
        "world_readable", False)
    assert room_publicity("m.room.join_rules", "x", {"join_rule": "public"}) is None
    assert room_publicity("m.room.name", "", {"name": "public"}) is None


# ------------------------------------------------------------- tokens


def test_token_round_trip():
    """A token reads back as made, with or without a group, ranks exactly."""
    for token in (SearchToken("rank", 0.0607927, 12345), SearchToken("recent", 0.0, 7, ("room_id", "!r:x")),
                  SearchToken("rank", 1e-7, 0, ("sender", "@a:x"))):
        assert parse_search_token(token.encode(), token.order_by) == token


@pytest.mark.parametrize("text", ["", "!!!", "bm90IGpzb24", SearchToken("rank", 0.5, 3).encode()])
def test_bad_tokens_for_recent(text):
    """Garbage, or a token of the other ordering, is 400 M_INVALID_PARAM."""
    with pytest.raises(BadRequest) as caught:
        parse_search_token(text, "recent")
    assert caught.value.errcode == "M_INVALID_PARAM"


@pytest.mark.parametrize("fields", [
    ["recent", 0, "7"], ["recent", True, 7], ["recent", 0, -1], ["recent", 0, 2**63], ["recent", 0],
    ["recent", 0, 7, "type", "m.room.message"], ["recent", 0, 7, "room_id", 5], {"order_by": "recent"},
])
def test_malformed_token_fields(fields):
    """Tokens with fields of the wrong type, count or range are refused."""
    text = base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")
    with pytest.raises(BadRequest):
        parse_search_token(text, "recent")


# ------------------------------------------------------------- results


def test_groups_order_and_next_batch():
    """Groups appear in the order of their first result; a group whose last result here is not its last gets a token."""
    hits = [Hit("$1", "!a", "@x", 0.9, 10), Hit("$2", "!b", "@x", 0.8, 9), Hit("$3", "!a", "@y", 0.7, 8)]
    ends = {"room_id": {"!a": (0.1, 2), "!b": (0.8, 9)}, "sender": {"@x": (0.8, 9), "@y": (0.7, 8)}}
    groups = group_results(hits, ["room_id", "sender"], "rank", ends)
    assert groups["room_id"]["!a"]["results"] == ["$1", "$3"] and groups["room_id"]["!a"]["order"] == 1
    assert groups["room_id"]["!b"] == {"results": ["$2"], "order": 2}
    token = parse_search_token(groups["room_id"]["!a"]["next_batch"], "rank")
    assert token == SearchToken("rank", 0.7, 8, ("room_id", "!a"))
    assert "next_batch" not in groups["sender"]["@x"] and "next_batch" not in groups["sender"]["@y"]
    assert group_results(hits, [], "rank", ends) == {}


def test_highlight_words():
    """The marked words of the headlines, each once, in the order first seen."""
    mark = lambda w: f"{HIGHLIGHT_START}{w}{HIGHLIGHT_STOP}"  # noqa: E731
    headlines = [f"The {mark('Martians')} and {mark('men')}", f"{mark('men')} again, {mark('martian')}",
                 f"broken {HIGHLIGHT_START}marker", "plain"]
    assert highlight_words(headlines) == ["Martians", "men", "martian"]


def test_event_with_room_id_from_stored_json():
    """An event with stored client JSON is shown with its room id, unparsed; the same as from its PDU."""
    pdu = {"type": "m.room.message", "sender": "@a:x", "content": {"body": "hi"}, "origin_server_ts": 5,
           "room_id": "!r:x", "depth": 3, "auth_events": [], "prev_events": [], "hashes": {}, "signatures": {}}
    client_json = json.dumps({"type": "m.room.message", "sender": "@a:x", "content": {"body": "hi"},
                              "origin_server_ts": 5, "event_id": "$e"})
    stored = StoredEvent(1, "$e", "!r:x", pdu, client_json=client_json)
    shown = event_with_room_id(stored)
    assert isinstance(shown, StoredJson)
    assert json.loads(shown.json) == room_event(StoredEvent(1, "$e", "!r:x", pdu))
    assert event_with_room_id(StoredEvent(1, "$e", "!r:x", pdu)) == room_event(stored)
