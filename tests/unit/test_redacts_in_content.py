"""L{ruma_tx.matrix.redaction.redacts_in_content}: the target of a redaction sent with /send."""
import pytest

from ruma_tx.matrix.errors import BadRequest
from ruma_tx.matrix.redaction import redacts_in_content


def test_the_target_is_content_redacts():
    """content.redacts names the event to redact; other keys do not matter."""
    assert redacts_in_content({"redacts": "$abc", "reason": "spam"}) == "$abc"


@pytest.mark.parametrize("content, errcode", [
    ({}, "M_MISSING_PARAM"),
    ({"redacts": None}, "M_MISSING_PARAM"),
    ({"redacts": 1}, "M_BAD_JSON"),
    ({"redacts": ["$abc"]}, "M_BAD_JSON"),
])
def test_a_missing_or_malformed_target_is_a_bad_request(content, errcode):
    """Without a string content.redacts there is nothing to redact: 400 with the errcode saying why."""
    with pytest.raises(BadRequest) as caught:
        redacts_in_content(content)
    assert caught.value.errcode == errcode
