"""
The pure rules of relations (ruma_tx.matrix.relations): which relations
are relations, which the server refuses, which edits count, the thread an
event is in, which receipts fit a thread, and how bundles are added.
"""
from __future__ import annotations

import orjson
import pytest

from ruma_tx.matrix.errors import BadRequest
from ruma_tx.matrix.relations import (
    MAIN_THREAD,
    EventRelation,
    ParentEvent,
    Relation,
    check_relation,
    is_valid_replacement,
    receipt_fits_thread,
    relation_of,
    thread_key,
    with_relations,
)
from ruma_tx.matrix.sync import StoredJson

ROOM = "!room:example.org"
ALICE = "@alice:example.org"
BOB = "@bob:example.org"


def parent(**overrides) -> ParentEvent:
    fields = {"room_id": ROOM, "stream_ordering": 7, "type": "m.room.message", "sender": ALICE, "is_state": False,
              "rel_type": None, "thread_id": None}
    return ParentEvent(**{**fields, **overrides})


def check(relation: Relation, found: ParentEvent | None = None, *, event_type: str = "m.room.message",
          sender: str = ALICE, content: dict | None = None, state_key: str | None = None,
          already_annotated: bool = False) -> EventRelation:
    return check_relation(room_id=ROOM, event_type=event_type, sender=sender, state_key=state_key,
                          content=content or {}, relation=relation,
                          parent=parent() if found is None else found, already_annotated=already_annotated)


# -- relation_of ---------------------------------------------------------------

def test_a_relation_needs_string_rel_type_and_event_id():
    """m.relates_to with string rel_type and event_id is a relation; a reply or a malformed one is not."""
    assert relation_of({"m.relates_to": {"rel_type": "m.thread", "event_id": "$p"}}) == Relation("m.thread", "$p")
    assert relation_of({"m.relates_to": {"m.in_reply_to": {"event_id": "$p"}}}) is None
    assert relation_of({"m.relates_to": {"rel_type": "m.thread", "event_id": 3}}) is None
    assert relation_of({"m.relates_to": {"rel_type": 1, "event_id": "$p"}}) is None
    assert relation_of({"m.relates_to": "m.thread"}) is None
    assert relation_of({"body": "no relation"}) is None


def test_only_a_string_key_is_kept():
    """An annotation's key is read when it is a string, else left out."""
    with_key = {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$p", "key": "👍"}}
    assert relation_of(with_key) == Relation("m.annotation", "$p", "👍")
    assert relation_of({"m.relates_to": {"rel_type": "m.annotation", "event_id": "$p", "key": 1}}).key is None


# -- check_relation ------------------------------------------------------------

def test_unknown_and_foreign_parents_are_refused():
    """A parent the server does not know, or in another room, is 400 M_UNKNOWN."""
    with pytest.raises(BadRequest) as unknown:
        check_relation(room_id=ROOM, event_type="m.reaction", sender=ALICE, state_key=None, content={},
                       relation=Relation("m.annotation", "$p", "k"), parent=None, already_annotated=False)
    assert unknown.value.errcode == "M_UNKNOWN"
    with pytest.raises(BadRequest) as foreign:
        check(Relation("m.reference", "$p"), parent(room_id="!other:example.org"))
    assert foreign.value.errcode == "M_UNKNOWN"


def test_annotations_need_a_short_key_used_once():
    """An annotation needs a key of at most 500 characters, once per sender, type and key."""
    assert check(Relation("m.annotation", "$p", "👍"), event_type="m.reaction").key == "👍"
    for bad_key in (None, "x" * 501):
        with pytest.raises(BadRequest):
            check(Relation("m.annotation", "$p", bad_key), event_type="m.reaction")
    with pytest.raises(BadRequest) as duplicate:
        check(Relation("m.annotation", "$p", "👍"), event_type="m.reaction", already_annotated=True)
    assert duplicate.value.errcode == "M_DUPLICATE_ANNOTATION"


def test_a_thread_cannot_start_from_a_relation():
    """m.thread off an event that itself has a relation is 400 M_UNKNOWN; off a plain event it starts a thread."""
    with pytest.raises(BadRequest) as nested:
        check(Relation("m.thread", "$p"), parent(rel_type="m.annotation"))
    assert nested.value.errcode == "M_UNKNOWN"
    started = check(Relation("m.thread", "$p"))
    assert (started.thread_id, started.parent_position) == ("$p", 7)


def test_the_thread_is_inherited_through_other_relations():
    """A reaction to a threaded reply is in that thread; a reference to a root stays in the main timeline."""
    assert check(Relation("m.annotation", "$reply", "👍"), parent(rel_type="m.thread", thread_id="$root"),
                 event_type="m.reaction").thread_id == "$root"
    assert check(Relation("m.reference", "$root")).thread_id is None


def test_invalid_edits_are_stored_but_not_valid():
    """An m.replace breaking the rules is accepted and marked invalid; a good one is valid."""
    content = {"m.new_content": {"body": "fixed"}}
    assert check(Relation("m.replace", "$p"), content=content).valid
    assert not check(Relation("m.replace", "$p"), sender=BOB, content=content).valid
    assert not check(Relation("m.replace", "$p"), content={}).valid
    assert check(Relation("m.annotation", "$p", "k"), sender=BOB, event_type="m.reaction").valid


def test_the_rules_of_replacements():
    """Same sender and type, no state on either side, no edit of an edit, m.new_content unless encrypted."""
    new = {"m.new_content": {"body": "b"}}

    def valid(content: dict = new, event_type: str = "m.room.message", sender: str = ALICE,
              state_key: str | None = None, **original) -> bool:
        return is_valid_replacement(event_type=event_type, sender=sender, state_key=state_key,
                                    content=content, original=parent(**original))

    assert valid()
    assert not valid(sender=BOB)
    assert not valid(event_type="m.sticker")
    assert not valid(state_key="")
    assert not valid(is_state=True)
    assert not valid(rel_type="m.replace")
    assert valid(rel_type="m.thread")
    assert not valid(content={"m.new_content": "text"})
    assert valid(content={"ciphertext": "..."}, event_type="m.room.encrypted", type="m.room.encrypted")


# -- threads and receipts ------------------------------------------------------------

def test_thread_key_is_main_outside_threads():
    """Events without a relation or thread are counted in "main", others in their thread."""
    assert thread_key(None) == MAIN_THREAD
    assert thread_key(EventRelation("m.reference", "$p", 7, None, None)) == MAIN_THREAD
    assert thread_key(EventRelation("m.thread", "$root", 7, None, "$root")) == "$root"


def test_receipts_fit_their_thread():
    """main takes main-timeline events; a thread its events, its root and events related to its root."""
    assert receipt_fits_thread("main", "$e", None, [])
    assert not receipt_fits_thread("main", "$e", "$root", ["$root"])
    assert receipt_fits_thread("$root", "$e", "$root", ["$root"])
    assert receipt_fits_thread("$root", "$root", None, [])
    assert receipt_fits_thread("$root", "$ref", None, ["$root"])
    assert receipt_fits_thread("$root", "$deep", None, ["$a", "$b", "$root"])
    assert not receipt_fits_thread("$root", "$deeper", None, ["$a", "$b", "$c", "$root"])
    assert not receipt_fits_thread("$root", "$e", "$other", ["$other"])


# -- bundles -------------------------------------------------------------------

def test_with_relations_appends_to_stored_json_without_parsing_it():
    """Stored JSON without unsigned gets it appended, stored JSON inside the relations written as it is."""
    latest = StoredJson('{"event_id":"$reply","content":{"body":"hi"}}')
    relations = {"m.thread": {"latest_event": latest, "count": 1, "current_user_participated": False}}
    shown = with_relations(StoredJson('{"event_id":"$root","content":{}}'), relations)
    assert isinstance(shown, StoredJson)
    assert orjson.loads(shown.json) == {
        "event_id": "$root", "content": {},
        "unsigned": {"m.relations": {"m.thread": {"latest_event": {"event_id": "$reply", "content": {"body": "hi"}},
                                                  "count": 1, "current_user_participated": False}}}}


def test_with_relations_keeps_what_unsigned_held():
    """Stored JSON with unsigned is parsed; the bundle joins what unsigned held; a given dict is not changed."""
    relations = {"m.reference": {"chunk": [{"event_id": "$r"}]}}
    stored = StoredJson(orjson.dumps({"event_id": "$e", "unsigned": {"age": 5}}).decode())
    assert with_relations(stored, relations) == {"event_id": "$e",
                                                 "unsigned": {"age": 5, "m.relations": relations}}
    original = {"event_id": "$e", "unsigned": {"transaction_id": "t"}}
    shown = with_relations(original, relations)
    assert shown["unsigned"] == {"transaction_id": "t", "m.relations": relations}
    assert original == {"event_id": "$e", "unsigned": {"transaction_id": "t"}}
    assert with_relations({"event_id": "$e"}, relations)["unsigned"] == {"m.relations": relations}
