"""
Registration tokens' pure rules (ruma_tx.matrix.registration_tokens), what
a suspended account may send (ruma_tx.matrix.account_restrictions), and the
UIA's checked stages (the token stage is asked once per session).
"""
from __future__ import annotations

import pytest
from test_uia import FakeUiaStore, Passwords, run
from twisted.internet.task import Clock

from ruma_tx.http.errors import status_code
from ruma_tx.matrix.account_restrictions import suspended_may_send
from ruma_tx.matrix.errors import MatrixError
from ruma_tx.matrix.registration_tokens import (
    DEFAULT_TOKEN_LENGTH,
    REGISTRATION_TOKEN,
    NewToken,
    is_token_text,
    new_token_request,
    stage_token,
    token_changes,
)
from ruma_tx.services.uia import UserInteractiveAuth

NOW = 1_700_000_000_000
ALICE = "@alice:example.org"


def invalid(call, *args) -> MatrixError:
    with pytest.raises(MatrixError) as caught:
        call(*args)
    return caught.value


@pytest.mark.parametrize("token, ok", [
    ("abc", True), ("A-Z_a.z~09", True), ("x" * 64, True),
    ("", False), ("x" * 65, False), ("has space", False), ("slash/", False), ("é", False),
])
def test_token_grammar(token, ok):
    assert is_token_text(token) is ok


def test_an_empty_request_asks_for_a_generated_unlimited_token():
    assert new_token_request({}, NOW) == NewToken(None, DEFAULT_TOKEN_LENGTH, None, None)
    assert new_token_request({"token": None, "length": None, "uses_allowed": None, "expiry_time": None},
                             NOW) == NewToken(None, DEFAULT_TOKEN_LENGTH, None, None)


def test_a_full_request_is_kept():
    body = {"token": "abc", "length": 5, "uses_allowed": 0, "expiry_time": NOW}
    assert new_token_request(body, NOW) == NewToken("abc", 5, 0, NOW)


@pytest.mark.parametrize("body", [
    {"token": "a b"}, {"token": ["abc"]}, {"length": 0}, {"length": 65}, {"length": 2.0},
    {"length": False}, {"uses_allowed": -1}, {"uses_allowed": True}, {"uses_allowed": 2**31},
    {"expiry_time": NOW - 1}, {"expiry_time": "soon"}, {"expiry_time": 2**63},
])
def test_bad_values_are_invalid_params(body):
    error = invalid(new_token_request, body, NOW)
    assert (status_code(error), error.errcode) == (400, "M_INVALID_PARAM")


def test_changes_hold_only_the_fields_given():
    assert token_changes({}, NOW) == {}
    assert token_changes({"uses_allowed": None}, NOW) == {"uses_allowed": None}
    assert token_changes({"expiry_time": NOW + 1, "other": 1}, NOW) == {"expiry_time": NOW + 1}


def test_the_stage_needs_a_string_token():
    assert stage_token({"type": REGISTRATION_TOKEN, "token": "abc"}) == "abc"
    assert invalid(stage_token, {"type": REGISTRATION_TOKEN}).errcode == "M_MISSING_PARAM"
    assert invalid(stage_token, {"type": REGISTRATION_TOKEN, "token": 1}).errcode == "M_BAD_JSON"


@pytest.mark.parametrize("event_type, state_key, content, allowed", [
    ("m.room.redaction", None, {}, True),
    ("m.room.member", ALICE, {"membership": "leave"}, True),
    ("m.room.member", ALICE, {"membership": "join"}, False),
    ("m.room.member", "@bob:example.org", {"membership": "leave"}, False),  # a kick
    ("m.room.member", None, {"membership": "leave"}, False),  # not state
    ("m.room.message", None, {"body": "hi"}, False),
    ("m.room.topic", "", {"topic": "t"}, False),
])
def test_what_a_suspended_account_may_send(event_type, state_key, content, allowed):
    assert suspended_may_send(event_type, state_key, ALICE, content) is allowed


class Tokens:
    """A token stage check that accepts one token and counts what it was asked."""

    def __init__(self):
        self.asked = []

    async def check(self, auth, session):
        self.asked.append(auth["token"])
        return None if auth["token"] == "good" else "Invalid registration token"


def test_a_checked_stage_is_asked_until_passed_then_never_again():
    tokens = Tokens()
    uia = UserInteractiveAuth(FakeUiaStore(), Passwords().check, Clock(),
                              stages={REGISTRATION_TOKEN: tokens.check})
    flows = [[REGISTRATION_TOKEN]]
    session = run(uia.begin(None, action="register", user_id=None, request=None))

    def attempt(token):
        current = run(uia.session(session.session_id))
        return run(uia.advance(current, {"type": REGISTRATION_TOKEN, "token": token,
                                         "session": session.session_id},
                               flows=flows, server_name="example.org"))

    error = invalid(attempt, "bad")
    assert (status_code(error), error.errcode, error.fields["completed"]) == (401, "M_FORBIDDEN", [])
    assert attempt("good") == (REGISTRATION_TOKEN,)
    assert attempt("good") == (REGISTRATION_TOKEN,)  # a retry: the use is not taken twice
    assert tokens.asked == ["bad", "good"]
