"""User-interactive auth (ruma_tx.services.uia) with an in-memory store and a fake clock."""
from __future__ import annotations

from dataclasses import replace

import pytest
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from ruma_tx.http.errors import status_code
from ruma_tx.matrix.errors import MatrixError
from ruma_tx.matrix.uia import claimed_user_id, stage_in_order
from ruma_tx.services.ports.accounts import UiaSession
from ruma_tx.services.uia import (
    DUMMY,
    PASSWORD,
    SESSION_LIFETIME_MS,
    UserInteractiveAuth,
)

SERVER = "example.org"
ALICE = "@alice:example.org"


class FakeUiaStore:
    """The L{ruma_tx.storage.uia.UiaStore} interface, in a dict."""

    def __init__(self):
        self.sessions: dict[str, UiaSession] = {}

    async def create_session(self, session_id, user_id, action, now_ms, expires_ts):
        self.sessions[session_id] = UiaSession(session_id, user_id, action, (), expires_ts)

    async def get_session(self, session_id, now_ms):
        session = self.sessions.get(session_id)
        if session is None or session.expires_ts <= now_ms:
            return None
        return session

    async def mark_completed(self, session_id, stage):
        session = self.sessions[session_id]
        if stage not in session.completed:
            self.sessions[session_id] = replace(session, completed=session.completed + (stage,))

    async def delete_session(self, session_id):
        return self.sessions.pop(session_id, None) is not None


class Passwords:
    """Knows one user's password; records what it was asked."""

    def __init__(self, user_id=ALICE, password="secret"):
        self._user_id = user_id
        self._password = password
        self.asked = []

    async def check(self, user_id, password):
        self.asked.append((user_id, password))
        return (user_id, password) == (self._user_id, self._password)


def run(coroutine):
    """Run a coroutine that never waits (every fake answers at once); return or raise."""
    results = []
    ensureDeferred(coroutine).addBoth(results.append)
    assert results, "the coroutine waited on something"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def make_uia():
    store = FakeUiaStore()
    clock = Clock()
    clock.advance(1_000)
    passwords = Passwords()
    return UserInteractiveAuth(store, passwords.check, clock), store, clock, passwords


def authenticate(uia, auth=None, *, action="register", user_id=None, flows=((DUMMY,),)):
    body = {} if auth is None else {"auth": auth}
    return run(uia.authenticate(body, action=action, user_id=user_id,
                                flows=[list(f) for f in flows], server_name=SERVER))


def refused(uia, auth=None, **kwargs) -> MatrixError:
    with pytest.raises(MatrixError) as caught:
        authenticate(uia, auth, **kwargs)
    return caught.value


def new_session(uia, **kwargs) -> str:
    return refused(uia, **kwargs).fields["session"]


def test_missing_auth_starts_a_session():
    """A request without auth gets a 401 listing the flows and a new stored session."""
    uia, store, _, _ = make_uia()
    error = refused(uia, flows=[[DUMMY], [PASSWORD, DUMMY]])
    assert status_code(error) == 401
    assert error.errcode is None
    assert error.to_json() == {
        "flows": [{"stages": [DUMMY]}, {"stages": [PASSWORD, DUMMY]}],
        "params": {},
        "session": error.fields["session"],
    }
    assert list(store.sessions) == [error.fields["session"]]
    assert store.sessions[error.fields["session"]].action == "register"


def test_auth_without_type_keeps_the_session():
    """Auth holding only the session answers the same 401 with that session."""
    uia, store, _, _ = make_uia()
    session = new_session(uia)
    error = refused(uia, {"session": session})
    assert (status_code(error), error.fields["session"]) == (401, session)
    assert len(store.sessions) == 1


def test_dummy_completes_and_consumes_the_session():
    """The dummy stage completes a dummy flow; the session cannot be used again."""
    uia, store, _, _ = make_uia()
    session = new_session(uia)
    assert authenticate(uia, {"type": DUMMY, "session": session}) is None
    assert store.sessions == {}
    error = refused(uia, {"type": DUMMY, "session": session})
    assert (status_code(error), error.errcode) == (400, "M_UNKNOWN")


def test_unknown_session_is_refused():
    """A session id the server never issued answers 400, not a 401."""
    uia, _, _, _ = make_uia()
    error = refused(uia, {"type": DUMMY, "session": "made-up"})
    assert (status_code(error), error.errcode) == (400, "M_UNKNOWN")


def test_session_of_another_action_is_refused():
    """A session started for one action cannot complete another."""
    uia, _, _, _ = make_uia()
    session = new_session(uia, action="register")
    error = refused(uia, {"type": DUMMY, "session": session}, action="delete_devices")
    assert (status_code(error), error.errcode) == (400, "M_UNKNOWN")


def test_session_of_another_user_is_refused():
    """A session started for one user cannot be completed for another."""
    uia, _, _, _ = make_uia()
    session = new_session(uia, action="delete_devices", user_id=ALICE)
    error = refused(uia, {"type": DUMMY, "session": session},
                    action="delete_devices", user_id="@bob:example.org")
    assert (status_code(error), error.errcode) == (400, "M_UNKNOWN")


def test_session_expires():
    """A session past its lifetime is unknown; one just before it still works."""
    uia, _, clock, _ = make_uia()
    session = new_session(uia)
    clock.advance(SESSION_LIFETIME_MS / 1000 - 1)
    assert authenticate(uia, {"type": DUMMY, "session": session}) is None
    session = new_session(uia)
    clock.advance(SESSION_LIFETIME_MS / 1000)
    error = refused(uia, {"type": DUMMY, "session": session})
    assert (status_code(error), error.errcode) == (400, "M_UNKNOWN")


def test_stage_not_in_flows():
    """A stage no flow offers answers 401 M_UNRECOGNIZED and completes nothing."""
    uia, store, _, _ = make_uia()
    session = new_session(uia)
    error = refused(uia, {"type": "m.login.recaptcha", "session": session})
    assert (status_code(error), error.errcode, error.fields["session"]) == (401, "M_UNRECOGNIZED", session)
    assert store.sessions[session].completed == ()


def test_wrong_password_is_refused():
    """A wrong password answers 401 M_FORBIDDEN with the flows, and the session stays usable."""
    uia, store, _, passwords = make_uia()
    flows = [[PASSWORD]]
    session = new_session(uia, action="delete_devices", user_id=ALICE, flows=flows)
    auth = {"type": PASSWORD, "session": session, "password": "wrong",
            "identifier": {"type": "m.id.user", "user": "alice"}}
    error = refused(uia, auth, action="delete_devices", user_id=ALICE, flows=flows)
    assert (status_code(error), error.errcode) == (401, "M_FORBIDDEN")
    assert error.fields["flows"] == [{"stages": [PASSWORD]}]
    assert passwords.asked == [(ALICE, "wrong")]
    assert session in store.sessions


def test_right_password_completes():
    """The account's own password completes the password stage."""
    uia, store, _, _ = make_uia()
    flows = [[PASSWORD]]
    session = new_session(uia, action="delete_devices", user_id=ALICE, flows=flows)
    auth = {"type": PASSWORD, "session": session, "password": "secret",
            "identifier": {"type": "m.id.user", "user": ALICE}}
    assert authenticate(uia, auth, action="delete_devices", user_id=ALICE, flows=flows) is None
    assert store.sessions == {}


def test_password_for_another_user_is_refused():
    """A password stage naming a user other than the one who must authenticate fails."""
    uia, _, _, passwords = make_uia()
    flows = [[PASSWORD]]
    session = new_session(uia, action="delete_devices", user_id=ALICE, flows=flows)
    auth = {"type": PASSWORD, "session": session, "password": "secret", "user": "bob"}
    error = refused(uia, auth, action="delete_devices", user_id=ALICE, flows=flows)
    assert (status_code(error), error.errcode) == (401, "M_FORBIDDEN")
    assert passwords.asked == []


def test_password_stage_without_a_user_fails():
    """With no account to check against (registration), the password stage never succeeds."""
    uia, _, _, _ = make_uia()
    flows = [[PASSWORD]]
    session = new_session(uia, flows=flows)
    error = refused(uia, {"type": PASSWORD, "session": session, "password": "secret"}, flows=flows)
    assert (status_code(error), error.errcode) == (401, "M_FORBIDDEN")


def test_multi_stage_flow_reports_completed_stages():
    """After the first of two stages the 401 lists it as completed; the second finishes."""
    uia, _, _, _ = make_uia()
    flows = [[PASSWORD, DUMMY]]
    kwargs = dict(action="delete_devices", user_id=ALICE, flows=flows)
    session = new_session(uia, **kwargs)
    error = refused(uia, {"type": PASSWORD, "session": session, "password": "secret"}, **kwargs)
    assert (status_code(error), error.errcode, error.fields["completed"]) == (401, None, [PASSWORD])
    assert authenticate(uia, {"type": DUMMY, "session": session}, **kwargs) is None


def test_stages_must_follow_the_flow_order():
    """A stage attempted before the earlier stages of its flow answers 401 and completes nothing."""
    uia, store, _, _ = make_uia()
    flows = [[PASSWORD, DUMMY]]
    kwargs = dict(action="delete_devices", user_id=ALICE, flows=flows)
    session = new_session(uia, **kwargs)
    error = refused(uia, {"type": DUMMY, "session": session}, **kwargs)
    assert (status_code(error), error.errcode) == (401, "M_FORBIDDEN")
    assert store.sessions[session].completed == ()


def test_malformed_auth_is_bad_json():
    """An auth that is not an object, or a non-string session or type, answers 400 M_BAD_JSON."""
    uia, _, _, _ = make_uia()
    for auth in ["dummy", {"session": 5}, {"type": ["m.login.dummy"]}]:
        error = refused(uia, auth)
        assert (status_code(error), error.errcode) == (400, "M_BAD_JSON"), auth


def test_stage_in_order():
    """The next stage of any flow, or a completed one, may be attempted; others may not."""
    flows = [["a", "b"], ["c"]]
    assert stage_in_order(flows, (), "a")
    assert stage_in_order(flows, (), "c")
    assert not stage_in_order(flows, (), "b")
    assert stage_in_order(flows, ("a",), "b")
    assert stage_in_order(flows, ("a",), "a")


def test_claimed_user_id():
    """The identifier or legacy user field names a user, as a localpart or a full id."""
    assert claimed_user_id({"identifier": {"type": "m.id.user", "user": "bob"}}, SERVER) == \
        "@bob:example.org"
    assert claimed_user_id({"user": "@bob:example.org"}, SERVER) == "@bob:example.org"
    assert claimed_user_id({"identifier": {"type": "m.id.thirdparty"}}, SERVER) is None
    assert claimed_user_id({}, SERVER) is None
