"""How /sync writes events: from their stored client JSON, never parsing it, and the same as from the PDU."""
import json

import orjson
from twisted.web.test.requesthelper import DummyRequest

from ruma_tx.http.parsing import respond
from ruma_tx.matrix.events import StoredEvent
from ruma_tx.matrix.filters import Filter, parse_filter
from ruma_tx.matrix.sync import (
    event_serializer,
    sync_event,
    sync_event_json,
    with_transaction_id,
)

PDU = {
    "auth_events": ["$a"], "prev_events": ["$p"], "depth": 3, "hashes": {"sha256": "x"},
    "signatures": {"hs": {"ed25519:a": "s"}}, "origin": "hs", "room_id": "!r:hs", "sender": "@a:hs",
    "origin_server_ts": 5, "type": "m.room.message", "content": {"body": "\"quoted\" ü", "msgtype": "m.text"},
}


def stored(pdu=PDU, with_json=True) -> StoredEvent:
    client_json = sync_event_json(pdu, "$e", "!r:hs") if with_json else None
    return StoredEvent(7, "$e", "!r:hs", None, pdu_json=json.dumps(pdu), client_json=client_json)


def written(value) -> dict:
    return orjson.loads(respond(DummyRequest([b""]), 200, value))


def test_stored_json_writes_what_the_pdu_would():
    """An event written from its stored JSON is the client event built from its PDU (no room_id)."""
    event = stored()
    assert written(event_serializer(Filter())(event)) == sync_event(stored(with_json=False))
    assert "room_id" not in written(event_serializer(Filter())(event))


def test_transaction_id_is_added_to_stored_json():
    """The sender's device sees unsigned.transaction_id, however odd the id, added without parsing."""
    for txn_id in ("t1", 'qu"ote\\', "ünï\u2028"):
        shown = written(with_transaction_id(stored(), txn_id, Filter()))
        assert shown["unsigned"] == {"transaction_id": txn_id}
        assert shown["content"] == PDU["content"]


def test_transaction_id_joins_an_existing_unsigned():
    """A stored event that has unsigned already (a redacted one) keeps it and gets the transaction id too."""
    pdu = {**PDU, "content": {}, "unsigned": {"redacted_because": {"type": "m.room.redaction"}}}
    shown = written(with_transaction_id(stored(pdu), "t9", Filter()))
    assert shown["unsigned"] == {"redacted_because": {"type": "m.room.redaction"}, "transaction_id": "t9"}


def test_event_fields_and_federation_format_are_built_from_the_pdu():
    """A filter asking for some fields, or the federation format, gets them (the stored JSON has neither)."""
    event = stored()
    fields = parse_filter({"event_fields": ["content.body", "type"]})
    assert written(event_serializer(fields)(event)) == {"content": {"body": PDU["content"]["body"]},
                                                        "type": "m.room.message"}
    federation = parse_filter({"event_format": "federation"})
    assert written(event_serializer(federation)(event))["hashes"] == {"sha256": "x"}


def test_an_event_read_without_its_pdu_still_has_its_content():
    """
    Sliding sync reads state without PDUs; a room's name or a hero's display
    name is then read from the stored client JSON, the same content.
    """
    client_json = sync_event_json(PDU, "$e", "!r:hs")
    without_pdu = StoredEvent(7, "$e", "!r:hs", None, client_json=client_json,
                              columns=("m.room.message", None, "@a:hs", None))
    assert without_pdu.content == PDU["content"]
    assert without_pdu.type == "m.room.message" and without_pdu.sender == "@a:hs"
