"""
Push rules through the real daemon: the C{/pushrules} API (defaults,
user-defined rules and their order, enabling, actions, errors), the
C{m.push_rules} account data in /sync, and the unread notification counts
that the rules produce.
"""
from __future__ import annotations

import itertools
from urllib.parse import quote

import pytest
import pytest_twisted
from twisted.internet import defer

_txn = itertools.count(1)

DEFAULT_OVERRIDE = [
    ".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me",
    ".m.rule.member_event", ".m.rule.is_user_mention", ".m.rule.is_room_mention",
    ".m.rule.tombstone", ".m.rule.reaction", ".m.rule.room.server_acl",
    ".m.rule.suppress_edits",
]
DEFAULT_UNDERRIDE = [
    ".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one",
    ".m.rule.message", ".m.rule.encrypted",
]


# -- helpers ---------------------------------------------------------------

def rule_path(kind: str, rule_id: str, attr: str | None = None) -> str:
    path = f"pushrules/global/{kind}/{quote(rule_id, safe='')}"
    return f"{path}/{attr}" if attr else path


async def get(client, user, path, **kwargs):
    return await client.request("GET", path, token=user["access_token"], **kwargs)


async def put(client, user, path, body, **kwargs):
    return await client.request("PUT", path, body, token=user["access_token"], **kwargs)


async def delete(client, user, path):
    return await client.request("DELETE", path, token=user["access_token"])


async def rule_ids(client, user, kind: str) -> list[str]:
    response = await get(client, user, "pushrules/global/")
    assert response.code == 200, response
    return [rule["rule_id"] for rule in response.json[kind]]


async def put_content_rule(client, user, rule_id: str, pattern: str, **query):
    response = await put(client, user, rule_path("content", rule_id),
                         {"pattern": pattern, "actions": ["notify"]}, query=query or None)
    assert response.code == 200, response
    assert response.json == {}


async def sync(client, user, since: str | None = None) -> dict:
    query = {"since": since} if since else None
    response = await client.request("GET", "sync", token=user["access_token"], query=query)
    assert response.code == 200, response
    return response.json


def push_rules_events(body: dict) -> list[dict]:
    return [e for e in body.get("account_data", {}).get("events", []) if e["type"] == "m.push_rules"]


def counts(body: dict, room_id: str) -> dict | None:
    room = body.get("rooms", {}).get("join", {}).get(room_id)
    return None if room is None else room["unread_notifications"]


async def shared_room(client) -> tuple[dict, dict, str]:
    """A public room created by a new user A and joined by a new user B."""
    a = await client.register()
    b = await client.register()
    response = await client.request("POST", "createRoom", {"preset": "public_chat"},
                                    token=a["access_token"])
    assert response.code == 200, response
    room_id = response.json["room_id"]
    response = await client.request("POST", f"rooms/{quote(room_id)}/join", {},
                                    token=b["access_token"])
    assert response.code == 200, response
    return a, b, room_id


async def send(client, user, room_id: str, body: str = "hello", **content) -> str:
    response = await client.request(
        "PUT", f"rooms/{quote(room_id)}/send/m.room.message/t{next(_txn)}",
        {"msgtype": "m.text", "body": body, **content}, token=user["access_token"])
    assert response.code == 200, response
    return response.json["event_id"]


# -- the API -----------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_default_ruleset_is_the_spec_predefined_rules(client):
    """A new user's GET /pushrules/ is the spec's predefined ruleset, with their user id filled in."""
    user = await client.register()
    response = await get(client, user, "pushrules/")
    assert response.code == 200, response
    ruleset = response.json["global"]
    assert [r["rule_id"] for r in ruleset["override"]] == DEFAULT_OVERRIDE
    assert [r["rule_id"] for r in ruleset["underride"]] == DEFAULT_UNDERRIDE
    assert ruleset["content"] == ruleset["room"] == ruleset["sender"] == []
    assert all(r["default"] for r in ruleset["override"] + ruleset["underride"])
    master = ruleset["override"][0]
    assert master["enabled"] is False and master["actions"] == []
    mention = ruleset["override"][4]
    assert mention["conditions"][0]["value"] == user["user_id"]
    for path in ("pushrules", "pushrules/global/", "pushrules/global"):
        again = await get(client, user, path)
        assert again.code == 200, (path, again)
        assert again.json == (response.json if path == "pushrules" else ruleset)


@pytest_twisted.ensureDeferred
async def test_push_rules_need_an_account(client):
    """The push rules API refuses requests without a token and refuses guests."""
    response = await client.request("GET", "pushrules/")
    assert response.code == 401
    guest = await client.register_guest()
    response = await get(client, guest, "pushrules/")
    assert (response.code, response.json["errcode"]) == (403, "M_GUEST_ACCESS_FORBIDDEN")


@pytest_twisted.ensureDeferred
async def test_user_rules_are_added_ordered_replaced_and_deleted(client):
    """PUT adds a rule as the most important one or relative to before/after, replaces in place, DELETE removes."""
    user = await client.register()
    await put_content_rule(client, user, "a", "apple")
    await put_content_rule(client, user, "b", "banana")
    assert await rule_ids(client, user, "content") == ["b", "a"]
    await put_content_rule(client, user, "c", "cherry", after="b")
    assert await rule_ids(client, user, "content") == ["b", "c", "a"]
    await put_content_rule(client, user, "d", "date", before="a")
    assert await rule_ids(client, user, "content") == ["b", "c", "d", "a"]
    # before wins over after when both are given (spec).
    await put_content_rule(client, user, "e", "elder", before="b", after="a")
    assert await rule_ids(client, user, "content") == ["e", "b", "c", "d", "a"]

    # Replacing keeps the place (and the enabled flag) unless moved.
    response = await put(client, user, rule_path("content", "a", "enabled"), {"enabled": False})
    assert response.code == 200, response
    await put_content_rule(client, user, "a", "apricot")
    assert await rule_ids(client, user, "content") == ["e", "b", "c", "d", "a"]
    response = await get(client, user, rule_path("content", "a"))
    assert response.code == 200, response
    assert response.json == {"rule_id": "a", "default": False, "enabled": False,
                             "pattern": "apricot", "actions": ["notify"]}
    await put_content_rule(client, user, "a", "apricot", before="e")
    assert await rule_ids(client, user, "content") == ["a", "e", "b", "c", "d"]

    response = await delete(client, user, rule_path("content", "c"))
    assert (response.code, response.json) == (200, {})
    assert await rule_ids(client, user, "content") == ["a", "e", "b", "d"]
    for method in ("GET", "DELETE"):
        response = await client.request(method, rule_path("content", "c"), token=user["access_token"])
        assert (response.code, response.json["errcode"]) == (404, "M_NOT_FOUND")

    # An unknown anchor, or a server-default one, is refused.
    for anchor in ("nope", ".m.rule.master"):
        response = await put(client, user, rule_path("content", "f"),
                             {"pattern": "fig", "actions": []}, query={"before": anchor})
        assert (response.code, response.json["errcode"]) == (400, "M_UNKNOWN")
    assert await rule_ids(client, user, "content") == ["a", "e", "b", "d"]


@pytest_twisted.ensureDeferred
async def test_rules_of_every_kind_are_stored_as_given(client):
    """Override, room and sender rules come back in the client format of their kind."""
    user = await client.register()
    conditions = [{"kind": "event_match", "key": "content.body", "pattern": "beer"},
                  {"kind": "room_member_count", "is": "<=10"}]
    actions = ["notify", {"set_tweak": "sound", "value": "beeroclock.wav"}]
    response = await put(client, user, rule_path("override", "beer"),
                         {"conditions": conditions, "actions": actions})
    assert response.code == 200, response
    room_rule = "!dj234r78wl45Gh4D:matrix.org"
    sender_rule = "@spambot:matrix.org"
    for kind, rule_id in (("room", room_rule), ("sender", sender_rule)):
        response = await put(client, user, rule_path(kind, rule_id), {"actions": []})
        assert response.code == 200, response
    ruleset = (await get(client, user, "pushrules/")).json["global"]
    # User-defined override rules come after the master rule, before the other defaults.
    assert [r["rule_id"] for r in ruleset["override"][:3]] == [
        ".m.rule.master", "beer", ".m.rule.suppress_notices"]
    assert ruleset["override"][1] == {"rule_id": "beer", "default": False, "enabled": True,
                                      "conditions": conditions, "actions": actions}
    assert ruleset["room"] == [{"rule_id": room_rule, "default": False, "enabled": True, "actions": []}]
    assert ruleset["sender"] == [{"rule_id": sender_rule, "default": False, "enabled": True,
                                  "actions": []}]


@pytest_twisted.ensureDeferred
async def test_server_default_rules_can_be_enabled_and_disabled(client):
    """PUT .../enabled switches a server-default rule on and off; it cannot be deleted."""
    user = await client.register()
    path = rule_path("override", ".m.rule.master", "enabled")
    assert (await get(client, user, path)).json == {"enabled": False}
    response = await put(client, user, path, {"enabled": True})
    assert (response.code, response.json) == (200, {})
    assert (await get(client, user, path)).json == {"enabled": True}
    rule = (await get(client, user, rule_path("override", ".m.rule.master"))).json
    assert rule["enabled"] is True and rule["default"] is True
    response = await put(client, user, path, {"enabled": False})
    assert response.code == 200, response
    assert (await get(client, user, path)).json == {"enabled": False}

    response = await delete(client, user, rule_path("underride", ".m.rule.message"))
    assert (response.code, response.json["errcode"]) == (404, "M_NOT_FOUND")
    assert ".m.rule.message" in await rule_ids(client, user, "underride")
    for path in (rule_path("override", ".m.rule.nope", "enabled"),
                 rule_path("underride", ".m.rule.master", "enabled"),
                 rule_path("content", "missing", "enabled")):
        response = await put(client, user, path, {"enabled": True})
        assert (response.code, response.json["errcode"]) == (404, "M_NOT_FOUND"), path
        response = await get(client, user, path)
        assert (response.code, response.json["errcode"]) == (404, "M_NOT_FOUND"), path
    response = await put(client, user, rule_path("override", ".m.rule.master", "enabled"),
                         {"enabled": "yes"})
    assert (response.code, response.json["errcode"]) == (400, "M_BAD_JSON")


@pytest_twisted.ensureDeferred
async def test_actions_can_be_read_and_replaced(client):
    """GET/PUT .../actions read and replace the actions of default and user rules alike."""
    user = await client.register()
    path = rule_path("underride", ".m.rule.message", "actions")
    assert (await get(client, user, path)).json == {"actions": ["notify"]}
    new_actions = ["notify", {"set_tweak": "highlight"}]
    response = await put(client, user, path, {"actions": new_actions})
    assert (response.code, response.json) == (200, {})
    assert (await get(client, user, path)).json == {"actions": new_actions}
    rule = (await get(client, user, rule_path("underride", ".m.rule.message"))).json
    assert rule["actions"] == new_actions and rule["enabled"] is True
    assert rule["conditions"] == [{"kind": "event_match", "key": "type", "pattern": "m.room.message"}]

    await put_content_rule(client, user, "cake", "cake")
    cake = rule_path("content", "cake", "actions")
    response = await put(client, user, cake, {"actions": []})
    assert response.code == 200, response
    assert (await get(client, user, cake)).json == {"actions": []}
    assert (await get(client, user, rule_path("content", "cake"))).json["pattern"] == "cake"

    response = await put(client, user, cake, {"actions": ["explode"]})
    assert (response.code, response.json["errcode"]) == (400, "M_BAD_JSON")
    response = await put(client, user, cake, {})
    assert (response.code, response.json["errcode"]) == (400, "M_MISSING_PARAM")
    response = await put(client, user, rule_path("content", "pie", "actions"), {"actions": []})
    assert (response.code, response.json["errcode"]) == (404, "M_NOT_FOUND")


@pytest.mark.parametrize("kind, rule_id, body, errcode", [
    ("override", "x", {"actions": ["notify"]}, "M_MISSING_PARAM"),
    ("content", "x", {"actions": ["notify"]}, "M_MISSING_PARAM"),
    ("content", "x", {"pattern": "x"}, "M_MISSING_PARAM"),
    ("content", "x", {"pattern": "x", "actions": ["explode"]}, "M_BAD_JSON"),
    ("content", "x", {"pattern": "x", "actions": "notify"}, "M_BAD_JSON"),
    ("override", "x", {"conditions": [{"key": "type"}], "actions": []}, "M_BAD_JSON"),
    ("override", "x", {"conditions": "all", "actions": []}, "M_BAD_JSON"),
    ("content", ".m.rule.mine", {"pattern": "x", "actions": []}, "M_INVALID_PARAM"),
    ("content", "a\\b", {"pattern": "x", "actions": []}, "M_INVALID_PARAM"),
    ("room", "not-a-room", {"actions": []}, "M_INVALID_PARAM"),
    ("sender", "not-a-user", {"actions": []}, "M_INVALID_PARAM"),
    ("middle", "x", {"actions": []}, "M_INVALID_PARAM"),
])
@pytest_twisted.ensureDeferred
async def test_invalid_rules_are_refused(client, kind, rule_id, body, errcode):
    """An invalid PUT of a push rule is a 400 with the matching errcode, and stores nothing."""
    user = await client.register()
    before = (await get(client, user, "pushrules/")).json
    response = await put(client, user, rule_path(kind, rule_id), body)
    assert (response.code, response.json["errcode"]) == (400, errcode), response
    assert (await get(client, user, "pushrules/")).json == before


@pytest_twisted.ensureDeferred
async def test_rule_changes_are_sent_as_account_data_in_sync(client):
    """/sync has m.push_rules on an initial sync and on the first incremental sync after a change only."""
    user = await client.register()
    first = await sync(client, user)
    [event] = push_rules_events(first)
    assert event["content"] == (await get(client, user, "pushrules/")).json
    await put_content_rule(client, user, "tea", "tea")
    second = await sync(client, user, first["next_batch"])
    [event] = push_rules_events(second)
    assert [r["rule_id"] for r in event["content"]["global"]["content"]] == ["tea"]
    response = await client.request("GET", "sync", token=user["access_token"],
                                    query={"since": second["next_batch"], "timeout": "0"})
    assert response.code == 200, response
    assert push_rules_events(response.json) == []


@pytest_twisted.ensureDeferred
async def test_a_rule_change_wakes_a_waiting_sync(client):
    """A long-polling /sync answers when the user's push rules change."""
    user = await client.register()
    first = await sync(client, user)
    pending = defer.ensureDeferred(client.request(
        "GET", "sync", token=user["access_token"],
        query={"since": first["next_batch"], "timeout": "20000"}))
    await put_content_rule(client, user, "wake", "wake")
    response = await pending
    assert response.code == 200, response
    [event] = push_rules_events(response.json)
    assert [r["rule_id"] for r in event["content"]["global"]["content"]] == ["wake"]


# -- unread counts -------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_messages_count_as_unread_notifications(client):
    """Each message notifies the other member, a mention of them highlights, and their own counts stay 0."""
    a, b, room_id = await shared_room(client)
    first = await sync(client, b)
    assert counts(first, room_id) == {"notification_count": 0, "highlight_count": 0}
    for n in range(3):
        await send(client, a, room_id, f"message {n}")
    body = await sync(client, b, first["next_batch"])
    # The counts come in the same sync as the events.
    assert counts(body, room_id) == {"notification_count": 3, "highlight_count": 0}
    await send(client, a, room_id, "hey you", **{"m.mentions": {"user_ids": [b["user_id"]]}})
    body = await sync(client, b, body["next_batch"])
    assert counts(body, room_id) == {"notification_count": 4, "highlight_count": 1}
    assert counts(await sync(client, b), room_id) == {"notification_count": 4, "highlight_count": 1}
    assert counts(await sync(client, a), room_id) == {"notification_count": 0, "highlight_count": 0}


@pytest_twisted.ensureDeferred
async def test_sending_a_message_marks_the_room_read(client):
    """A user's own message marks everything before it as read (spec: "or by sending an event")."""
    a, b, room_id = await shared_room(client)
    await send(client, a, room_id, "one")
    await send(client, a, room_id, "two")
    assert counts(await sync(client, b), room_id)["notification_count"] == 2
    await send(client, b, room_id, "reply")
    assert counts(await sync(client, b), room_id) == {"notification_count": 0, "highlight_count": 0}
    await send(client, a, room_id, "three")
    assert counts(await sync(client, b), room_id)["notification_count"] == 1


@pytest_twisted.ensureDeferred
async def test_users_rules_decide_what_counts(client):
    """A room rule without actions silences a room; a notice never notifies; a changed rule applies at once."""
    a, b, room_id = await shared_room(client)
    await send(client, a, room_id, "psst", msgtype="m.notice")
    assert counts(await sync(client, b), room_id)["notification_count"] == 0
    response = await put(client, b, rule_path("room", room_id), {"actions": []})
    assert response.code == 200, response
    await send(client, a, room_id, "silenced")
    assert counts(await sync(client, b), room_id)["notification_count"] == 0
    response = await put(client, b, rule_path("room", room_id, "enabled"), {"enabled": False})
    assert response.code == 200, response
    await send(client, a, room_id, "heard")
    assert counts(await sync(client, b), room_id)["notification_count"] == 1
    response = await put(client, b, rule_path("underride", ".m.rule.room_one_to_one", "actions"),
                         {"actions": ["notify", {"set_tweak": "highlight"}]})
    assert response.code == 200, response
    await send(client, a, room_id, "loud")
    assert counts(await sync(client, b), room_id) == {"notification_count": 2, "highlight_count": 1}


@pytest_twisted.ensureDeferred
async def test_room_mentions_need_the_notification_power_level(client):
    """An @room mention highlights only when the sender has the room notification level (50 by default)."""
    a, b, room_id = await shared_room(client)
    room_mention = {"m.mentions": {"room": True}}
    # B (level 0) mentions the room: A is notified (1:1 rule) but not highlighted.
    await send(client, b, room_id, "@room hi", **room_mention)
    assert counts(await sync(client, a), room_id) == {"notification_count": 1, "highlight_count": 0}
    # A (the creator) mentions the room: B is highlighted.
    await send(client, a, room_id, "@room hi", **room_mention)
    assert counts(await sync(client, b), room_id) == {"notification_count": 1, "highlight_count": 1}


@pytest_twisted.ensureDeferred
async def test_redacted_messages_no_longer_count(client):
    """Redacting a message removes its notification from the other members' counts."""
    a, b, room_id = await shared_room(client)
    await send(client, a, room_id, "keep")
    oops = await send(client, a, room_id, "oops")
    assert counts(await sync(client, b), room_id)["notification_count"] == 2
    response = await client.request(
        "PUT", f"rooms/{quote(room_id)}/redact/{quote(oops)}/r{next(_txn)}", {},
        token=a["access_token"])
    assert response.code == 200, response
    assert counts(await sync(client, b), room_id)["notification_count"] == 1


@pytest_twisted.ensureDeferred
async def test_a_read_receipt_resets_the_counts(client):
    """A read receipt (m.read or m.read.private) for the latest event brings the counts back to 0."""
    a, b, room_id = await shared_room(client)
    await send(client, a, room_id, "one")
    mention = await send(client, a, room_id, "two", **{"m.mentions": {"user_ids": [b["user_id"]]}})
    first = await sync(client, b)
    assert counts(first, room_id) == {"notification_count": 2, "highlight_count": 1}
    response = await client.request(
        "POST", f"rooms/{quote(room_id)}/receipt/m.read.private/{quote(mention)}", {},
        token=b["access_token"])
    assert response.code == 200, response
    body = await sync(client, b, first["next_batch"])
    assert counts(body, room_id) == {"notification_count": 0, "highlight_count": 0}
    third = await send(client, a, room_id, "three")
    await send(client, a, room_id, "four")
    assert counts(await sync(client, b), room_id)["notification_count"] == 2
    response = await client.request(
        "POST", f"rooms/{quote(room_id)}/receipt/m.read/{quote(third)}", {},
        token=b["access_token"])
    assert response.code == 200, response
    assert counts(await sync(client, b), room_id)["notification_count"] == 1


@pytest_twisted.ensureDeferred
async def test_a_mention_highlights_only_the_named_member(client):
    """Of several members with the default rules, the mentioned one is highlighted, the others only notified; a member event notifies nobody."""
    a, b, room_id = await shared_room(client)
    others = [await client.register() for _ in range(3)]
    for other in others:
        joined = await client.request("POST", f"rooms/{quote(room_id)}/join", {}, token=other["access_token"])
        assert joined.code == 200, joined
    await send(client, a, room_id, "hey", **{"m.mentions": {"user_ids": [others[1]["user_id"]]}})
    assert counts(await sync(client, others[1]), room_id) == {"notification_count": 1, "highlight_count": 1}
    for user in (b, others[0], others[2]):
        assert counts(await sync(client, user), room_id) == {"notification_count": 1, "highlight_count": 0}
    invitee = await client.register()
    invited = await client.request("POST", f"rooms/{quote(room_id)}/invite", {"user_id": invitee["user_id"]},
                                   token=a["access_token"])
    assert invited.code == 200, invited
    assert counts(await sync(client, b), room_id)["notification_count"] == 1  # a member event notifies no member
