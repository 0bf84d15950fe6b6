"""
The spec's Canonical JSON examples (appendices.md, "Canonical JSON",
"Examples"), through the encoding every hash and signature uses; and the
spec's text, when it is here, still has exactly these examples.
"""
from __future__ import annotations

import json
import re

import pytest
from canonicaljson import encode_canonical_json

from ruma_tx.matrix.pdu_checks import InvalidPdu, check_pdu_format
from ruma_tx.matrix.room_versions import V5, V6, V12
from spec import SPEC_DIR, needs_spec

#: (given, produced) from the appendix, in its order.
VECTORS = [
    ("{}", "{}"),
    ('{\n    "one": 1,\n    "two": "Two"\n}', '{"one":1,"two":"Two"}'),
    ('{\n    "b": "2",\n    "a": "1"\n}', '{"a":"1","b":"2"}'),
    ('{"b":"2","a":"1"}', '{"a":"1","b":"2"}'),
    ('{"auth": {"success": true, "mxid": "@john.doe:example.com", "profile": {"display_name": "John Doe", '
     '"three_pids": [{"medium": "email", "address": "john.doe@example.org"}, '
     '{"medium": "msisdn", "address": "123456789"}]}}}',
     '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":'
     '[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},'
     '"success":true}}'),
    ('{\n    "a": "日本語"\n}', '{"a":"日本語"}'),
    ('{\n    "本": 2,\n    "日": 1\n}', '{"日":1,"本":2}'),
    ('{\n    "a": "\\u65E5"\n}', '{"a":"日"}'),
    ('{\n    "a": null\n}', '{"a":null}'),
    ('{\n    "a": -0,\n    "b": 1e10\n}', '{"a":0,"b":10000000000}'),
]

#: The one example with a number the grammar has no form for (an
#: exponent): canonical JSON permits no floats, so an event holding one is
#: refused (from room version 6) rather than re-encoded.
EXPONENT = VECTORS[-1]


@pytest.mark.parametrize("given, produced", VECTORS[:-1])
def test_appendix_examples_encode_as_the_spec_says(given, produced):
    assert encode_canonical_json(json.loads(given)) == produced.encode("utf-8")


def test_a_float_in_an_event_is_refused_from_room_version_6():
    pdu = {"type": "m.room.message", "room_id": "!r:example.org", "sender": "@a:example.org",
           "content": json.loads(EXPONENT[0]), "depth": 2, "origin_server_ts": 1,
           "prev_events": ["$p"], "auth_events": ["$a"], "hashes": {"sha256": "x"}, "signatures": {}}
    check_pdu_format(pdu, V5)  # tolerated before v6, as the spec's warning asks
    for version in (V6, V12):
        with pytest.raises(InvalidPdu) as refused:
            check_pdu_format(pdu, version)
        assert "float" in str(refused.value) or "canonical" in str(refused.value)


@needs_spec
def test_the_vectors_are_the_appendix_examples():
    text = (SPEC_DIR / "text" / "appendices.md").read_text()
    section = text.split("#### Examples", 1)[1].split("### Signing Details", 1)[0]
    blocks = re.findall(r"```json\n(.*?)\n```", section, re.S)
    pairs = list(zip(blocks[0::2], blocks[1::2]))
    assert [(json.loads(g), p) for g, p in pairs] == [(json.loads(g), p) for g, p in VECTORS]
