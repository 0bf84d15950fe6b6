"""
Relations through the real daemon (spec: "Forming relationships between
events", "Relationships API", "Event replacements", "Event annotations and
reactions", "Reference relations"): what /relations lists, the edits and
references bundled with events, and the relations the server refuses.
"""
from __future__ import annotations

import pytest_twisted
from relations_helpers import (
    bundled,
    edit,
    get_event,
    ids,
    in_thread,
    messages,
    react,
    reaction,
    redact,
    reference,
    relations,
    relations_ok,
    room_of,
    send,
    send_ok,
    text,
)


@pytest_twisted.ensureDeferred
async def test_children_are_listed_newest_first_and_filtered_by_type(client):
    """/relations lists every child newest first; relType and eventType narrow it to matching children."""
    alice, bob = await client.register(), await client.register()
    room_id = await room_of(client, alice, bob)
    parent = await send_ok(client, alice, room_id, text("pick one"))
    thumbs = await react(client, bob, room_id, parent, "👍")
    thumbs_alice = await react(client, alice, room_id, parent, "👍")
    party = await react(client, bob, room_id, parent, "🎉")
    reply = await send_ok(client, bob, room_id, in_thread(parent, "the first"))
    await send_ok(client, alice, room_id, text("unrelated"))

    everything = await relations_ok(client, bob, room_id, parent)
    assert ids(everything["chunk"]) == [reply, party, thumbs_alice, thumbs]
    assert "next_batch" not in everything and "prev_batch" not in everything
    assert "recursion_depth" not in everything
    annotations = await relations_ok(client, bob, room_id, parent, "m.annotation")
    assert ids(annotations["chunk"]) == [party, thumbs_alice, thumbs]
    assert all(e["content"]["m.relates_to"]["rel_type"] == "m.annotation" for e in annotations["chunk"])
    typed = await relations_ok(client, bob, room_id, parent, "m.annotation", "m.reaction")
    assert ids(typed["chunk"]) == [party, thumbs_alice, thumbs]
    assert (await relations_ok(client, bob, room_id, parent, "m.thread", "m.room.message"))["chunk"][0][
        "event_id"] == reply
    assert (await relations_ok(client, bob, room_id, parent, "m.annotation", "m.room.message"))["chunk"] == []


@pytest_twisted.ensureDeferred
async def test_pagination_backwards_and_forwards(client):
    """Pages of two walk the children in both directions; next_batch stops at the end, prev_batch echoes from."""
    alice = await client.register()
    room_id = await room_of(client, alice)
    parent = await send_ok(client, alice, room_id, text("count"))
    children = [await react(client, alice, room_id, parent, str(n)) for n in range(1, 6)]

    first = await relations_ok(client, alice, room_id, parent, limit=2)
    assert ids(first["chunk"]) == [children[4], children[3]] and "prev_batch" not in first
    second = await relations_ok(client, alice, room_id, parent, limit=2, **{"from": first["next_batch"]})
    assert ids(second["chunk"]) == [children[2], children[1]]
    assert second["prev_batch"] == first["next_batch"]
    third = await relations_ok(client, alice, room_id, parent, limit=2, **{"from": second["next_batch"]})
    assert ids(third["chunk"]) == [children[0]] and "next_batch" not in third

    forwards = await relations_ok(client, alice, room_id, parent, limit=2, dir="f")
    assert ids(forwards["chunk"]) == children[:2]
    onwards = await relations_ok(client, alice, room_id, parent, limit=2, dir="f",
                                 **{"from": forwards["next_batch"]})
    assert ids(onwards["chunk"]) == children[2:4]
    last = await relations_ok(client, alice, room_id, parent, limit=2, dir="f", **{"from": onwards["next_batch"]})
    assert ids(last["chunk"]) == children[4:] and "next_batch" not in last

    # `to` stops a backwards page where an earlier page began.
    bounded = await relations_ok(client, alice, room_id, parent, **{"to": second["next_batch"]})
    assert ids(bounded["chunk"]) == [children[4], children[3], children[2], children[1]]
    bad = await relations(client, alice, room_id, parent, **{"from": "nonsense"})
    assert bad.code == 400 and bad.json["errcode"] == "M_INVALID_PARAM"
    assert (await relations(client, alice, room_id, parent, dir="sideways")).code == 400
    assert (await relations(client, alice, room_id, parent, limit=0)).code == 400


@pytest_twisted.ensureDeferred
async def test_recurse_follows_three_levels_through_matching_children(client):
    """recurse=true adds children of children down to depth 3 (recursion_depth says so), filters applying at each level."""
    alice = await client.register()
    room_id = await room_of(client, alice)
    root = await send_ok(client, alice, room_id, text("root"))
    chain = [root]
    for n in range(4):
        chain.append(await send_ok(client, alice, room_id, reference(chain[-1], f"level {n + 1}")))
    reply = await send_ok(client, alice, room_id, in_thread(root, "threaded"))
    liked_reply = await react(client, alice, room_id, reply, "❤")

    direct = await relations_ok(client, alice, room_id, root)
    assert ids(direct["chunk"]) == [reply, chain[1]] and "recursion_depth" not in direct
    deep = await relations_ok(client, alice, room_id, root, recurse="true")
    assert deep["recursion_depth"] == 3
    assert ids(deep["chunk"]) == [liked_reply, reply, chain[3], chain[2], chain[1]]
    references = await relations_ok(client, alice, room_id, root, "m.reference", recurse="true")
    assert ids(references["chunk"]) == [chain[3], chain[2], chain[1]]
    # The reaction is only reachable through the thread reply, which m.annotation filters out.
    assert (await relations_ok(client, alice, room_id, root, "m.annotation", recurse="true"))["chunk"] == []
    shallow = await relations_ok(client, alice, room_id, root, recurse="false")
    assert shallow["recursion_depth"] == 1 and ids(shallow["chunk"]) == [reply, chain[1]]


@pytest_twisted.ensureDeferred
async def test_edits_are_bundled_without_replacing_the_content(client):
    """The latest valid edit is bundled as m.replace on /event and /messages; the original content stays."""
    alice, bob = await client.register(), await client.register()
    room_id = await room_of(client, alice, bob)
    original = await send_ok(client, alice, room_id, text("helo"))
    await send_ok(client, alice, room_id, edit(original, "hello"))
    latest = await send_ok(client, alice, room_id, edit(original, "hello!"))
    # Invalid replacements are not aggregated: another sender, another type, no m.new_content.
    await send_ok(client, bob, room_id, edit(original, "bob was here"))
    await send_ok(client, alice, room_id, edit(original, "typed"), "m.sticker")
    await send_ok(client, alice, room_id, text("* bare", **{"m.relates_to": {"rel_type": "m.replace",
                                                                               "event_id": original}}))

    shown = await get_event(client, bob, room_id, original)
    assert shown["content"] == text("helo")
    replacement = bundled(shown)["m.replace"]
    assert replacement["event_id"] == latest and replacement["sender"] == alice["user_id"]
    assert isinstance(replacement["origin_server_ts"], int)
    assert replacement["content"]["m.new_content"] == text("hello!")
    in_messages = [e for e in await messages(client, bob, room_id) if e["event_id"] == original][0]
    assert in_messages["content"] == text("helo") and bundled(in_messages)["m.replace"]["event_id"] == latest
    # Every edit, valid or not, is a child /relations lists.
    assert len((await relations_ok(client, bob, room_id, original, "m.replace"))["chunk"]) == 5


@pytest_twisted.ensureDeferred
async def test_redactions_break_relations(client):
    """Redacting the latest edit bundles the one before; redacting the original bundles no edit at all."""
    alice = await client.register()
    room_id = await room_of(client, alice)
    original = await send_ok(client, alice, room_id, text("v1"))
    second = await send_ok(client, alice, room_id, edit(original, "v2"))
    third = await send_ok(client, alice, room_id, edit(original, "v3"))
    await redact(client, alice, room_id, third)
    assert bundled(await get_event(client, alice, room_id, original))["m.replace"]["event_id"] == second
    assert ids((await relations_ok(client, alice, room_id, original))["chunk"]) == [second]
    await redact(client, alice, room_id, original)
    assert "m.replace" not in bundled(await get_event(client, alice, room_id, original))


@pytest_twisted.ensureDeferred
async def test_references_are_bundled_and_reactions_are_not(client):
    """m.reference children are bundled as a chunk of event ids; annotations are never aggregated (spec v1.7)."""
    alice = await client.register()
    room_id = await room_of(client, alice)
    parent = await send_ok(client, alice, room_id, text("the plan"))
    first = await send_ok(client, alice, room_id, reference(parent))
    second = await send_ok(client, alice, room_id, reference(parent))
    await react(client, alice, room_id, parent, "👀")
    aggregations = bundled(await get_event(client, alice, room_id, parent))
    assert aggregations == {"m.reference": {"chunk": [{"event_id": first}, {"event_id": second}]}}


@pytest_twisted.ensureDeferred
async def test_invalid_relations_are_refused_and_store_nothing(client):
    """Unknown or foreign parents, duplicate or keyless annotations and threads off a relation are 400s."""
    alice = await client.register()
    room_id = await room_of(client, alice)
    other_room = await room_of(client, alice)
    parent = await send_ok(client, alice, room_id, text("here"))
    elsewhere = await send_ok(client, alice, other_room, text("there"))

    foreign = await send(client, alice, room_id, reaction(elsewhere, "👍"), "m.reaction")
    assert foreign.code == 400 and foreign.json["errcode"] == "M_UNKNOWN"
    unknown = await send(client, alice, room_id, in_thread("$nosuchevent", "hi"))
    assert unknown.code == 400 and unknown.json["errcode"] == "M_UNKNOWN"
    keyless = await send(client, alice, room_id, {"m.relates_to": {"rel_type": "m.annotation",
                                                                  "event_id": parent}}, "m.reaction")
    assert keyless.code == 400
    liked = await react(client, alice, room_id, parent, "👍")
    twice = await send(client, alice, room_id, reaction(parent, "👍"), "m.reaction")
    assert twice.code == 400 and twice.json["errcode"] == "M_DUPLICATE_ANNOTATION"
    nested = await send(client, alice, room_id, in_thread(liked, "a thread off a reaction"))
    assert nested.code == 400 and nested.json["errcode"] == "M_UNKNOWN"
    assert ids((await relations_ok(client, alice, room_id, parent))["chunk"]) == [liked]
    assert "a thread off a reaction" not in [e["content"].get("body") for e in await messages(client, alice, room_id)]
    # Once the first is redacted, the same reaction may be sent again.
    await redact(client, alice, room_id, liked)
    again = await react(client, alice, room_id, parent, "👍")
    assert ids((await relations_ok(client, alice, room_id, parent))["chunk"]) == [again]


@pytest_twisted.ensureDeferred
async def test_the_parent_must_be_visible_and_children_are_filtered_by_visibility(client):
    """An outsider gets 404; a member who left sees the parent but not what was added after they left."""
    alice, bob, carol = await client.register(), await client.register(), await client.register()
    room_id = await room_of(client, alice, bob, preset="private_chat", invite=[bob["user_id"]])
    parent = await send_ok(client, alice, room_id, text("members only"))
    before = await react(client, bob, room_id, parent, "👋")
    left = await client.request("POST", f"rooms/{room_id}/leave", {}, token=bob["access_token"])
    assert left.code == 200, left
    await react(client, alice, room_id, parent, "🔒")
    assert ids((await relations_ok(client, bob, room_id, parent))["chunk"]) == [before]
    hidden = await relations(client, carol, room_id, parent)
    assert hidden.code == 404 and hidden.json["errcode"] == "M_NOT_FOUND"
    assert (await relations(client, alice, room_id, "$unknown")).code == 404
    other_room = await room_of(client, alice)
    assert (await relations(client, alice, other_room, parent)).code == 404
