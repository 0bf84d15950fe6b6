"""
Interop with Synapse, the reference homeserver, as a federation peer on
loopback (../shared/fed/synapse-peer.sh): keys and signed profile queries
both ways. Skipped only when ../shared is absent (a plain clone).
"""
from __future__ import annotations

from urllib.parse import quote

import pytest_twisted

from synapse_peer import needs_peer, ruma, synapse, synapse_request, synapse_user  # noqa: F401 (fixtures)

pytestmark = needs_peer


@pytest_twisted.ensureDeferred
async def test_we_read_a_synapse_users_profile(synapse, ruma, make_client):
    """Our client reads the profile of a Synapse user: we query Synapse, signed, and verify its TLS."""
    peer, _ = synapse
    someone = await synapse_user(peer, "Sam on Synapse")
    seen = await make_client(ruma).request("GET", f"profile/{quote(someone['user_id'])}")
    assert seen.code == 200, seen
    assert seen.json["displayname"] == "Sam on Synapse"


@pytest_twisted.ensureDeferred
async def test_synapse_reads_our_users_profile(synapse, ruma, make_client):
    """A Synapse client reads our user's profile: Synapse fetches our keys and signs its query to us."""
    peer, _ = synapse
    client = make_client(ruma)
    ours = await client.register()
    await client.request("PUT", f"profile/{quote(ours['user_id'])}/displayname", {"displayname": "Rita on ruma"},
                         token=ours["access_token"])
    someone = await synapse_user(peer, "Sam")
    code, body = await synapse_request(peer, "GET", f"/_matrix/client/v3/profile/{quote(ours['user_id'])}",
                                       token=someone["access_token"])
    assert code == 200, body
    assert body["displayname"] == "Rita on ruma"
