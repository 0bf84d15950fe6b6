"""
Room history for the Synapse database that C{ruma-admin import-synapse}
tests move (run by synapse_traffic.py): a public room, published in the
room directory with an alias, where two users talk for a while with the
features whose indexes the import must rebuild: a thread, an edit, a
reaction, a rich reply, a redaction, a topic change, a word to search
for, and read receipts. What the room tests look for goes into the
manifest under C{"history"}.
"""
from __future__ import annotations

import uuid
from urllib.parse import quote

#: Plain messages before the features (enough to page through with /messages).
PLAIN_MESSAGES = 24
SEARCH_WORD = "kumquat"
#: In the redacted message only: search must not find it.
REDACTED_WORD = "zucchini"


async def room_history(synapse, alice: dict, bob: dict, stamp: str, server_name: str) -> dict:
    """
    Make the room (C{synapse}: synapse_traffic.py's raw client; C{alice},
    C{bob}: their registrations); return its manifest entry.
    """
    a, b = alice["access_token"], bob["access_token"]
    alias_name = f"square{stamp}"
    _, created = await synapse.request("POST", "createRoom", {
        "name": "Town square", "topic": "all things local", "preset": "public_chat",
        "room_alias_name": alias_name}, token=a)
    room_id = created["room_id"]
    room = quote(room_id)
    await synapse.request("PUT", f"directory/list/room/{room}", {"visibility": "public"}, token=a)
    await synapse.request("POST", f"join/{room}", {}, token=b)
    timeline: list[str] = []

    async def send(token: str, content: dict, event_type: str = "m.room.message") -> str:
        _, sent = await synapse.request("PUT", f"rooms/{room}/send/{event_type}/{uuid.uuid4().hex}", content,
                                        token=token)
        timeline.append(sent["event_id"])
        return sent["event_id"]

    for index in range(PLAIN_MESSAGES):
        await send(a if index % 2 else b, {"msgtype": "m.text", "body": f"chatter {index}"})
    root = await send(a, {"msgtype": "m.text", "body": "who brings the lanterns?"})
    reply = await send(b, {"msgtype": "m.text", "body": "I do",
                           "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    edited = await send(a, {"msgtype": "m.text", "body": "the market opens at nine"})
    edit = await send(a, {"msgtype": "m.text", "body": "* the market opens at ten",
                          "m.new_content": {"msgtype": "m.text", "body": "the market opens at ten"},
                          "m.relates_to": {"rel_type": "m.replace", "event_id": edited}})
    reaction = await send(b, {"m.relates_to": {"rel_type": "m.annotation", "event_id": edited, "key": "🕙"}},
                          "m.reaction")
    rich_reply = await send(b, {"msgtype": "m.text", "body": "> the market\n\nsee you there",
                                "m.relates_to": {"m.in_reply_to": {"event_id": edited}}})
    searched = await send(b, {"msgtype": "m.text", "body": f"the {SEARCH_WORD} stall is back"})
    redacted = await send(a, {"msgtype": "m.text", "body": f"my {REDACTED_WORD} phone number is 555-0100"})
    _, redaction = await synapse.request("PUT", f"rooms/{room}/redact/{quote(redacted)}/{uuid.uuid4().hex}",
                                         {"reason": "oops"}, token=a)
    timeline.append(redaction["event_id"])
    _, topic = await synapse.request("PUT", f"rooms/{room}/state/m.room.topic", {"topic": "market days"},
                                     token=a)
    timeline.append(topic["event_id"])
    last = await send(b, {"msgtype": "m.text", "body": "good night"})
    await synapse.request("POST", f"rooms/{room}/receipt/m.read/{quote(last)}", {}, token=a)
    await synapse.request("POST", f"rooms/{room}/receipt/m.read/{quote(searched)}", {}, token=b)
    return {
        "room_id": room_id, "alias": f"#{alias_name}:{server_name}", "name": "Town square",
        "topic": "market days", "timeline": timeline, "thread_root": root, "thread_reply": reply,
        "edited": edited, "edit": edit, "edited_body": "the market opens at ten", "reaction": reaction,
        "reaction_key": "🕙", "rich_reply": rich_reply, "search_word": SEARCH_WORD, "searched": searched,
        "redacted": redacted, "redacted_word": REDACTED_WORD, "redaction": redaction["event_id"], "last": last,
        "receipts": {alice["user_id"]: last, bob["user_id"]: searched},
    }
