"""
GET /.well-known/matrix/support through the real daemon: the configured
support page and contacts, and the spec's 404 when none are configured.
"""
from __future__ import annotations

import pytest
import pytest_twisted

SUPPORT = (
    '[well_known]\nsupport_page = "https://test.local/help.html"\nsupport_contacts = [\n'
    '  { matrix_id = "@admin:test.local", email_address = "admin@test.local", role = "m.role.admin" },\n'
    '  { email_address = "security@test.local", role = "m.role.security" },\n]\n'
)


@pytest.fixture(scope="module")
def support_server(start_homeserver):
    return start_homeserver(SUPPORT)


@pytest_twisted.ensureDeferred
async def test_configured_support_is_served(support_server, make_client):
    """Without a token, the support page and the contacts come back as configured (validated against the spec)."""
    response = await make_client(support_server).request("GET", "/.well-known/matrix/support")
    assert response.code == 200, response
    assert response.json == {
        "contacts": [
            {"matrix_id": "@admin:test.local", "email_address": "admin@test.local", "role": "m.role.admin"},
            {"email_address": "security@test.local", "role": "m.role.security"},
        ],
        "support_page": "https://test.local/help.html",
    }
    assert response.headers["access-control-allow-origin"] == "*"


@pytest_twisted.ensureDeferred
async def test_only_a_support_page(start_homeserver, make_client):
    """A support page alone is served alone."""
    server = start_homeserver('[well_known]\nsupport_page = "https://test.local/support"\n')
    response = await make_client(server).request("GET", "/.well-known/matrix/support")
    assert response.code == 200, response
    assert response.json == {"support_page": "https://test.local/support"}


@pytest_twisted.ensureDeferred
async def test_nothing_configured_is_404(client):
    """With no [well_known] support settings the answer is 404 M_NOT_FOUND (spec)."""
    response = await client.request("GET", "/.well-known/matrix/support")
    assert response.code == 404, response
    assert response.json["errcode"] == "M_NOT_FOUND"
