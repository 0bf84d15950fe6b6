"""User-interactive auth (ruma_tx.services.uia) with an in-memory store and a fake clock."""
from __future__ import annotations

from dataclasses import replace

import pytest
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from ruma_tx.http.errors import status_code
from ruma_tx.matrix.errors import MatrixError
from ruma_tx.matrix.uia import (
    claimed_user_id,
    same_operation,
    stage_in_order,
    uia_request,
)
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

    async def create_session(self, session_id, user_id, action, now_ms, expires_ts, *,
                             method=None, path=None, params=None):
        self.sessions[session_id] = UiaSession(session_id, user_id, action, (), expires_ts,
                                               method, path, params)

    async def get_session(self, session_id, now_ms):
        session = self.sessions.get(session_id)
        if session is None or session.expires_ts <= now_ms:
            return None
        return session

    async def mark_completed(self, session_id, stage):
        session = self.sessions[session_id]
        if stage not in session.completed:
            self.sessions[session_id] = replace(session, completed=session.completed + (stage,))

    async def set_params(self, session_id, params):
        session = self.sessions[session_id]
        if session.params == "{}":
            self.sessions[session_id] = replace(session, params=params)

    async def set_password_hash(self, session_id, password_hash):
        session = self.sessions[session_id]
        if session.password_hash is None:
            self.sessions[session_id] = replace(session, password_hash=password_hash)

    async def claim_session(self, session_id):
        session = self.sessions.get(session_id)
        if session is None or session.claimed:
            return None
        self.sessions[session_id] = replace(session, claimed=True)
        return self.sessions[session_id]

    async def release_session(self, session_id):
        self.sessions[session_id] = replace(self.sessions[session_id], claimed=False)

    async def set_registered_user(self, session_id, user_id):
        self.sessions[session_id] = replace(self.sessions[session_id], registered_user_id=user_id)

    async def delete_session(self, session_id):
        return self.sessions.pop(session_id, None) is not None

    async def delete_expired(self, now_ms):
        for session_id, session in list(self.sessions.items()):
            if session.expires_ts <= now_ms:
                del self.sessions[session_id]


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


def authenticate(uia, auth=None, *, action="register", user_id=None, flows=((DUMMY,),),
                 request=None):
    body = {} if auth is None else {"auth": auth}
    return run(uia.authenticate(body, action=action, user_id=user_id,
                                flows=[list(f) for f in flows], server_name=SERVER,
                                request=request))


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
        "completed": [],
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
    """A session started for one action cannot complete another: 403 M_UNKNOWN, as Synapse."""
    uia, store, _, _ = make_uia()
    session = new_session(uia, action="register")
    error = refused(uia, {"type": DUMMY, "session": session}, action="delete_devices")
    assert (status_code(error), error.errcode) == (403, "M_UNKNOWN")
    assert store.sessions[session].completed == ()


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
    """A password stage naming a user other than the requester is 403 M_FORBIDDEN, unchecked."""
    uia, store, _, passwords = make_uia()
    flows = [[PASSWORD]]
    session = new_session(uia, action="delete_devices", user_id=ALICE, flows=flows)
    for auth in ({"type": PASSWORD, "session": session, "password": "secret", "user": "bob"},
                 {"type": PASSWORD, "session": session, "password": "secret",
                  "identifier": {"type": "m.id.user", "user": "@alice:elsewhere.org"}}):
        error = refused(uia, auth, action="delete_devices", user_id=ALICE, flows=flows)
        assert (status_code(error), error.errcode) == (403, "M_FORBIDDEN"), auth
    assert passwords.asked == []
    assert store.sessions[session].completed == ()


def test_password_stage_matches_the_localpart_case_insensitively():
    """The requester named with an upper-case localpart is still the requester, as at login."""
    uia, _, _, passwords = make_uia()
    flows = [[PASSWORD]]
    kwargs = {"action": "delete_devices", "user_id": ALICE, "flows": flows}
    session = new_session(uia, **kwargs)
    auth = {"type": PASSWORD, "session": session, "password": "secret",
            "identifier": {"type": "m.id.user", "user": "@Alice:example.org"}}
    assert authenticate(uia, auth, **kwargs) is None
    assert passwords.asked == [(ALICE, "secret")]


def test_malformed_password_stage_is_400_naming_the_field():
    """Wrong types in a password stage are 400s naming the member; nothing is checked or completed."""
    uia, store, _, passwords = make_uia()
    flows = [[PASSWORD]]
    kwargs = {"action": "delete_devices", "user_id": ALICE, "flows": flows}
    session = new_session(uia, **kwargs)
    user = {"type": "m.id.user", "user": "alice"}
    for extra, errcode, field in (
        ({"password": 5, "identifier": user}, "M_BAD_JSON", "auth.password"),
        ({"identifier": user}, "M_MISSING_PARAM", "auth.password"),
        ({"password": "secret", "identifier": "alice"}, "M_BAD_JSON", "auth.identifier"),
        ({"password": "secret", "identifier": {"type": 1, "user": "alice"}}, "M_BAD_JSON",
         "auth.identifier.type"),
        ({"password": "secret", "identifier": {"type": "m.id.user", "user": ["alice"]}},
         "M_BAD_JSON", "auth.identifier.user"),
        ({"password": "secret", "user": {"name": "alice"}}, "M_BAD_JSON", "auth.user"),
        ({"password": "sec\ud800ret", "identifier": user}, "M_BAD_JSON", "auth.password"),
    ):
        error = refused(uia, {"type": PASSWORD, "session": session, **extra}, **kwargs)
        assert (status_code(error), error.errcode) == (400, errcode), extra
        assert field in error.message, (extra, error.message)
    assert passwords.asked == []
    assert store.sessions[session].completed == ()


def test_third_party_identifier_is_403():
    """A password stage naming an email address (a 3PID we do not know) is 403, as the spec says."""
    uia, _, _, _ = make_uia()
    flows = [[PASSWORD]]
    kwargs = {"action": "delete_devices", "user_id": ALICE, "flows": flows}
    session = new_session(uia, **kwargs)
    auth = {"type": PASSWORD, "session": session, "password": "secret",
            "identifier": {"type": "m.id.thirdparty", "medium": "email", "address": "a@b.c"}}
    error = refused(uia, auth, **kwargs)
    assert (status_code(error), error.errcode) == (403, "M_FORBIDDEN")


def test_session_is_bound_to_its_request():
    """A session completes only the method, path and parameters it was started with."""
    uia, store, _, _ = make_uia()
    started = uia_request("DELETE", "/_matrix/client/v3/devices/A", {})
    session = new_session(uia, request=started)
    for other in (uia_request("DELETE", "/_matrix/client/v3/devices/B", {}),
                  uia_request("POST", "/_matrix/client/v3/devices/A", {})):
        error = refused(uia, {"type": DUMMY, "session": session}, request=other)
        assert (status_code(error), error.errcode) == (403, "M_UNKNOWN"), other
        assert "changed" in error.message
    assert store.sessions[session].completed == ()
    assert authenticate(uia, {"type": DUMMY, "session": session}, request=started) is None


def test_session_is_bound_to_its_parameters():
    """Other parameters are another request; a request with none (only auth) matches, as Synapse lets it."""
    uia, _, _, _ = make_uia()
    path = "/_matrix/client/v3/delete_devices"
    started = uia_request("POST", path, {"devices": ["A"]})
    session = new_session(uia, request=started)
    error = refused(uia, {"type": DUMMY, "session": session},
                    request=uia_request("POST", path, {"devices": ["B"]}))
    assert (status_code(error), error.errcode) == (403, "M_UNKNOWN")
    same = uia_request("POST", path, {"devices": ["A"], "auth": {"type": DUMMY}})
    assert same == started
    assert authenticate(uia, {"type": DUMMY, "session": session},
                        request=uia_request("POST", path, {})) is None


def test_session_without_parameters_takes_the_first_given():
    """A session started with an empty body is bound to the parameters of its next request."""
    uia, store, _, _ = make_uia()
    path = "/_matrix/client/v3/register"
    session = new_session(uia, request=uia_request("POST", path, {}))
    first = uia_request("POST", path, {"username": "alice"})
    refused(uia, {"session": session}, request=first)
    assert store.sessions[session].params == first.params
    error = refused(uia, {"type": DUMMY, "session": session},
                    request=uia_request("POST", path, {"username": "bob"}))
    assert (status_code(error), error.errcode) == (403, "M_UNKNOWN")


def test_secrets_are_not_remembered():
    """The parameters a session keeps leave out auth and passwords."""
    request = uia_request("POST", "/p", {"password": "hunter2", "new_password": "x",
                                         "guest_access_token": "t", "auth": {"a": 1}, "b": 2})
    assert request.params == '{"b":2}'
    assert same_operation(request, uia_request("POST", "/p", {"b": 2, "password": "other"}))


def test_auth_without_type_completes_a_finished_session():
    """Retrying with only the session once every stage is done completes the request."""
    uia, store, _, _ = make_uia()
    flows = [[PASSWORD, DUMMY]]
    kwargs = {"action": "delete_devices", "user_id": ALICE, "flows": flows}
    session = new_session(uia, **kwargs)
    run(store.mark_completed(session, PASSWORD))
    run(store.mark_completed(session, DUMMY))
    assert authenticate(uia, {"session": session}, **kwargs) is None
    assert store.sessions == {}


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
    kwargs = {"action": "delete_devices", "user_id": ALICE, "flows": flows}
    session = new_session(uia, **kwargs)
    error = refused(uia, {"type": PASSWORD, "session": session, "password": "secret"}, **kwargs)
    assert (status_code(error), error.errcode, error.fields["completed"]) == (401, None, [PASSWORD])
    assert authenticate(uia, {"type": DUMMY, "session": session}, **kwargs) is None


def test_stages_must_follow_the_flow_order():
    """A stage attempted before the earlier stages of its flow answers 401 and completes nothing."""
    uia, store, _, _ = make_uia()
    flows = [[PASSWORD, DUMMY]]
    kwargs = {"action": "delete_devices", "user_id": ALICE, "flows": flows}
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
