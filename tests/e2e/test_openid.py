"""
OpenID through the real daemon: a user requests a token, and an
integration exchanges it at /_matrix/federation/v1/openid/userinfo, on the
client listener and on a listener serving only the "openid" resource.
"""
from __future__ import annotations

import types

import psycopg2
import pytest
import pytest_twisted
from conftest import free_port

USERINFO = "/_matrix/federation/v1/openid/userinfo"


async def request_token(client, user: dict, body=None):
    return await client.request("POST", f"user/{user['user_id']}/openid/request_token",
                                {} if body is None else body, token=user["access_token"])


async def issued_token(client, user: dict) -> dict:
    response = await request_token(client, user)
    assert response.code == 200, response
    return response.json


async def userinfo(client, token: str | None):
    return await client.request("GET", USERINFO, query={} if token is None else {"access_token": token})


def execute(dsn: str, statement: str, args=()) -> int:
    """Run one statement on the daemon's database; the number of rows it touched."""
    conn = psycopg2.connect(dsn, connect_timeout=10)
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute(statement, args)
            return cursor.rowcount
    finally:
        conn.close()


@pytest_twisted.ensureDeferred
async def test_a_fresh_token_tells_an_integration_who_the_user_is(client):
    """The token response is the spec's, and userinfo answers the token's user as sub."""
    alice = await client.register()
    token = await issued_token(client, alice)
    assert token["token_type"] == "Bearer"
    assert token["matrix_server_name"] == client.server.server_name
    assert token["expires_in"] == 3600
    response = await userinfo(client, token["access_token"])
    assert response.code == 200, response
    assert response.json == {"sub": alice["user_id"]}


@pytest_twisted.ensureDeferred
async def test_each_request_gets_its_own_token(client):
    """Two requests give two different tokens, both valid."""
    alice = await client.register()
    first, second = await issued_token(client, alice), await issued_token(client, alice)
    assert first["access_token"] != second["access_token"]
    for token in (first, second):
        assert (await userinfo(client, token["access_token"])).json == {"sub": alice["user_id"]}


@pytest_twisted.ensureDeferred
async def test_a_token_for_another_user_is_refused(client):
    """Asking for a token in someone else's name is 403 M_FORBIDDEN."""
    alice, bob = await client.register(), await client.register()
    response = await client.request("POST", f"user/{bob['user_id']}/openid/request_token", {},
                                    token=alice["access_token"])
    assert response.code == 403, response
    assert response.json["errcode"] == "M_FORBIDDEN"


@pytest_twisted.ensureDeferred
async def test_no_body_is_accepted_but_a_body_that_is_not_json_is_not(client):
    """As Synapse, an empty body is fine; a body that is not JSON is 400 M_NOT_JSON."""
    alice = await client.register()
    empty = await request_token(client, alice, b"")
    assert empty.code == 200, empty
    garbage = await request_token(client, alice, b"{not json")
    assert garbage.code == 400 and garbage.json["errcode"] == "M_NOT_JSON", garbage


@pytest.mark.parametrize("token", ["not-a-token", ""])
@pytest_twisted.ensureDeferred
async def test_a_wrong_token_is_refused(client, token):
    """An unknown token is 401 M_UNKNOWN_TOKEN (an empty one: M_MISSING_TOKEN, as Synapse)."""
    response = await userinfo(client, token)
    assert response.code == 401, response
    assert response.json["errcode"] == ("M_UNKNOWN_TOKEN" if token else "M_MISSING_TOKEN")


@pytest_twisted.ensureDeferred
async def test_without_a_token_userinfo_is_401(client):
    """No access_token at all: 401 M_MISSING_TOKEN."""
    response = await userinfo(client, None)
    assert response.code == 401, response
    assert response.json["errcode"] == "M_MISSING_TOKEN"


@pytest_twisted.ensureDeferred
async def test_the_client_access_token_is_not_an_openid_token(client):
    """A client access token does not pass userinfo, and an OpenID token does not pass the client API."""
    alice = await client.register()
    assert (await userinfo(client, alice["access_token"])).code == 401
    token = await issued_token(client, alice)
    whoami = await client.request("GET", "account/whoami", token=token["access_token"])
    assert whoami.code == 401, whoami
    again = await request_token(client, {**alice, "access_token": token["access_token"]})
    assert again.code == 401, again


@pytest_twisted.ensureDeferred
async def test_an_expired_token_is_refused_and_purged(client):
    """Past its expiry a token is 401 M_UNKNOWN_TOKEN, and issuing the next token deletes it."""
    alice = await client.register()
    token = await issued_token(client, alice)
    dsn = client.server.dsn
    assert execute(dsn, "UPDATE openid_tokens SET expires_ts = 1 WHERE user_id = %s", (alice["user_id"],)) == 1
    response = await userinfo(client, token["access_token"])
    assert response.code == 401, response
    assert response.json["errcode"] == "M_UNKNOWN_TOKEN"
    await issued_token(client, alice)
    assert execute(dsn, "SELECT 1 FROM openid_tokens WHERE user_id = %s", (alice["user_id"],)) == 1


@pytest_twisted.ensureDeferred
async def test_tokens_are_stored_hashed(client):
    """The database holds no token as issued."""
    alice = await client.register()
    token = await issued_token(client, alice)
    assert execute(client.server.dsn, "SELECT 1 FROM openid_tokens WHERE token_hash = %s",
                   (token["access_token"],)) == 0
    assert execute(client.server.dsn, "SELECT 1 FROM openid_tokens WHERE user_id = %s",
                   (alice["user_id"],)) == 1


@pytest_twisted.ensureDeferred
async def test_a_deactivated_users_token_is_refused(client):
    """Once the account is deactivated, its OpenID tokens no longer identify it."""
    alice = await client.register()
    token = await issued_token(client, alice)
    response = await client.with_password_uia("POST", "account/deactivate", {}, alice)
    assert response.code == 200, response
    assert (await userinfo(client, token["access_token"])).code == 401


@pytest_twisted.ensureDeferred
async def test_a_listener_serving_only_openid(start_homeserver, make_client):
    """A listener with resources = ["openid"] answers userinfo and nothing of the client API."""
    port = free_port()
    server = start_homeserver(
        f'[[listeners]]\nendpoint = "tcp:{port}:interface=127.0.0.1"\nresources = ["openid"]\n')
    client = make_client(server)
    openid_only = make_client(types.SimpleNamespace(base_url=f"http://127.0.0.1:{port}"))
    alice = await client.register()
    token = await issued_token(client, alice)
    response = await userinfo(openid_only, token["access_token"])
    assert response.code == 200, response
    assert response.json == {"sub": alice["user_id"]}
    assert (await userinfo(openid_only, "wrong")).code == 401
    versions = await openid_only.request("GET", "/_matrix/client/versions")
    assert versions.code == 404 and versions.json["errcode"] == "M_UNRECOGNIZED", versions
    refused = await request_token(openid_only, alice)
    assert refused.code == 404, refused
