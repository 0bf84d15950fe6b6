"""The admin API's access rule and server endpoints, through the real daemon."""
import pytest_twisted
from admin_helpers import ADMIN, register_admin


@pytest_twisted.ensureDeferred
async def test_non_admin_is_refused_with_forbidden(client):
    """A plain user gets 403 M_FORBIDDEN from the admin API; no token gets 401."""
    user = await client.register()
    response = await client.request("GET", f"{ADMIN}/v2/users", token=user["access_token"])
    assert response.code == 403, response
    assert response.json["errcode"] == "M_FORBIDDEN"
    anonymous = await client.request("GET", f"{ADMIN}/v2/users")
    assert anonymous.code == 401 and anonymous.json["errcode"] == "M_MISSING_TOKEN"


@pytest_twisted.ensureDeferred
async def test_admin_reads_server_version_and_is_logged(client):
    """
    Anyone gets the version (as Synapse: the admin UI's login page asks
    before login); an admin's request is logged naming the acting admin.
    """
    admin = await register_admin(client)
    response = await client.request("GET", f"{ADMIN}/v1/server_version")
    assert response.code == 200, response
    assert response.json["server_version"].startswith("ruma_tx ")
    listed = await client.request("GET", f"{ADMIN}/v2/users", token=admin["access_token"])
    assert listed.code == 200, listed
    assert f"admin {admin['user_id']}" in client.server.log()
    assert admin["access_token"] not in client.server.log()
