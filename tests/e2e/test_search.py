"""
Server-side search (POST /search) through the real daemon: ranking and
recency, pagination, keys, filters, context, state, groups, highlights,
history visibility, left rooms, redactions, and bad requests.
"""
from __future__ import annotations

import itertools
import os

import pytest_twisted

_txns = itertools.count(1)
_words = itertools.count(1)


def word(prefix: str = "quokka") -> str:
    """A word no other test's messages hold (letters only: the English stemmer keeps it whole)."""
    n = next(_words)
    return prefix + "".join("abcdefghij"[int(d)] for d in f"{os.getpid()}{n:03d}")


async def create_room(client, user: dict, **body) -> str:
    response = await client.request("POST", "createRoom", body, token=user["access_token"])
    assert response.code == 200, response
    return response.json["room_id"]


async def send(client, user: dict, room_id: str, body: str) -> str:
    response = await client.request("PUT", f"rooms/{room_id}/send/m.room.message/s{next(_txns)}",
                                    {"msgtype": "m.text", "body": body}, token=user["access_token"])
    assert response.code == 200, response
    return response.json["event_id"]


async def put_state(client, user: dict, room_id: str, event_type: str, content: dict) -> str:
    response = await client.request("PUT", f"rooms/{room_id}/state/{event_type}/", content,
                                    token=user["access_token"])
    assert response.code == 200, response
    return response.json["event_id"]


async def join(client, user: dict, room_id: str) -> None:
    response = await client.request("POST", f"rooms/{room_id}/join", {}, token=user["access_token"])
    assert response.code == 200, response


async def search_raw(client, user: dict, criteria: dict, next_batch: str | None = None):
    query = {"next_batch": next_batch} if next_batch is not None else None
    return await client.request("POST", "search", {"search_categories": {"room_events": criteria}},
                                token=user["access_token"], query=query)


async def search(client, user: dict, term: str, next_batch: str | None = None, **criteria) -> dict:
    response = await search_raw(client, user, {"search_term": term, **criteria}, next_batch)
    assert response.code == 200, response
    return response.json["search_categories"]["room_events"]


def ids(body: dict) -> list[str]:
    return [r["result"]["event_id"] for r in body["results"]]


async def all_pages(client, user: dict, term: str, **criteria) -> list[dict]:
    """Every page of a search, following next_batch (at most 20 pages)."""
    pages, token = [], None
    for _ in range(20):
        page = await search(client, user, term, token, **criteria)
        pages.append(page)
        token = page.get("next_batch")
        if token is None:
            return pages
    raise AssertionError("more than 20 pages")


@pytest_twisted.ensureDeferred
async def test_rank_orders_better_matches_first(client):
    """By rank, a message matching the term more closely comes first; results carry rank, room and the event."""
    term, other = word(), word("wombat")
    alice = await client.register()
    room_id = await create_room(client, alice)
    weak = await send(client, alice, room_id, f"{term} said once among many many other words here")
    strong = await send(client, alice, room_id, f"{term} {term} {term}")
    await send(client, alice, room_id, f"nothing to see: {other}")
    body = await search(client, alice, term)
    assert ids(body) == [strong, weak]
    assert body["count"] == 2
    assert body["results"][0]["rank"] > body["results"][1]["rank"] > 0
    result = body["results"][0]["result"]
    assert result["room_id"] == room_id and result["sender"] == alice["user_id"]
    assert result["content"]["body"] == f"{term} {term} {term}"
    assert body["highlights"] == [term]
    assert "next_batch" not in body


@pytest_twisted.ensureDeferred
async def test_recent_order_paginates_without_gaps(client):
    """Ordered by recency, 25 matches come back newest first, 10 a page, each exactly once."""
    term = word()
    alice = await client.register()
    room_id = await create_room(client, alice)
    sent = [await send(client, alice, room_id, f"{term} number {i}") for i in range(25)]
    pages = await all_pages(client, alice, term, order_by="recent")
    assert [len(p["results"]) for p in pages] == [10, 10, 5]
    assert [e for p in pages for e in ids(p)] == list(reversed(sent))
    assert all(p["count"] == 25 for p in pages)


@pytest_twisted.ensureDeferred
async def test_rank_order_paginates_without_gaps(client):
    """Ordered by rank, pages of the filter's limit cover every match once, best first."""
    term = word()
    alice = await client.register()
    room_id = await create_room(client, alice)
    sent = [await send(client, alice, room_id, " ".join([term] * (1 + i % 3)) + f" filler {i}")
            for i in range(12)]
    pages = await all_pages(client, alice, term, filter={"limit": 5})
    assert [len(p["results"]) for p in pages] == [5, 5, 2]
    found = [e for p in pages for e in ids(p)]
    assert sorted(found) == sorted(sent)
    ranks = [r["rank"] for p in pages for r in p["results"]]
    assert ranks == sorted(ranks, reverse=True)


@pytest_twisted.ensureDeferred
async def test_keys_choose_body_name_or_topic(client):
    """A room's name and topic (also its m.topic text) are found by their keys, messages by content.body."""
    term = word()
    alice = await client.register()
    room_id = await create_room(client, alice, name=f"The {term} room")
    topic = await put_state(client, alice, room_id, "m.room.topic", {
        "topic": "about things", "m.topic": {"m.text": [{"body": f"all about {term}"}]}})
    message = await send(client, alice, room_id, f"a {term} message")
    everything = await search(client, alice, term)
    assert len(everything["results"]) == 3
    by_type = {r["result"]["type"]: r["result"]["event_id"] for r in everything["results"]}
    assert by_type["m.room.topic"] == topic and by_type["m.room.message"] == message
    assert ids(await search(client, alice, term, keys=["content.body"])) == [message]
    names = await search(client, alice, term, keys=["content.name"])
    assert [r["result"]["type"] for r in names["results"]] == ["m.room.name"]
    assert ids(await search(client, alice, term, keys=["content.topic"])) == [topic]


@pytest_twisted.ensureDeferred
async def test_filter_rooms_senders_and_types(client):
    """The filter's rooms, not_rooms, senders, not_senders and types narrow the results."""
    term = word()
    alice, bob = await client.register(), await client.register()
    first = await create_room(client, alice, preset="public_chat")
    second = await create_room(client, alice, preset="public_chat")
    await join(client, bob, first)
    from_alice = await send(client, alice, first, f"{term} from alice")
    from_bob = await send(client, bob, first, f"{term} from bob")
    elsewhere = await send(client, alice, second, f"{term} elsewhere")
    assert set(ids(await search(client, alice, term))) == {from_alice, from_bob, elsewhere}
    assert set(ids(await search(client, alice, term, filter={"rooms": [first]}))) == {from_alice, from_bob}
    assert ids(await search(client, alice, term, filter={"not_rooms": [first]})) == [elsewhere]
    assert ids(await search(client, alice, term, filter={"senders": [bob["user_id"]]})) == [from_bob]
    assert set(ids(await search(client, alice, term, filter={"not_senders": [bob["user_id"]]}))) == {
        from_alice, elsewhere}
    assert ids(await search(client, alice, term, filter={"types": ["m.room.name"]})) == []
    assert len(ids(await search(client, alice, term, filter={"types": ["m.room.*"]}))) == 3
    # Bob is not in the second room: he finds only what is in the first.
    assert set(ids(await search(client, bob, term))) == {from_alice, from_bob}


@pytest_twisted.ensureDeferred
async def test_event_context_and_profiles(client):
    """event_context gives events around each result (newest first before it), tokens, and senders' profiles."""
    term = word()
    alice = await client.register()
    await client.request("PUT", f"profile/{alice['user_id']}/displayname", {"displayname": "Alice A."},
                         token=alice["access_token"])
    room_id = await create_room(client, alice)
    before = [await send(client, alice, room_id, f"before {i}") for i in range(3)]
    hit = await send(client, alice, room_id, f"the {term}")
    after = [await send(client, alice, room_id, f"after {i}") for i in range(3)]
    body = await search(client, alice, term, event_context={"before_limit": 2, "after_limit": 1,
                                                            "include_profile": True})
    context = body["results"][0]["context"]
    assert [e["event_id"] for e in context["events_before"]] == [before[2], before[1]]
    assert [e["event_id"] for e in context["events_after"]] == [after[0]]
    assert all(e["room_id"] == room_id for e in context["events_before"] + context["events_after"])
    assert context["profile_info"] == {alice["user_id"]: {"displayname": "Alice A."}}
    # The tokens page on from the context with /messages.
    older = await client.request("GET", f"rooms/{room_id}/messages", token=alice["access_token"],
                                 query={"dir": "b", "from": context["start"], "limit": "1"})
    assert [e["event_id"] for e in older.json["chunk"]] == [before[0]]
    newer = await client.request("GET", f"rooms/{room_id}/messages", token=alice["access_token"],
                                 query={"dir": "f", "from": context["end"], "limit": "1"})
    assert [e["event_id"] for e in newer.json["chunk"]] == [after[1]]
    plain = await search(client, alice, term, event_context={})
    assert len(plain["results"][0]["context"]["events_before"]) == 5
    assert "profile_info" not in plain["results"][0]["context"]
    assert hit == ids(plain)[0]


@pytest_twisted.ensureDeferred
async def test_include_state(client):
    """include_state gives the current state of each room with results, and only of those."""
    term = word()
    alice = await client.register()
    room_id = await create_room(client, alice, name="Stateful")
    await create_room(client, alice, name="No results here")
    await send(client, alice, room_id, term)
    body = await search(client, alice, term, include_state=True)
    assert list(body["state"]) == [room_id]
    types = {e["type"] for e in body["state"][room_id]}
    assert {"m.room.create", "m.room.member", "m.room.name", "m.room.power_levels"} <= types
    assert "state" not in await search(client, alice, term)


@pytest_twisted.ensureDeferred
async def test_groups_by_room_and_sender_paginate_within_a_group(client):
    """Results are grouped by room and by sender; a group's next_batch goes on within that group only."""
    term = word()
    alice, bob = await client.register(), await client.register()
    busy = await create_room(client, alice, preset="public_chat")
    quiet = await create_room(client, alice, preset="public_chat")
    await join(client, bob, busy)
    busy_events = [await send(client, alice if i % 2 else bob, busy, f"{term} busy {i}") for i in range(6)]
    quiet_event = await send(client, alice, quiet, f"{term} quiet")
    groupings = {"group_by": [{"key": "room_id"}, {"key": "sender"}]}
    body = await search(client, alice, term, order_by="recent", groupings=groupings, filter={"limit": 4})
    rooms = body["groups"]["room_id"]
    assert rooms[quiet]["results"] == [quiet_event] and "next_batch" not in rooms[quiet]
    assert rooms[quiet]["order"] == 1 and rooms[busy]["order"] == 2
    assert rooms[busy]["results"] == list(reversed(busy_events))[:3]
    senders = body["groups"]["sender"]
    assert set(senders) == {alice["user_id"], bob["user_id"]}
    assert sum(len(g["results"]) for g in senders.values()) == 4
    # Going on in the busy room: only its events, the rest of them.
    rest = await search(client, alice, term, rooms[busy]["next_batch"], order_by="recent",
                        groupings=groupings, filter={"limit": 4})
    assert ids(rest) == list(reversed(busy_events))[3:]
    assert "next_batch" not in rest and "next_batch" not in rest["groups"]["room_id"][busy]
    # The page holds Bob's newest event; going on with Bob's events gives his two others.
    assert senders[bob["user_id"]]["results"] == [busy_events[4]]
    bobs = await search(client, alice, term, senders[bob["user_id"]]["next_batch"], order_by="recent",
                        groupings=groupings, filter={"limit": 4})
    assert ids(bobs) == [busy_events[2], busy_events[0]]


@pytest_twisted.ensureDeferred
async def test_joined_history_is_not_found_by_later_members(client):
    """With history_visibility joined, a member who joined later does not find what was said before."""
    term = word()
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat", initial_state=[
        {"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}}])
    await send(client, alice, room_id, f"{term} before bob")
    await join(client, bob, room_id)
    later = await send(client, alice, room_id, f"{term} after bob")
    body = await search(client, bob, term)
    assert ids(body) == [later] and body["count"] == 1
    assert len(ids(await search(client, alice, term))) == 2


@pytest_twisted.ensureDeferred
async def test_shared_history_is_found_by_later_members(client):
    """With history_visibility shared, a member who joined later finds what was said before too."""
    term = word()
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    early = await send(client, alice, room_id, f"{term} before bob")
    await join(client, bob, room_id)
    assert ids(await search(client, bob, term)) == [early]


@pytest_twisted.ensureDeferred
async def test_left_rooms_show_only_what_was_seen(client):
    """After leaving, a user finds the room's messages up to their leave, nothing after; strangers find nothing."""
    term = word()
    alice, bob, stranger = await client.register(), await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    seen = await send(client, alice, room_id, f"{term} while bob was here")
    left = await client.request("POST", f"rooms/{room_id}/leave", {}, token=bob["access_token"])
    assert left.code == 200, left
    await send(client, alice, room_id, f"{term} after bob left")
    assert ids(await search(client, bob, term)) == [seen]
    assert ids(await search(client, stranger, term)) == []
    forgot = await client.request("POST", f"rooms/{room_id}/forget", {}, token=bob["access_token"])
    assert forgot.code == 200, forgot
    assert ids(await search(client, bob, term)) == []


@pytest_twisted.ensureDeferred
async def test_redacted_messages_are_not_found(client):
    """A redacted message disappears from the results and the count."""
    term = word()
    alice = await client.register()
    room_id = await create_room(client, alice)
    kept = await send(client, alice, room_id, f"{term} kept")
    gone = await send(client, alice, room_id, f"{term} regretted")
    assert set(ids(await search(client, alice, term))) == {kept, gone}
    redacted = await client.request("PUT", f"rooms/{room_id}/redact/{gone}/r{next(_txns)}", {},
                                    token=alice["access_token"])
    assert redacted.code == 200, redacted
    body = await search(client, alice, term)
    assert ids(body) == [kept] and body["count"] == 1
    assert ids(await search(client, alice, "regretted")) == []


@pytest_twisted.ensureDeferred
async def test_ignored_users_messages_are_hidden(client):
    """Messages of users the searcher ignores are left out of the results and of the context."""
    term = word()
    alice, bob = await client.register(), await client.register()
    room_id = await create_room(client, alice, preset="public_chat")
    await join(client, bob, room_id)
    mine = await send(client, alice, room_id, f"{term} from alice")
    await send(client, bob, room_id, f"{term} from bob")
    later = await send(client, alice, room_id, "a later word")
    ignore = await client.request("PUT", f"user/{alice['user_id']}/account_data/m.ignored_user_list",
                                  {"ignored_users": {bob["user_id"]: {}}}, token=alice["access_token"])
    assert ignore.code == 200, ignore
    body = await search(client, alice, term, event_context={"before_limit": 0, "after_limit": 1})
    assert ids(body) == [mine] and body["count"] == 1
    assert [e["event_id"] for e in body["results"][0]["context"]["events_after"]] == [later]
    assert len(ids(await search(client, bob, term))) == 2


@pytest_twisted.ensureDeferred
async def test_search_syntax_stemming_phrases_and_exclusion(client):
    """Terms are stemmed, quoted phrases match in order, and -word excludes; every word must match."""
    term = word()
    alice = await client.register()
    room_id = await create_room(client, alice)
    meetings = await send(client, alice, room_id, f"{term} meetings run late")
    late_run = await send(client, alice, room_id, f"{term} late run")
    assert set(ids(await search(client, alice, f"{term} meeting"))) == {meetings}
    assert set(ids(await search(client, alice, f'{term} "run late"'))) == {meetings}
    assert set(ids(await search(client, alice, f"{term} -meeting"))) == {late_run}
    body = await search(client, alice, f"{term} meeting")
    assert set(body["highlights"]) == {term, "meetings"}
    assert ids(await search(client, alice, "")) == []


@pytest_twisted.ensureDeferred
async def test_bad_requests(client):
    """Unknown categories, keys, orderings and group keys, bad filters and bad next_batch tokens are 400s."""
    alice = await client.register()
    token = alice["access_token"]
    cases = [
        ({"search_categories": {"room_events": {"search_term": "x"}, "rooms": {}}}, "M_BAD_JSON"),
        ({"search_categories": {"room_events": {"search_term": "x", "keys": ["content.url"]}}}, "M_BAD_JSON"),
        ({"search_categories": {"room_events": {"search_term": "x", "order_by": "oldest"}}}, "M_BAD_JSON"),
        ({"search_categories": {"room_events": {"search_term": "x",
                                                "groupings": {"group_by": [{"key": "type"}]}}}}, "M_BAD_JSON"),
        ({"search_categories": {"room_events": {"search_term": "x", "filter": {"limit": 0}}}}, "M_BAD_JSON"),
        ({"search_categories": {"room_events": {"search_term": 3}}}, "M_BAD_JSON"),
        ({"search_categories": {"room_events": {}}}, "M_MISSING_PARAM"),
        ({"search_categories": {}}, "M_MISSING_PARAM"),
        ({}, "M_MISSING_PARAM"),
    ]
    for body, errcode in cases:
        response = await client.request("POST", "search", body, token=token, validate=False)
        assert (response.code, response.json["errcode"]) == (400, errcode), body
    recent = {"search_term": "x", "order_by": "recent"}
    for bad in ("nonsense", "WyJyYW5rIiwwLjUsMTAwXQ"):   # the second: a rank token
        response = await search_raw(client, alice, recent, next_batch=bad)
        assert (response.code, response.json["errcode"]) == (400, "M_INVALID_PARAM"), bad
