"""Discovery endpoints, CORS and the JSON error surface, through the real daemon."""
import re

import pytest_twisted


@pytest_twisted.ensureDeferred
async def test_versions_lists_spec_versions(client):
    """/versions answers without a token and lists v1.x spec versions (which ones: test_versions.py)."""
    response = await client.request("GET", "/_matrix/client/versions")
    assert response.code == 200
    versions = response.json["versions"]
    assert any(v.startswith("v1.") for v in versions)
    assert all(re.fullmatch(r"r0\.[0-9]+\.[0-9]+|v1\.[0-9]+", v) for v in versions), versions


@pytest_twisted.ensureDeferred
async def test_well_known_points_at_public_baseurl(client):
    """/.well-known/matrix/client names the configured public base URL."""
    response = await client.request("GET", "/.well-known/matrix/client")
    assert response.code == 200
    assert response.json["m.homeserver"]["base_url"] == f"http://localhost:{client.server.port}/"


@pytest_twisted.ensureDeferred
async def test_capabilities_list_supported_room_versions(client):
    """/capabilities needs a token and lists room versions 1 to 12, all stable, with 12 the default."""
    assert (await client.request("GET", "capabilities")).code == 401
    user = await client.register()
    response = await client.request("GET", "capabilities", token=user["access_token"])
    assert response.code == 200
    versions = response.json["capabilities"]["m.room_versions"]
    assert versions["default"] == "12"
    assert versions["available"] == {str(n): "stable" for n in range(1, 13)}


@pytest_twisted.ensureDeferred
async def test_unknown_path_is_json_404(client):
    """An unknown path answers 404 M_UNRECOGNIZED as JSON, with CORS headers."""
    response = await client.request("GET", "/_matrix/client/v3/no/such/thing")
    assert response.code == 404
    assert response.json["errcode"] == "M_UNRECOGNIZED"
    assert response.headers["access-control-allow-origin"] == "*"


@pytest_twisted.ensureDeferred
async def test_wrong_method_is_json_405(client):
    """A known path with the wrong method answers 405 M_UNRECOGNIZED."""
    response = await client.request("DELETE", "/_matrix/client/versions", validate=False)
    assert response.code == 405
    assert response.json["errcode"] == "M_UNRECOGNIZED"


@pytest_twisted.ensureDeferred
async def test_405_lists_the_methods_the_path_serves(client):
    """A 405 carries an Allow header naming the methods the path serves (RFC 9110), OPTIONS included."""
    response = await client.request("DELETE", "/_matrix/client/v3/sync", validate=False)
    assert (response.code, response.json["errcode"]) == (405, "M_UNRECOGNIZED")
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"
    both = await client.request("DELETE", "/_matrix/client/v3/login", validate=False)
    assert both.code == 405
    assert both.headers["allow"] == "GET, HEAD, OPTIONS, POST"


@pytest_twisted.ensureDeferred
async def test_options_preflight_answered_everywhere(client):
    """OPTIONS on any path answers 200 with CORS headers so browsers can call the API."""
    response = await client.request("OPTIONS", "/_matrix/client/v3/login", validate=False)
    assert response.code == 200
    assert "Authorization" in response.headers["access-control-allow-headers"]
