"""
Registration tokens through the real daemon: the admin API that manages
them (Synapse's shapes) and token-authenticated registration (the spec's
m.login.registration_token stage and validity check).
"""
import re
import time
from urllib.parse import quote

import pytest
import pytest_twisted
from admin_helpers import ADMIN, assert_shape, register_admin
from conftest import PASSWORD, unique_localpart
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

TOKENS = f"{ADMIN}/v1/registration_tokens"
VALIDITY = "/_matrix/client/v1/register/m.login.registration_token/validity"
TOKEN_STAGE = "m.login.registration_token"

TOKEN_SHAPE = {"token": str, "uses_allowed": (int, type(None)), "pending": int, "completed": int,
               "expiry_time": (int, type(None))}


@pytest.fixture(scope="module")
def token_server(start_homeserver):
    """A daemon whose registration requires a token."""
    return start_homeserver("[registration]\nrequires_token = true\n[rate_limits]\nenabled = false\n")


@pytest.fixture
def token_client(token_server, make_client):
    return make_client(token_server)


async def new_token(client, admin: dict, **body) -> dict:
    response = await client.request("POST", f"{TOKENS}/new", body, token=admin["access_token"])
    assert response.code == 200, response
    assert_shape(response.json, TOKEN_SHAPE)
    return response.json


async def get_token(client, admin: dict, token: str) -> dict:
    response = await client.request("GET", f"{TOKENS}/{quote(token)}", token=admin["access_token"])
    assert response.code == 200, response
    return response.json


async def is_valid(client, token: str) -> bool:
    response = await client.request("GET", VALIDITY, query={"token": token})
    assert response.code == 200, response
    return response.json["valid"]


async def register_with_token(client, token: str):
    """A registration's challenge, then its token stage: the challenge and the final response."""
    body = {"username": unique_localpart(), "password": PASSWORD}
    challenge = await client.request("POST", "register", body)
    assert challenge.code == 401, challenge
    body["auth"] = {"type": TOKEN_STAGE, "token": token, "session": challenge.json["session"]}
    return challenge, await client.request("POST", "register", body)


@pytest_twisted.ensureDeferred
async def test_a_token_of_one_use_registers_one_account(token_client):
    """The flows ask for the token; it registers once, then is used up (valid, then invalid)."""
    admin = await register_admin(token_client)
    token = (await new_token(token_client, admin, token=unique_localpart("tok"), uses_allowed=1))["token"]
    assert await is_valid(token_client, token)

    challenge, registered = await register_with_token(token_client, token)
    assert challenge.json["flows"] == [{"stages": [TOKEN_STAGE]}]
    assert registered.code == 200, registered
    whoami = await token_client.request("GET", "account/whoami", token=registered.json["access_token"])
    assert whoami.json["user_id"] == registered.json["user_id"]
    assert await get_token(token_client, admin, token) == {
        "token": token, "uses_allowed": 1, "pending": 0, "completed": 1, "expiry_time": None}
    assert not await is_valid(token_client, token)

    _, refused = await register_with_token(token_client, token)
    assert refused.code == 401, refused
    assert refused.json["errcode"] == "M_FORBIDDEN"
    assert refused.json["completed"] == [] and refused.json["flows"] == [{"stages": [TOKEN_STAGE]}]


@pytest_twisted.ensureDeferred
async def test_registration_without_the_token_stage_is_refused(token_client):
    """The dummy stage no longer registers; an unknown token neither; a stage without a token is a 400."""
    body = {"username": unique_localpart(), "password": PASSWORD}
    challenge = await token_client.request("POST", "register", body)
    session = challenge.json["session"]
    dummy = await token_client.request("POST", "register", {
        **body, "auth": {"type": "m.login.dummy", "session": session}})
    assert (dummy.code, dummy.json["errcode"]) == (401, "M_UNRECOGNIZED"), dummy
    unknown = await token_client.request("POST", "register", {
        **body, "auth": {"type": TOKEN_STAGE, "token": "no-such-token", "session": session}})
    assert (unknown.code, unknown.json["errcode"]) == (401, "M_FORBIDDEN"), unknown
    missing = await token_client.request("POST", "register", {
        **body, "auth": {"type": TOKEN_STAGE, "session": session}})
    assert (missing.code, missing.json["errcode"]) == (400, "M_MISSING_PARAM"), missing
    assert not await is_valid(token_client, "no-such-token")


@pytest_twisted.ensureDeferred
async def test_two_registrations_racing_for_the_last_use_register_one(token_client):
    """A use is held from the token stage on: of two concurrent registrations, one gets the last use."""
    admin = await register_admin(token_client)
    token = (await new_token(token_client, admin, uses_allowed=1))["token"]
    results = await defer.gatherResults([
        defer.ensureDeferred(register_with_token(token_client, token)) for _ in range(2)])
    codes = sorted(final.code for _, final in results)
    assert codes == [200, 401], results
    assert (await get_token(token_client, admin, token))["completed"] == 1


@pytest_twisted.ensureDeferred
async def test_an_expired_token_is_invalid(token_client):
    """Past its expiry_time a token neither validates nor registers; a later one still does."""
    admin = await register_admin(token_client)
    now_ms = int(time.time() * 1000)
    soon = (await new_token(token_client, admin, expiry_time=now_ms + 1000))["token"]
    later = (await new_token(token_client, admin, expiry_time=now_ms + 3_600_000))["token"]
    await deferLater(reactor, 1.5, lambda: None)  # past the first expiry
    assert not await is_valid(token_client, soon)
    assert await is_valid(token_client, later)
    _, refused = await register_with_token(token_client, soon)
    assert (refused.code, refused.json["errcode"]) == (401, "M_FORBIDDEN"), refused
    invalid = await token_client.request("GET", TOKENS, query={"valid": "false"},
                                         token=admin["access_token"])
    assert soon in {t["token"] for t in invalid.json["registration_tokens"]}
    assert later not in {t["token"] for t in invalid.json["registration_tokens"]}
    _, registered = await register_with_token(token_client, later)
    assert registered.code == 200, registered


@pytest_twisted.ensureDeferred
async def test_admin_lists_updates_and_deletes_tokens(token_client):
    """Synapse's shapes: a generated token, the valid filter, a partial update, delete then 404."""
    admin = await register_admin(token_client)
    created = await new_token(token_client, admin)
    token = created["token"]
    assert re.fullmatch(r"[A-Za-z0-9._~-]{16}", token), token
    assert created == {"token": token, "uses_allowed": None, "pending": 0, "completed": 0, "expiry_time": None}
    assert len((await new_token(token_client, admin, length=40))["token"]) == 40

    listed = await token_client.request("GET", TOKENS, token=admin["access_token"])
    assert_shape(listed.json, {"registration_tokens": [TOKEN_SHAPE]})
    assert created in listed.json["registration_tokens"]

    path = f"{TOKENS}/{quote(token)}"
    expiry = int(time.time() * 1000) + 86_400_000
    updated = await token_client.request("PUT", path, {"uses_allowed": 0, "expiry_time": expiry},
                                         token=admin["access_token"])
    assert updated.json == {**created, "uses_allowed": 0, "expiry_time": expiry}, updated
    unchanged = await token_client.request("PUT", path, {}, token=admin["access_token"])
    assert unchanged.json == updated.json
    for valid, listed_there in (("true", False), ("false", True)):
        filtered = await token_client.request("GET", TOKENS, query={"valid": valid}, token=admin["access_token"])
        assert (token in {t["token"] for t in filtered.json["registration_tokens"]}) == listed_there, valid
    reopened = await token_client.request("PUT", path, {"uses_allowed": None}, token=admin["access_token"])
    assert reopened.json["uses_allowed"] is None and await is_valid(token_client, token)

    deleted = await token_client.request("DELETE", path, token=admin["access_token"])
    assert (deleted.code, deleted.json) == (200, {})
    for method in ("GET", "PUT", "DELETE"):
        gone = await token_client.request(method, path, {} if method == "PUT" else None,
                                          token=admin["access_token"])
        assert (gone.code, gone.json["errcode"]) == (404, "M_NOT_FOUND"), (method, gone)
    assert not await is_valid(token_client, token)


BAD_NEW_TOKENS = [
    {"token": "has space"}, {"token": "x" * 65}, {"token": ""}, {"token": 5},
    {"length": 0}, {"length": 65}, {"length": "16"}, {"length": True},
    {"uses_allowed": -1}, {"uses_allowed": 1.5}, {"uses_allowed": "3"}, {"uses_allowed": 2**31},
    {"expiry_time": 1000}, {"expiry_time": "tomorrow"},
]


@pytest_twisted.ensureDeferred
async def test_bad_new_token_requests_are_refused(token_client):
    """Each bad value is a 400 M_INVALID_PARAM (as Synapse), and creates nothing."""
    admin = await register_admin(token_client)
    before = await token_client.request("GET", TOKENS, token=admin["access_token"])
    for body in BAD_NEW_TOKENS:
        response = await token_client.request("POST", f"{TOKENS}/new", body, token=admin["access_token"])
        assert (response.code, response.json["errcode"]) == (400, "M_INVALID_PARAM"), (body, response)
    after = await token_client.request("GET", TOKENS, token=admin["access_token"])
    assert after.json == before.json


@pytest_twisted.ensureDeferred
async def test_taken_token_bad_update_and_non_admins_are_refused(token_client):
    admin = await register_admin(token_client)
    token = (await new_token(token_client, admin, token=unique_localpart("taken")))["token"]
    again = await token_client.request("POST", f"{TOKENS}/new", {"token": token}, token=admin["access_token"])
    assert (again.code, again.json["errcode"]) == (400, "M_INVALID_PARAM"), again
    past = await token_client.request("PUT", f"{TOKENS}/{token}", {"expiry_time": 1},
                                      token=admin["access_token"])
    assert (past.code, past.json["errcode"]) == (400, "M_INVALID_PARAM"), past
    bad_filter = await token_client.request("GET", TOKENS, query={"valid": "yes"}, token=admin["access_token"])
    assert (bad_filter.code, bad_filter.json["errcode"]) == (400, "M_INVALID_PARAM"), bad_filter

    _, registered = await register_with_token(token_client, token)
    user = registered.json
    for method, path in (("GET", TOKENS), ("POST", f"{TOKENS}/new"), ("DELETE", f"{TOKENS}/{token}")):
        refused = await token_client.request(method, path, {} if method == "POST" else None,
                                             token=user["access_token"])
        assert (refused.code, refused.json["errcode"]) == (403, "M_FORBIDDEN"), (method, refused)
    assert (await get_token(token_client, admin, token))["completed"] == 1


@pytest_twisted.ensureDeferred
async def test_no_token_opens_a_closed_registration(start_homeserver, make_client):
    """As Synapse: with registration disabled, tokens register nobody and the validity check is a 403."""
    client = make_client(start_homeserver("[registration]\nenabled = false\nrequires_token = true\n"))
    admin = await register_admin(client)
    token = (await new_token(client, admin))["token"]
    validity = await client.request("GET", VALIDITY, query={"token": token})
    assert (validity.code, validity.json["errcode"]) == (403, "M_FORBIDDEN"), validity
    refused = await client.request("POST", "register", {"username": unique_localpart(), "password": PASSWORD})
    assert (refused.code, refused.json["errcode"]) == (403, "M_FORBIDDEN"), refused
